// Package postgres is the PostgreSQL backend of store.Store, built on
// github.com/jackc/pgx/v5, for several estd nodes sharing one database.
//
// Every write is a single statement that commits on its own, and the store
// keeps synchronous_commit on (a server, database or role default of off is
// overridden for its sessions), so a Put that returns nil has been flushed
// to the server's disk, and to synchronous standbys if it has any. Serial
// uniqueness, the first revocation winning and each approval step happening
// once are decided by the database, so they hold across nodes.
//
// The schema is migrated forward on Open, in one transaction under an
// advisory lock, so that nodes starting together migrate once; a database
// written by a newer version of this package is refused with
// ErrSchemaTooNew. Migrate and Check do the same for estd migrate and
// estd -validate. Tables are created in the first schema of the search path,
// which a DSN can set (options=-csearch_path=estd).
//
// Times are kept to the microsecond, truncated. The issuance order of List
// and BySubject is the order in which Puts began; with several writers a
// record can commit after one that follows it, so a List cursor taken while
// Puts are in flight can pass over a record that commits later.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/estkit/estkit/store"
	"github.com/estkit/estkit/store/internal/groupcommit"
)

const (
	// uniqueViolation is the SQLSTATE of a duplicate key.
	uniqueViolation = "23505"
)

// Store is a store.Store kept in a PostgreSQL database. It is safe for
// concurrent use, and any number of Stores, in any number of processes, may
// share one database.
type Store struct {
	pool *pgxpool.Pool
	// puts groups concurrent Puts into shared transactions (batch.go).
	puts *groupcommit.Committer[putItem]
}

var (
	_ store.Store          = (*Store)(nil)
	_ store.GroupCommits   = (*Store)(nil)
	_ store.Statuses       = (*Store)(nil)
	_ store.Supersedes     = (*Store)(nil)
	_ store.IssuanceCounts = (*Store)(nil)
)

// Open connects to the database at dsn, a postgres:// URL or a libpq
// keyword/value string, and migrates its schema to LatestSchemaVersion.
func Open(ctx context.Context, dsn string) (*Store, error) {
	pool, err := newPool(dsn)
	if err != nil {
		return nil, fmt.Errorf("store/postgres: %w", err)
	}
	if _, _, err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store/postgres: open: %w", err)
	}
	s := &Store{pool: pool}
	s.puts = groupcommit.New(s.commitBatch)
	return s, nil
}

// newPool returns a pool for dsn, which may carry pgxpool's pool_*
// settings. It connects lazily. The application is named "estd" unless the
// DSN names it, so that operators can tell estd's sessions apart.
func newPool(dsn string) (*pgxpool.Pool, error) {
	if dsn == "" {
		return nil, errors.New("empty DSN")
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err // pgx leaves the password out of its errors
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "estd"
	}
	cfg.AfterConnect = keepDurable
	return pgxpool.NewWithConfig(context.Background(), cfg)
}

// keepDurable turns synchronous_commit back on for a session whose server,
// database or role defaults it to off: Put promises durability. Stronger
// settings (remote_apply, ...) and local are left alone.
func keepDurable(ctx context.Context, conn *pgx.Conn) error {
	var sc string
	if err := conn.QueryRow(ctx, `SELECT current_setting('synchronous_commit')`).Scan(&sc); err != nil {
		return err
	}
	if sc == "off" {
		_, err := conn.Exec(ctx, `SET synchronous_commit = on`)
		return err
	}
	return nil
}

// GroupCommitStats implements store.GroupCommits.
func (s *Store) GroupCommitStats() (commits, puts int64) {
	return s.puts.Commits(), s.puts.Taken()
}

// Close closes the pool, waiting for connections in use to be returned.
func (s *Store) Close() error {
	s.puts.Close()
	s.pool.Close()
	return nil
}

// Ping reports whether the database can be read.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.SchemaVersion(ctx); err != nil {
		return fmt.Errorf("store/postgres: ping: %w", err)
	}
	return nil
}

// SchemaVersion returns the schema version of the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("store/postgres: schema version: %w", err)
	}
	return v, nil
}

const insertRecord = `
INSERT INTO certificates (
	serial, subject, sans, not_before, not_after, key_algorithm, profile,
	requester, auth_method, issued_at, der, revoked, revoked_at, revocation_reason,
	superseded_by
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`

// Put records rec. It returns an error wrapping store.ErrDuplicate if the
// serial is already recorded. When Put returns nil the record is committed
// and flushed.
func (s *Store) Put(ctx context.Context, rec *store.Record) error {
	it, err := newPutItem(rec)
	if err != nil {
		return err
	}
	err = s.puts.Put(ctx, it)
	if errors.Is(err, store.ErrDuplicate) || isDuplicateSerial(err) {
		return fmt.Errorf("store/postgres: put %s: %w", it.serial, store.ErrDuplicate)
	}
	if err != nil {
		return fmt.Errorf("store/postgres: put %s: %w", it.serial, err)
	}
	return nil
}

// newPutItem checks rec and returns the arguments of insertRecord for it.
func newPutItem(rec *store.Record) (putItem, error) {
	if rec == nil {
		return putItem{}, errors.New("store/postgres: put: nil record")
	}
	if rec.Serial == nil || rec.Serial.Sign() <= 0 {
		return putItem{}, fmt.Errorf("store/postgres: put: serial %v is not positive", rec.Serial)
	}
	serial := serialKey(rec.Serial)
	if rec.SupersededBy != nil && rec.SupersededBy.Sign() <= 0 {
		return putItem{}, fmt.Errorf("store/postgres: put %s: successor %v is not positive", serial, rec.SupersededBy)
	}
	var times [4]time.Time
	for i, t := range []time.Time{rec.NotBefore, rec.NotAfter, rec.IssuedAt, rec.RevokedAt} {
		var err error
		if times[i], err = checkTime(t); err != nil {
			return putItem{}, fmt.Errorf("store/postgres: put %s: %w", serial, err)
		}
	}
	return putItem{serial: serial, args: []any{
		serial, rec.Subject, nonNil(rec.SANs), times[0], times[1], rec.KeyAlgorithm, rec.Profile,
		rec.Requester, rec.AuthMethod, times[2], nonNil(rec.DER), rec.Revoked, nullTime(times[3]), rec.RevocationReason,
		successorKey(rec.SupersededBy)}}, nil
}

// isDuplicateSerial reports whether err is PostgreSQL refusing a second
// record of a serial.
func isDuplicateSerial(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == uniqueViolation && e.ConstraintName == "certificates_serial_unique"
}

const selectRecord = `
SELECT seq, serial, subject, sans, not_before, not_after, key_algorithm, profile,
	requester, auth_method, issued_at, der, revoked, revoked_at, revocation_reason,
	superseded_by
FROM certificates`

// BySerial returns the record with that serial or an error wrapping
// store.ErrNotFound.
func (s *Store) BySerial(ctx context.Context, serial *big.Int) (*store.Record, error) {
	if serial == nil || serial.Sign() <= 0 {
		return nil, fmt.Errorf("store/postgres: serial %v: %w", serial, store.ErrNotFound)
	}
	key := serialKey(serial)
	entries, err := s.query(ctx, selectRecord+` WHERE serial = $1`, key)
	if err != nil {
		return nil, fmt.Errorf("store/postgres: serial %s: %w", key, err)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("store/postgres: serial %s: %w", key, store.ErrNotFound)
	}
	return entries[0].rec, nil
}

// Status implements store.Statuses. The DER is compared in the database:
// the record's columns are neither sent nor decoded.
func (s *Store) Status(ctx context.Context, serial *big.Int, der []byte) (store.Status, error) {
	if serial == nil || serial.Sign() <= 0 {
		return store.Status{}, fmt.Errorf("store/postgres: serial %v: %w", serial, store.ErrNotFound)
	}
	key := serialKey(serial)
	var (
		st        store.Status
		successor *string
	)
	err := s.pool.QueryRow(ctx, `SELECT der IS NOT DISTINCT FROM $2, revoked, profile, superseded_by FROM certificates WHERE serial = $1`, key, der).
		Scan(&st.SameDER, &st.Revoked, &st.Profile, &successor)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Status{}, fmt.Errorf("store/postgres: serial %s: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return store.Status{}, fmt.Errorf("store/postgres: status of %s: %w", key, err)
	}
	if st.SupersededBy, err = parseSuccessor(successor); err != nil {
		return store.Status{}, fmt.Errorf("store/postgres: status of %s: %w", key, err)
	}
	return st, nil
}

// BySubject returns every record with exactly that subject, in issuance
// order. It returns an empty slice, not an error, when there are none. It
// reads the whole table: an index on subject cost every enrollment a random
// page write (migration 0003), and nothing on a request's path asks this.
func (s *Store) BySubject(ctx context.Context, subject string) ([]*store.Record, error) {
	entries, err := s.query(ctx, selectRecord+` WHERE subject = $1 ORDER BY seq`, subject)
	if err != nil {
		return nil, fmt.Errorf("store/postgres: by subject: %w", err)
	}
	return records(entries), nil
}

// List returns up to opts.Limit records (100 if zero or negative, at most
// 1000) issued after the cursor opts.After, in issuance order, and the cursor
// of the next page, which is "" when there are no more records.
func (s *Store) List(ctx context.Context, opts store.ListOptions) ([]*store.Record, string, error) {
	after, limit, err := opts.Page()
	if err != nil {
		return nil, "", fmt.Errorf("store/postgres: list: %w", err)
	}
	// One extra row tells whether there is a next page.
	query := selectRecord + ` WHERE seq > $1 ORDER BY seq LIMIT $2`
	if opts.Newest {
		query = selectRecord + ` WHERE seq < $1 ORDER BY seq DESC LIMIT $2`
	}
	entries, err := s.query(ctx, query, after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("store/postgres: list: %w", err)
	}
	var next string
	if len(entries) > limit {
		entries = entries[:limit]
		next = strconv.FormatInt(entries[limit-1].seq, 10)
	}
	return records(entries), next, nil
}

// revokeRecord marks a certificate revoked unless it already is: the CASE
// expressions keep the first revocation's time and reason. Concurrent
// revocations of one certificate queue on its row lock, and each evaluates
// the CASE against the row as the one before left it, so the first to
// commit wins. It matches the row either way, so it affects no row only for
// an unknown serial.
const revokeRecord = `
UPDATE certificates SET
	revoked_at = CASE WHEN revoked THEN revoked_at ELSE $1 END,
	revocation_reason = CASE WHEN revoked THEN revocation_reason ELSE $2 END,
	revoked = true
WHERE serial = $3`

// CountIssued implements store.IssuanceCounts from certificates_issued_at.
func (s *Store) CountIssued(ctx context.Context, from, to time.Time) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT COUNT(*) FROM certificates WHERE issued_at >= $1 AND issued_at < $2`, from, to).Scan(&n); err != nil {
		return 0, fmt.Errorf("store/postgres: count issued: %w", err)
	}
	return n, nil
}

// supersede revokes a certificate that is not revoked yet as superseded
// by a successor.
const supersede = `
UPDATE certificates SET revoked_at = $1, revocation_reason = $2, revoked = true, superseded_by = $3
WHERE serial = $4 AND NOT revoked`

// Supersede implements store.Supersedes.
func (s *Store) Supersede(ctx context.Context, serial, successor *big.Int, at time.Time) (bool, error) {
	if serial == nil || serial.Sign() <= 0 {
		return false, fmt.Errorf("store/postgres: supersede %v: %w", serial, store.ErrNotFound)
	}
	key := serialKey(serial)
	if successor == nil || successor.Sign() <= 0 {
		return false, fmt.Errorf("store/postgres: supersede %s: successor %v is not positive", key, successor)
	}
	at, err := checkTime(at)
	if err != nil {
		return false, fmt.Errorf("store/postgres: supersede %s: %w", key, err)
	}
	tag, err := s.pool.Exec(ctx, supersede, nullTime(at), store.ReasonSuperseded, serialKey(successor), key)
	if err != nil {
		return false, fmt.Errorf("store/postgres: supersede %s: %w", key, err)
	}
	if tag.RowsAffected() == 1 {
		return true, nil
	}
	// Revoked already (perhaps by an earlier call for this successor), or unknown.
	rec, err := s.BySerial(ctx, serial)
	if err != nil {
		return false, err
	}
	return rec.SupersededBy != nil && rec.SupersededBy.Cmp(successor) == 0, nil
}

// withdraw revokes a successor unless its predecessor names it. The
// predecessor's row is locked first: a Supersede still running on another
// connection (the one whose answer was lost) commits before it is read, so
// the two cannot both take effect.
const withdraw = `
WITH o AS (SELECT superseded_by FROM certificates WHERE serial = $4 FOR UPDATE)
UPDATE certificates SET revoked_at = $1, revocation_reason = $2, revoked = true
WHERE serial = $3 AND NOT revoked
	AND NOT EXISTS (SELECT 1 FROM o WHERE superseded_by = $3)`

// Withdraw implements store.Supersedes.
func (s *Store) Withdraw(ctx context.Context, successor, serial *big.Int, at time.Time) (bool, error) {
	if successor == nil || successor.Sign() <= 0 || serial == nil || serial.Sign() <= 0 {
		return false, fmt.Errorf("store/postgres: withdraw %v: %w", successor, store.ErrNotFound)
	}
	key := serialKey(successor)
	at, err := checkTime(at)
	if err != nil {
		return false, fmt.Errorf("store/postgres: withdraw %s: %w", key, err)
	}
	tag, err := s.pool.Exec(ctx, withdraw, nullTime(at), store.ReasonCessation, key, serialKey(serial))
	if err != nil {
		return false, fmt.Errorf("store/postgres: withdraw %s: %w", key, err)
	}
	if tag.RowsAffected() == 1 {
		return false, nil
	}
	rec, err := s.BySerial(ctx, serial)
	if err != nil {
		return false, err
	}
	return rec.SupersededBy != nil && rec.SupersededBy.Cmp(successor) == 0, nil
}

// Revoke marks the certificate revoked. It returns store.ErrNotFound for an
// unknown serial; revoking a revoked certificate keeps the first revocation.
func (s *Store) Revoke(ctx context.Context, serial *big.Int, reason int, at time.Time) error {
	if serial == nil || serial.Sign() <= 0 {
		return fmt.Errorf("store/postgres: revoke %v: %w", serial, store.ErrNotFound)
	}
	key := serialKey(serial)
	at, err := checkTime(at)
	if err != nil {
		return fmt.Errorf("store/postgres: revoke %s: %w", key, err)
	}
	tag, err := s.pool.Exec(ctx, revokeRecord, nullTime(at), reason, key)
	if err != nil {
		return fmt.Errorf("store/postgres: revoke %s: %w", key, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store/postgres: revoke %s: %w", key, store.ErrNotFound)
	}
	return nil
}

// entry is a record with its issuance sequence number.
type entry struct {
	seq int64
	rec *store.Record
}

func records(entries []entry) []*store.Record {
	recs := make([]*store.Record, len(entries))
	for i, e := range entries {
		recs[i] = e.rec
	}
	return recs
}

func (s *Store) query(ctx context.Context, sql string, args ...any) ([]entry, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var entries []entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
	return entries, rows.Err()
}

// scanEntry decodes one row of selectRecord.
func scanEntry(row pgx.Row) (entry, error) {
	var (
		e         entry
		rec       store.Record
		serial    string
		revokedAt *time.Time
		successor *string
	)
	err := row.Scan(&e.seq, &serial, &rec.Subject, &rec.SANs, &rec.NotBefore, &rec.NotAfter,
		&rec.KeyAlgorithm, &rec.Profile, &rec.Requester, &rec.AuthMethod, &rec.IssuedAt,
		&rec.DER, &rec.Revoked, &revokedAt, &rec.RevocationReason, &successor)
	if err != nil {
		return entry{}, err
	}
	if rec.SupersededBy, err = parseSuccessor(successor); err != nil {
		return entry{}, fmt.Errorf("serial %s: %w", serial, err)
	}
	var ok bool
	if rec.Serial, ok = new(big.Int).SetString(serial, 16); !ok {
		return entry{}, fmt.Errorf("seq %d: malformed serial %q", e.seq, serial)
	}
	if len(rec.SANs) == 0 {
		rec.SANs = nil
	}
	rec.NotBefore, rec.NotAfter, rec.IssuedAt = rec.NotBefore.UTC(), rec.NotAfter.UTC(), rec.IssuedAt.UTC()
	if revokedAt != nil {
		rec.RevokedAt = revokedAt.UTC()
	}
	e.rec = &rec
	return e, nil
}

// serialKey is the canonical text of a positive serial: lowercase hex
// without leading zeros.
func serialKey(serial *big.Int) string {
	return serial.Text(16)
}

// successorKey is the superseded_by value of a record: NULL without a
// successor.
func successorKey(successor *big.Int) *string {
	if successor == nil {
		return nil
	}
	k := serialKey(successor)
	return &k
}

// parseSuccessor decodes superseded_by.
func parseSuccessor(s *string) (*big.Int, error) {
	if s == nil {
		return nil, nil
	}
	n, ok := new(big.Int).SetString(*s, 16)
	if !ok || n.Sign() <= 0 {
		return nil, fmt.Errorf("malformed superseded_by %q", *s)
	}
	return n, nil
}

// checkTime returns t in UTC, refusing years outside 0000-9999: those are
// the times store/sqlite keeps, so that every record moves between backends.
func checkTime(t time.Time) (time.Time, error) {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return time.Time{}, fmt.Errorf("time %v is outside years 0000-9999", t)
	}
	return t, nil
}

// nullTime is NULL for the zero time.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// nonNil returns s, or an empty slice for nil, which pgx would send as NULL.
func nonNil[S ~[]E, E any](s S) S {
	if s == nil {
		return S{}
	}
	return s
}
