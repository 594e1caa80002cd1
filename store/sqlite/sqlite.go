// Package sqlite is the SQLite backend of store.Store, built on the pure-Go
// modernc.org/sqlite driver.
//
// The database runs in WAL mode with synchronous=FULL, so a Put that returns
// nil has reached the disk. Writes go through a single connection and are
// therefore serialized; reads use a separate pool of query-only connections
// and run concurrently with writes and with each other. The schema is
// migrated forward on Open; a database written by a newer version of this
// package is refused with ErrSchemaTooNew.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	sqlitedriver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/estkit/estkit/store"
	"github.com/estkit/estkit/store/internal/groupcommit"
)

const (
	// busyTimeout is how long a connection waits for a lock held by another
	// connection or process (a checkpoint, the sqlite3 shell, estd migrate).
	busyTimeout = 5 * time.Second

	// timeLayout is RFC 3339 with a fixed nine-digit fraction; it is what
	// the time columns hold, always in UTC.
	timeLayout = "2006-01-02T15:04:05.000000000Z07:00"
)

// Store is a store.Store kept in one SQLite database file.
type Store struct {
	path string  // the database file, absolute
	w    *sql.DB // the single writer connection
	r    *sql.DB // query-only connections
	// lookups are query-only connections for point lookups (Status,
	// BySerial) alone, so that long reads on r (List, scans) never hold
	// them; lookupSlots admits as many lookups at once as it has
	// connections. A lookup waits, cancellably, for a slot, and then never
	// for a connection: its query runs without the caller's cancellation
	// (see lookup).
	lookups     *sql.DB
	lookupSlots chan struct{}
	// puts groups concurrent Puts into shared transactions (batch.go).
	puts   *groupcommit.Committer[[]any]
	insert *sql.Stmt // insertRecord on w, for puts
	// bySerial and status are selectBySerial and selectStatus on lookups. Every
	// request with one of our certificates runs status; preparing a
	// statement each time cost as much as running it.
	bySerial *sql.Stmt
	status   *sql.Stmt
}

var (
	_ store.Store          = (*Store)(nil)
	_ store.GroupCommits   = (*Store)(nil)
	_ store.Statuses       = (*Store)(nil)
	_ store.Supersedes     = (*Store)(nil)
	_ store.IssuanceCounts = (*Store)(nil)
)

// Open opens the database at path, creating it (mode 0600, and any missing
// parent directories with mode 0700) if it does not exist, and migrates its
// schema to the latest version this package knows.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("store/sqlite: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: %w", err)
	}
	if err := createFile(abs); err != nil {
		return nil, fmt.Errorf("store/sqlite: %w", err)
	}

	w, err := sql.Open("sqlite", dsn(abs, false))
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: open %s: %w", abs, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("store/sqlite: open %s: %w", abs, err)
	}

	s := &Store{w: w, path: abs}
	readers := func(n int) (*sql.DB, error) {
		db, err := sql.Open("sqlite", dsn(abs, true))
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(n)
		db.SetMaxIdleConns(n)
		return db, nil
	}
	n := max(2, runtime.GOMAXPROCS(0))
	if s.r, err = readers(max(4, n)); err == nil {
		s.lookups, err = readers(n)
	}
	if err != nil {
		s.closeAll()
		return nil, fmt.Errorf("store/sqlite: open %s: %w", abs, err)
	}
	s.lookupSlots = make(chan struct{}, n)
	for _, p := range []struct {
		stmt  **sql.Stmt
		db    *sql.DB
		query string
	}{
		{&s.insert, w, insertRecord},
		{&s.bySerial, s.lookups, selectBySerial},
		{&s.status, s.lookups, selectStatus},
	} {
		if *p.stmt, err = p.db.PrepareContext(ctx, p.query); err != nil {
			s.closeAll()
			return nil, fmt.Errorf("store/sqlite: open %s: %w", abs, err)
		}
	}
	bw := &batchWriter{db: w, insert: s.insert}
	s.puts = groupcommit.New(bw.commit)
	return s, nil
}

// closeAll closes the prepared statements, then the connections, whatever
// of them is open; the writer last, so that as the last connection it
// checkpoints the WAL into the database file.
func (s *Store) closeAll() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.insert, s.bySerial, s.status} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	for _, db := range []*sql.DB{s.lookups, s.r, s.w} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	return errors.Join(errs...)
}

// createFile creates the database file with mode 0600 unless it exists, so
// SQLite (which would use 0644) never creates it. SQLite gives the -wal and
// -shm files the mode of the database file.
func createFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// dsn returns the driver data source name for the database at the absolute
// path. The pragmas travel in the DSN so that every connection the pool
// opens gets them.
func dsn(path string, readOnly bool) string {
	path = filepath.ToSlash(path)
	if !strings.HasPrefix(path, "/") {
		path = "/" + path // a Windows volume: file:///C:/...
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		// Take the write lock when a transaction begins rather than on its
		// first write, so busy_timeout applies instead of an immediate
		// SQLITE_BUSY on lock upgrade.
		q.Set("_txlock", "immediate")
	}
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	return u.String()
}

// GroupCommitStats implements store.GroupCommits.
func (s *Store) GroupCommitStats() (commits, puts int64) {
	return s.puts.Commits(), s.puts.Taken()
}

// Close closes the database. The writer is closed last so that, as the last
// connection, it checkpoints the WAL into the database file.
func (s *Store) Close() error {
	s.puts.Close()
	return s.closeAll()
}

// Ping reports whether the database can be read.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.SchemaVersion(ctx); err != nil {
		return fmt.Errorf("store/sqlite: ping: %w", err)
	}
	return nil
}

// Backup writes a consistent copy of the database to path, which must not
// exist, while the store serves (SQLite's VACUUM INTO, on a read
// transaction: writers go on). The copy is a database of its own, without
// a WAL; Open it as any other.
func (s *Store) Backup(ctx context.Context, path string) error {
	return Backup(ctx, s.path, path)
}

// Backup copies the database at dbPath to path, which must not exist, as
// Store.Backup does, without opening it as a Store: it neither migrates
// the database nor takes its write lock, so the estd serving it (perhaps an
// older one) is not disturbed. A database of a newer schema than this
// program knows is refused.
func Backup(ctx context.Context, dbPath, path string) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("store/sqlite: backup: %s exists", path)
	}
	if _, err := os.Stat(dbPath); err != nil {
		return fmt.Errorf("store/sqlite: backup: %w", err)
	}
	// dsn takes an absolute path, as Open makes it.
	dbPath, err := filepath.Abs(dbPath)
	if err != nil {
		return fmt.Errorf("store/sqlite: backup: %w", err)
	}
	// A connection of its own: a Store's readers are query_only, which
	// refuses VACUUM INTO, and its writer would hold every Put meanwhile.
	db, err := sql.Open("sqlite", dsn(dbPath, false))
	if err != nil {
		return fmt.Errorf("store/sqlite: backup: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	v, err := schemaVersion(ctx, db)
	if err != nil {
		return fmt.Errorf("store/sqlite: backup: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("store/sqlite: backup: %w: database is at version %d, this program knows up to %d; back it up with the estd that serves it", ErrSchemaTooNew, v, len(migrations))
	}
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		return fmt.Errorf("store/sqlite: backup: %w", err)
	}
	return nil
}

// SchemaVersion returns the schema version of the open database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("store/sqlite: schema version: %w", err)
	}
	return v, nil
}

const insertRecord = `
INSERT INTO certificates (
	serial, subject, sans, not_before, not_after, key_algorithm, profile,
	requester, auth_method, issued_at, der, revoked, revoked_at, revocation_reason,
	superseded_by
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, COALESCE(?, X''), ?, ?, ?, ?)`

// Put records rec. It returns an error wrapping store.ErrDuplicate if the
// serial is already recorded. When Put returns nil the record is on disk.
// Concurrent Puts share a transaction and its fsync (see batch.go).
func (s *Store) Put(ctx context.Context, rec *store.Record) error {
	if rec == nil {
		return errors.New("store/sqlite: put: nil record")
	}
	if rec.Serial == nil || rec.Serial.Sign() <= 0 {
		return fmt.Errorf("store/sqlite: put: serial %v is not positive", rec.Serial)
	}
	serial := serialKey(rec.Serial)
	if rec.SupersededBy != nil && rec.SupersededBy.Sign() <= 0 {
		return fmt.Errorf("store/sqlite: put %s: successor %v is not positive", serial, rec.SupersededBy)
	}
	sans, err := encodeSANs(rec.SANs)
	if err != nil {
		return fmt.Errorf("store/sqlite: put %s: %w", serial, err)
	}
	var times [4]any
	for i, t := range []time.Time{rec.NotBefore, rec.NotAfter, rec.IssuedAt, rec.RevokedAt} {
		if times[i], err = formatTime(t); err != nil {
			return fmt.Errorf("store/sqlite: put %s: %w", serial, err)
		}
	}
	if rec.RevokedAt.IsZero() {
		times[3] = nil
	}
	err = s.puts.Put(ctx, []any{
		serial, rec.Subject, sans, times[0], times[1], rec.KeyAlgorithm, rec.Profile,
		rec.Requester, rec.AuthMethod, times[2], rec.DER, rec.Revoked, times[3], rec.RevocationReason,
		successorKey(rec.SupersededBy)})
	if isUniqueViolation(err) {
		return fmt.Errorf("store/sqlite: put %s: %w", serial, store.ErrDuplicate)
	}
	if err != nil {
		return fmt.Errorf("store/sqlite: put %s: %w", serial, err)
	}
	return nil
}

// isUniqueViolation reports whether err is SQLite refusing a duplicate key.
// The only key Put can collide on is serial: seq is always assigned.
func isUniqueViolation(err error) bool {
	var e *sqlitedriver.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return true
	}
	return false
}

const selectRecord = `
SELECT seq, serial, subject, sans, not_before, not_after, key_algorithm, profile,
	requester, auth_method, issued_at, der, revoked, revoked_at, revocation_reason,
	superseded_by
FROM certificates`

const selectBySerial = selectRecord + ` WHERE serial = ?`

// BySerial returns the record with that serial or an error wrapping
// store.ErrNotFound.
func (s *Store) BySerial(ctx context.Context, serial *big.Int) (*store.Record, error) {
	if serial == nil || serial.Sign() <= 0 {
		return nil, fmt.Errorf("store/sqlite: serial %v: %w", serial, store.ErrNotFound)
	}
	key := serialKey(serial)
	lctx, release, err := s.lookup(ctx)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: serial %s: %w", key, err)
	}
	defer release()
	e, err := scanEntry(s.bySerial.QueryRowContext(lctx, key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store/sqlite: serial %s: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: serial %s: %w", key, err)
	}
	return e.rec, nil
}

// lookup takes a slot for a point lookup, waiting for one as long as ctx
// allows, and returns the context to run it with and the slot's release.
// The query is not cancelled with ctx: the driver watches a cancellable
// context with a goroutine and a progress handler per query, which cost
// more than the lookup itself, and such a query ends in microseconds (a
// lock held by another process bounds it with busy_timeout).
func (s *Store) lookup(ctx context.Context) (context.Context, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err // select would pick a free slot as often as ctx.Done
	}
	select {
	case s.lookupSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	return context.WithoutCancel(ctx), func() { <-s.lookupSlots }, nil
}

// selectStatus compares the DER in the database: the record's columns are
// neither copied out nor decoded.
const selectStatus = `SELECT der IS ?, revoked, profile, superseded_by FROM certificates WHERE serial = ?`

// Status implements store.Statuses.
func (s *Store) Status(ctx context.Context, serial *big.Int, der []byte) (store.Status, error) {
	if serial == nil || serial.Sign() <= 0 {
		return store.Status{}, fmt.Errorf("store/sqlite: serial %v: %w", serial, store.ErrNotFound)
	}
	key := serialKey(serial)
	lctx, release, err := s.lookup(ctx)
	if err != nil {
		return store.Status{}, fmt.Errorf("store/sqlite: status of %s: %w", key, err)
	}
	defer release()
	var (
		st        store.Status
		successor sql.NullString
	)
	err = s.status.QueryRowContext(lctx, der, key).Scan(&st.SameDER, &st.Revoked, &st.Profile, &successor)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Status{}, fmt.Errorf("store/sqlite: serial %s: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return store.Status{}, fmt.Errorf("store/sqlite: status of %s: %w", key, err)
	}
	if st.SupersededBy, err = parseSuccessor(successor); err != nil {
		return store.Status{}, fmt.Errorf("store/sqlite: status of %s: %w", key, err)
	}
	return st, nil
}

// BySubject returns every record with exactly that subject, in issuance
// order. It returns an empty slice, not an error, when there are none. It
// reads the whole table: an index on subject cost every enrollment a random
// page write (migration 0003), and nothing on a request's path asks this.
func (s *Store) BySubject(ctx context.Context, subject string) ([]*store.Record, error) {
	entries, err := s.query(ctx, selectRecord+` WHERE subject = ? ORDER BY seq`, subject)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: by subject: %w", err)
	}
	recs := make([]*store.Record, len(entries))
	for i, e := range entries {
		recs[i] = e.rec
	}
	return recs, nil
}

// List returns up to opts.Limit records (100 if zero or negative, at most
// 1000) issued after the cursor opts.After, in issuance order, and the cursor
// of the next page, which is "" when there are no more records.
func (s *Store) List(ctx context.Context, opts store.ListOptions) ([]*store.Record, string, error) {
	after, limit, err := opts.Page()
	if err != nil {
		return nil, "", fmt.Errorf("store/sqlite: list: %w", err)
	}

	// One extra row tells whether there is a next page.
	query := selectRecord + ` WHERE seq > ? ORDER BY seq LIMIT ?`
	if opts.Newest {
		query = selectRecord + ` WHERE seq < ? ORDER BY seq DESC LIMIT ?`
	}
	entries, err := s.query(ctx, query, after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("store/sqlite: list: %w", err)
	}
	var next string
	if len(entries) > limit {
		entries = entries[:limit]
		next = strconv.FormatInt(entries[limit-1].seq, 10)
	}
	recs := make([]*store.Record, len(entries))
	for i, e := range entries {
		recs[i] = e.rec
	}
	return recs, next, nil
}

// revokeRecord marks a certificate revoked unless it already is: the CASE
// expressions keep the first revocation's time and reason. It matches the
// row either way, so RowsAffected is 0 only for an unknown serial, and the
// whole decision is one atomic statement.
const revokeRecord = `
UPDATE certificates SET
	revoked_at = CASE revoked WHEN 0 THEN ? ELSE revoked_at END,
	revocation_reason = CASE revoked WHEN 0 THEN ? ELSE revocation_reason END,
	revoked = 1
WHERE serial = ?`

// CountIssued implements store.IssuanceCounts from certificates_issued_at:
// issued_at is fixed-width RFC 3339 in UTC, so text order is time order.
func (s *Store) CountIssued(ctx context.Context, from, to time.Time) (int64, error) {
	f, err := formatTime(from)
	if err != nil {
		return 0, fmt.Errorf("store/sqlite: count issued: %w", err)
	}
	t, err := formatTime(to)
	if err != nil {
		return 0, fmt.Errorf("store/sqlite: count issued: %w", err)
	}
	var n int64
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM certificates WHERE issued_at >= ? AND issued_at < ?`, f, t).Scan(&n); err != nil {
		return 0, fmt.Errorf("store/sqlite: count issued: %w", err)
	}
	return n, nil
}

// supersede revokes a certificate that is not revoked yet as superseded
// by a successor.
const supersede = `
UPDATE certificates SET revoked_at = ?, revocation_reason = ?, revoked = 1, superseded_by = ?
WHERE serial = ? AND revoked = 0`

// Supersede implements store.Supersedes.
func (s *Store) Supersede(ctx context.Context, serial, successor *big.Int, at time.Time) (bool, error) {
	if serial == nil || serial.Sign() <= 0 {
		return false, fmt.Errorf("store/sqlite: supersede %v: %w", serial, store.ErrNotFound)
	}
	key := serialKey(serial)
	if successor == nil || successor.Sign() <= 0 {
		return false, fmt.Errorf("store/sqlite: supersede %s: successor %v is not positive", key, successor)
	}
	revokedAt, err := formatTime(at)
	if err != nil {
		return false, fmt.Errorf("store/sqlite: supersede %s: %w", key, err)
	}
	var revokedAtArg any = revokedAt
	if at.IsZero() {
		revokedAtArg = nil
	}
	res, err := s.w.ExecContext(ctx, supersede, revokedAtArg, store.ReasonSuperseded, serialKey(successor), key)
	if err != nil {
		return false, fmt.Errorf("store/sqlite: supersede %s: %w", key, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return n == 1, err
	}
	// Revoked already (perhaps by an earlier call for this successor), or unknown.
	rec, err := s.BySerial(ctx, serial)
	if err != nil {
		return false, err
	}
	return rec.SupersededBy != nil && rec.SupersededBy.Cmp(successor) == 0, nil
}

// withdraw revokes a successor unless its predecessor names it.
const withdraw = `
UPDATE certificates SET revoked_at = ?1, revocation_reason = ?2, revoked = 1
WHERE serial = ?3 AND revoked = 0
	AND NOT EXISTS (SELECT 1 FROM certificates WHERE serial = ?4 AND superseded_by = ?3)`

// Withdraw implements store.Supersedes.
func (s *Store) Withdraw(ctx context.Context, successor, serial *big.Int, at time.Time) (bool, error) {
	if successor == nil || successor.Sign() <= 0 || serial == nil || serial.Sign() <= 0 {
		return false, fmt.Errorf("store/sqlite: withdraw %v: %w", successor, store.ErrNotFound)
	}
	key := serialKey(successor)
	revokedAt, err := formatTime(at)
	if err != nil {
		return false, fmt.Errorf("store/sqlite: withdraw %s: %w", key, err)
	}
	var revokedAtArg any = revokedAt
	if at.IsZero() {
		revokedAtArg = nil
	}
	res, err := s.w.ExecContext(ctx, withdraw, revokedAtArg, store.ReasonCessation, key, serialKey(serial))
	if err != nil {
		return false, fmt.Errorf("store/sqlite: withdraw %s: %w", key, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return false, err
	}
	rec, err := s.BySerial(ctx, serial)
	if err != nil {
		return false, err
	}
	return rec.SupersededBy != nil && rec.SupersededBy.Cmp(successor) == 0, nil
}

// Revoke marks the certificate revoked at the given time with an RFC 5280
// CRLReason code. It returns an error wrapping store.ErrNotFound for an
// unknown serial; revoking a revoked certificate keeps the first revocation.
func (s *Store) Revoke(ctx context.Context, serial *big.Int, reason int, at time.Time) error {
	if serial == nil || serial.Sign() <= 0 {
		return fmt.Errorf("store/sqlite: revoke %v: %w", serial, store.ErrNotFound)
	}
	key := serialKey(serial)
	revokedAt, err := formatTime(at)
	if err != nil {
		return fmt.Errorf("store/sqlite: revoke %s: %w", key, err)
	}
	var revokedAtArg any = revokedAt
	if at.IsZero() {
		revokedAtArg = nil
	}
	res, err := s.w.ExecContext(ctx, revokeRecord, revokedAtArg, reason, key)
	if err != nil {
		return fmt.Errorf("store/sqlite: revoke %s: %w", key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store/sqlite: revoke %s: %w", key, err)
	}
	if n == 0 {
		return fmt.Errorf("store/sqlite: revoke %s: %w", key, store.ErrNotFound)
	}
	return nil
}

// entry is a record with its issuance sequence number.
type entry struct {
	seq int64
	rec *store.Record
}

func (s *Store) query(ctx context.Context, query string, args ...any) ([]entry, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
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
func scanEntry(row interface{ Scan(...any) error }) (entry, error) {
	var (
		e                                           entry
		rec                                         store.Record
		serial, sans, notBefore, notAfter, issuedAt string
		revokedAt, successor                        sql.NullString
	)
	err := row.Scan(&e.seq, &serial, &rec.Subject, &sans, &notBefore, &notAfter,
		&rec.KeyAlgorithm, &rec.Profile, &rec.Requester, &rec.AuthMethod, &issuedAt,
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
	if rec.SANs, err = decodeSANs(sans); err != nil {
		return entry{}, fmt.Errorf("serial %s: %w", serial, err)
	}
	for _, f := range []struct {
		dst *time.Time
		src string
	}{
		{&rec.NotBefore, notBefore},
		{&rec.NotAfter, notAfter},
		{&rec.IssuedAt, issuedAt},
		{&rec.RevokedAt, revokedAt.String}, // "" when NULL
	} {
		if f.src == "" {
			continue
		}
		if *f.dst, err = time.Parse(time.RFC3339Nano, f.src); err != nil {
			return entry{}, fmt.Errorf("serial %s: %w", serial, err)
		}
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
func successorKey(successor *big.Int) any {
	if successor == nil {
		return nil
	}
	return serialKey(successor)
}

// parseSuccessor decodes superseded_by.
func parseSuccessor(s sql.NullString) (*big.Int, error) {
	if !s.Valid {
		return nil, nil
	}
	n, ok := new(big.Int).SetString(s.String, 16)
	if !ok || n.Sign() <= 0 {
		return nil, fmt.Errorf("malformed superseded_by %q", s.String)
	}
	return n, nil
}

func formatTime(t time.Time) (string, error) {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return "", fmt.Errorf("time %v is outside years 0000-9999", t)
	}
	return t.Format(timeLayout), nil
}

func encodeSANs(sans []string) (string, error) {
	if len(sans) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(sans)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func decodeSANs(s string) ([]string, error) {
	var sans []string
	if err := json.Unmarshal([]byte(s), &sans); err != nil {
		return nil, fmt.Errorf("malformed SANs %q: %w", s, err)
	}
	if len(sans) == 0 {
		return nil, nil
	}
	return sans, nil
}
