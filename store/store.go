// Package store records every certificate estd issues, durably, before the
// certificate is handed out (RFC 7030 does not require it; an operator of a
// real CA does). Backends live in sub-packages (store/sqlite, ...) and all
// pass the one suite in store/storetest.
package store

import (
	"context"
	"errors"
	"math/big"
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
}

// ListOptions pages through records in issuance order (oldest first).
type ListOptions struct {
	// After is the cursor returned by the previous page; "" starts at the beginning.
	After string
	// Limit is the page size; 0 means 100. Backends cap it at 1000.
	Limit int
}

// Store is the durable record of issued certificates. Implementations are
// safe for concurrent use. Every method honours ctx cancellation.
type Store interface {
	// Put records rec. It returns ErrDuplicate if the serial is already recorded.
	// When Put returns nil the record is durable.
	Put(ctx context.Context, rec *Record) error
	// BySerial returns the record with that serial or ErrNotFound.
	BySerial(ctx context.Context, serial *big.Int) (*Record, error)
	// BySubject returns every record with exactly that subject string, oldest first.
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
