package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/estkit/estkit/internal/estd"
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
