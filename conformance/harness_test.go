package conformance_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/conformance"
	"github.com/estkit/estkit/internal/estd"
	"github.com/estkit/estkit/internal/testpki"
)

// fixture is one real estd (its handler, CA and store) that broken servers
// wrap, and the test PKI around it.
type fixture struct {
	d            *estd.Daemon
	password     string
	manufacturer *testpki.CA
	devCert      *x509.Certificate
	devKey       crypto.Signer
	rogueCert    *x509.Certificate
	rogueKey     crypto.Signer
	expCert      *x509.Certificate
	expKey       crypto.Signer
	manuPool     *x509.CertPool
	issuingPool  *x509.CertPool
	otherRoot    *testpki.CA // a root that is not estd's
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	now := time.Now()
	dir := t.TempDir()
	f := &fixture{manufacturer: testpki.Manufacturer(t, now)}
	manuFile := filepath.Join(dir, "manufacturer.pem")
	testpki.WriteCerts(t, manuFile, f.manufacturer.Cert)
	d, err := estd.Open(context.Background(), estd.Options{DataDir: filepath.Join(dir, "estd"), ManufacturerCA: manuFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	f.d, f.password = d, d.BootstrapPassword
	f.devCert, f.devKey = f.manufacturer.Device(t, "SN-4711", now)
	f.rogueCert, f.rogueKey = testpki.Rogue(t, now).Device(t, "SN-4711", now)
	f.expCert, f.expKey = f.manufacturer.Expired(t, "SN-old", now)
	f.manuPool = x509.NewCertPool()
	f.manuPool.AddCert(f.manufacturer.Cert)
	f.issuingPool = x509.NewCertPool()
	f.issuingPool.AddCert(d.CA.Cert)
	f.otherRoot = testpki.NewRoot(t, "Some Other Root CA", now)
	return f
}

// config is the Config with every input, for a server at addr.
func (f *fixture) config(addr string) conformance.Config {
	tc := func(c *x509.Certificate, k crypto.Signer) *tls.Certificate {
		p := testpki.TLSCertificate(c, k)
		return &p
	}
	return conformance.Config{
		Server:       addr,
		ClientLabel:  conformance.DefaultClientLabel,
		ServerLabel:  conformance.DefaultServerLabel,
		TrustAnchors: []*x509.Certificate{f.d.Root},
		Manufacturer: tc(f.devCert, f.devKey),
		Rogue:        tc(f.rogueCert, f.rogueKey),
		Expired:      tc(f.expCert, f.expKey),
		Username:     estd.BootstrapUser,
		Password:     f.password,
		Timeout:      20 * time.Second,
	}
}

// wrapper wraps estd's handler into a broken one.
type wrapper = func(t *testing.T, f *fixture, next http.Handler) http.Handler

// broken describes how a server departs from estd.
type broken struct {
	// wrap wraps estd's handler.
	wrap wrapper
	// tls changes the TLS configuration.
	tls func(t *testing.T, f *fixture, cfg *tls.Config)
	// plainHTTP also serves plain HTTP on the TLS port.
	plainHTTP bool
}

// serve starts a server that is estd changed as b says and returns its address.
func (f *fixture) serve(t *testing.T, b broken) string {
	t.Helper()
	var h http.Handler = f.d.Handler
	if b.wrap != nil {
		h = b.wrap(t, f, h)
	}
	cfg := f.d.TLSConfig()
	cfg.NextProtos = []string{"http/1.1"}
	if b.tls != nil {
		b.tls(t, f, cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var l net.Listener = tls.NewListener(ln, cfg)
	if b.plainHTTP {
		l = &sniffListener{Listener: ln, cfg: cfg}
	}
	srv := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// sniffListener serves TLS and plain HTTP on one port, by the first byte.
type sniffListener struct {
	net.Listener
	cfg *tls.Config
}

func (l *sniffListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	first, err := br.Peek(1)
	c.SetReadDeadline(time.Time{})
	pc := &peekedConn{Conn: c, r: br}
	if err == nil && first[0] == 0x16 { // a TLS handshake record
		return tls.Server(pc, l.cfg), nil
	}
	return pc, nil
}

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Helpers for wrappers.

// opOf returns the label and operation of r ("", "" outside EST).
func opOf(r *http.Request) (string, est.Operation) {
	label, op, err := est.ParsePath(r.URL.Path)
	if err != nil {
		return "", ""
	}
	return label, op
}

// readBody reads r's body and puts it back for the next handler.
func readBody(r *http.Request) []byte {
	b, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	return b
}

// csrOf parses r's body as a base64 CSR, leaving the body in place.
func csrOf(r *http.Request) *x509.CertificateRequest {
	der, err := est.DecodeBase64(readBody(r))
	if err != nil {
		return nil
	}
	req, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil
	}
	return req
}

// record runs next on r and returns what it answered.
func record(next http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	return rec
}

// replay writes a recorded answer.
func replay(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

// writeCerts answers 200 with a base64 certs-only PKCS#7 of certs.
func writeCerts(w http.ResponseWriter, certs ...*x509.Certificate) {
	p7, err := est.EncodeCertsOnly(certs...)
	if err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", est.MediaCertsOnly)
	w.Write(est.EncodeBase64(p7))
}

// issuedIn returns the one certificate of a recorded 200 enrollment answer.
func issuedIn(rec *httptest.ResponseRecorder) *x509.Certificate {
	if rec.Code != http.StatusOK {
		return nil
	}
	der, err := est.DecodeBase64(rec.Body.Bytes())
	if err != nil {
		return nil
	}
	certs, err := est.ParseCertsOnly(der)
	if err != nil || len(certs) != 1 {
		return nil
	}
	return certs[0]
}

// forge signs a certificate with estd's issuing CA, bypassing estd.
func (f *fixture) forge(tmpl *x509.Certificate, pub crypto.PublicKey) *x509.Certificate {
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber, _ = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Minute), time.Now().Add(24*time.Hour)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, f.d.CA.Cert, pub, f.d.CA.Signer)
	if err != nil {
		panic(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return c
}

// forgeFor signs what req asks, as a TLS client certificate, whatever it is.
func (f *fixture) forgeFor(req *x509.CertificateRequest) *x509.Certificate {
	return f.forge(&x509.Certificate{
		RawSubject:            req.RawSubject,
		DNSNames:              req.DNSNames,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}, req.PublicKey)
}

// templateOf returns a template that re-issues c as it is.
func templateOf(c *x509.Certificate) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber:          c.SerialNumber,
		RawSubject:            c.RawSubject,
		NotBefore:             c.NotBefore,
		NotAfter:              c.NotAfter,
		KeyUsage:              c.KeyUsage,
		ExtKeyUsage:           c.ExtKeyUsage,
		BasicConstraintsValid: true,
		IsCA:                  c.IsCA,
		DNSNames:              c.DNSNames,
		IPAddresses:           c.IPAddresses,
		SubjectKeyId:          c.SubjectKeyId,
	}
}

// reissue lets estd answer an enrollment operation in ops, then replaces the
// certificate with one changed by mutate, signed by the same CA: mutate
// returns the public key to certify (pub, or another), or nil to leave
// estd's answer alone.
func reissue(ops []est.Operation, mutate func(f *fixture, r *http.Request, tmpl *x509.Certificate, pub crypto.PublicKey) crypto.PublicKey) wrapper {
	return func(_ *testing.T, f *fixture, next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, op := opOf(r)
			if !contains(ops, op) {
				next.ServeHTTP(w, r)
				return
			}
			rec := record(next, r)
			cert := issuedIn(rec)
			if cert == nil {
				replay(w, rec)
				return
			}
			tmpl := templateOf(cert)
			pub := mutate(f, r, tmpl, cert.PublicKey)
			if pub == nil {
				replay(w, rec)
				return
			}
			writeCerts(w, f.forge(tmpl, pub))
		})
	}
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

var enrollOps = []est.Operation{est.OpSimpleEnroll}

// when applies h to the requests match selects and lets estd answer the others.
func when(match func(r *http.Request) bool, h func(f *fixture, next http.Handler, w http.ResponseWriter, r *http.Request)) wrapper {
	return func(_ *testing.T, f *fixture, next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if match(r) {
				h(f, next, w, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func isOp(ops ...est.Operation) func(*http.Request) bool {
	return func(r *http.Request) bool {
		_, op := opOf(r)
		return contains(ops, op)
	}
}

func refuse(status int, msg string) func(*fixture, http.Handler, http.ResponseWriter, *http.Request) {
	return func(_ *fixture, _ http.Handler, w http.ResponseWriter, _ *http.Request) {
		http.Error(w, msg, status)
	}
}

// peer returns the TLS client certificate of r, or nil.
func peer(r *http.Request) *x509.Certificate {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil
	}
	return r.TLS.PeerCertificates[0]
}

func verifies(c *x509.Certificate, pool *x509.CertPool) bool {
	_, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err == nil
}

// asBasic makes estd see r as coming from the Basic user and nothing else:
// how a server that lets anyone in behaves.
func asBasic(f *fixture, r *http.Request) *http.Request {
	r2 := r.Clone(r.Context())
	if r.TLS != nil {
		st := *r.TLS
		st.PeerCertificates = nil
		r2.TLS = &st
	}
	r2.Header.Del("Authorization")
	r2.SetBasicAuth(estd.BootstrapUser, f.password)
	return r2
}

// withLabel returns r for another label.
func withLabel(r *http.Request, label string) *http.Request {
	_, op := opOf(r)
	r2 := r.Clone(r.Context())
	r2.URL.Path = est.Path(label, op)
	return r2
}

// rsaTLSCert returns an RSA TLS server certificate for 127.0.0.1 issued by
// estd's CA, with the issuing CA as its chain.
func (f *fixture) rsaTLSCert(t *testing.T) tls.Certificate {
	t.Helper()
	key := testpki.Key(t, ca.RSA2048)
	leaf := f.forge(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "rsa-server"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}, key.Public())
	return testpki.TLSCertificate(leaf, key, f.d.CA.Cert)
}

// dead makes a server stop answering once tripped, as one that crashed.
type dead struct {
	mu      sync.Mutex
	tripped bool
}

func (d *dead) trip() { d.mu.Lock(); d.tripped = true; d.mu.Unlock() }

func (d *dead) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		tripped := d.tripped
		d.mu.Unlock()
		if tripped {
			panic(http.ErrAbortHandler) // the connection is closed without an answer
		}
		next.ServeHTTP(w, r)
	})
}
