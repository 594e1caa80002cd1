package conformance

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/client"
)

// session is one Run: the server, the inputs, and what checks share.
type session struct {
	cfg      Config
	base     *url.URL // https://host:port[/prefix], no trailing slash
	hostport string   // for TLS dials
	host     string   // server name for SNI and verification
	anchors  *x509.CertPool
	token    string // makes this run's names unique
	domain   string

	mu       sync.Mutex
	clients  []*http.Client
	chains   map[string][]*x509.Certificate // /cacerts per label
	issued   *credential                    // a client certificate this server issued
	issuedOK bool
	err      error // why issued could not be obtained
}

func newSession(cfg Config) (*session, error) {
	s := &session{cfg: cfg, chains: map[string][]*x509.Certificate{}, domain: cfg.Domain}
	if s.domain == "" {
		s.domain = defaultDomain
	}
	raw := strings.TrimSpace(cfg.Server)
	if raw == "" {
		return nil, errors.New("conformance: Config.Server is not set")
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || !strings.EqualFold(u.Scheme, "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("conformance: invalid server %q: want host[:port] or https://host[:port][/path]", cfg.Server)
	}
	u.Scheme, u.Path, u.RawPath = "https", strings.TrimRight(u.Path, "/"), ""
	s.base = u
	s.host = u.Hostname()
	port := u.Port()
	if port == "" {
		port = "443"
	}
	s.hostport = net.JoinHostPort(s.host, port)
	for _, label := range []string{cfg.ClientLabel, cfg.ServerLabel} {
		if label != "" && !est.ValidLabel(label) {
			return nil, fmt.Errorf("conformance: invalid label %q", label)
		}
	}
	if len(cfg.TrustAnchors) > 0 {
		s.anchors = x509.NewCertPool()
		for _, c := range cfg.TrustAnchors {
			s.anchors.AddCert(c)
		}
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	s.token = hex.EncodeToString(b[:])
	return s, nil
}

// close drops the connections the checks left open.
func (s *session) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.clients {
		c.CloseIdleConnections()
	}
}

// credential is what a request authenticates with: a TLS client
// certificate, HTTP Basic, or nothing.
type credential struct {
	desc       string
	cert       *tls.Certificate
	user, pass string
}

var anonymous = &credential{desc: "no credentials"}

func (s *session) manufacturer() *credential {
	if s.cfg.Manufacturer == nil {
		return nil
	}
	return &credential{desc: "the manufacturer certificate", cert: s.cfg.Manufacturer}
}

func (s *session) basic() *credential {
	if s.cfg.Username == "" {
		return nil
	}
	return &credential{desc: "HTTP Basic user " + s.cfg.Username, user: s.cfg.Username, pass: s.cfg.Password}
}

// Reasons of SKIP for missing inputs, naming the flags of est check.
const (
	needCredential   = "needs credentials the server accepts for enrollment: pass -manufacturer-cert and -manufacturer-key, or -user"
	needManufacturer = "needs a manufacturer certificate the server trusts: pass -manufacturer-cert and -manufacturer-key"
	needUser         = "needs an HTTP Basic user: pass -user (password from EST_PASSWORD or -password-file)"
	needRogue        = "needs a rogue manufacturer certificate: pass -rogue-cert and -rogue-key"
	needExpired      = "needs an expired client certificate: pass -expired-cert and -expired-key"
	needAnchor       = "needs the expected root CA: pass -anchor ROOT.pem"
)

// enrollCred is the credential for enrollments that are not about
// authentication: the manufacturer certificate, else Basic, else nil.
func (s *session) enrollCred() *credential {
	if c := s.manufacturer(); c != nil {
		return c
	}
	return s.basic()
}

// tlsConfig authenticates the server with the anchors (or the system roots)
// and presents cert, whatever CA names the server lists.
func (s *session) tlsConfig(cert *tls.Certificate) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: s.anchors, ServerName: s.host}
	if cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return cfg
}

// httpClient returns an HTTP client for cred. Each request uses a new
// connection, so that one check's connection state never helps another and
// a server that dropped a connection is noticed.
func (s *session) httpClient(cred *credential) *http.Client {
	var cert *tls.Certificate
	if cred != nil {
		cert = cred.cert
	}
	hc := &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:   s.tlsConfig(cert),
			DisableKeepAlives: true,
			DialContext:       (&net.Dialer{}).DialContext,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	s.mu.Lock()
	s.clients = append(s.clients, hc)
	s.mu.Unlock()
	return hc
}

// client returns an EST client for label that authenticates with cred.
func (s *session) client(label string, cred *credential) *client.Client {
	c := &client.Client{Server: s.base.String(), Label: label, HTTPClient: s.httpClient(cred), UserAgent: userAgent}
	if cred != nil && cred.user != "" {
		c.Username, c.Password = cred.user, cred.pass
	}
	return c
}

// rawRequest is one request built by hand, to see exactly what the server answers.
type rawRequest struct {
	method      string // "" means the operation's method
	label       string
	op          est.Operation
	contentType string // "" sends none
	body        []byte
	cred        *credential
}

// rawResult is the answer to a rawRequest: a status, or the error that
// stopped the exchange.
type rawResult struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func (s *session) url(label string, op est.Operation) string {
	u := *s.base
	u.Path += est.Path(label, op)
	return u.String()
}

// raw sends r and reads the answer (at most maxBody bytes of it).
func (s *session) raw(ctx context.Context, r rawRequest) *rawResult {
	method := r.method
	if method == "" {
		method = r.op.Method()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.url(r.label, r.op), body)
	if err != nil {
		return &rawResult{err: err}
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	req.Header.Set("User-Agent", userAgent)
	if r.cred != nil && r.cred.user != "" {
		req.SetBasicAuth(r.cred.user, r.cred.pass)
	}
	resp, err := s.httpClient(r.cred).Do(req)
	if err != nil {
		return &rawResult{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return &rawResult{status: resp.StatusCode, header: resp.Header, err: fmt.Errorf("reading the answer: %w", err)}
	}
	return &rawResult{status: resp.StatusCode, header: resp.Header, body: b}
}

// describe tells what r was, for a reason: "403 Forbidden (client certificate refused: ...)".
func (r *rawResult) describe() string {
	if r.err != nil {
		return "no answer: " + errText(r.err)
	}
	d := fmt.Sprintf("%d %s", r.status, http.StatusText(r.status))
	if m := r.message(); m != "" {
		d += " (" + m + ")"
	}
	return d
}

// message is the first line of a text answer, shortened.
func (r *rawResult) message() string {
	ct := strings.ToLower(r.header.Get("Content-Type"))
	if ct != "" && !strings.HasPrefix(ct, "text/") && !strings.Contains(ct, "json") {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(r.body)), "\n")
	line = strings.TrimSpace(line)
	if len(line) > 100 {
		line = line[:100] + "..."
	}
	return strings.ToValidUTF8(line, "?")
}

// errText is err without the "est: " prefix of package client.
func errText(err error) string {
	return strings.TrimPrefix(err.Error(), "est: ")
}

// tlsRefusal reports whether err is the server refusing in TLS: an alert,
// or hanging up during the handshake.
func tlsRefusal(err error) bool {
	var alert tls.AlertError
	if errors.As(err, &alert) {
		return true
	}
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		return false // our side refused the server
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// certsIn returns the certificates an answer carries, in whatever form:
// base64, PEM or binary certs-only PKCS#7, a bare certificate, PEM
// certificates, or a multipart serverkeygen body.
func certsIn(r *rawResult) []*x509.Certificate {
	if r == nil || r.err != nil || len(r.body) == 0 {
		return nil
	}
	if skg, err := est.ParseServerKeyGen(r.header.Get("Content-Type"), r.body); err == nil {
		if certs, err := est.ParseCertsOnly(skg.Certs); err == nil {
			return certs
		}
	}
	var out []*x509.Certificate
	for rest := r.body; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			out = append(out, c)
		} else if cs, err := est.ParseCertsOnly(b.Bytes); err == nil {
			out = append(out, cs...)
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, der := range [][]byte{decodeOrNil(r.body), bytes.TrimSpace(r.body)} {
		if der == nil {
			continue
		}
		if cs, err := est.ParseCertsOnly(der); err == nil {
			return cs
		}
		if c, err := x509.ParseCertificate(der); err == nil {
			return []*x509.Certificate{c}
		}
	}
	return nil
}

func decodeOrNil(b []byte) []byte {
	der, err := est.DecodeBase64(b)
	if err != nil {
		return nil
	}
	return der
}

// healthy probes the server after a hostile request: GET /cacerts on a new
// connection must answer 200 with certificates.
func (s *session) healthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, healthProbeTimeout)
	defer cancel()
	r := s.raw(ctx, rawRequest{label: s.cfg.ClientLabel, op: est.OpCACerts})
	if r.err != nil || r.status != http.StatusOK {
		return fmt.Errorf("health probe GET %s: %s", est.Path(s.cfg.ClientLabel, est.OpCACerts), r.describe())
	}
	if len(certsIn(r)) == 0 {
		return fmt.Errorf("health probe GET %s: 200 without certificates", est.Path(s.cfg.ClientLabel, est.OpCACerts))
	}
	return nil
}

// refused judges the answer to a hostile request: it must be a refusal
// (status allowed by ok, or a TLS refusal when tlsOK), carry no
// certificate, and leave the server serving. It returns the outcome.
func (s *session) refused(ctx context.Context, what string, r *rawResult, ok func(status int) bool, want string, tlsOK bool) outcome {
	if certs := certsIn(r); len(certs) > 0 {
		return fail("%s: the answer (%d) carries a certificate for %s: it was issued", what, r.status, certs[0].Subject)
	}
	var got string
	switch {
	case r.err != nil && tlsOK && tlsRefusal(r.err):
		got = "refused in TLS: " + errText(r.err)
	case r.err != nil:
		return fail("%s: %s; want %s", what, r.describe(), want)
	case ok(r.status):
		got = r.describe()
	default:
		return fail("%s: got %s, want %s", what, r.describe(), want)
	}
	if err := s.healthy(ctx); err != nil {
		return fail("%s: %s, but then the server stopped serving: %v", what, got, err)
	}
	return pass("%s: %s; nothing issued, still serving", what, got)
}

func is4xx(status int) bool { return status >= 400 && status < 500 }

func isAuthRefusal(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden
}

// cacerts returns the CA certificates of label, fetched once.
func (s *session) cacerts(ctx context.Context, label string) ([]*x509.Certificate, error) {
	s.mu.Lock()
	certs, ok := s.chains[label]
	s.mu.Unlock()
	if ok {
		return certs, nil
	}
	certs, err := s.client(label, nil).CACerts(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.chains[label] = certs
	s.mu.Unlock()
	return certs, nil
}

// verifyOptions are the roots and intermediates an issued certificate of
// label must chain to: the anchors when given (else the roots /cacerts
// returned), through the other certificates /cacerts returned.
func (s *session) verifyOptions(ctx context.Context, label string) (x509.VerifyOptions, error) {
	certs, err := s.cacerts(ctx, label)
	if err != nil {
		return x509.VerifyOptions{}, fmt.Errorf("fetching /cacerts: %s", errText(err))
	}
	opts := x509.VerifyOptions{Roots: s.anchors, Intermediates: x509.NewCertPool()}
	if opts.Roots == nil {
		opts.Roots = x509.NewCertPool()
	}
	for _, c := range certs {
		if selfSigned(c) {
			if len(s.cfg.TrustAnchors) == 0 {
				opts.Roots.AddCert(c)
			}
		} else {
			opts.Intermediates.AddCert(c)
		}
	}
	return opts, nil
}

// Key algorithms the checks request.
const (
	algRSA   = "RSA"
	algECDSA = "ECDSA"
)

// newKey returns a new RSA 2048 or ECDSA P-256 key.
func newKey(alg string) (crypto.Signer, error) {
	if alg == algRSA {
		return rsa.GenerateKey(rand.Reader, 2048)
	}
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// subjectName is the CN of this run's request for purpose.
func (s *session) subjectName(purpose string) string {
	return "est-check-" + s.token + "-" + purpose
}

// dnsName is a DNS name of this run for purpose, under Config.Domain.
func (s *session) dnsName(purpose string) string {
	return purpose + "-" + s.token + "." + s.domain
}

// csrFor returns a DER PKCS#10 request for key naming cn and dns.
func csrFor(key crypto.Signer, cn string, dns []string) ([]byte, error) {
	return x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{Organization: []string{"estkit conformance"}, CommonName: cn},
		DNSNames: dns,
	}, key)
}

// issuedCert is a certificate a check obtained, with its key.
type issuedCert struct {
	cert  *x509.Certificate
	key   crypto.Signer
	label string
}

func (ic *issuedCert) credential(desc string) *credential {
	return &credential{desc: desc, cert: &tls.Certificate{Certificate: [][]byte{ic.cert.Raw}, PrivateKey: ic.key, Leaf: ic.cert}}
}

// request describes an enrollment a check makes.
type request struct {
	label   string
	alg     string
	purpose string
	server  bool // a TLS server certificate: ask for a DNS name, want serverAuth
}

// enroll makes a key and a CSR for rq and enrolls with cred; the
// certificate is checked to be what was asked.
func (s *session) enroll(ctx context.Context, rq request, cred *credential) (*issuedCert, error) {
	key, err := newKey(rq.alg)
	if err != nil {
		return nil, err
	}
	cn := s.subjectName(rq.purpose)
	var dns []string
	if rq.server {
		dns = []string{s.dnsName(rq.purpose)}
	}
	csr, err := csrFor(key, cn, dns)
	if err != nil {
		return nil, err
	}
	e, err := s.client(rq.label, cred).Enroll(ctx, csr)
	if err != nil {
		return nil, fmt.Errorf("enrollment with %s under label %q: %s", cred.desc, rq.label, errText(err))
	}
	ic := &issuedCert{cert: e.Certificate, key: key, label: rq.label}
	w := expectation{key: key.Public(), cn: cn, dns: dns, eku: x509.ExtKeyUsageClientAuth}
	if rq.server {
		w.eku = x509.ExtKeyUsageServerAuth
	}
	if err := s.validate(ctx, rq.label, e.Certificate, w); err != nil {
		return ic, err
	}
	return ic, nil
}

// issuedCredential returns a client certificate this server issued under
// the client label, enrolled once per run with the manufacturer
// certificate or Basic: the "previously issued certificate" of the matrix.
func (s *session) issuedCredential(ctx context.Context) (*credential, error) {
	s.mu.Lock()
	done, cred, err := s.issuedOK, s.issued, s.err
	s.mu.Unlock()
	if done {
		return cred, err
	}
	base := s.enrollCred()
	ic, err := s.enroll(ctx, request{label: s.cfg.ClientLabel, alg: algECDSA, purpose: "issued-credential"}, base)
	if err != nil {
		err = fmt.Errorf("could not obtain a certificate to authenticate with: %v", err)
		if ctx.Err() != nil {
			return nil, err // not cached: the next check may have time
		}
	} else {
		cred = ic.credential("a certificate the server issued")
	}
	s.mu.Lock()
	s.issued, s.err, s.issuedOK = cred, err, true
	s.mu.Unlock()
	return cred, err
}

// expectation is what an issued certificate must be.
type expectation struct {
	key crypto.PublicKey
	cn  string
	dns []string
	eku x509.ExtKeyUsage
}

type publicKey interface {
	Equal(crypto.PublicKey) bool
}

// validate checks an issued certificate against w: for the request's key,
// with its CN, exactly its DNS names and no IP address it did not ask for,
// an end-entity certificate with digitalSignature (when key usage is
// present) and the wanted extended key usage, valid now and chaining to the
// anchors through the CA certificates of label.
func (s *session) validate(ctx context.Context, label string, cert *x509.Certificate, w expectation) error {
	if k, ok := cert.PublicKey.(publicKey); !ok || !k.Equal(w.key) {
		return errors.New("the certificate is not for the request's key")
	}
	if cert.Subject.CommonName != w.cn {
		return fmt.Errorf("subject %s lacks the CN %q of the request", cert.Subject, w.cn)
	}
	if got, want := lowerSet(cert.DNSNames), lowerSet(w.dns); !equalSets(got, want) {
		return fmt.Errorf("DNS names %v, the request asked for %v", cert.DNSNames, w.dns)
	}
	if len(cert.IPAddresses) > 0 {
		return fmt.Errorf("IP addresses %v the request did not ask for", cert.IPAddresses)
	}
	if cert.IsCA {
		return errors.New("the certificate is a CA certificate")
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return errors.New("key usage lacks digitalSignature")
	}
	if !hasEKU(cert, w.eku) {
		return fmt.Errorf("extended key usage %s missing (has %s)", ekuName(w.eku), ekuNames(cert.ExtKeyUsage))
	}
	opts, err := s.verifyOptions(ctx, label)
	if err != nil {
		return err
	}
	opts.KeyUsages = []x509.ExtKeyUsage{w.eku}
	if _, err := cert.Verify(opts); err != nil {
		return fmt.Errorf("the certificate does not verify: %v", strings.TrimPrefix(err.Error(), "x509: "))
	}
	return nil
}

func hasEKU(cert *x509.Certificate, eku x509.ExtKeyUsage) bool {
	for _, u := range cert.ExtKeyUsage {
		if u == eku || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

func ekuName(u x509.ExtKeyUsage) string {
	switch u {
	case x509.ExtKeyUsageClientAuth:
		return "clientAuth"
	case x509.ExtKeyUsageServerAuth:
		return "serverAuth"
	case x509.ExtKeyUsageAny:
		return "any"
	}
	return fmt.Sprintf("#%d", u)
}

func ekuNames(us []x509.ExtKeyUsage) string {
	if len(us) == 0 {
		return "none"
	}
	names := make([]string, len(us))
	for i, u := range us {
		names[i] = ekuName(u)
	}
	return strings.Join(names, ",")
}

func lowerSet(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[strings.ToLower(strings.TrimSuffix(n, "."))] = true
	}
	return m
}

func equalSets(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// selfSigned reports whether c is self-issued and its signature verifies
// with its own key (a SHA-1 self-signature counts).
func selfSigned(c *x509.Certificate) bool {
	if !bytes.Equal(c.RawSubject, c.RawIssuer) {
		return false
	}
	err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature)
	var insecure x509.InsecureAlgorithmError
	return err == nil || errors.As(err, &insecure)
}

// describeCert names a certificate briefly for a reason.
func describeCert(c *x509.Certificate) string {
	d := fmt.Sprintf("CN=%s serial %s %s %s", c.Subject.CommonName, shortSerial(c), keyAlg(c.PublicKey), ekuNames(c.ExtKeyUsage))
	if len(c.DNSNames) > 0 {
		d += " DNS:" + strings.Join(c.DNSNames, ",")
	}
	return d
}

func shortSerial(c *x509.Certificate) string {
	h := c.SerialNumber.Text(16)
	if len(h) > 12 {
		h = h[:12] + "…"
	}
	return h
}

func keyAlg(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA-%d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA-" + k.Curve.Params().Name
	}
	return fmt.Sprintf("%T", pub)
}

// cutOff reports whether err is the server closing or resetting the
// connection while the request was being sent.
func cutOff(err error) bool {
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "connection reset") || strings.Contains(msg, "broken pipe") || strings.Contains(msg, "server closed")
}
