package server_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/estdtest"
	"github.com/estkit/estkit/internal/testpki"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// limited sends enrollments straight to the handler, so each can come from
// its own address.
type limited struct {
	s   *estdtest.Server
	csr []byte
}

type attempt struct {
	from       string // client address
	user, pass string // Basic credentials; none when user is ""
	peer       *x509.Certificate
	body       []byte // nil: a good CSR
}

func (l limited) send(t *testing.T, a attempt) *httptest.ResponseRecorder {
	t.Helper()
	body := a.body
	if body == nil {
		body = est.EncodeBase64(l.csr)
	}
	r := httptest.NewRequest("POST", "https://est.test"+est.Path("", est.OpSimpleEnroll), bytes.NewReader(body))
	r.RemoteAddr = a.from + ":40000"
	if strings.Contains(a.from, ":") {
		r.RemoteAddr = "[" + a.from + "]:40000"
	}
	r.Header.Set("Content-Type", est.MediaPKCS10)
	if a.user != "" {
		r.SetBasicAuth(a.user, a.pass)
	}
	if a.peer != nil {
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{a.peer}}
	}
	w := httptest.NewRecorder()
	l.s.Daemon.Handler.ServeHTTP(w, r)
	return w
}

func wantStatus(t *testing.T, w *httptest.ResponseRecorder, status int, what string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("%s: %d %q, want %d", what, w.Code, w.Body.String(), status)
	}
}

// TestFailedAuthRateLimit: the defaults let an address fail 10 times, then
// answer 429 with a Retry-After from the bucket, before the password or the
// body is looked at; one more failure is allowed every 6 s. Success and
// requests without credentials cost nothing.
func TestFailedAuthRateLimit(t *testing.T) {
	clk := &fakeClock{t: time.Now()}
	s := estdtest.Start(t, estdtest.Options{Clock: clk.Now})
	l := limited{s: s, csr: testpki.CSR(t, testpki.Key(t, ca.P256), "limited", nil, nil)}

	const ip = "192.0.2.10"
	for range 20 {
		wantStatus(t, l.send(t, attempt{from: ip}), 401, "no credentials")
	}
	wantStatus(t, l.send(t, attempt{from: ip, user: s.User, pass: s.Password}), 200, "good password")
	for range 10 {
		wantStatus(t, l.send(t, attempt{from: ip, user: "mallory", pass: "wrong password"}), 401, "wrong password")
	}
	// The bucket is empty: even the right password, with a body that would
	// be refused, gets 429: neither was looked at.
	w := l.send(t, attempt{from: ip, user: s.User, pass: s.Password, body: []byte("*not base64*")})
	wantStatus(t, w, 429, "right password from a limited address")
	if ra := w.Header().Get("Retry-After"); ra != "6" {
		t.Errorf("Retry-After %q, want 6", ra)
	}
	if body := w.Body.String(); !strings.Contains(body, "too many failed authentications from this address") || strings.Count(body, "\n") != 1 {
		t.Errorf("reason %q", body)
	}
	clk.Add(2 * time.Second)
	if ra := l.send(t, attempt{from: ip}).Header().Get("Retry-After"); ra != "4" {
		t.Errorf("Retry-After after 2 s: %q, want 4", ra)
	}
	// Other addresses, and other users, are not affected.
	wantStatus(t, l.send(t, attempt{from: "192.0.2.11", user: s.User, pass: s.Password}), 200, "another address")

	clk.Add(4 * time.Second) // a token is back
	wantStatus(t, l.send(t, attempt{from: ip, user: s.User, pass: s.Password}), 200, "after Retry-After")
	wantStatus(t, l.send(t, attempt{from: ip, user: s.User, pass: s.Password}), 200, "success costs nothing")
	wantStatus(t, l.send(t, attempt{from: ip, user: s.User, pass: "wrong"}), 401, "the one failure refilled")
	wantStatus(t, l.send(t, attempt{from: ip, user: s.User, pass: s.Password}), 429, "empty again")

	// Certificates that fail authentication count too.
	rogue, _ := testpki.Rogue(t, clk.Now()).Device(t, "ROGUE-1", clk.Now())
	const certIP = "192.0.2.20"
	for range 10 {
		wantStatus(t, l.send(t, attempt{from: certIP, peer: rogue}), 403, "rogue certificate")
	}
	wantStatus(t, l.send(t, attempt{from: certIP, peer: rogue}), 429, "rogue certificate over the limit")

	// IPv6 addresses share a bucket per /64.
	for i := range 10 {
		wantStatus(t, l.send(t, attempt{from: fmt.Sprintf("2001:db8:1:2::%x", i+1), user: "nobody", pass: "x"}), 401, "IPv6")
	}
	wantStatus(t, l.send(t, attempt{from: "2001:db8:1:2:ffff::1", user: s.User, pass: s.Password}), 429, "same /64")
	wantStatus(t, l.send(t, attempt{from: "2001:db8:1:3::1", user: s.User, pass: s.Password}), 200, "another /64")
}

// TestFailedAuthRateLimitPerUser: failures for one user name from many
// addresses empty that user's bucket: the name is refused from anywhere,
// other names are not.
func TestFailedAuthRateLimitPerUser(t *testing.T) {
	clk := &fakeClock{t: time.Now()}
	s := estdtest.Start(t, estdtest.Options{Clock: clk.Now})
	l := limited{s: s, csr: testpki.CSR(t, testpki.Key(t, ca.P256), "limited-user", nil, nil)}
	for i := range 10 {
		wantStatus(t, l.send(t, attempt{from: fmt.Sprintf("198.51.100.%d", i+1), user: s.User, pass: "guess"}), 401, "guess")
	}
	w := l.send(t, attempt{from: "203.0.113.1", user: s.User, pass: s.Password})
	wantStatus(t, w, 429, "the guessed user from a fresh address")
	if !strings.Contains(w.Body.String(), "for this user name") || w.Header().Get("Retry-After") != "6" {
		t.Errorf("429 %q, Retry-After %q", w.Body.String(), w.Header().Get("Retry-After"))
	}
	wantStatus(t, l.send(t, attempt{from: "203.0.113.1", user: "someone-else", pass: "x"}), 401, "another user name")
	clk.Add(6 * time.Second)
	wantStatus(t, l.send(t, attempt{from: "203.0.113.1", user: s.User, pass: s.Password}), 200, "after Retry-After")

	// The 429s are in the request metrics.
	m := scrape(t, s)
	if !strings.Contains(m, `estd_requests_total{label="",operation="simpleenroll",status="429"} 1`) {
		t.Errorf("429 not counted:\n%s", m)
	}
}

// scrape returns s's metrics in the text format.
func scrape(t *testing.T, s *estdtest.Server) string {
	t.Helper()
	w := httptest.NewRecorder()
	promhttp.HandlerFor(s.Daemon.Registry, promhttp.HandlerOpts{}).ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	return w.Body.String()
}
