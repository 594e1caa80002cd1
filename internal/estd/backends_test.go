package estd

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/estkit/estkit/store/sqlite"
)

// TestMigratingAnnounced: estd says it is migrating before it migrates an
// existing SQLite database (a rewrite of the certificates table says
// nothing while it runs), and says nothing for a new or current one.
func TestMigratingAnnounced(t *testing.T) {
	ctx := context.Background()
	type call struct{ from, to int }
	open := func(dir string) []call {
		t.Helper()
		var calls []call
		st, err := openStore(ctx, StoreOptions{DataDir: dir, Migrating: func(from, to int) { calls = append(calls, call{from, to}) }})
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
		return calls
	}

	dir := t.TempDir()
	if calls := open(dir); len(calls) != 0 {
		t.Errorf("a new database: Migrating called %v", calls)
	}
	if calls := open(dir); len(calls) != 0 {
		t.Errorf("a current database: Migrating called %v", calls)
	}

	old := schema2(t)
	latest := sqlite.LatestSchemaVersion()
	if calls := open(old); len(calls) != 1 || calls[0] != (call{2, latest}) {
		t.Errorf("a schema-2 database: Migrating called %v, want once with (2, %d)", calls, latest)
	}
	if calls := open(old); len(calls) != 0 {
		t.Errorf("after the migration: Migrating called %v", calls)
	}

	// estd migrate announces it the same way.
	old = schema2(t)
	var calls []call
	from, to, err := MigrateStore(ctx, StoreOptions{DataDir: old, Migrating: func(from, to int) { calls = append(calls, call{from, to}) }})
	if err != nil || from != 2 || to != latest || len(calls) != 1 || calls[0] != (call{2, latest}) {
		t.Errorf("MigrateStore: %d → %d, %v; Migrating called %v", from, to, err, calls)
	}
}

// schema2 returns a data directory with a database of schema 2, as an estd
// of that version left it.
func schema2(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	db, err := sql.Open("sqlite", filepath.Join(dir, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL) STRICT`); err != nil {
		t.Fatal(err)
	}
	for v, name := range []string{"0001_init.sql", "0002_requests.sql"} {
		ddl, err := os.ReadFile(filepath.Join("..", "..", "store", "sqlite", "migrations", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(string(ddl)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := db.Exec(`INSERT INTO schema_version VALUES (?, '2026-01-01T00:00:00.000000000Z')`, v+1); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
