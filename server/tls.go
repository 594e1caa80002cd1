package server

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// CipherSuites are the TLS 1.2 suites estd accepts: ECDHE key exchange with
// AEAD ciphers only (RFC 7030 3.3.1, RFC 8996 and the BCP 195 recommendations).
// TLS 1.3 suites are not configurable in Go and are all AEAD.
var CipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// TLSPolicy narrows the TLS policy; the zero value is the default (TLS 1.2
// minimum, every suite in CipherSuites). It cannot widen it.
type TLSPolicy struct {
	// MinVersion is tls.VersionTLS12 or tls.VersionTLS13; 0 means TLS 1.2.
	MinVersion uint16
	// CipherSuites is a subset of CipherSuites, in preference order; nil means all.
	CipherSuites []uint16
	// NoPostQuantum leaves the hybrid post-quantum key exchange
	// X25519MLKEM768 out, so X25519 serves every client. By default a
	// client that offers X25519MLKEM768 gets it (crypto/tls always picks a
	// post-quantum key exchange the client supports first): it protects
	// recorded traffic (passwords, server-generated keys) against a future
	// quantum computer and costs ~85 us of server CPU more per full
	// handshake than X25519 (BENCHMARKS.md).
	NoPostQuantum bool
}

// curves are the key exchanges of p; crypto/tls takes them in its own order
// (post-quantum first, then X25519, then the NIST curves).
func (p TLSPolicy) curves() []tls.CurveID {
	if p.NoPostQuantum {
		return []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384}
	}
	return []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384}
}

// Check reports a policy that would weaken the floor.
func (p TLSPolicy) Check() error {
	if p.MinVersion != 0 && p.MinVersion != tls.VersionTLS12 && p.MinVersion != tls.VersionTLS13 {
		return fmt.Errorf("TLS minimum version must be 1.2 or 1.3 (RFC 8996)")
	}
	for _, id := range p.CipherSuites {
		if !slices.Contains(CipherSuites, id) {
			return fmt.Errorf("cipher suite %s is not allowed: only ECDHE with AEAD", tls.CipherSuiteName(id))
		}
	}
	return nil
}

// CipherSuiteByName returns the ID of a permitted suite by its IANA name.
func CipherSuiteByName(name string) (uint16, bool) {
	for _, id := range CipherSuites {
		if tls.CipherSuiteName(id) == name {
			return id, true
		}
	}
	return 0, false
}

// TLSConfig returns the server TLS configuration: TLS 1.2 minimum (or what p
// asks), the suites above, X25519MLKEM768 for clients that offer it and
// X25519 preferred otherwise (see TLSPolicy.NoPostQuantum), client
// certificates requested
// (verified per request by package auth, so a refusal is an HTTP answer with a
// reason rather than a failed handshake), session tickets on.
func TLSConfig(p TLSPolicy, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	minVersion, suites := p.MinVersion, p.CipherSuites
	if minVersion == 0 {
		minVersion = tls.VersionTLS12
	}
	if suites == nil {
		suites = CipherSuites
	}
	return &tls.Config{
		MinVersion:       minVersion,
		CipherSuites:     suites,
		CurvePreferences: p.curves(),
		ClientAuth:       tls.RequestClientCert,
		GetCertificate:   getCert,
		NextProtos:       []string{"h2", "http/1.1"},
		// Full-size records from the first byte: EST responses are small, and
		// some clients (strongSwan's pki) read a response in at most two reads.
		DynamicRecordSizingDisabled: true,
	}
}

// Timeouts cut off slow clients. Zero fields take the defaults.
type Timeouts struct {
	// ReadHeader bounds the time to read request headers (default 10s).
	ReadHeader time.Duration
	// Read bounds the time to read a whole request, body included (default 30s).
	Read time.Duration
	// Write bounds the time from the end of the headers to the end of the response (default 60s).
	Write time.Duration
	// Idle bounds how long a keep-alive connection waits for the next request (default 120s).
	Idle time.Duration
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// HTTPServer returns an http.Server for h with the TLS configuration and
// timeouts t.
func HTTPServer(h http.Handler, tlsConfig *tls.Config, t Timeouts) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: orDefault(t.ReadHeader, 10*time.Second),
		ReadTimeout:       orDefault(t.Read, 30*time.Second),
		WriteTimeout:      orDefault(t.Write, 60*time.Second),
		IdleTimeout:       orDefault(t.Idle, 120*time.Second),
		MaxHeaderBytes:    16 << 10,
	}
}
