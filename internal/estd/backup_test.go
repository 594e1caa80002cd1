package estd

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/estkit/estkit/store/sqlite"
)

// TestBackupLeavesSchema: `estd backup` of a database at an older schema
// (an estd not upgraded yet: "back up before upgrading") neither migrates
// the live database nor the copy, so the old estd can restore it.
func TestBackupLeavesSchema(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := createCA(dir, "p256", time.Now()); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	// The database an estd of the previous release wrote: schema 5.
	db, err := sql.Open("sqlite", filepath.Join(dir, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	latest := sqlite.LatestSchemaVersion()
	if _, err := db.Exec(`DROP INDEX requests_pending`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM schema_version WHERE version = ?`, latest); err != nil {
		t.Fatal(err)
	}
	db.Close()
	before, _ := sqlite.Check(ctx, filepath.Join(dir, DBFile))

	var buf bytes.Buffer
	if _, err := Backup(ctx, &buf, BackupOptions{Store: StoreOptions{DataDir: dir}}); err != nil {
		t.Fatal(err)
	}
	after, _ := sqlite.Check(ctx, filepath.Join(dir, DBFile))
	if before != latest-1 || after != before {
		t.Errorf("live database schema %d before the backup, %d after; want %d both", before, after, latest-1)
	}
	gz, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatal("no database in the backup")
		}
		if h.Name != DBFile {
			continue
		}
		copyPath := filepath.Join(t.TempDir(), DBFile)
		b, _ := io.ReadAll(tr)
		if err := os.WriteFile(copyPath, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if v, err := sqlite.Check(ctx, copyPath); err != nil || v != before {
			t.Errorf("the copy's schema %d, %v; want %d", v, err, before)
		}
		return
	}
}

// TestBackupNoKeysDropsPIN: -no-keys keeps issuing-ca.keyref, the PKCS#11
// URI of the key, but without the token PIN (pin-value) that 'estd ca init
// -hsm' may have written into it.
func TestBackupNoKeysDropsPIN(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := createCA(dir, "p256", time.Now()); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, IssuingKeyFile))
	os.WriteFile(filepath.Join(dir, IssuingKeyRefFile), []byte("pkcs11:token=estd;object=issuing?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234\n"), 0o600)
	st, _ := sqlite.Open(ctx, filepath.Join(dir, DBFile))
	st.Close()
	var buf bytes.Buffer
	sum, err := Backup(ctx, &buf, BackupOptions{Store: StoreOptions{DataDir: dir}, NoKeys: true})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.IssuingKey {
		t.Error("the key reference is not reported as the issuing key")
	}
	gz, _ := gzip.NewReader(&buf)
	tr := tar.NewReader(gz)
	found := false
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(tr)
		if bytes.Contains(b, []byte("pin-value=")) {
			t.Errorf("-no-keys backup holds %s with the token PIN: %s", h.Name, b)
		}
		if h.Name == IssuingKeyRefFile {
			found = string(b) == "pkcs11:token=estd;object=issuing?module-path=/usr/lib/softhsm/libsofthsm2.so\n"
		}
	}
	if !found {
		t.Error("the key reference is not in the backup, or not as it should be")
	}
}
