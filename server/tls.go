package server

import (
	"crypto/tls"
	"net/http"
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

// TLSConfig returns the server TLS configuration: TLS 1.2 minimum, the
// suites above, X25519 preferred, client certificates requested (verified per
// request by package auth, so a refusal is an HTTP answer with a reason rather
// than a failed handshake), session tickets on.
func TLSConfig(getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS12,
		CipherSuites:     CipherSuites,
		CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384},
		ClientAuth:       tls.RequestClientCert,
		GetCertificate:   getCert,
		NextProtos:       []string{"h2", "http/1.1"},
	}
}

// Timeouts against slow clients.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 60 * time.Second
	IdleTimeout       = 120 * time.Second
)

// HTTPServer returns an http.Server for h with the TLS configuration and
// timeouts above.
func HTTPServer(h http.Handler, tlsConfig *tls.Config) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    16 << 10,
	}
}
