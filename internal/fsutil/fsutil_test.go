//go:build unix

package fsutil

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestWriteFileAtomic: a regular file is replaced with the mode asked for;
// so is a symbolic link (never written through: in a shared directory it
// may be someone else's); a pipe (standing for devices such as /dev/null a
// test should not risk) is written to in place, never replaced, but only
// with data that is not private.
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
	if fi, _ := os.Lstat(link); !fi.Mode().IsRegular() {
		t.Error("the link was written through, not replaced")
	}
	if b, _ := os.ReadFile(plain); string(b) != "one" {
		t.Errorf("the link's target was written: %q", b)
	}

	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(fifo, []byte("secret"), 0o600); err == nil {
		t.Error("private data was written to a pipe")
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := os.ReadFile(fifo)
		got <- b
	}()
	if err := WriteFileAtomic(fifo, []byte("public"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b := <-got; string(b) != "public" {
		t.Errorf("read %q from the pipe", b)
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("the pipe was replaced: %v %v", fi.Mode(), err)
	}

	// A link into /proc, as /dev/stdout is, to a redirected file: written
	// through, the link kept; private data refused.
	redirected, err := os.Create(filepath.Join(dir, "redirected"))
	if err != nil {
		t.Fatal(err)
	}
	defer redirected.Close()
	stdout := filepath.Join(dir, "stdout")
	if err := os.Symlink(fmt.Sprintf("/proc/self/fd/%d", redirected.Fd()), stdout); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(stdout, []byte("certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(redirected.Name()); string(b) != "certificate" {
		t.Errorf("the redirected file holds %q", b)
	}
	if fi, _ := os.Lstat(stdout); fi.Mode()&os.ModeSymlink == 0 {
		t.Error("the link into /proc was replaced")
	}
	if err := WriteFileAtomic(stdout, []byte("key"), 0o600); err == nil {
		t.Error("private data was written to a stream")
	}
}
