// Package estd wires the EST server together: the data directory (CA,
// TLS certificate, users, store), the HTTP handler and the listener. cmd/estd
// is its command line; tests of other packages start a real estd through it.
package estd

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/pemutil"
	"github.com/estkit/estkit/server"
	"github.com/estkit/estkit/store"
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
	// ManufacturerCRL holds CRLs of the manufacturer CAs (PEM, or one DER
	// CRL), each signed by a certificate of ManufacturerCA; "" for none.
	ManufacturerCRL string
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
	// Limits cap connections, TLS handshakes and failed authentication;
	// zero fields take the defaults.
	Limits Limits
	// CRLURL and OCSPURL go into issued certificates when set.
	CRLURL, OCSPURL string
	// StoreDSN selects PostgreSQL; "" keeps SQLite in the data directory.
	StoreDSN string
	// Key says where the issuing CA key is and how to unlock it.
	Key KeyOptions
	// Out receives the first-start banner (password included); nil discards it.
	Out io.Writer
	// Logger receives logs; nil discards them.
	Logger *slog.Logger
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
}

// Daemon is an estd ready to serve.
type Daemon struct {
	opts Options
	Root *x509.Certificate
	// CA is the issuing CA, the only one that signs certificates.
	CA *ca.CA
	// Retired are the issuing CAs a rollover replaced whose certificates
	// have not all expired yet (RetiredDir), newest first.
	Retired  []*ca.CA
	Store    store.Store
	Verifier *auth.Verifier
	Handler  *server.Handler
	// Registry holds the Prometheus metrics.
	Registry *prometheus.Registry
	Metrics  *server.Metrics
	// Created reports that this start created the CA.
	Created bool
	// BootstrapPassword is the bootstrap user's password when this start
	// created the users file, "" otherwise.
	BootstrapPassword string

	tlsCert atomic.Pointer[tls.Certificate]
	// renewMu guards the background renewal of tlsCert: whether one runs,
	// when the next may start (monotonic), and whether Close has begun;
	// renewWG counts it, renewCtx ends with Close.
	renewMu    sync.Mutex
	renewing   bool
	renewRetry time.Time
	// renewCutShort: until then a renewal for expiry gives no more (the
	// issuing CA expires first).
	renewCutShort time.Time
	closing       bool
	renewWG       sync.WaitGroup
	renewCtx      context.Context
	renewCancel   context.CancelFunc
	keyCloser     io.Closer // releases an HSM session; nil for key files
	retired       []retiredCA
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
	d.renewCtx, d.renewCancel = context.WithCancel(context.Background())
	var err error
	d.Root, d.CA, d.Created, d.keyCloser, err = loadOrCreateCA(ctx, o.DataDir, o.CAKeyType, o.Key, o.Clock(), o.Logger)
	if err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	d.CA.Clock = o.Clock
	if d.retired, err = loadRetired(ctx, o.DataDir, d.Root, d.CA.Cert, o.Key, o.Clock(), o.Logger); err != nil {
		d.Close()
		return nil, fmt.Errorf("CA: %w", err)
	}
	for _, r := range d.retired {
		d.Retired = append(d.Retired, r.CA)
	}
	if o.CRLURL != "" {
		// The CRL of a CA after the first is at CRLURL/ID (server.CRLPath).
		d.CA.CRLURLs = []string{crlURL(o.CRLURL, server.CRLPath(d.CA.Cert))}
	}
	if o.OCSPURL != "" {
		d.CA.OCSPURLs = []string{o.OCSPURL}
	}
	ok := false
	defer func() {
		if !ok {
			d.Close()
		}
	}()
	d.Store, err = openStore(ctx, StoreOptions{DataDir: o.DataDir, DSN: o.StoreDSN, Migrating: func(from, to int) {
		o.Logger.Info("migrating the certificate store: "+MigrationNote(from, to), "from_version", from, "to_version", to)
	}})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := d.loadTLS(ctx); err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	d.Verifier = &auth.Verifier{Issuing: d.CA.Cert, Store: d.Store, Clock: o.Clock}
	for _, r := range d.Retired {
		d.Verifier.Retired = append(d.Verifier.Retired, r.Cert)
	}
	if err := d.loadUsers(); err != nil {
		return nil, err
	}
	if err := d.reloadCredentials(o.ManufacturerCA, o.ManufacturerCRL); err != nil {
		return nil, err
	}
	d.Registry = prometheus.NewRegistry()
	d.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	approvals, _ := d.Store.(store.Approvals)
	commits, _ := d.Store.(store.GroupCommits)
	d.Metrics = server.NewMetrics(d.Registry, approvals, commits)
	d.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "estd_manufacturer_crl_next_update_timestamp_seconds",
			Help: "When the first of the manufacturer CRLs in use is due to be replaced (Unix time); 0 without one.",
		}, func() float64 {
			if t := d.Verifier.ManufacturerRevocations().NextUpdate(); !t.IsZero() {
				return float64(t.Unix())
			}
			return 0
		}),
		d.caExpiry(),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "estd_tls_certificate_not_after_timestamp_seconds",
			Help: "When the TLS server certificate expires (Unix time); estd renews it in its last 30 days.",
		}, func() float64 {
			if c := d.tlsCert.Load(); c != nil && c.Leaf != nil {
				return float64(c.Leaf.NotAfter.Unix())
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "estd_manufacturer_crl_revoked",
			Help: "Factory certificates the manufacturer CRLs in use revoke.",
		}, func() float64 { return float64(d.Verifier.ManufacturerRevocations().Len()) }),
	)
	d.Handler, err = server.New(server.Options{
		Metrics:  d.Metrics,
		Issuer:   d.CA,
		CACerts:  d.caCerts(),
		Profiles: o.Profiles,
		Verifier: d.Verifier,
		Store:    d.Store,
		Logger:   o.Logger,
		MaxBody:  o.MaxBody,
		Clock:    o.Clock,

		AuthLimits: o.Limits.Auth,
	})
	if err != nil {
		return nil, err
	}
	keks, err := d.loadKEKs()
	if err != nil {
		return nil, err
	}
	d.Handler.SetKEKs(keks)
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

// Reload reads the users file, the manufacturer anchors and the
// serverkeygen keys again and, when profiles is not nil, replaces the
// labels served. On error nothing changes.
func (d *Daemon) Reload(manufacturerCA, manufacturerCRL string, profiles []*ca.Profile) error {
	if profiles != nil {
		// Check the profiles first: SetProfiles changes nothing on error, and
		// credentials are swapped only once both are known to load.
		if err := server.CheckProfiles(profiles); err != nil {
			return err
		}
	}
	keks, err := d.loadKEKs()
	if err != nil {
		return err
	}
	if err := d.reloadCredentials(manufacturerCA, manufacturerCRL); err != nil {
		return err
	}
	d.Handler.SetKEKs(keks)
	if profiles != nil {
		return d.Handler.SetProfiles(profiles)
	}
	return nil
}

// reloadCredentials loads the users file, the manufacturer anchors and
// their CRLs, and swaps them in only when all loaded.
func (d *Daemon) reloadCredentials(manufacturerCA, manufacturerCRL string) error {
	users, err := auth.LoadUsers(filepath.Join(d.opts.DataDir, UsersFile))
	if err != nil {
		return fmt.Errorf("users: %w", err)
	}
	var pool *x509.CertPool
	var revocations *auth.Revocations
	if manufacturerCA != "" {
		certs, err := pemutil.ReadCerts(manufacturerCA)
		if err != nil {
			return fmt.Errorf("manufacturer CA: %w", err)
		}
		pool = x509.NewCertPool()
		for _, c := range certs {
			pool.AddCert(c)
		}
		if manufacturerCRL != "" {
			if revocations, err = LoadManufacturerCRLs(manufacturerCRL, certs, d.opts.Clock(), d.opts.Logger); err != nil {
				return err
			}
		}
	} else if manufacturerCRL != "" {
		return fmt.Errorf("manufacturer CRL: %s given without manufacturer CAs", manufacturerCRL)
	}
	d.Verifier.SetUsers(users)
	d.Verifier.SetManufacturers(pool, revocations)
	return nil
}

// LoadManufacturerCRLs reads the CRLs at path and checks them against the
// manufacturer bundle certs (see auth.NewRevocations); warnings go to log.
func LoadManufacturerCRLs(path string, certs []*x509.Certificate, now time.Time, log *slog.Logger) (*auth.Revocations, error) {
	crls, intermediates, err := pemutil.ReadCRLs(path)
	if err != nil {
		return nil, fmt.Errorf("manufacturer CRL: %w", err)
	}
	r, warnings, err := auth.NewRevocations(crls, certs, intermediates, now)
	if err != nil {
		return nil, fmt.Errorf("manufacturer CRL %s: %w", path, err)
	}
	for _, w := range warnings {
		log.Warn("manufacturer CRL: "+w, "file", path)
	}
	log.Info("manufacturer CRLs loaded", "file", path, "crls", r.CRLs(), "revoked", r.Len())
	return r, nil
}

// loadTLS loads the TLS server certificate, issuing a new one (ECDSA P-256,
// recorded in the store like every certificate) when it is missing, does not
// cover the host names, or is close to expiry.
func (d *Daemon) loadTLS(ctx context.Context) error {
	dir := d.opts.DataDir
	dns, ips := tlsNames(d.opts.Hostnames)
	if tlsCertCurrent(dir, d.CA.Cert, dns, ips, d.opts.Clock()) {
		pair, err := tls.LoadX509KeyPair(filepath.Join(dir, TLSCertFile), filepath.Join(dir, TLSKeyFile))
		if err != nil {
			return err
		}
		d.tlsCert.Store(&pair)
		return nil
	}
	pair, err := d.issueTLS(ctx, dns, ips)
	if err != nil {
		return err
	}
	if err := d.writeTLS(pair); err != nil {
		return err
	}
	d.tlsCert.Store(pair)
	return nil
}

// issueTLS issues a TLS server certificate for dns and ips with a new
// key, recorded like every certificate.
func (d *Daemon) issueTLS(ctx context.Context, dns []string, ips []net.IP) (*tls.Certificate, error) {
	key, err := ca.GenerateKey(ca.P256)
	if err != nil {
		return nil, err
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: dns, IPAddresses: ips}, key)
	if err != nil {
		return nil, err
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, err
	}
	p := &ca.Profile{
		Name:        "estd-tls-server",
		Validity:    tlsValidity,
		KeyTypes:    []ca.KeyType{ca.P256},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		SANs:        []string{"dns", "ip"},
	}
	who := auth.Identity{Method: "bootstrap", Name: "estd"}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cert, err := d.CA.Issue(ctx, csr, p, who)
	if err != nil {
		return nil, err
	}
	if err := d.Store.Put(ctx, server.Record(cert, p.Name, who, d.opts.Clock())); err != nil {
		return nil, err
	}
	chain := append([]*x509.Certificate{cert}, d.CA.Chain[:len(d.CA.Chain)-1]...)
	pair := &tls.Certificate{PrivateKey: key, Leaf: cert}
	for _, c := range chain {
		pair.Certificate = append(pair.Certificate, c.Raw)
	}
	return pair, nil
}

// writeTLS writes the TLS server certificate and its key to the data
// directory.
func (d *Daemon) writeTLS(pair *tls.Certificate) error {
	if err := writeKey(filepath.Join(d.opts.DataDir, TLSKeyFile), pair.PrivateKey.(crypto.Signer)); err != nil {
		return err
	}
	var chain []*x509.Certificate
	for _, der := range pair.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return err
		}
		chain = append(chain, c)
	}
	return writeCerts(filepath.Join(d.opts.DataDir, TLSCertFile), chain...)
}

// TLSConfig returns the server TLS configuration with the daemon's
// certificate. A certificate within tlsRenewBefore of its expiry, or not
// valid yet (the clock was ahead when it was issued), is renewed in the
// background while estd serves, so a daemon that runs for longer than the
// certificate's validity keeps a valid one.
func (d *Daemon) TLSConfig() *tls.Config {
	return server.TLSConfig(d.opts.TLS, func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		c := d.tlsCert.Load()
		if now := d.opts.Clock(); c.Leaf != nil {
			switch {
			case now.Before(c.Leaf.NotBefore):
				d.renewTLS(now, false)
			case now.After(c.Leaf.NotAfter.Add(-tlsRenewBefore)):
				d.renewTLS(now, true)
			}
		}
		return c, nil
	})
}

// tlsRetry is how long a failed renewal of the TLS certificate waits
// before the next attempt.
const tlsRetry = time.Hour

// renewTLS renews the TLS certificate in the background: one renewal at a
// time, none after Close, and after a failure not again for tlsRetry
// (measured on the monotonic clock, whatever the wall clock does). A
// renewal for expiry (expiring) is not tried again while the issuing CA's
// own expiry cuts every certificate short; one for a certificate not valid
// yet is.
func (d *Daemon) renewTLS(now time.Time, expiring bool) {
	d.renewMu.Lock()
	mono := time.Now()
	if d.closing || d.renewing || mono.Before(d.renewRetry) || expiring && mono.Before(d.renewCutShort) {
		d.renewMu.Unlock()
		return
	}
	d.renewing = true
	d.renewWG.Add(1)
	d.renewMu.Unlock()
	go func() {
		defer d.renewWG.Done()
		var retry, cutShort time.Time
		defer func() {
			d.renewMu.Lock()
			d.renewing, d.renewRetry, d.renewCutShort = false, retry, cutShort
			d.renewMu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(d.renewCtx, time.Minute)
		defer cancel()
		old := d.tlsCert.Load().Leaf
		dns, ips := tlsNames(d.opts.Hostnames)
		pair, err := d.issueTLS(ctx, dns, ips)
		if err != nil {
			retry = time.Now().Add(tlsRetry)
			if d.renewCtx.Err() == nil {
				d.opts.Logger.Error("could not renew the TLS server certificate; trying again in an hour", "not_after", old.NotAfter, "err", err.Error())
			}
			return
		}
		if err := d.writeTLS(pair); err != nil {
			// Served all the same; the next start issues another.
			d.opts.Logger.Error("renewed the TLS server certificate but could not write it to the data directory", "err", err.Error())
		}
		d.tlsCert.Store(pair)
		d.opts.Logger.Info("renewed the TLS server certificate", "old_not_after", old.NotAfter, "not_after", pair.Leaf.NotAfter)
		if now.After(pair.Leaf.NotAfter.Add(-tlsRenewBefore)) {
			// Cut short by the issuing CA's own expiry: another renewal
			// would give no more. Only a rollover helps.
			cutShort = time.Now().Add(pair.Leaf.NotAfter.Sub(now))
			d.opts.Logger.Warn("the issuing CA expires soon, and every certificate it issues with it: roll it over (estd ca rollover)",
				"issuing_ca_not_after", d.CA.Cert.NotAfter)
		}
	}()
}

// ShutdownTimeout bounds how long Serve waits for in-flight requests.
const ShutdownTimeout = 30 * time.Second

// Serve serves EST over TLS on ln until ctx is done, then shuts down
// gracefully: it stops accepting, lets in-flight requests finish (up to
// ShutdownTimeout) and returns. Connections and TLS handshakes are capped
// by Options.Limits; handshakes happen in the listener (see tlsListener).
func (d *Daemon) Serve(ctx context.Context, ln net.Listener) error {
	srv := server.HTTPServer(d.Handler, d.TLSConfig(), d.opts.Timeouts)
	srv.ErrorLog = slog.NewLogLogger(d.opts.Logger.Handler(), slog.LevelWarn)
	tln := newTLSListener(ln, srv, d.opts.Limits, d.Metrics, newListenerMetrics(d.Registry), d.opts.Logger)
	return serve(ctx, srv, func() error { return srv.Serve(tln) })
}

// serve runs srv until ctx is done, then shuts it down gracefully.
func serve(ctx context.Context, srv *http.Server, run func() error) error {
	errc := make(chan error, 1)
	go func() { errc <- run() }()
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

// ServePKI serves the CRL (/crl) and OCSP (/ocsp) over plain HTTP on ln
// until ctx is done.
func (d *Daemon) ServePKI(ctx context.Context, ln net.Listener) error {
	h, err := server.NewRevocation(d.issuingCAs(), d.Store, d.opts.Clock, d.opts.Logger)
	if err != nil {
		return err
	}
	srv := plainServer(h, d.opts.Logger)
	return serve(ctx, srv, func() error { return srv.Serve(ln) })
}

// ServeMetrics serves /metrics, /healthz and /readyz over plain HTTP on ln
// until ctx is done.
func (d *Daemon) ServeMetrics(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := d.Ready(r.Context()); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	srv := plainServer(mux, d.opts.Logger)
	return serve(ctx, srv, func() error { return srv.Serve(ln) })
}

func plainServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
}

// Ready reports whether estd can serve: the store answers and the CA key signs.
func (d *Daemon) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := d.Store.Ping(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	digest := sha256.Sum256([]byte("estd readiness"))
	var opts crypto.SignerOpts = crypto.SHA256
	if _, ok := d.CA.Signer.Public().(ed25519.PublicKey); ok {
		opts = crypto.Hash(0)
	}
	if _, err := d.CA.Signer.Sign(rand.Reader, digest[:], opts); err != nil {
		return fmt.Errorf("CA key: %w", err)
	}
	return nil
}

// Close releases the store and the CA key.
func (d *Daemon) Close() error {
	// A renewal of the TLS certificate ends before what it uses closes.
	d.renewMu.Lock()
	d.closing = true
	d.renewMu.Unlock()
	if d.renewCancel != nil {
		d.renewCancel()
	}
	d.renewWG.Wait()
	var errs []error
	if d.Store != nil {
		errs = append(errs, d.Store.Close())
	}
	if d.keyCloser != nil {
		errs = append(errs, d.keyCloser.Close())
	}
	errs = append(errs, closeRetired(d.retired))
	return errors.Join(errs...)
}

// caExpiry is the metric of when estd's CA certificates expire: alert well
// before the issuing CA's (estd ca rollover), and before the root's.
func (d *Daemon) caExpiry() prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "estd_ca_certificate_not_after_timestamp_seconds",
		Help: "When a CA certificate of estd expires (Unix time), by role: root, issuing, or retired (an issuing CA a rollover replaced, kept for its certificates).",
	}, []string{"role", "subject"})
	g.WithLabelValues("root", d.Root.Subject.String()).Set(float64(d.Root.NotAfter.Unix()))
	g.WithLabelValues("issuing", d.CA.Cert.Subject.String()).Set(float64(d.CA.Cert.NotAfter.Unix()))
	for _, r := range d.Retired {
		g.WithLabelValues("retired", r.Cert.Subject.String()).Set(float64(r.Cert.NotAfter.Unix()))
	}
	return g
}

// crlURL is the public address of the CRL at path (server.CRLPath) when
// base is that of /crl: base itself, or base with /ID appended to its path
// (a query stays where it is).
func crlURL(base, path string) string {
	id, ok := strings.CutPrefix(path, "/crl/")
	if !ok {
		return base
	}
	u, err := url.Parse(base)
	if err != nil {
		return strings.TrimSuffix(base, "/") + "/" + id
	}
	escaped := strings.TrimSuffix(u.EscapedPath(), "/") + "/" + id
	if u.Path, err = url.PathUnescape(escaped); err != nil {
		return strings.TrimSuffix(base, "/") + "/" + id
	}
	u.RawPath = escaped
	return u.String()
}

// issuingCAs returns the current issuing CA, then the retired ones.
func (d *Daemon) issuingCAs() []server.IssuingCA {
	cas := []server.IssuingCA{{Cert: d.CA.Cert, Signer: d.CA.Signer}}
	for _, r := range d.Retired {
		cas = append(cas, server.IssuingCA{Cert: r.Cert, Signer: r.Signer})
	}
	return cas
}

// caCerts is what /cacerts returns: the issuing CA, the retired issuing
// CAs whose certificates are still valid (so that a relying party that
// takes its intermediates from /cacerts can verify them), and the root.
func (d *Daemon) caCerts() []*x509.Certificate {
	certs := []*x509.Certificate{d.CA.Cert}
	for _, r := range d.Retired {
		certs = append(certs, r.Cert)
	}
	return append(certs, d.Root)
}
