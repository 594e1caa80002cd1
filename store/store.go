// Package store records every certificate estd issues, durably, before the
// certificate is handed out (RFC 7030 does not require it; an operator of a
// real CA does). Backends live in sub-packages (store/sqlite, ...) and all
// pass the one suite in store/storetest.
package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"time"
)

// ErrNotFound is returned when no record matches.
var ErrNotFound = errors.New("store: not found")

// ErrDuplicate is returned by Put when the serial is already recorded.
var ErrDuplicate = errors.New("store: duplicate serial")

// Record is one issued certificate.
type Record struct {
	Serial       *big.Int  // unique, positive
	Subject      string    // RFC 4514 string of the subject
	SANs         []string  // "dns:NAME", "ip:ADDR", "email:ADDR", "uri:URI"
	NotBefore    time.Time // validity, UTC
	NotAfter     time.Time
	KeyAlgorithm string    // "ECDSA-P256", "RSA-2048", "Ed25519", ...
	Profile      string    // profile (label) it was issued under; "" for the default
	Requester    string    // who asked: user name or client certificate subject
	AuthMethod   string    // how they authenticated: "basic", "manufacturer-cert", "issued-cert"
	IssuedAt     time.Time // when it was recorded, UTC
	DER          []byte    // the certificate

	Revoked          bool
	RevokedAt        time.Time // zero unless Revoked
	RevocationReason int       // RFC 5280 CRLReason, meaningful when Revoked
	// SupersededBy is the serial of the certificate that renewed this one
	// and revoked it (Supersedes); nil for every other certificate.
	SupersededBy *big.Int
}

// RFC 5280 CRLReasons estd gives itself: ReasonSuperseded to a certificate
// revoked because it was renewed, ReasonCessation to one withdrawn because
// the renewal it was issued for did not complete.
const (
	ReasonSuperseded = 4
	ReasonCessation  = 5
)

// ListOptions pages through records in issuance order: oldest first, or
// newest first with Newest.
type ListOptions struct {
	// After is the cursor returned by the previous page; "" starts at the
	// beginning (the oldest record, or the newest with Newest).
	After string
	// Limit is the page size; 0 or less means DefaultLimit, and MaxLimit caps it.
	Limit int
	// Newest lists from the newest record back. A cursor is a position,
	// not a direction: pass Newest with every page of such a listing.
	// Records added after its first page are not in it. Certificates only:
	// requests are listed oldest first.
	Newest bool
}

// Page sizes of ListOptions.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Page returns the position a page starts after and its size, for backends
// whose cursors are the decimal sequence number of the last row of the
// previous page: the page holds the rows with a sequence number above after,
// or below it with Newest (0, or math.MaxInt64 with Newest, for the first
// page).
func (o ListOptions) Page() (after int64, limit int, err error) {
	if o.Newest {
		after = math.MaxInt64
	}
	if o.After != "" {
		after, err = strconv.ParseInt(o.After, 10, 64)
		if err != nil || after < 0 {
			return 0, 0, fmt.Errorf("store: invalid cursor %q", o.After)
		}
	}
	limit = o.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	return after, min(limit, MaxLimit), nil
}

// Store is the durable record of issued certificates. Implementations are
// safe for concurrent use. Every method honours ctx cancellation.
type Store interface {
	// Put records rec. It returns ErrDuplicate if the serial is already recorded.
	// When Put returns nil the record is durable.
	Put(ctx context.Context, rec *Record) error
	// BySerial returns the record with that serial or ErrNotFound.
	BySerial(ctx context.Context, serial *big.Int) (*Record, error)
	// BySubject returns every record with exactly that subject string, oldest
	// first. It may read every record: it is for tools, not for requests.
	BySubject(ctx context.Context, subject string) ([]*Record, error)
	// List returns one page of records and the cursor of the next page ("" at the end).
	List(ctx context.Context, opts ListOptions) (recs []*Record, next string, err error)
	// Revoke marks the certificate revoked with an RFC 5280 reason code. It returns
	// ErrNotFound for an unknown serial; revoking twice keeps the first revocation.
	Revoke(ctx context.Context, serial *big.Int, reason int, at time.Time) error
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}

// ErrConflict is returned when a change does not apply to the current state,
// such as deciding a request that is no longer pending.
var ErrConflict = errors.New("store: conflicting state")

// RequestStatus is where an enrollment request waiting for an operator stands.
type RequestStatus string

// The states of a Request: pending → approved → issued, or pending → rejected.
const (
	RequestPending  RequestStatus = "pending"
	RequestApproved RequestStatus = "approved"
	RequestRejected RequestStatus = "rejected"
	RequestIssued   RequestStatus = "issued"
)

// Request is an enrollment that waits for an operator's decision (manual
// approval, RFC 7030 4.2.3). A retry of the same CSR by the same requester
// on the same label has the same ID, so it finds the same request.
type Request struct {
	ID           string // stable: derived from label, requester and CSR
	Label        string
	Operation    string // simpleenroll or serverkeygen
	Requester    string
	AuthMethod   string
	Subject      string
	SANs         []string
	KeyAlgorithm string
	CSR          []byte // DER
	CreatedAt    time.Time
	Status       RequestStatus
	DecidedBy    string    // operator, once decided
	DecidedAt    time.Time // zero while pending
	Reason       string    // the operator's reason, for rejections
	Serial       *big.Int  // the certificate issued for it, once issued
}

// PendingLimits caps the pending requests of a label; zero fields cap
// nothing.
type PendingLimits struct {
	// PerLabel caps the pending requests of the request's label.
	PerLabel int
	// PerRequester caps the pending requests of the request's requester
	// on its label.
	PerRequester int
}

// ErrTooManyPending is the cause of AddRequest refusing a request over a
// PendingLimits cap.
var ErrTooManyPending = errors.New("store: too many pending requests")

// Approvals is the optional capability of a Store to keep requests that wait
// for manual approval; find it by type assertion. Every backend of estkit
// has it.
type Approvals interface {
	// AddRequest records req as pending unless a request with its ID is
	// recorded; it returns the recorded request either way. A new request
	// that would exceed a cap of limits is not recorded: the error wraps
	// ErrTooManyPending. Counting and recording are one atomic step, also
	// across nodes.
	AddRequest(ctx context.Context, req *Request, limits PendingLimits) (*Request, error)
	// Request returns the request with that ID or ErrNotFound.
	Request(ctx context.Context, id string) (*Request, error)
	// Requests returns one page of requests in the given status ("" for all),
	// oldest first, and the cursor of the next page ("" at the end).
	Requests(ctx context.Context, status RequestStatus, opts ListOptions) ([]*Request, string, error)
	// Decide moves a pending request to RequestApproved or RequestRejected.
	// It returns ErrNotFound for an unknown ID and ErrConflict when the
	// request is not pending.
	Decide(ctx context.Context, id string, status RequestStatus, by, reason string, at time.Time) error
	// Issued moves an approved request to RequestIssued with the serial of
	// its certificate. It returns ErrConflict when the request is not
	// approved, for example because another node issued it first.
	Issued(ctx context.Context, id string, serial *big.Int) error
}

// Revocations is the optional capability of listing revoked certificates,
// for CRLs.
type Revocations interface {
	// Revoked returns every revoked certificate that has not expired at
	// now, in revocation order.
	Revoked(ctx context.Context, now time.Time) ([]*Record, error)
}

// Status is what authenticating a client certificate needs of its record.
type Status struct {
	// SameDER reports whether the record holds exactly the DER asked about.
	SameDER bool
	Revoked bool
	Profile string
	// SupersededBy is the certificate that renewed it and revoked it, if
	// one did (Supersedes).
	SupersededBy *big.Int
}

// Statuses is the optional capability of looking up only a certificate's
// status, cheaper than BySerial: every request authenticated by a
// certificate of this CA asks it.
type Statuses interface {
	// Status returns the status of the certificate with serial, compared
	// with der, or ErrNotFound.
	Status(ctx context.Context, serial *big.Int, der []byte) (Status, error)
}

// Supersedes is the optional capability of revoking a renewed certificate
// only if it is not revoked yet, and recording its successor, in one atomic
// step: of concurrent renewals of one certificate on a label that revokes
// what it renews, exactly one may keep its new certificate.
type Supersedes interface {
	// Supersede revokes the certificate with serial with reason
	// ReasonSuperseded, recording successor as the certificate that renewed
	// it, unless it is revoked already. It reports whether serial is now
	// superseded by successor: true when this call revoked it and when an
	// earlier call for the same successor did (a retry after an error that
	// left the outcome unknown), false when it was revoked otherwise (its
	// first revocation is kept). An unknown serial is ErrNotFound.
	Supersede(ctx context.Context, serial, successor *big.Int, at time.Time) (bool, error)
	// Withdraw revokes successor (reason ReasonCessation) unless serial is
	// superseded by it, in one atomic step: a renewal that does not know
	// whether its Supersede took effect withdraws its certificate only if
	// it did not. It reports whether serial is superseded by successor
	// (successor then stays as it is).
	Withdraw(ctx context.Context, successor, serial *big.Int, at time.Time) (superseded bool, err error)
}

// IssuanceCounts is the optional capability of counting certificates by
// issuance time from an index, without reading them: the dashboard's
// charts ask it for every hour of a day and every day of a month.
type IssuanceCounts interface {
	// CountIssued returns how many certificates were issued in
	// [from, to).
	CountIssued(ctx context.Context, from, to time.Time) (int64, error)
}

// GroupCommits is implemented by stores that record concurrent Puts in
// shared transactions (group commit); estd exports the counts as metrics.
type GroupCommits interface {
	// GroupCommitStats returns how many transactions have carried Puts
	// and how many Puts they carried since the store was opened.
	GroupCommitStats() (commits, puts int64)
}
