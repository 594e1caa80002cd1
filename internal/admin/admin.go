// Package admin is what an operator does to estd: look through issued
// certificates and pending requests, approve or reject requests, revoke
// certificates. The `estd admin` command and the web dashboard both use it,
// so the two cannot disagree.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sort"
	"strings"
	"time"

	"github.com/estkit/estkit/store"
)

// Reasons are the RFC 5280 CRLReason codes an operator may give, by name.
var Reasons = map[string]int{
	"unspecified":          0,
	"keyCompromise":        1,
	"cACompromise":         2,
	"affiliationChanged":   3,
	"superseded":           4,
	"cessationOfOperation": 5,
	"privilegeWithdrawn":   9,
}

// ReasonName returns the RFC 5280 name of a CRLReason code.
func ReasonName(code int) string {
	for n, c := range Reasons {
		if c == code {
			return n
		}
	}
	return fmt.Sprintf("reason-%d", code)
}

// ReasonNames lists the accepted reason names, sorted.
func ReasonNames() []string {
	out := make([]string, 0, len(Reasons))
	for n := range Reasons {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Service performs operator actions on a store.
type Service struct {
	store     store.Store
	approvals store.Approvals
	clock     func() time.Time
	log       *slog.Logger
}

// New returns a Service. clock and log may be nil.
func New(st store.Store, clock func() time.Time, log *slog.Logger) *Service {
	if clock == nil {
		clock = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a, _ := st.(store.Approvals)
	return &Service{store: st, approvals: a, clock: clock, log: log}
}

// ErrNoApprovals means the store cannot keep requests.
var ErrNoApprovals = errors.New("admin: this store keeps no requests")

// ParseSerial parses a serial number in hex, with or without colons or a 0x prefix.
func ParseSerial(s string) (*big.Int, error) {
	h := strings.ToLower(strings.NewReplacer(":", "", " ", "").Replace(strings.TrimPrefix(strings.TrimSpace(s), "0x")))
	n, ok := new(big.Int).SetString(h, 16)
	if !ok || n.Sign() <= 0 {
		return nil, fmt.Errorf("admin: %q is not a serial number in hex", s)
	}
	return n, nil
}

// Certificate returns the record of one certificate.
func (s *Service) Certificate(ctx context.Context, serial string) (*store.Record, error) {
	n, err := ParseSerial(serial)
	if err != nil {
		return nil, err
	}
	return s.store.BySerial(ctx, n)
}

// maxScan bounds how many records a search or a count reads: the newest
// that many.
const maxScan = 200_000

// Search returns up to limit certificates, newest first, whose serial,
// subject or requester contains q (case-insensitively); q "" matches all. It
// looks through the newest maxScan certificates.
func (s *Service) Search(ctx context.Context, q string, limit int) ([]*store.Record, error) {
	if limit <= 0 {
		limit = 50
	}
	q = strings.ToLower(strings.TrimSpace(q))
	if n, err := ParseSerial(q); err == nil && len(q) >= 16 {
		if rec, err := s.store.BySerial(ctx, n); err == nil {
			return []*store.Record{rec}, nil
		}
	}
	page := store.MaxLimit
	if q == "" {
		page = limit // every record matches
	}
	var matches []*store.Record
	err := s.scan(ctx, page, func(r *store.Record) bool {
		if q == "" || strings.Contains(r.Serial.Text(16), q) || strings.Contains(strings.ToLower(r.Subject), q) ||
			strings.Contains(strings.ToLower(r.Requester), q) {
			matches = append(matches, r)
		}
		return len(matches) < limit
	})
	return matches, err
}

// scan calls fn for each record, newest first, reading pages of the given
// size, until fn returns false or maxScan records have been read.
func (s *Service) scan(ctx context.Context, page int, fn func(*store.Record) bool) error {
	after, n := "", 0
	for {
		recs, next, err := s.store.List(ctx, store.ListOptions{After: after, Limit: page, Newest: true})
		if err != nil {
			return err
		}
		for _, r := range recs {
			if !fn(r) {
				return nil
			}
		}
		n += len(recs)
		if next == "" || n >= maxScan {
			return nil
		}
		after = next
	}
}

// Bucket is the number of certificates issued in [Start, Start+step).
type Bucket struct {
	Start time.Time
	Count int
}

// Issuance counts certificates issued per step over the last n steps: from
// the store's index where it has one (store.IssuanceCounts), else by
// reading the records newest first until store.MaxLimit records in a row
// were issued before the first step (records are in the order their
// recording began, which on several nodes can differ a little from the
// order of their issuance times), and at most maxScan of them.
func (s *Service) Issuance(ctx context.Context, step time.Duration, n int) ([]Bucket, error) {
	end := s.clock().Truncate(step).Add(step)
	start := end.Add(-time.Duration(n) * step)
	buckets := make([]Bucket, n)
	for i := range buckets {
		buckets[i].Start = start.Add(time.Duration(i) * step)
	}
	if c, ok := s.store.(store.IssuanceCounts); ok {
		// Counted from the issuance-time index: exact, however many.
		for i := range buckets {
			k, err := c.CountIssued(ctx, buckets[i].Start, buckets[i].Start.Add(step))
			if err != nil {
				return nil, err
			}
			buckets[i].Count = int(k)
		}
		return buckets, nil
	}
	older := 0
	err := s.scan(ctx, store.MaxLimit, func(r *store.Record) bool {
		if r.IssuedAt.Before(start) {
			older++
			return older < store.MaxLimit
		}
		older = 0
		if r.IssuedAt.Before(end) {
			buckets[int(r.IssuedAt.Sub(start)/step)].Count++
		}
		return true
	})
	return buckets, err
}

// Requests lists requests in a status ("" for all), oldest first.
func (s *Service) Requests(ctx context.Context, status store.RequestStatus, limit int) ([]*store.Request, error) {
	if s.approvals == nil {
		return nil, ErrNoApprovals
	}
	reqs, _, err := s.approvals.Requests(ctx, status, store.ListOptions{Limit: limit})
	return reqs, err
}

// Request returns one request.
func (s *Service) Request(ctx context.Context, id string) (*store.Request, error) {
	if s.approvals == nil {
		return nil, ErrNoApprovals
	}
	return s.approvals.Request(ctx, id)
}

// Approve approves a pending request; the requester's next retry gets the certificate.
func (s *Service) Approve(ctx context.Context, id, by string) error {
	return s.decide(ctx, id, store.RequestApproved, by, "")
}

// Reject rejects a pending request with a reason the requester will see.
func (s *Service) Reject(ctx context.Context, id, by, reason string) error {
	return s.decide(ctx, id, store.RequestRejected, by, reason)
}

func (s *Service) decide(ctx context.Context, id string, status store.RequestStatus, by, reason string) error {
	if s.approvals == nil {
		return ErrNoApprovals
	}
	if by == "" {
		return errors.New("admin: who decides must be named")
	}
	if err := s.approvals.Decide(ctx, id, status, by, oneLine(reason), s.clock()); err != nil {
		return err
	}
	s.log.Info(string(status), slog.String("request", id), slog.String("by", by), slog.String("reason", oneLine(reason)))
	return nil
}

// Revoke revokes a certificate with a named RFC 5280 reason.
func (s *Service) Revoke(ctx context.Context, serial, reason, by string) error {
	code, ok := Reasons[reason]
	if !ok {
		return fmt.Errorf("admin: unknown reason %q (want one of %s)", reason, strings.Join(ReasonNames(), ", "))
	}
	if by == "" {
		return errors.New("admin: who revokes must be named")
	}
	n, err := ParseSerial(serial)
	if err != nil {
		return err
	}
	rec, err := s.store.BySerial(ctx, n)
	if err != nil {
		return err
	}
	if rec.Revoked {
		return fmt.Errorf("admin: %s was revoked already (%s, %s): %w", n.Text(16), ReasonName(rec.RevocationReason), rec.RevokedAt.Format(time.RFC3339), store.ErrConflict)
	}
	if err := s.store.Revoke(ctx, n, code, s.clock()); err != nil {
		return err
	}
	s.log.Info("revoked", slog.String("serial", n.Text(16)), slog.String("subject", rec.Subject), slog.String("reason", reason), slog.String("by", by))
	return nil
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.ToValidUTF8(s, "?")
}
