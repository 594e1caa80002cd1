package estd

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/estkit/estkit/ca/keys"
	"github.com/estkit/estkit/store"
	"github.com/estkit/estkit/store/postgres"
	"github.com/estkit/estkit/store/sqlite"
)

// IssuingKeyRefFile names, instead of IssuingKeyFile, where the issuing CA
// key is kept when it is not a file in the data directory: a PKCS#11 URI
// (RFC 7512) or a key file path, on one line.
const IssuingKeyRefFile = "issuing-ca.keyref"

// StoreOptions say where the store is.
type StoreOptions struct {
	// DataDir holds the SQLite database (DBFile) when DSN is "".
	DataDir string
	// DSN selects PostgreSQL: "postgres://..." or "postgresql://...", or
	// the key=value form. Keep the password out of it: pgx reads PGPASSWORD
	// and ~/.pgpass (PGPASSFILE) like libpq.
	DSN string
	// Migrating, when set, is called before an existing SQLite database
	// is migrated: a migration can rewrite the certificates table (schema
	// 3 does, about 6 s per million certificates) and says nothing while
	// it runs.
	Migrating func(from, to int)
}

// IsPostgres reports whether dsn names a PostgreSQL database.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") || strings.Contains(dsn, "host=") || strings.Contains(dsn, "dbname=")
}

func (o StoreOptions) sqlitePath() string {
	dir := o.DataDir
	if dir == "" {
		dir = "estd-data"
	}
	return filepath.Join(dir, DBFile)
}

// openStore opens (and migrates) the store o names.
func openStore(ctx context.Context, o StoreOptions) (store.Store, error) {
	switch {
	case o.DSN == "":
		o.announceMigration(ctx)
		return sqlite.Open(ctx, o.sqlitePath())
	case IsPostgres(o.DSN):
		return postgres.Open(ctx, o.DSN)
	}
	return nil, fmt.Errorf("store: %q is not a PostgreSQL DSN (postgres://...); leave it empty for SQLite in the data directory", redactDSN(o.DSN))
}

// MigrationNote says what migrating an SQLite store from schema version
// from to to involves.
func MigrationNote(from, to int) string {
	var work []string
	if from < 3 && to >= 3 {
		work = append(work, "schema 3 rewrites the certificates table, about 6 s per million certificates")
	}
	if from < 4 && to >= 4 {
		work = append(work, "schema 4 indexes issuance times, about 2 s per million certificates")
	}
	if len(work) == 0 {
		return "a few statements"
	}
	return strings.Join(work, "; ")
}

// announceMigration calls o.Migrating if the SQLite database exists at a
// schema older than this estd's. A database it cannot read is left to Open
// to report.
func (o StoreOptions) announceMigration(ctx context.Context) {
	if o.Migrating == nil {
		return
	}
	if _, err := os.Stat(o.sqlitePath()); err != nil {
		return
	}
	if v, err := sqlite.Check(ctx, o.sqlitePath()); err == nil && v > 0 && v < sqlite.LatestSchemaVersion() {
		o.Migrating(v, sqlite.LatestSchemaVersion())
	}
}

// OpenStore opens the store of o without touching the CA: what `estd admin`
// needs, next to a running estd. An SQLite database must exist already.
func OpenStore(ctx context.Context, o StoreOptions) (store.Store, error) {
	if o.DSN == "" {
		if _, err := os.Stat(o.sqlitePath()); err != nil {
			return nil, fmt.Errorf("no database at %s (is -data right?)", o.sqlitePath())
		}
	}
	return openStore(ctx, o)
}

// MigrateStore brings the store's schema to the latest version and reports
// the versions before and after.
func MigrateStore(ctx context.Context, o StoreOptions) (from, to int, err error) {
	if IsPostgres(o.DSN) {
		return postgres.Migrate(ctx, o.DSN)
	}
	if o.DSN != "" {
		_, err := openStore(ctx, o)
		return 0, 0, err
	}
	before := 0
	if _, err := os.Stat(o.sqlitePath()); err == nil {
		if before, err = sqlite.Check(ctx, o.sqlitePath()); err != nil {
			return 0, 0, err
		}
	}
	if o.Migrating != nil && before > 0 && before < sqlite.LatestSchemaVersion() {
		o.Migrating(before, sqlite.LatestSchemaVersion())
	}
	st, err := sqlite.Open(ctx, o.sqlitePath())
	if err != nil {
		return before, 0, err
	}
	defer st.Close()
	after, err := st.SchemaVersion(ctx)
	return before, after, err
}

// CheckStore reports whether the store is reachable and at a schema version
// this estd can use, without changing it. An SQLite database that does not
// exist yet is fine: it is created on first start.
func CheckStore(ctx context.Context, o StoreOptions) (string, error) {
	switch {
	case IsPostgres(o.DSN):
		v, err := postgres.Check(ctx, o.DSN)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("PostgreSQL %s, schema version %d of %d", redactDSN(o.DSN), v, postgres.LatestSchemaVersion()), nil
	case o.DSN != "":
		_, err := openStore(ctx, o)
		return "", err
	}
	if _, err := os.Stat(o.sqlitePath()); errors.Is(err, fs.ErrNotExist) {
		return fmt.Sprintf("SQLite %s (created on first start)", o.sqlitePath()), nil
	}
	v, err := sqlite.Check(ctx, o.sqlitePath())
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("SQLite %s, schema version %d of %d", o.sqlitePath(), v, sqlite.LatestSchemaVersion()), nil
}

// redactDSN hides a password in a DSN for messages.
func redactDSN(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		rest := dsn[i+3:]
		if at := strings.Index(rest, "@"); at >= 0 {
			if colon := strings.Index(rest[:at], ":"); colon >= 0 {
				return dsn[:i+3] + rest[:colon] + ":REDACTED" + rest[at:]
			}
		}
	}
	if i := strings.Index(dsn, "password="); i >= 0 {
		end := strings.IndexByte(dsn[i:], ' ')
		if end < 0 {
			end = len(dsn) - i
		}
		return dsn[:i] + "password=REDACTED" + dsn[i+end:]
	}
	return dsn
}

// KeyOptions say how to unlock the issuing CA key.
type KeyOptions struct {
	// Ref overrides where the key is: a key file path or a PKCS#11 URI.
	// "" means IssuingKeyFile, or the reference in IssuingKeyRefFile.
	Ref string
	// PassphraseFile holds the passphrase of an encrypted key file; ""
	// means the ESTD_CA_KEY_PASSPHRASE environment variable, if set.
	PassphraseFile string
}

// loadIssuingKey loads the issuing CA signer of dir.
func loadIssuingKey(ctx context.Context, dir string, o KeyOptions, logger *slog.Logger) (crypto.Signer, io.Closer, error) {
	ref := o.Ref
	if ref == "" {
		if b, err := os.ReadFile(filepath.Join(dir, IssuingKeyRefFile)); err == nil {
			ref = strings.TrimSpace(string(b))
		} else {
			ref = filepath.Join(dir, IssuingKeyFile)
		}
	}
	return keys.Load(ctx, ref, keys.Options{Passphrase: o.passphrase(), Logger: logger})
}

// passphrase returns what unlocks an encrypted key file.
func (o KeyOptions) passphrase() keys.Passphrase {
	if o.PassphraseFile != "" {
		return keys.PassphraseFromFile(o.PassphraseFile)
	}
	return keys.PassphraseFromEnv("ESTD_CA_KEY_PASSPHRASE")
}
