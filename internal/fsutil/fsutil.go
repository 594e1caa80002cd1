// Package fsutil writes files the way a CA must: atomically and with the
// mode asked for, so a crash never leaves a half-written key or list behind.
package fsutil

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// WriteFileAtomic writes data to path through a temporary file in the same
// directory, synced and renamed into place, with the given mode; what stood
// at path, a symbolic link included, is replaced. A device, pipe or socket,
// anything under /dev or /proc, and a link into /proc (/dev/stdout, which
// may stand for a redirected file) are written to in place instead of being
// replaced, unless mode keeps others out (a private key): that is refused.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	if special(path) {
		if mode.Perm()&0o077 == 0 {
			return fmt.Errorf("%s is a device or a stream, not a file: refusing to write private data there", path)
		}
		return writeInPlace(path, data)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// special reports whether path is not a place for a file of ours: a device,
// a pipe or a socket (as the kernel resolves path), a name under /dev or
// /proc, or a symbolic link into /proc.
func special(path string) bool {
	if abs, err := filepath.Abs(path); err == nil && (strings.HasPrefix(abs, "/dev/") || strings.HasPrefix(abs, "/proc/")) {
		return true
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		if target, err := os.Readlink(path); err == nil && strings.HasPrefix(target, "/proc/") {
			return true
		}
	}
	fi, err := os.Stat(path)
	return err == nil && fi.Mode()&(os.ModeDevice|os.ModeNamedPipe|os.ModeSocket) != 0
}

// writeInPlace writes data where path leads, opened as the kernel resolves
// it (so its protections against links in shared directories apply), never
// creating anything.
func writeInPlace(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
