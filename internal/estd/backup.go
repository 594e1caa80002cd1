package estd

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/estkit/estkit/store/sqlite"
)

// BackupOptions configure Backup.
type BackupOptions struct {
	// Store says where the database is; a PostgreSQL database is not
	// copied (pg_dump does that), the data directory's files are.
	Store StoreOptions
	// NoKeys leaves out private key files and the serverkeygen keys: for
	// a copy kept where keys must not go (the certificates, users and
	// database still restore an estd once the keys are put back).
	NoKeys bool
	// Now stamps the archive's entries; zero means time.Now().
	Now time.Time
	// TempDir holds the database's copy while it is archived: as large as
	// the database. "" means the system's temporary directory.
	TempDir string
}

// BackupSummary is what Backup wrote.
type BackupSummary struct {
	Files []string // the archive's entries, in order
	// Database reports whether the SQLite database is among them.
	Database bool
	// IssuingKey reports whether the issuing CA's key (its file, or a
	// reference to it in an HSM) is among them.
	IssuingKey bool
	// KeysLeftOut are the private key files -no-keys left out, retired
	// CAs' included: a restore needs each put back.
	KeysLeftOut []string
	// PINsDropped reports whether -no-keys removed a pin-value from a key
	// reference.
	PINsDropped bool
}

// backupFiles are the data directory's files a backup keeps, when present;
// RetiredDir is kept whole. The TLS certificate is not: estd issues a new
// one when it starts without it.
var backupFiles = []string{RootCertFile, RootKeyFile, IssuingCertFile, IssuingKeyFile, IssuingKeyRefFile,
	UsersFile, AdminUsersFile, KEKsFile}

// isKeyFile reports whether a data directory file holds private keys.
func isKeyFile(name string) bool {
	return strings.HasSuffix(name, ".key") || name == KEKsFile
}

// withoutPIN returns a PKCS#11 URI (RFC 7512) without its pin-value
// attribute, and whether it had one.
func withoutPIN(uri string) (string, bool) {
	path, query, ok := strings.Cut(strings.TrimSpace(uri), "?")
	if !ok {
		return uri, false
	}
	var kept []string
	for _, a := range strings.Split(query, "&") {
		if !strings.HasPrefix(a, "pin-value=") {
			kept = append(kept, a)
		}
	}
	if len(kept) == len(strings.Split(query, "&")) {
		return uri, false
	}
	if len(kept) == 0 {
		return path + "\n", true
	}
	return path + "?" + strings.Join(kept, "&") + "\n", true
}

// Backup writes a gzipped tar of what restores estd's data directory to w:
// the CA certificates and keys (retired ones too), the users files, the
// serverkeygen keys and a consistent copy of the SQLite database, taken
// while estd serves. Extract it into an empty directory and start estd
// with -data pointing there.
func Backup(ctx context.Context, w io.Writer, o BackupOptions) (BackupSummary, error) {
	var sum BackupSummary
	dir := o.Store.DataDir
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	if _, err := os.Stat(filepath.Join(dir, RootCertFile)); err != nil {
		return sum, fmt.Errorf("%s holds no CA (%s): %w", dir, RootCertFile, err)
	}
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	add := func(name, path string) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", path)
		}
		var body io.Reader = io.LimitReader(f, fi.Size())
		size := fi.Size()
		if o.NoKeys && strings.HasSuffix(name, ".keyref") {
			// A PKCS#11 URI may carry the PIN (pin-value): a copy without
			// keys carries no PIN either.
			b, err := io.ReadAll(body)
			if err != nil {
				return err
			}
			if stripped, dropped := withoutPIN(string(b)); dropped {
				b, sum.PINsDropped = []byte(stripped), true
			}
			body, size = bytes.NewReader(b), int64(len(b))
		}
		hdr := &tar.Header{Name: name, Mode: int64(fi.Mode().Perm()), Size: size, ModTime: now, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.CopyN(tw, body, size); err != nil {
			return err
		}
		sum.Files = append(sum.Files, name)
		return nil
	}
	for _, name := range backupFiles {
		if o.NoKeys && isKeyFile(name) {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				sum.KeysLeftOut = append(sum.KeysLeftOut, name)
			}
			continue
		}
		err := add(name, filepath.Join(dir, name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return sum, err
		case name == IssuingKeyFile || name == IssuingKeyRefFile:
			sum.IssuingKey = true
		}
	}
	retired, err := os.ReadDir(filepath.Join(dir, RetiredDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return sum, err
	}
	if len(retired) > 0 {
		if err := tw.WriteHeader(&tar.Header{Name: RetiredDir + "/", Mode: 0o700, ModTime: now, Typeflag: tar.TypeDir}); err != nil {
			return sum, err
		}
	}
	for _, e := range retired {
		if e.IsDir() {
			continue
		}
		if o.NoKeys && isKeyFile(e.Name()) {
			sum.KeysLeftOut = append(sum.KeysLeftOut, RetiredDir+"/"+e.Name())
			continue
		}
		if err := add(RetiredDir+"/"+e.Name(), filepath.Join(dir, RetiredDir, e.Name())); err != nil {
			return sum, err
		}
	}
	if o.Store.DSN == "" {
		tmp, err := os.MkdirTemp(o.TempDir, "estd-backup-")
		if err != nil {
			return sum, err
		}
		defer os.RemoveAll(tmp)
		copyPath := filepath.Join(tmp, DBFile)
		if err := sqlite.Backup(ctx, o.Store.sqlitePath(), copyPath); err != nil {
			return sum, err
		}
		if err := os.Chmod(copyPath, 0o600); err != nil {
			return sum, err
		}
		if err := add(DBFile, copyPath); err != nil {
			return sum, err
		}
		sum.Database = true
	}
	if err := tw.Close(); err != nil {
		return sum, err
	}
	return sum, gz.Close()
}
