package client_test

// Tests against httptest servers that answer the way real EST servers do,
// or misbehave the way they sometimes do.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/client"
	"github.com/estkit/estkit/internal/testpki"
)

// fixture is a CA, a key, a CSR for it and the certificate the CA issued for it.
type fixture struct {
	ca   *testpki.CA
	key  crypto.Signer
	csr  []byte
	leaf *x509.Certificate
}

func newFixture(t *testing.T, key crypto.Signer) *fixture {
	t.Helper()
	now := time.Now()
	f := &fixture{ca: testpki.NewRoot(t, "Test EST CA", now), key: key}
	if f.key == nil {
		f.key = ecKey(t)
	}
	f.csr = csr(t, f.key, "device-1")
	f.leaf, _ = f.ca.Issue(t, testpki.Leaf{CN: "device-1", Key: f.key, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)})
	return f
}

// p7 returns the DER of a certs-only PKCS#7 of certs.
func p7(t *testing.T, certs ...*x509.Certificate) []byte {
	t.Helper()
	der, err := est.EncodeCertsOnly(certs...)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// flat is base64 without line breaks.
func flat(der []byte) []byte { return []byte(base64.StdEncoding.EncodeToString(der)) }

// writeEST writes a 200 with a body, a Content-Type (none when "") and a
// Content-Transfer-Encoding (none when "").
func writeEST(w http.ResponseWriter, ctype, cte string, body []byte) {
	if ctype != "" {
		w.Header().Set("Content-Type", ctype)
	} else {
		w.Header()["Content-Type"] = nil // no sniffing either
	}
	if cte != "" {
		w.Header().Set("Content-Transfer-Encoding", cte)
	}
	w.Write(body)
}

// longCtx has a deadline far beyond the waits of the retry tests, which
// the fake clock makes instant.
func longCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 24*time.Hour)
	t.Cleanup(cancel)
	return c
}

func TestRetryAcceptedSeconds(t *testing.T) {
	f := newFixture(t, nil)
	var calls atomic.Int32
	var bodies [2][]byte
	_, c, ft := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		if n <= 2 {
			bodies[n-1] = b
		}
		if n == 1 {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprintln(w, "pending approval by an operator")
			return
		}
		writeEST(w, est.MediaCertsOnly, "base64", est.EncodeBase64(p7(t, f.leaf)))
	})
	var waits []string
	c.OnWait = func(op est.Operation, d time.Duration, reason string) {
		waits = append(waits, fmt.Sprintf("%s %v %s", op, d, reason))
	}
	e, err := c.Enroll(longCtx(t), f.csr)
	if err != nil {
		t.Fatal(err)
	}
	if !e.Certificate.Equal(f.leaf) {
		t.Error("wrong certificate")
	}
	if got := ft.Slept(); len(got) != 1 || got[0] != 7*time.Second {
		t.Errorf("slept %v, want [7s]", got)
	}
	if len(waits) != 1 || waits[0] != "simpleenroll 7s 202 Accepted: pending approval by an operator" {
		t.Errorf("OnWait calls: %q", waits)
	}
	if calls.Load() != 2 || !bytes.Equal(bodies[0], bodies[1]) {
		t.Errorf("%d requests; the poll must repeat the same request", calls.Load())
	}
}

func TestRetryUnavailableDate(t *testing.T) {
	f := newFixture(t, nil)
	var calls atomic.Int32
	var ft *fakeTime
	_, c, ft := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", ft.Now().Add(2*time.Minute).UTC().Format(http.TimeFormat))
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		writeEST(w, est.MediaPKCS7, "base64", est.EncodeBase64(p7(t, f.ca.Cert)))
	})
	certs, err := c.CACerts(longCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 1 || !certs[0].Equal(f.ca.Cert) {
		t.Error("wrong certificates")
	}
	if got := ft.Slept(); len(got) != 1 || got[0] != 2*time.Minute {
		t.Errorf("slept %v, want [2m0s]", got)
	}
}

func TestRetryBounds(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct {
		retryAfter string
		maxWait    time.Duration
		want       time.Duration
	}{
		{"0", 0, client.MinWait},
		{"Mon, 02 Jan 2006 15:04:05 GMT", 0, client.MinWait}, // in the past
		{"86400", 0, client.DefaultMaxWait},
		{"86400", 5 * time.Minute, 5 * time.Minute},
		{"", 0, client.DefaultRetryAfter}, // 202 without Retry-After
		{"soon", 0, client.DefaultRetryAfter},
	} {
		t.Run(tc.retryAfter, func(t *testing.T) {
			var calls atomic.Int32
			_, c, ft := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) == 1 {
					if tc.retryAfter != "" {
						w.Header().Set("Retry-After", tc.retryAfter)
					}
					w.WriteHeader(http.StatusAccepted)
					return
				}
				writeEST(w, est.MediaCertsOnly, "base64", est.EncodeBase64(p7(t, f.leaf)))
			})
			c.MaxWait = tc.maxWait
			if _, err := c.Enroll(longCtx(t), f.csr); err != nil {
				t.Fatal(err)
			}
			if got := ft.Slept(); len(got) != 1 || got[0] != tc.want {
				t.Errorf("slept %v, want [%v]", got, tc.want)
			}
		})
	}
}

func TestRetryDeadline(t *testing.T) {
	f := newFixture(t, nil)
	t.Run("wait would pass the deadline", func(t *testing.T) {
		var calls atomic.Int32
		_, c, ft := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.Header().Set("Retry-After", "600")
			w.WriteHeader(http.StatusAccepted)
		})
		cx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := c.Enroll(cx, f.csr)
		var e *client.Error
		if !errors.As(err, &e) || e.StatusCode != http.StatusAccepted || e.RetryAfter != 10*time.Minute {
			t.Fatalf("got %v, want a 202 *Error with RetryAfter 10m", err)
		}
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "deadline") {
			t.Errorf("%v does not say the deadline would pass", err)
		}
		if errors.Is(err, client.ErrRejected) || errors.Is(err, client.ErrServerFailure) {
			t.Errorf("a pending request classified as refused: %v", err)
		}
		if len(ft.Slept()) != 0 || calls.Load() != 1 {
			t.Errorf("slept %v over %d requests; want no wait at all", ft.Slept(), calls.Load())
		}
	})
	t.Run("polls until the deadline", func(t *testing.T) {
		var calls atomic.Int32
		_, c, ft := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.Header().Set("Retry-After", "10")
			http.Error(w, "busy", http.StatusServiceUnavailable)
		})
		cx, cancel := context.WithDeadline(context.Background(), ft.Now().Add(25*time.Second))
		defer cancel()
		_, err := c.CACerts(cx)
		var e *client.Error
		if !errors.As(err, &e) || e.StatusCode != 503 || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, client.ErrServerFailure) {
			t.Fatalf("got %v, want 503 given up at the deadline", err)
		}
		if got := ft.Slept(); len(got) != 2 || calls.Load() != 3 {
			t.Errorf("slept %v over %d requests, want 2 waits and 3 requests", got, calls.Load())
		}
	})
	t.Run("canceled while waiting", func(t *testing.T) {
		_, c, _ := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "5")
			w.WriteHeader(http.StatusAccepted)
		})
		cx, cancel := context.WithCancel(context.Background())
		defer cancel()
		c.Sleep = func(ctx context.Context, d time.Duration) error {
			cancel()
			<-ctx.Done()
			return ctx.Err()
		}
		if _, err := c.Enroll(cx, f.csr); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	})
	t.Run("503 without Retry-After is not retried", func(t *testing.T) {
		var calls atomic.Int32
		_, c, ft := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			http.Error(w, "database down", http.StatusServiceUnavailable)
		})
		_, err := c.CACerts(ctx(t))
		if !errors.Is(err, est.ErrUnavailable) || !errors.Is(err, client.ErrServerFailure) || calls.Load() != 1 || len(ft.Slept()) != 0 {
			t.Fatalf("got %v after %d requests", err, calls.Load())
		}
	})
}

// TestRealSleep checks the default Sleep: it honours the context.
func TestRealSleep(t *testing.T) {
	_, c, _ := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "60")
		w.WriteHeader(http.StatusAccepted)
	})
	c.Sleep, c.Clock = nil, nil
	cx, cancel := context.WithCancel(context.Background())
	c.OnWait = func(est.Operation, time.Duration, string) { cancel() }
	start := time.Now()
	_, err := c.Enroll(cx, newFixture(t, nil).csr)
	if !errors.Is(err, context.Canceled) || time.Since(start) > 20*time.Second {
		t.Fatalf("got %v after %v, want canceled at once", err, time.Since(start))
	}
}

func TestBodyEncodings(t *testing.T) {
	f := newFixture(t, nil)
	der := p7(t, f.ca.Cert)
	crlf := bytes.ReplaceAll(est.EncodeBase64(der), []byte("\n"), []byte("\r\n"))
	cases := []struct {
		name, ctype, cte string
		body             []byte
	}{
		{"RFC 8951 lines", est.MediaPKCS7, "base64", est.EncodeBase64(der)},
		{"no line breaks", est.MediaPKCS7, "base64", flat(der)},
		{"no Content-Transfer-Encoding", est.MediaPKCS7, "", est.EncodeBase64(der)},
		{"CRLF lines", est.MediaPKCS7, "base64", crlf},
		{"smime-type certs-only", est.MediaCertsOnly, "base64", flat(der)},
		{"quoted smime-type", `application/pkcs7-mime; smime-type="certs-only"`, "", flat(der)},
		{"no Content-Type", "", "", est.EncodeBase64(der)},
		{"binary DER", est.MediaPKCS7, "binary", der},
		{"PEM", est.MediaPKCS7, "", pem.EncodeToMemory(&pem.Block{Type: "PKCS7", Bytes: der})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, c, _ := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
				writeEST(w, tc.ctype, tc.cte, tc.body)
			})
			certs, err := c.CACerts(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			if len(certs) != 1 || !certs[0].Equal(f.ca.Cert) {
				t.Fatal("wrong certificates")
			}
		})
	}
	t.Run("garbage", func(t *testing.T) {
		_, c, _ := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
			writeEST(w, "text/html", "", []byte("<html>login</html>"))
		})
		_, err := c.CACerts(ctx(t))
		if !errors.Is(err, client.ErrMalformedResponse) || !strings.Contains(err.Error(), "text/html") {
			t.Fatalf("got %v, want a malformed response naming the Content-Type", err)
		}
		if errors.Is(err, est.ErrBadRequest) {
			t.Error("a malformed response reads as a 400 from the server")
		}
	})
}

func TestEnrollExtraCerts(t *testing.T) {
	f := newFixture(t, nil)
	other, _ := f.ca.Issue(t, testpki.Leaf{CN: "someone-else", NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)})
	respond := func(certs ...*x509.Certificate) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			writeEST(w, est.MediaCertsOnly, "base64", est.EncodeBase64(p7(t, certs...)))
		}
	}
	t.Run("the certificate for the CSR's key", func(t *testing.T) {
		_, c, _ := newTLSServer(t, respond(f.ca.Cert, other, f.leaf))
		e, err := c.Enroll(ctx(t), f.csr)
		if err != nil {
			t.Fatal(err)
		}
		if !e.Certificate.Equal(f.leaf) || len(e.Extra) != 2 || !e.Extra[0].Equal(f.ca.Cert) || !e.Extra[1].Equal(other) {
			t.Fatalf("picked %s with %d extra", e.Certificate.Subject, len(e.Extra))
		}
		tc := e.TLSCertificate(f.key)
		if len(tc.Certificate) != 2 || tc.Leaf != e.Certificate || tc.PrivateKey != f.key {
			t.Errorf("TLSCertificate: %d certificates; want the leaf and the non-root extra", len(tc.Certificate))
		}
	})
	t.Run("none for the CSR's key", func(t *testing.T) {
		_, c, _ := newTLSServer(t, respond(f.ca.Cert, other))
		if _, err := c.Enroll(ctx(t), f.csr); !errors.Is(err, client.ErrMalformedResponse) {
			t.Fatalf("got %v, want a malformed response", err)
		}
	})
}

// keygenBody builds a serverkeygen multipart body.
type keygenBody struct {
	keyDER, certsDER []byte
	keyType          string // "" means application/pkcs8
	certsFirst       bool
	noCTE            bool
	flat             bool
}

func (k keygenBody) build(t *testing.T) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	keyType := k.keyType
	if keyType == "" {
		keyType = est.MediaPKCS8
	}
	parts := []struct {
		ctype string
		der   []byte
	}{{keyType, k.keyDER}, {est.MediaCertsOnly, k.certsDER}}
	if k.certsFirst {
		parts[0], parts[1] = parts[1], parts[0]
	}
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		h.Set("Content-Type", p.ctype)
		if !k.noCTE {
			h.Set("Content-Transfer-Encoding", "base64")
		}
		pw, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		b := est.EncodeBase64(p.der)
		if k.flat {
			b = flat(p.der)
		}
		pw.Write(b)
	}
	mw.Close()
	return "multipart/mixed; boundary=" + mw.Boundary(), buf.Bytes()
}

func TestServerKeyGenVariants(t *testing.T) {
	ec, rsaK := ecKey(t), rsaKey()
	fEC, fRSA := newFixture(t, ec), newFixture(t, rsaK)
	pkcs8 := func(k crypto.Signer) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	sec1, err := x509.MarshalECPrivateKey(ec.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PrivateKey(rsaK)
	req := csr(t, ecKey(t), "device-1") // the server ignores the request's key
	cases := []struct {
		name        string
		f           *fixture
		body        keygenBody
		noCType     bool
		wrongCType  bool
		wantKeyType string
	}{
		{"pkcs8 key first", fEC, keygenBody{keyDER: pkcs8(ec)}, false, false, "ecdsa"},
		{"certificate first", fEC, keygenBody{keyDER: pkcs8(ec), certsFirst: true}, false, false, "ecdsa"},
		{"PKCS#1 labelled pkcs8", fRSA, keygenBody{keyDER: pkcs1}, false, false, "rsa"},
		{"SEC 1 labelled pkcs8", fEC, keygenBody{keyDER: sec1, certsFirst: true}, false, false, "ecdsa"},
		{"no Content-Transfer-Encoding", fRSA, keygenBody{keyDER: pkcs8(rsaK), noCTE: true, flat: true}, false, false, "rsa"},
		{"no Content-Type", fEC, keygenBody{keyDER: pkcs8(ec)}, true, false, "ecdsa"},
		{"multipart/related", fEC, keygenBody{keyDER: pkcs8(ec)}, false, true, "ecdsa"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.body.certsDER = p7(t, tc.f.ca.Cert, tc.f.leaf)
			ctype, body := tc.body.build(t)
			if tc.noCType {
				ctype = ""
			}
			if tc.wrongCType {
				ctype = strings.Replace(ctype, "mixed", "related", 1)
			}
			_, c, _ := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
				writeEST(w, ctype, "", body)
			})
			e, err := c.ServerKeyGen(ctx(t), req)
			if err != nil {
				t.Fatal(err)
			}
			if !e.Certificate.Equal(tc.f.leaf) || len(e.Extra) != 1 || !e.Extra[0].Equal(tc.f.ca.Cert) {
				t.Error("wrong certificate picked")
			}
			if !samePublic(e.Key.Public(), tc.f.key.Public()) || !bytes.Equal(e.KeyDER, tc.body.keyDER) {
				t.Error("wrong key")
			}
			if _, isEC := e.Key.(*ecdsa.PrivateKey); isEC != (tc.wantKeyType == "ecdsa") {
				t.Errorf("key type %T", e.Key)
			}
		})
	}
	t.Run("key does not match the certificate", func(t *testing.T) {
		ctype, body := keygenBody{keyDER: pkcs8(ecKey(t)), certsDER: p7(t, fEC.ca.Cert, fEC.leaf)}.build(t)
		_, c, _ := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) { writeEST(w, ctype, "", body) })
		if _, err := c.ServerKeyGen(ctx(t), req); !errors.Is(err, client.ErrMalformedResponse) {
			t.Fatalf("got %v, want a malformed response", err)
		}
	})
	t.Run("encrypted key returned as is", func(t *testing.T) {
		ctype, body := keygenBody{keyDER: []byte{0x30, 0x03, 0x02, 0x01, 0x00}, keyType: est.MediaServerKey, certsDER: p7(t, fEC.ca.Cert, fEC.leaf)}.build(t)
		_, c, _ := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) { writeEST(w, ctype, "", body) })
		e, err := c.ServerKeyGen(ctx(t), req)
		if err != nil {
			t.Fatal(err)
		}
		if !e.KeyEncrypted || e.Key != nil || !e.Certificate.Equal(fEC.leaf) {
			t.Errorf("encrypted key: %+v", e)
		}
	})
}

func TestResponseSizeLimit(t *testing.T) {
	big := bytes.Repeat([]byte("QUFB"), (client.MaxResponseSize/4)+1024)
	for _, tc := range []struct {
		name   string
		stream bool
	}{{"with Content-Length", false}, {"streamed", true}} {
		t.Run(tc.name, func(t *testing.T) {
			_, c, _ := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", est.MediaPKCS7)
				if !tc.stream {
					w.Header().Set("Content-Length", fmt.Sprint(len(big)))
					w.Write(big)
					return
				}
				for b := big; len(b) > 0; b = b[min(len(b), 64<<10):] {
					w.Write(b[:min(len(b), 64<<10)])
					w.(http.Flusher).Flush()
				}
			})
			if _, err := c.CACerts(ctx(t)); !errors.Is(err, client.ErrResponseTooLarge) {
				t.Fatalf("got %v, want ErrResponseTooLarge", err)
			}
		})
	}
	t.Run("error text capped to one line", func(t *testing.T) {
		_, c, _ := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte("  refused:\r\n\tpolicy says no\n"))
			w.Write(bytes.Repeat([]byte("x"), 1<<20))
		})
		_, err := c.Enroll(ctx(t), newFixture(t, nil).csr)
		var e *client.Error
		if !errors.As(err, &e) || e.StatusCode != 403 {
			t.Fatalf("got %v", err)
		}
		if !strings.HasPrefix(e.Message, "refused: policy says no xxx") || len(e.Message) > 512 || !strings.HasSuffix(e.Message, "...") {
			t.Errorf("message %q (%d bytes)", e.Message[:min(len(e.Message), 60)], len(e.Message))
		}
	})
}

func TestRequests(t *testing.T) {
	f := newFixture(t, nil)
	type seen struct {
		method, path, ctype, cte, ua string
		user, pass                   string
		basic                        bool
		body                         []byte
	}
	var got []seen
	srv, c, _ := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
		s := seen{method: r.Method, path: r.URL.Path, ctype: r.Header.Get("Content-Type"), cte: r.Header.Get("Content-Transfer-Encoding"), ua: r.UserAgent()}
		s.user, s.pass, s.basic = r.BasicAuth()
		s.body, _ = io.ReadAll(r.Body)
		got = append(got, s)
		switch {
		case strings.HasSuffix(r.URL.Path, "/cacerts"):
			writeEST(w, est.MediaPKCS7, "base64", est.EncodeBase64(p7(t, f.ca.Cert)))
		case strings.HasSuffix(r.URL.Path, "/csrattrs"):
			w.WriteHeader(http.StatusNotFound)
		default:
			writeEST(w, est.MediaCertsOnly, "base64", est.EncodeBase64(p7(t, f.leaf)))
		}
	})
	c.Server = srv.URL + "/est-proxy/"
	c.Label, c.Username, c.Password, c.UserAgent = "iot", "alice", "s3cret", "test-agent/1"
	if _, err := c.CACerts(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if attrs, err := c.CSRAttrs(ctx(t)); err != nil || attrs != nil {
		t.Fatalf("csrattrs 404: %v %v, want empty and no error (RFC 7030 4.5.2)", attrs, err)
	}
	if _, err := c.Reenroll(ctx(t), f.csr); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d requests", len(got))
	}
	if g := got[0]; g.method != "GET" || g.path != "/est-proxy/.well-known/est/iot/cacerts" || g.basic || g.ua != "test-agent/1" {
		t.Errorf("cacerts request: %+v (no credentials on cacerts)", g)
	}
	if g := got[1]; g.method != "GET" || g.path != "/est-proxy/.well-known/est/iot/csrattrs" || g.user != "alice" || g.pass != "s3cret" {
		t.Errorf("csrattrs request: %+v", g)
	}
	g := got[2]
	if g.method != "POST" || g.path != "/est-proxy/.well-known/est/iot/simplereenroll" || g.ctype != est.MediaPKCS10 || g.cte != "base64" || g.user != "alice" {
		t.Errorf("simplereenroll request: %+v", g)
	}
	if der, err := est.DecodeBase64(g.body); err != nil || !bytes.Equal(der, f.csr) {
		t.Errorf("body is not the base64 of the CSR: %v", err)
	}
}

func TestServerSetting(t *testing.T) {
	for _, tc := range []struct {
		server, label, want string
	}{
		{"", "", "Server is not set"},
		{"http://est.example", "", "https"},
		{"https://user@est.example", "", "invalid server"},
		{"est.example:8443", "cacerts", "invalid label"},
		{"est.example:8443", "a/b", "invalid label"},
	} {
		c := &client.Client{Server: tc.server, Label: tc.label}
		if _, err := c.CACerts(ctx(t)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Server %q Label %q: %v, want an error mentioning %q", tc.server, tc.label, err, tc.want)
		}
	}
}

func TestCSRAttrsEmpty(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   []byte
	}{
		{"204", http.StatusNoContent, nil},
		{"200 empty", http.StatusOK, nil},
		{"200 empty sequence", http.StatusOK, []byte("MAA=")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, c, _ := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", est.MediaCSRAttrs)
				w.WriteHeader(tc.status)
				w.Write(tc.body)
			})
			attrs, err := c.CSRAttrs(ctx(t))
			if err != nil || len(attrs) != 0 {
				t.Fatalf("got %v %v, want empty", attrs, err)
			}
		})
	}
}

func TestTLSFloor(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c := &client.Client{Server: srv.URL, TrustAnchors: pool}
	if _, err := c.CACerts(ctx(t)); err == nil || !strings.Contains(err.Error(), "version") {
		t.Fatalf("TLS 1.1 server: %v, want a protocol version failure", err)
	}
	if _, err := c.Bootstrap(ctx(t)); err == nil {
		t.Fatal("Bootstrap spoke TLS 1.1")
	}
}

func TestBootstrapChecks(t *testing.T) {
	now := time.Now()
	t.Run("server certificate is the root", func(t *testing.T) {
		var srv *httptest.Server
		srv, _, _ = newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
			writeEST(w, est.MediaPKCS7, "base64", est.EncodeBase64(p7(t, srv.Certificate())))
		})
		c := &client.Client{Server: srv.URL, Username: "alice", Password: "secret"}
		res, err := c.Bootstrap(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if !res.Root.Equal(srv.Certificate()) || res.Fingerprint != client.Fingerprint(srv.Certificate()) {
			t.Fatal("wrong root or fingerprint")
		}
	})
	t.Run("server certificate from another CA", func(t *testing.T) {
		other := testpki.NewRoot(t, "Unrelated CA", now)
		_, c, _ := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
			writeEST(w, est.MediaPKCS7, "base64", est.EncodeBase64(p7(t, other.Cert)))
		})
		c.TrustAnchors = nil
		res, err := c.Bootstrap(ctx(t))
		if !errors.Is(err, client.ErrServerMismatch) {
			t.Fatalf("got %v, want ErrServerMismatch", err)
		}
		if res == nil || !res.Root.Equal(other.Cert) || res.Fingerprint != client.Fingerprint(other.Cert) {
			t.Error("the mismatch is reported without what was returned")
		}
	})
	t.Run("chain not consistent", func(t *testing.T) {
		root, stranger := testpki.NewRoot(t, "Root", now), testpki.NewRoot(t, "Stranger", now)
		// An "issuing CA" signed by a root that is not in the response.
		inter, _ := stranger.Issue(t, testpki.Leaf{CN: "Issuing", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)})
		_, c, _ := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
			writeEST(w, est.MediaPKCS7, "base64", est.EncodeBase64(p7(t, inter, root.Cert)))
		})
		if _, err := c.Bootstrap(ctx(t)); !errors.Is(err, client.ErrMalformedResponse) || !strings.Contains(err.Error(), "does not chain") {
			t.Fatalf("got %v, want an inconsistent chain refused", err)
		}
	})
	t.Run("no root", func(t *testing.T) {
		leaf, _ := testpki.NewRoot(t, "Root", now).Issue(t, testpki.Leaf{CN: "x", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)})
		_, c, _ := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
			writeEST(w, est.MediaPKCS7, "base64", est.EncodeBase64(p7(t, leaf)))
		})
		if _, err := c.Bootstrap(ctx(t)); !errors.Is(err, client.ErrMalformedResponse) {
			t.Fatalf("got %v, want no root refused", err)
		}
	})
	t.Run("no credentials sent", func(t *testing.T) {
		var sawAuth, sawCert atomic.Bool
		srv := httptest.NewUnstartedServer(nil)
		srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _, ok := r.BasicAuth()
			sawAuth.Store(ok)
			sawCert.Store(len(r.TLS.PeerCertificates) > 0)
			writeEST(w, est.MediaPKCS7, "base64", est.EncodeBase64(p7(t, srv.Certificate())))
		})
		srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
		srv.StartTLS()
		defer srv.Close()
		dev, devKey := testpki.Manufacturer(t, now).Device(t, "SN-1", now)
		tc := testpki.TLSCertificate(dev, devKey)
		c := &client.Client{Server: srv.URL, Username: "alice", Password: "secret", Certificate: &tc}
		if _, err := c.Bootstrap(ctx(t)); err != nil {
			t.Fatal(err)
		}
		if sawAuth.Load() || sawCert.Load() {
			t.Errorf("credentials sent to an unauthenticated server: basic %v, certificate %v", sawAuth.Load(), sawCert.Load())
		}
		// The same client, in a normal call, presents its certificate.
		pool := x509.NewCertPool()
		pool.AddCert(srv.Certificate())
		c.TrustAnchors = pool
		if _, err := c.CACerts(ctx(t)); err != nil || !sawCert.Load() {
			t.Errorf("normal call: %v, certificate presented %v", err, sawCert.Load())
		}
	})
}
