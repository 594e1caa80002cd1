package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/estkit/estkit/internal/estd"
	"github.com/estkit/estkit/store/sqlite"
)

// TestBackupPostgres: with PostgreSQL the archive holds the data
// directory's files and no database, and the restore it describes names
// the database (a bare `estd -data DIR` would start on an empty SQLite
// one, with no record of any certificate).
func TestBackupPostgres(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	if err := estd.InitCA(context.Background(), dir, estd.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(tmp, "b.tar.gz")
	code, out, errs := runCmd(t, "backup", "-data", dir, "-store", "postgres://estd@db.example/estd", "-out", archive)
	if code != 0 || strings.Contains(out, "estd -data DIR\n") || !strings.Contains(out, "pg_restore") || !strings.Contains(out, "-store") {
		t.Fatalf("estd backup with PostgreSQL: %d\n%s%s", code, out, errs)
	}
	names := extract(t, archive, filepath.Join(tmp, "restored"))
	if names[estd.DBFile] || !names[estd.IssuingCertFile] {
		t.Errorf("the archive holds %v", names)
	}
}

// TestBackupAfterKilledRun: a backup killed half-way leaves its partial file
// behind; the next backup to the same name goes through, and never replaces
// an archive that exists.
func TestBackupAfterKilledRun(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	if err := estd.InitCA(context.Background(), dir, estd.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, estd.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	archive := filepath.Join(tmp, "b.tar.gz")
	if err := os.WriteFile(archive+".partial", []byte("half an archive"), 0o600); err != nil { // a killed run
		t.Fatal(err)
	}
	if code, out, errs := runCmd(t, "backup", "-data", dir, "-out", archive); code != 0 {
		t.Fatalf("backup after a killed one: %d %s%s", code, out, errs)
	}
	if names := extract(t, archive, filepath.Join(tmp, "x")); !names[estd.DBFile] {
		t.Errorf("the archive holds %v", names)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(tmp, ".b.tar.gz.partial-*")); len(leftovers) != 0 {
		t.Errorf("partial files left: %v", leftovers)
	}
	if code, _, _ := runCmd(t, "backup", "-data", dir, "-out", archive); code != 1 {
		t.Errorf("a backup over an existing archive: %d, want 1", code)
	}
}
