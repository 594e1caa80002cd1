//go:build unix

package fsutil

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestWriteFileAtomic: a regular file is replaced with the mode asked for;
// a symbolic link is written through and stays a link; a device is written
// to, never replaced.
func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := WriteFileAtomic(plain, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(plain); string(b) != "one" {
		t.Fatalf("plain: %q", b)
	}
	if fi, _ := os.Stat(plain); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink("plain", link); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(link, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink == 0 {
		t.Error("the link was replaced by a file")
	}
	if b, _ := os.ReadFile(plain); string(b) != "two" {
		t.Errorf("the link's target holds %q, want two", b)
	}
	// A pipe stands for the devices (such as /dev/null) a test should not
	// risk replacing.
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := os.ReadFile(fifo)
		got <- b
	}()
	if err := WriteFileAtomic(fifo, []byte("through"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b := <-got; string(b) != "through" {
		t.Errorf("read %q from the pipe", b)
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("the pipe was replaced: %v %v", fi.Mode(), err)
	}
	if err := os.Symlink(filepath.Join(dir, "nowhere", "x"), filepath.Join(dir, "dangling")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "dangling"), []byte("x"), 0o600); err == nil {
		t.Error("a dangling link was written")
	}
}
