package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/estkit/estkit/store/internal/migration"
)

// ErrSchemaTooNew is returned by Open, Migrate and Check for a database whose
// schema version is newer than this package knows: a newer estd wrote it.
var ErrSchemaTooNew = errors.New("database schema is newer than this program supports")

// migrationLock is the key of the transaction-scoped advisory lock that
// migrations hold, so that of several estd nodes starting at once exactly
// one migrates and the others wait and then find nothing to do. It is
// "estkit" in ASCII. Advisory locks are per database.
const migrationLock int64 = 0x6573746b6974

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations[i] takes the schema from version i to version i+1.
var migrations = migration.MustLoad(migrationFiles, "migrations", "store/postgres")

// LatestSchemaVersion returns the schema version this package migrates to.
func LatestSchemaVersion() int { return len(migrations) }

// Migrate brings the schema of the database at dsn up to
// LatestSchemaVersion, as Open does, and reports the versions before and
// after. It is for running migrations ahead of a rollout (estd migrate),
// possibly with a role that nodes do not use; a database already at the
// latest version is left untouched.
func Migrate(ctx context.Context, dsn string) (from, to int, err error) {
	pool, err := newPool(dsn)
	if err != nil {
		return 0, 0, fmt.Errorf("store/postgres: %w", err)
	}
	defer pool.Close()
	from, to, err = migrate(ctx, pool)
	if err != nil {
		return from, from, fmt.Errorf("store/postgres: migrate: %w", err)
	}
	return from, to, nil
}

// Check connects to the database at dsn and returns its schema version
// without changing anything: 0 for an empty database, less than
// LatestSchemaVersion when Open would migrate it. A newer schema is an error
// wrapping ErrSchemaTooNew. It is for estd -validate.
func Check(ctx context.Context, dsn string) (version int, err error) {
	pool, err := newPool(dsn)
	if err != nil {
		return 0, fmt.Errorf("store/postgres: %w", err)
	}
	defer pool.Close()
	v, err := readVersion(ctx, pool)
	if err != nil {
		return 0, fmt.Errorf("store/postgres: check: %w", err)
	}
	if err := tooNew(v); err != nil {
		return v, fmt.Errorf("store/postgres: check: %w", err)
	}
	return v, nil
}

func tooNew(v int) error {
	if latest := LatestSchemaVersion(); v > latest {
		return fmt.Errorf("%w: database is at version %d, this program knows up to %d; upgrade it", ErrSchemaTooNew, v, latest)
	}
	return nil
}

// querier is what readVersion needs of a connection or transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// readVersion returns the schema version, 0 if there is no schema_version
// table (on the search path).
func readVersion(ctx context.Context, q querier) (int, error) {
	var exists bool
	if err := q.QueryRow(ctx, `SELECT to_regclass('schema_version') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	if err := q.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// migrate brings the schema up to the latest version in one transaction
// under the migration lock, so a failed migration leaves the database as it
// was and concurrent migrations run one after the other. A database already
// at the latest version gets no DDL, so nodes may use a role that cannot
// create tables.
func migrate(ctx context.Context, pool *pgxpool.Pool) (from, to int, err error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		if err != nil {
			tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
		return 0, 0, fmt.Errorf("take the migration lock: %w", err)
	}
	current, err := readVersion(ctx, tx)
	if err != nil {
		return 0, 0, err
	}
	if err := tooNew(current); err != nil {
		return current, current, err
	}
	if current == LatestSchemaVersion() {
		return current, current, tx.Commit(ctx)
	}
	if current == 0 {
		const createVersion = `
CREATE TABLE IF NOT EXISTS schema_version (
	version    integer     PRIMARY KEY,
	applied_at timestamptz NOT NULL DEFAULT now()
)`
		if _, err := tx.Exec(ctx, createVersion); err != nil {
			return 0, 0, fmt.Errorf("create schema_version: %w", err)
		}
	}
	for _, m := range migrations[current:] {
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return current, current, fmt.Errorf("migration %s: %w", m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, m.Version); err != nil {
			return current, current, fmt.Errorf("migration %s: %w", m.Name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return current, current, err
	}
	return current, LatestSchemaVersion(), nil
}
