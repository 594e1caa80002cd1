package server_test

// FuzzHandler sends arbitrary requests to the EST handler as estd wires it.
// Crashers go to testdata/fuzz/FuzzHandler/ and run with plain go test.
//
//	go test -run '^$' -fuzz '^FuzzHandler$' -fuzztime 30s ./server

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/estd"
	"github.com/estkit/estkit/internal/testpki"
	"github.com/estkit/estkit/server"
	"github.com/estkit/estkit/store"
)

// countingStore counts the certificates recorded, and revoked, through it.
type countingStore struct {
	store.Store
	puts, revokes atomic.Int64
}

func (s *countingStore) Revoke(ctx context.Context, serial *big.Int, reason int, at time.Time) error {
	s.revokes.Add(1)
	return s.Store.Revoke(ctx, serial, reason, at)
}

func (s *countingStore) Put(ctx context.Context, rec *store.Record) error {
	err := s.Store.Put(ctx, rec)
	if err == nil {
		s.puts.Add(1)
	}
	return err
}

// Who asks, in FuzzHandler: the fuzzed byte modulo whoCount.
const (
	whoNobody       = iota // no credentials
	whoBasic               // the bootstrap user
	whoWrongBasic          // an unknown user
	whoManufacturer        // a device certificate of a trusted manufacturer
	whoIssued              // a certificate estd issued
	whoCount
)

// handlerFixture is estd's handler with what it takes to call it.
type handlerFixture struct {
	h        http.Handler
	store    *countingStore
	password string
	// tls is the connection state of each who, from real handshakes.
	tls   [whoCount]*tls.ConnectionState
	renew []byte // a CSR that renews the whoIssued certificate
	addr  atomic.Uint32
}

func newHandlerFixture(tb testing.TB) *handlerFixture {
	tb.Helper()
	now := time.Now()
	dir := tb.TempDir()
	mfr := testpki.Manufacturer(tb, now)
	mfrFile := filepath.Join(dir, "manufacturer.pem")
	testpki.WriteCerts(tb, mfrFile, mfr.Cert)
	d, err := estd.Open(context.Background(), estd.Options{DataDir: filepath.Join(dir, "estd-data"), ManufacturerCA: mfrFile})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	fx := &handlerFixture{store: &countingStore{Store: d.Store}, password: d.BootstrapPassword}
	// The handler as estd builds it, but recording through countingStore.
	h, err := server.New(server.Options{Issuer: d.CA, CACerts: d.CA.Chain, Profiles: ca.DefaultProfiles(), Verifier: d.Verifier, Store: fx.store})
	if err != nil {
		tb.Fatal(err)
	}
	fx.h = h

	device, deviceKey := mfr.Device(tb, "SN-fuzz", now)
	issuedKey := testpki.Key(tb, ca.P256)
	issuedReq, err := x509.ParseCertificateRequest(testpki.CSR(tb, issuedKey, "fuzz-issued", []string{"fuzz.example"}, nil))
	if err != nil {
		tb.Fatal(err)
	}
	issuedWho := auth.Identity{Method: auth.Basic, Name: "fuzz"}
	issued, err := d.CA.Issue(context.Background(), issuedReq, ca.DefaultProfiles()[0], issuedWho)
	if err != nil {
		tb.Fatal(err)
	}
	if err := d.Store.Put(context.Background(), server.Record(issued, "", issuedWho, now)); err != nil {
		tb.Fatal(err)
	}
	fx.renew = testpki.CSR(tb, issuedKey, "fuzz-issued", []string{"fuzz.example"}, nil)
	roots := x509.NewCertPool()
	roots.AddCert(d.Root)
	plain := handshake(tb, d.TLSConfig(), roots)
	fx.tls = [whoCount]*tls.ConnectionState{
		whoNobody:       plain,
		whoBasic:        plain,
		whoWrongBasic:   plain,
		whoManufacturer: handshake(tb, d.TLSConfig(), roots, testpki.TLSCertificate(device, deviceKey)),
		whoIssued:       handshake(tb, d.TLSConfig(), roots, testpki.TLSCertificate(issued, issuedKey)),
	}
	return fx
}

// handshake runs a TLS handshake with estd's server configuration over
// loopback TCP and returns the server's view of the connection.
func handshake(tb testing.TB, server *tls.Config, roots *x509.CertPool, certs ...tls.Certificate) *tls.ConnectionState {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "localhost", Certificates: certs})
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	c, err := ln.Accept()
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	sc := tls.Server(c, server)
	sc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := sc.Handshake(); err != nil {
		tb.Fatal(err)
	}
	if err := <-done; err != nil {
		tb.Fatal(err)
	}
	cs := sc.ConnectionState()
	return &cs
}

// request builds what net/http would hand the handler; nil when net/http
// would answer 400 itself.
func (fx *handlerFixture) request(method, target, ctype string, body []byte, who int) *http.Request {
	u, err := url.ParseRequestURI(target)
	if err != nil || method == "" {
		return nil
	}
	n := fx.addr.Add(1) // a new client address each time: no rate limit builds up
	r := (&http.Request{
		Method: method, URL: u, RequestURI: target, Host: "localhost",
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
		RemoteAddr: fmt.Sprintf("10.%d.%d.%d:40000", byte(n>>16), byte(n>>8), byte(n)),
		TLS:        fx.tls[who],
	}).WithContext(context.Background())
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	switch who {
	case whoBasic:
		r.SetBasicAuth(estd.BootstrapUser, fx.password)
	case whoWrongBasic:
		r.SetBasicAuth("mallory", fx.password)
	}
	return r
}

// FuzzHandler sends arbitrary methods, request-targets, Content-Types and
// bodies, as several requesters, to estd's handler: it never panics, never
// answers 5xx but 503 (and 501 for fullcmc), answers errors with one line of
// plain text (or a CMC response, for fullcmc), never revokes anything (no
// requester is a registration authority), and records a certificate only
// for an authenticated POST answered 200, with a body that is a valid base64
// CSR for the simple operations.
func FuzzHandler(f *testing.F) {
	fx := newHandlerFixture(f)
	var csrs [][]byte
	for _, name := range []string{"csr-ecdsa.pem", "csr-rsa.pem", "csr-ed25519.pem"} {
		data, err := os.ReadFile(filepath.Join("..", "testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		b, _ := pem.Decode(data)
		csrs = append(csrs, b.Bytes)
	}
	for _, label := range []string{"", "tls-client", "tls-server", "nope"} {
		for _, op := range est.Operations {
			path := est.Path(label, op)
			f.Add(op.Method(), path, "", []byte(nil), uint8(whoNobody))
			for who := range whoCount {
				f.Add("POST", path, est.MediaPKCS10, est.EncodeBase64(csrs[who%len(csrs)]), uint8(who))
			}
		}
	}
	b64 := est.EncodeBase64(csrs[0])
	for _, s := range []struct {
		method, target, ctype string
		body                  []byte
		who                   int
	}{
		{"POST", "/.well-known/est/simplereenroll", est.MediaPKCS10, est.EncodeBase64(fx.renew), whoIssued},
		{"POST", "/.well-known/est/tls-server%2Fsimpleenroll", est.MediaPKCS10, b64, whoBasic},
		{"POST", "/.well-known/est/simpleenroll?x=%zz", "Application/PKCS10; x=y", bytes.ReplaceAll(b64, []byte("A"), []byte("A \r\n")), whoBasic},
		{"POST", "/.well-known/est/simpleenroll", est.MediaPKCS10, append([]byte("-----BEGIN CERTIFICATE REQUEST-----\n"), b64...), whoManufacturer},
		{"POST", "/.well-known/est/serverkeygen", est.MediaPKCS10 + "; charset", b64, whoBasic},
		{"POST", "/.well-known/est/simpleenroll", est.MediaPKCS10, csrs[1], whoBasic},
		{"HEAD", "/.well-known/est/cacerts", "", nil, whoNobody},
		{"OPTIONS", "*", "", nil, whoNobody},
		{"GET", "/.well-known/est/%63acerts", "", nil, whoNobody},
	} {
		f.Add(s.method, s.target, s.ctype, s.body, uint8(s.who))
	}
	f.Fuzz(func(t *testing.T, method, target, ctype string, body []byte, whoByte uint8) {
		who := int(whoByte) % whoCount
		r := fx.request(method, target, ctype, body, who)
		if r == nil {
			return
		}
		before := fx.store.puts.Load()
		w := httptest.NewRecorder()
		fx.h.ServeHTTP(w, r)
		recorded := fx.store.puts.Load() - before
		res := w.Result()
		_, op, pathErr := est.ParsePath(r.URL.Path)
		switch {
		case res.StatusCode == http.StatusServiceUnavailable:
		case res.StatusCode == http.StatusNotImplemented && pathErr == nil && op == est.OpFullCMC:
		case res.StatusCode >= 500 || res.StatusCode < 200:
			t.Fatalf("%s %q as %d: status %d %q", method, target, who, res.StatusCode, w.Body.String())
		}
		cmc := pathErr == nil && op == est.OpFullCMC
		if res.StatusCode < 300 && strings.Count(r.URL.EscapedPath(), "/") != strings.Count(r.URL.Path, "/") {
			t.Fatalf("%q answered %d: an encoded slash was taken for a separator", target, res.StatusCode)
		}
		if res.StatusCode >= 400 && !(cmc && strings.HasPrefix(res.Header.Get("Content-Type"), est.MediaPKCS7)) {
			reason := w.Body.String()
			if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") || strings.Count(reason, "\n") != 1 {
				t.Fatalf("%d: reason %q (%s) is not one line of plain text", res.StatusCode, reason, res.Header.Get("Content-Type"))
			}
		}
		if recorded > 1 {
			t.Fatalf("one request recorded %d certificates", recorded)
		}
		if n := fx.store.revokes.Load(); n != 0 {
			t.Fatalf("%s %q as %d revoked %d certificates", method, target, who, n)
		}
		enrolling := pathErr == nil && (op == est.OpSimpleEnroll || op == est.OpSimpleReenroll || op == est.OpServerKeyGen)
		if res.StatusCode == http.StatusOK && enrolling && recorded != 1 {
			t.Fatalf("%s answered 200 but recorded %d certificates", op, recorded)
		}
		if recorded == 0 {
			return
		}
		// A certificate was recorded: the request must have deserved one.
		if !(enrolling || cmc) || method != "POST" || res.StatusCode != http.StatusOK {
			t.Fatalf("%s %q answered %d and recorded a certificate", method, target, res.StatusCode)
		}
		if who == whoNobody || who == whoWrongBasic {
			t.Fatalf("requester %d without valid credentials was issued a certificate", who)
		}
		if cmc {
			return
		}
		if mt, _, err := mime.ParseMediaType(ctype); err != nil || !strings.EqualFold(mt, est.MediaPKCS10) {
			t.Fatalf("Content-Type %q was issued a certificate", ctype)
		}
		der, err := est.DecodeBase64(body)
		if err != nil {
			t.Fatalf("body %q that is not base64 was issued a certificate", body)
		}
		req, err := est.ParseCSR(der)
		if err != nil {
			t.Fatalf("a body that is not a valid CSR was issued a certificate: %v", err)
		}
		if op == est.OpServerKeyGen {
			return
		}
		p7, err := est.DecodeBase64(w.Body.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		certs, err := est.ParseCertsOnly(p7)
		if err != nil || len(certs) != 1 {
			t.Fatalf("200 with %d certificates: %v", len(certs), err)
		}
		if !certs[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(req.PublicKey) {
			t.Fatal("the certificate is not for the CSR's key")
		}
	})
}
