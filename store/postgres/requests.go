package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/estkit/estkit/store"
)

var (
	_ store.Approvals   = (*Store)(nil)
	_ store.Revocations = (*Store)(nil)
)

const selectRequest = `
SELECT seq, id, label, operation, requester, auth_method, subject, sans, key_algorithm,
	csr, created_at, status, decided_by, decided_at, reason, serial
FROM requests`

// addRequest inserts a pending request unless its ID is recorded or its
// label or requester is at a cap.
const addRequest = `
INSERT INTO requests (id, label, operation, requester, auth_method, subject, sans, key_algorithm, csr, created_at, status)
SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text[], $8::text, $9::bytea, $10::timestamptz, 'pending'
WHERE ($11::int <= 0 OR (SELECT COUNT(*) FROM requests WHERE status = 'pending' AND label = $2) < $11)
	AND ($12::int <= 0 OR (SELECT COUNT(*) FROM requests WHERE status = 'pending' AND label = $2 AND requester = $4) < $12)
ON CONFLICT (id) DO NOTHING`

// pendingLocks is the first key of the advisory locks that serialize the
// AddRequests of a label with caps; the second is the label's hash.
const pendingLocks = 0x65737464 // "estd"

// AddRequest implements store.Approvals. Of concurrent AddRequests with one
// ID, one inserts and the others wait for it to commit and return its
// request. With caps, the AddRequests of one label take turns (an advisory
// lock held until commit), so that each counts what the one before added.
func (s *Store) AddRequest(ctx context.Context, req *store.Request, limits store.PendingLimits) (*store.Request, error) {
	if req == nil || req.ID == "" {
		return nil, errors.New("store/postgres: add request: no ID")
	}
	created, err := checkTime(req.CreatedAt)
	if err != nil {
		return nil, fmt.Errorf("store/postgres: add request %q: %w", req.ID, err)
	}
	// READ COMMITTED whatever the database's default: each statement
	// must see what the AddRequest before it, holding the lock, committed.
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		if limits.PerLabel > 0 || limits.PerRequester > 0 {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, pendingLocks, req.Label); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, addRequest,
			req.ID, req.Label, req.Operation, req.Requester, req.AuthMethod, req.Subject, nonNil(req.SANs),
			req.KeyAlgorithm, nonNil(req.CSR), created, limits.PerLabel, limits.PerRequester)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store/postgres: add request %q: %w", req.ID, err)
	}
	// A new statement, so a new snapshot: it sees the row whoever inserted it.
	r, err := s.Request(ctx, req.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("store/postgres: add request %q: %w", req.ID, store.ErrTooManyPending)
	}
	if err != nil {
		return nil, fmt.Errorf("store/postgres: add request: %w", err)
	}
	return r, nil
}

// Request implements store.Approvals.
func (s *Store) Request(ctx context.Context, id string) (*store.Request, error) {
	reqs, err := s.queryRequests(ctx, selectRequest+` WHERE id = $1`, id)
	if err != nil {
		return nil, fmt.Errorf("store/postgres: request %q: %w", id, err)
	}
	if len(reqs) == 0 {
		return nil, fmt.Errorf("store/postgres: request %q: %w", id, store.ErrNotFound)
	}
	return reqs[0].req, nil
}

// Requests implements store.Approvals.
func (s *Store) Requests(ctx context.Context, status store.RequestStatus, opts store.ListOptions) ([]*store.Request, string, error) {
	if opts.Newest {
		return nil, "", errors.New("store: requests are listed oldest first only")
	}
	after, limit, err := opts.Page()
	if err != nil {
		return nil, "", fmt.Errorf("store/postgres: requests: %w", err)
	}
	out, err := s.queryRequests(ctx, selectRequest+` WHERE seq > $1 AND ($2 = '' OR status = $2) ORDER BY seq LIMIT $3`,
		after, string(status), limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("store/postgres: requests: %w", err)
	}
	var next string
	if len(out) > limit {
		out = out[:limit]
		next = strconv.FormatInt(out[limit-1].seq, 10)
	}
	reqs := make([]*store.Request, len(out))
	for i, r := range out {
		reqs[i] = r.req
	}
	return reqs, next, nil
}

// Decide implements store.Approvals.
func (s *Store) Decide(ctx context.Context, id string, status store.RequestStatus, by, reason string, at time.Time) error {
	if status != store.RequestApproved && status != store.RequestRejected {
		return fmt.Errorf("store/postgres: decide %q: status must be approved or rejected, not %q", id, status)
	}
	decided, err := checkTime(at)
	if err != nil {
		return fmt.Errorf("store/postgres: decide %q: %w", id, err)
	}
	return s.transition(ctx, id, `UPDATE requests SET status = $1, decided_by = $2, decided_at = $3, reason = $4 WHERE id = $5 AND status = 'pending'`,
		string(status), by, nullTime(decided), reason, id)
}

// Issued implements store.Approvals.
func (s *Store) Issued(ctx context.Context, id string, serial *big.Int) error {
	if serial == nil || serial.Sign() <= 0 {
		return fmt.Errorf("store/postgres: issued %q: serial %v is not positive", id, serial)
	}
	return s.transition(ctx, id, `UPDATE requests SET status = 'issued', serial = $1 WHERE id = $2 AND status = 'approved'`,
		serialKey(serial), id)
}

// transition runs a conditional UPDATE on one request and tells an unknown
// ID (ErrNotFound) from one in another state (ErrConflict). Concurrent
// transitions of one request queue on its row lock and recheck the
// condition against the row the previous one committed, so one wins.
func (s *Store) transition(ctx context.Context, id, sql string, args ...any) error {
	tag, err := s.pool.Exec(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("store/postgres: request %q: %w", id, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var status string
	err = s.pool.QueryRow(ctx, `SELECT status FROM requests WHERE id = $1`, id).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("store/postgres: request %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store/postgres: request %q: %w", id, err)
	}
	return fmt.Errorf("store/postgres: request %q is %s: %w", id, status, store.ErrConflict)
}

// Revoked implements store.Revocations. Certificates revoked without a time
// come first, as in store/sqlite.
func (s *Store) Revoked(ctx context.Context, now time.Time) ([]*store.Record, error) {
	t, err := checkTime(now)
	if err != nil {
		return nil, fmt.Errorf("store/postgres: revoked: %w", err)
	}
	entries, err := s.query(ctx, selectRecord+` WHERE revoked AND not_after > $1 ORDER BY revoked_at NULLS FIRST, seq`, t)
	if err != nil {
		return nil, fmt.Errorf("store/postgres: revoked: %w", err)
	}
	return records(entries), nil
}

type requestRow struct {
	seq int64
	req *store.Request
}

func (s *Store) queryRequests(ctx context.Context, sql string, args ...any) ([]requestRow, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []requestRow
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func scanRequest(row pgx.Row) (requestRow, error) {
	var (
		r         requestRow
		q         store.Request
		status    string
		decidedAt *time.Time
		serial    *string
	)
	err := row.Scan(&r.seq, &q.ID, &q.Label, &q.Operation, &q.Requester, &q.AuthMethod, &q.Subject, &q.SANs,
		&q.KeyAlgorithm, &q.CSR, &q.CreatedAt, &status, &q.DecidedBy, &decidedAt, &q.Reason, &serial)
	if err != nil {
		return r, err
	}
	q.Status = store.RequestStatus(status)
	if len(q.SANs) == 0 {
		q.SANs = nil
	}
	q.CreatedAt = q.CreatedAt.UTC()
	if decidedAt != nil {
		q.DecidedAt = decidedAt.UTC()
	}
	if serial != nil {
		var ok bool
		if q.Serial, ok = new(big.Int).SetString(*serial, 16); !ok {
			return r, fmt.Errorf("request %q: malformed serial %q", q.ID, *serial)
		}
	}
	r.req = &q
	return r, nil
}
