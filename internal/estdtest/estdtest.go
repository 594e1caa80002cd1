// Package estdtest starts a real estd in process for tests: a fresh data
// directory, a manufacturer CA among its trust anchors, a loopback listener,
// and HTTP clients that trust its root.
package estdtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/estd"
	"github.com/estkit/estkit/internal/testpki"
	"github.com/estkit/estkit/server"
)

// Server is a running estd.
type Server struct {
	// Addr is host:port; URL is https://Addr.
	Addr, URL string
	// Dir is the data directory.
	Dir    string
	Daemon *estd.Daemon
	// Root is estd's root CA; RootFile its PEM file.
	Root     *x509.Certificate
	RootFile string
	// User and Password are the bootstrap user's credentials.
	User, Password string
	// Manufacturer is a CA whose device certificates estd trusts;
	// ManufacturerFile its PEM file.
	Manufacturer     *testpki.CA
	ManufacturerFile string

	opts   estd.Options
	cancel context.CancelFunc
	done   chan error
}

// Options tune Start.
type Options struct {
	CAKeyType ca.KeyType
	Profiles  []*ca.Profile
	MaxBody   int64
	TLS       server.TLSPolicy
	Timeouts  server.Timeouts
	Clock     func() time.Time
	Logger    *slog.Logger
	// Limits default to estd's; a test that fails authentication on purpose
	// more than 10 times from loopback turns Limits.Auth off (NoAuthLimits).
	Limits estd.Limits
}

// Start runs estd on 127.0.0.1 with a new data directory until the test ends.
func Start(tb testing.TB, o Options) *Server {
	tb.Helper()
	dir := tb.TempDir()
	now := time.Now()
	if o.Clock != nil {
		now = o.Clock()
	}
	s := &Server{Dir: filepath.Join(dir, "estd-data"), Manufacturer: testpki.Manufacturer(tb, now)}
	s.ManufacturerFile = filepath.Join(dir, "manufacturer-ca.pem")
	testpki.WriteCerts(tb, s.ManufacturerFile, s.Manufacturer.Cert)
	s.opts = estd.Options{
		DataDir:        s.Dir,
		ManufacturerCA: s.ManufacturerFile,
		CAKeyType:      o.CAKeyType,
		Profiles:       o.Profiles,
		MaxBody:        o.MaxBody,
		TLS:            o.TLS,
		Timeouts:       o.Timeouts,
		Limits:         o.Limits,
		Logger:         o.Logger,
		Clock:          o.Clock,
	}
	s.start(tb, "127.0.0.1:0")
	s.User, s.Password = estd.BootstrapUser, s.Daemon.BootstrapPassword
	s.RootFile = filepath.Join(s.Dir, estd.RootCertFile)
	s.Root = s.Daemon.Root
	tb.Cleanup(func() { s.Stop(tb) })
	return s
}

func (s *Server) start(tb testing.TB, addr string) {
	tb.Helper()
	d, err := estd.Open(context.Background(), s.opts)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		d.Close()
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.Daemon, s.cancel, s.done = d, cancel, make(chan error, 1)
	s.Addr = ln.Addr().String()
	s.URL = "https://" + s.Addr
	go func() { s.done <- d.Serve(ctx, ln) }()
}

// Stop shuts estd down gracefully and closes its store. Stopping twice is fine.
func (s *Server) Stop(tb testing.TB) {
	tb.Helper()
	if s.cancel == nil {
		return
	}
	s.cancel()
	if err := <-s.done; err != nil {
		tb.Errorf("estd: %v", err)
	}
	s.Daemon.Close()
	s.cancel = nil
}

// Restart stops estd and opens the same data directory again on the same address.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Stop(tb)
	s.start(tb, s.Addr)
}

// Roots returns a pool holding estd's root.
func (s *Server) Roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.Root)
	return p
}

// Client returns an HTTP client that trusts estd's root and presents certs.
func (s *Server) Client(certs ...tls.Certificate) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: s.Roots(), Certificates: certs},
			ForceAttemptHTTP2: true,
		},
	}
}

// NoAuthLimits turns off the limits on failed authentication, for tests
// that fail on purpose many times from one address.
var NoAuthLimits = estd.Limits{Auth: server.AuthLimits{PerIP: server.RateLimit{Off: true}, PerUser: server.RateLimit{Off: true}}}
