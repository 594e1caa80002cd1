// Package fsutil writes files the way a CA must: atomically and with the
// mode asked for, so a crash never leaves a half-written key or list behind.
package fsutil

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFileAtomic writes data to path through a temporary file in the same
// directory, synced and renamed into place, with the given mode; what stood
// at path, a symbolic link included, is replaced. A path that is, or whose
// symbolic link the kernel follows to, a character device or a pipe (such
// as /dev/null, or /dev/stdout) is written to in place instead of being
// replaced, unless mode keeps others out (a private key): that is refused.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	if fi, err := os.Stat(path); err == nil && fi.Mode()&(os.ModeCharDevice|os.ModeNamedPipe) != 0 {
		if mode.Perm()&0o077 == 0 {
			return fmt.Errorf("%s is a %s, not a file: refusing to write private data there", path, kindOf(fi.Mode()))
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

// writeInPlace writes data to the character device or pipe at path,
// opened as the kernel resolves it (so its protections against links in
// shared directories apply), and checked to be one still once open.
func writeInPlace(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err == nil && fi.Mode()&(os.ModeCharDevice|os.ModeNamedPipe) == 0 {
		err = fmt.Errorf("%s changed while it was opened: not writing to it", path)
	}
	if err == nil {
		_, err = f.Write(data)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func kindOf(m os.FileMode) string {
	if m&os.ModeNamedPipe != 0 {
		return "pipe"
	}
	return "device"
}
