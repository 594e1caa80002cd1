// Package estd wires the EST server together: the data directory (CA,
// TLS certificate, users, store), the HTTP handler and the listener. cmd/estd
// is its command line; tests of other packages start a real estd through it.
package estd

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/pemutil"
	"github.com/estkit/estkit/server"
	"github.com/estkit/estkit/store"
	"github.com/estkit/estkit/store/sqlite"
)

// Options configure a Daemon.
type Options struct {
	// DataDir holds the CA, the TLS certificate, the users file and the
	// database; created on first start. Default "./estd-data".
	DataDir string
	// Hostnames are names and addresses for the TLS certificate besides
	// localhost, 127.0.0.1 and ::1.
	Hostnames []string
	// ManufacturerCA is a PEM bundle of manufacturer trust anchors; "" for none.
	ManufacturerCA string
	// CAKeyType is the key type of a CA created on first start; default p256.
	CAKeyType ca.KeyType
	// Profiles are the labels served; nil means ca.DefaultProfiles().
	Profiles []*ca.Profile
	// MaxBody limits request bodies; 0 means server.DefaultMaxBody.
	MaxBody int64
	// TLS narrows the TLS policy.
	TLS server.TLSPolicy
	// Timeouts against slow clients; zero fields take the defaults.
	Timeouts server.Timeouts
	// Out receives the first-start banner (password included); nil discards it.
	Out io.Writer
	// Logger receives logs; nil discards them.
	Logger *slog.Logger
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
}

// Daemon is an estd ready to serve.
type Daemon struct {
	opts     Options
	Root     *x509.Certificate
	CA       *ca.CA
	Store    store.Store
	Verifier *auth.Verifier
	Handler  http.Handler
	// Created reports that this start created the CA.
	Created bool
	// BootstrapPassword is the bootstrap user's password when this start
	// created the users file, "" otherwise.
	BootstrapPassword string

	tlsCert atomic.Pointer[tls.Certificate]
}

// Open prepares the data directory, creating what is missing, and returns a
// Daemon ready to Serve.
func Open(ctx context.Context, o Options) (*Daemon, error) {
	if o.DataDir == "" {
		o.DataDir = "estd-data"
	}
	if o.CAKeyType == "" {
		o.CAKeyType = ca.P256
	}
	if o.Profiles == nil {
		o.Profiles = ca.DefaultProfiles()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := o.TLS.Check(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, err
	}
	d := &Daemon{opts: o}
	var err error
	d.Root, d.CA, d.Created, err = loadOrCreateCA(o.DataDir, o.CAKeyType, o.Clock())
	if err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	d.CA.Clock = o.Clock
	d.Store, err = sqlite.Open(ctx, filepath.Join(o.DataDir, DBFile))
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			d.Store.Close()
		}
	}()
	if err := d.loadTLS(ctx); err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	d.Verifier = &auth.Verifier{Issuing: d.CA.Cert, Store: d.Store, Clock: o.Clock}
	if err := d.loadUsers(); err != nil {
		return nil, err
	}
	if err := d.Reload(); err != nil {
		return nil, err
	}
	d.Handler, err = server.New(server.Options{
		Issuer:   d.CA,
		CACerts:  d.CA.Chain,
		Profiles: o.Profiles,
		Verifier: d.Verifier,
		Store:    d.Store,
		Logger:   o.Logger,
		MaxBody:  o.MaxBody,
		Clock:    o.Clock,
	})
	if err != nil {
		return nil, err
	}
	ok = true
	return d, nil
}

// loadUsers loads the users file, creating it with a bootstrap user whose
// password is kept in BootstrapPassword for the banner.
func (d *Daemon) loadUsers() error {
	path := filepath.Join(d.opts.DataDir, UsersFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		pw, err := newPassword()
		if err != nil {
			return err
		}
		u := auth.NewUsers()
		if err := u.Set(BootstrapUser, pw); err != nil {
			return err
		}
		if err := u.Save(path); err != nil {
			return err
		}
		d.BootstrapPassword = pw
	}
	return nil
}

// Reload reads the users file and the manufacturer anchors again; on error
// the previous ones stay in force.
func (d *Daemon) Reload() error {
	users, err := auth.LoadUsers(filepath.Join(d.opts.DataDir, UsersFile))
	if err != nil {
		return fmt.Errorf("users: %w", err)
	}
	var pool *x509.CertPool
	if d.opts.ManufacturerCA != "" {
		certs, err := pemutil.ReadCerts(d.opts.ManufacturerCA)
		if err != nil {
			return fmt.Errorf("manufacturer CA: %w", err)
		}
		pool = x509.NewCertPool()
		for _, c := range certs {
			pool.AddCert(c)
		}
	}
	d.Verifier.SetUsers(users)
	d.Verifier.SetManufacturers(pool)
	return nil
}

// loadTLS loads the TLS server certificate, issuing a new one (ECDSA P-256,
// recorded in the store like every certificate) when it is missing, does not
// cover the host names, or is close to expiry.
func (d *Daemon) loadTLS(ctx context.Context) error {
	dir := d.opts.DataDir
	dns, ips := tlsNames(d.opts.Hostnames)
	if !tlsCertCurrent(dir, d.CA.Cert, dns, ips, d.opts.Clock()) {
		key, err := ca.GenerateKey(ca.P256)
		if err != nil {
			return err
		}
		csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: dns, IPAddresses: ips}, key)
		if err != nil {
			return err
		}
		csr, err := x509.ParseCertificateRequest(csrDER)
		if err != nil {
			return err
		}
		p := &ca.Profile{
			Name:        "estd-tls-server",
			Validity:    tlsValidity,
			KeyTypes:    []ca.KeyType{ca.P256},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			SANs:        []string{"dns", "ip"},
		}
		who := auth.Identity{Method: "bootstrap", Name: "estd"}
		cert, err := d.CA.Issue(ctx, csr, p, who)
		if err != nil {
			return err
		}
		if err := d.Store.Put(ctx, server.Record(cert, p.Name, who, d.opts.Clock())); err != nil {
			return err
		}
		if err := writeKey(filepath.Join(dir, TLSKeyFile), key); err != nil {
			return err
		}
		if err := writeCerts(filepath.Join(dir, TLSCertFile), append([]*x509.Certificate{cert}, d.CA.Chain[:len(d.CA.Chain)-1]...)...); err != nil {
			return err
		}
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, TLSCertFile), filepath.Join(dir, TLSKeyFile))
	if err != nil {
		return err
	}
	d.tlsCert.Store(&pair)
	return nil
}

// TLSConfig returns the server TLS configuration with the daemon's certificate.
func (d *Daemon) TLSConfig() *tls.Config {
	return server.TLSConfig(d.opts.TLS, func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		return d.tlsCert.Load(), nil
	})
}

// ShutdownTimeout bounds how long Serve waits for in-flight requests.
const ShutdownTimeout = 30 * time.Second

// Serve serves EST over TLS on ln until ctx is done, then shuts down
// gracefully: it stops accepting, lets in-flight requests finish (up to
// ShutdownTimeout) and returns.
func (d *Daemon) Serve(ctx context.Context, ln net.Listener) error {
	srv := server.HTTPServer(d.Handler, d.TLSConfig(), d.opts.Timeouts)
	srv.ErrorLog = slog.NewLogLogger(d.opts.Logger.Handler(), slog.LevelDebug)
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	return err
}

// Close releases the store.
func (d *Daemon) Close() error { return d.Store.Close() }
