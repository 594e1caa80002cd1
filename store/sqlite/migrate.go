package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/estkit/estkit/store/internal/migration"
)

// ErrSchemaTooNew is returned by Open for a database whose schema version is
// newer than this package knows: it was written by a newer estd.
var ErrSchemaTooNew = errors.New("database schema is newer than this program supports")

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations[i] takes the schema from version i to version i+1.
var migrations = migration.MustLoad(migrationFiles, "migrations", "store/sqlite")

// migrate brings the schema up to the latest version in one transaction, so
// a failed migration leaves the database as it was. After a migration it
// checkpoints the WAL and truncates it: a migration that rewrites a table
// leaves a WAL as large as the table.
func migrate(ctx context.Context, db *sql.DB) error {
	from, err := schemaVersion(ctx, db)
	if err != nil {
		return err
	}
	if err := migrateTo(ctx, db, len(migrations)); err != nil {
		return err
	}
	if from < len(migrations) {
		// Best effort: a reader in another process may hold the WAL, and
		// the next automatic checkpoint then does the work.
		db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	}
	return nil
}

// schemaVersion is the schema version of db, 0 for an empty database.
func schemaVersion(ctx context.Context, db *sql.DB) (int, error) {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'`).Scan(&n); err != nil || n == 0 {
		return 0, err
	}
	var v int
	err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v)
	return v, err
}

// migrateTo brings the schema up to version target (tests start from older
// versions with it).
func migrateTo(ctx context.Context, db *sql.DB, target int) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()

	const createVersion = `
CREATE TABLE IF NOT EXISTS schema_version (
	version    INTEGER PRIMARY KEY,
	applied_at TEXT    NOT NULL
) STRICT`
	if _, err := tx.ExecContext(ctx, createVersion); err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if latest := len(migrations); current > latest {
		return fmt.Errorf("%w: database is at version %d, this program knows up to %d; upgrade it", ErrSchemaTooNew, current, latest)
	}
	for _, m := range migrations[current:max(current, target)] {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
		now := time.Now().UTC().Format(timeLayout)
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version, applied_at) VALUES (?, ?)`, m.Version, now); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
	}
	return tx.Commit()
}

// LatestSchemaVersion is the schema version this package migrates to.
func LatestSchemaVersion() int { return len(migrations) }

// Check reads the schema version of the database at path without changing
// anything (for `estd -validate`). A database newer than this package knows
// is ErrSchemaTooNew.
func Check(ctx context.Context, path string) (int, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return 0, fmt.Errorf("store/sqlite: %w", err)
	}
	if _, err := os.Stat(abs); err != nil {
		return 0, fmt.Errorf("store/sqlite: %w", err)
	}
	db, err := sql.Open("sqlite", dsn(abs, true))
	if err != nil {
		return 0, fmt.Errorf("store/sqlite: open %s: %w", abs, err)
	}
	defer db.Close()
	v, err := schemaVersion(ctx, db)
	if err != nil {
		return 0, fmt.Errorf("store/sqlite: check %s: %w", abs, err)
	}
	if v > len(migrations) {
		return v, fmt.Errorf("store/sqlite: %w: database is at version %d, this program knows up to %d; upgrade it", ErrSchemaTooNew, v, len(migrations))
	}
	return v, nil
}
