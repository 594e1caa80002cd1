package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"time"

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
// label or requester is at a cap. One statement on the one writer
// connection: counting and inserting are one atomic step.
const addRequest = `
INSERT INTO requests (id, label, operation, requester, auth_method, subject, sans, key_algorithm, csr, created_at, status)
SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending'
WHERE (?11 <= 0 OR (SELECT COUNT(*) FROM requests WHERE status = 'pending' AND label = ?2) < ?11)
	AND (?12 <= 0 OR (SELECT COUNT(*) FROM requests WHERE status = 'pending' AND label = ?2 AND requester = ?4) < ?12)
ON CONFLICT (id) DO NOTHING`

// AddRequest implements store.Approvals.
func (s *Store) AddRequest(ctx context.Context, req *store.Request, limits store.PendingLimits) (*store.Request, error) {
	if req == nil || req.ID == "" {
		return nil, errors.New("store/sqlite: add request: no ID")
	}
	sans, err := encodeSANs(req.SANs)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: add request: %w", err)
	}
	created, err := formatTime(req.CreatedAt)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: add request: %w", err)
	}
	_, err = s.w.ExecContext(ctx, addRequest,
		req.ID, req.Label, req.Operation, req.Requester, req.AuthMethod, req.Subject, sans, req.KeyAlgorithm, req.CSR, created,
		limits.PerLabel, limits.PerRequester)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: add request: %w", err)
	}
	// Read it back through the writer: the reader pool may not see it yet.
	r, err := scanRequest(s.w.QueryRowContext(ctx, selectRequest+` WHERE id = ?`, req.ID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store/sqlite: add request: %w", store.ErrTooManyPending)
	}
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: add request: %w", err)
	}
	return r.req, nil
}

// Request implements store.Approvals.
func (s *Store) Request(ctx context.Context, id string) (*store.Request, error) {
	r, err := scanRequest(s.r.QueryRowContext(ctx, selectRequest+` WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store/sqlite: request %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: request %q: %w", id, err)
	}
	return r.req, nil
}

// Requests implements store.Approvals.
func (s *Store) Requests(ctx context.Context, status store.RequestStatus, opts store.ListOptions) ([]*store.Request, string, error) {
	if opts.Newest {
		return nil, "", errors.New("store: requests are listed oldest first only")
	}
	after, limit, err := opts.Page()
	if err != nil {
		return nil, "", fmt.Errorf("store/sqlite: requests: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, selectRequest+` WHERE seq > ? AND (? = '' OR status = ?) ORDER BY seq LIMIT ?`,
		after, string(status), string(status), limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("store/sqlite: requests: %w", err)
	}
	defer rows.Close()
	var out []requestRow
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			return nil, "", fmt.Errorf("store/sqlite: requests: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("store/sqlite: requests: %w", err)
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
		return fmt.Errorf("store/sqlite: decide %q: status must be approved or rejected, not %q", id, status)
	}
	decided, err := formatTime(at)
	if err != nil {
		return fmt.Errorf("store/sqlite: decide %q: %w", id, err)
	}
	return s.transition(ctx, id, `UPDATE requests SET status = ?, decided_by = ?, decided_at = ?, reason = ? WHERE id = ? AND status = 'pending'`,
		string(status), by, decided, reason, id)
}

// Issued implements store.Approvals.
func (s *Store) Issued(ctx context.Context, id string, serial *big.Int) error {
	if serial == nil || serial.Sign() <= 0 {
		return fmt.Errorf("store/sqlite: issued %q: serial %v is not positive", id, serial)
	}
	return s.transition(ctx, id, `UPDATE requests SET status = 'issued', serial = ? WHERE id = ? AND status = 'approved'`,
		serialKey(serial), id)
}

// transition runs a conditional UPDATE on one request and tells an unknown
// ID (ErrNotFound) from one in another state (ErrConflict).
func (s *Store) transition(ctx context.Context, id, query string, args ...any) error {
	res, err := s.w.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("store/sqlite: request %q: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store/sqlite: request %q: %w", id, err)
	} else if n == 1 {
		return nil
	}
	var status string
	err = s.w.QueryRowContext(ctx, `SELECT status FROM requests WHERE id = ?`, id).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store/sqlite: request %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store/sqlite: request %q: %w", id, err)
	}
	return fmt.Errorf("store/sqlite: request %q is %s: %w", id, status, store.ErrConflict)
}

// Revoked implements store.Revocations.
func (s *Store) Revoked(ctx context.Context, now time.Time) ([]*store.Record, error) {
	t, err := formatTime(now)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: revoked: %w", err)
	}
	entries, err := s.query(ctx, selectRecord+` WHERE revoked = 1 AND not_after > ? ORDER BY revoked_at, seq`, t)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: revoked: %w", err)
	}
	recs := make([]*store.Record, len(entries))
	for i, e := range entries {
		recs[i] = e.rec
	}
	return recs, nil
}

type requestRow struct {
	seq int64
	req *store.Request
}

func scanRequest(row interface{ Scan(...any) error }) (requestRow, error) {
	var (
		r                 requestRow
		q                 store.Request
		sans, created     string
		status            string
		decidedAt, serial sql.NullString
	)
	err := row.Scan(&r.seq, &q.ID, &q.Label, &q.Operation, &q.Requester, &q.AuthMethod, &q.Subject, &sans,
		&q.KeyAlgorithm, &q.CSR, &created, &status, &q.DecidedBy, &decidedAt, &q.Reason, &serial)
	if err != nil {
		return r, err
	}
	q.Status = store.RequestStatus(status)
	if q.SANs, err = decodeSANs(sans); err != nil {
		return r, err
	}
	if q.CreatedAt, err = time.Parse(time.RFC3339Nano, created); err != nil {
		return r, err
	}
	if decidedAt.Valid {
		if q.DecidedAt, err = time.Parse(time.RFC3339Nano, decidedAt.String); err != nil {
			return r, err
		}
	}
	if serial.Valid {
		var ok bool
		if q.Serial, ok = new(big.Int).SetString(serial.String, 16); !ok {
			return r, fmt.Errorf("malformed serial %q", serial.String)
		}
	}
	r.req = &q
	return r, nil
}
