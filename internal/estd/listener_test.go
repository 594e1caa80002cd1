package estd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/syncbuf"
	"github.com/estkit/estkit/internal/testpki"
)

// testDaemon is an estd serving on loopback with limits lim and a
// manufacturer CA among its anchors.
type testDaemon struct {
	*Daemon
	addr string
	mfr  *testpki.CA
	logs *syncbuf.Buffer
}

func startDaemon(t *testing.T, lim Limits) *testDaemon {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	// An empty users file: no bootstrap user, no bcrypt at start.
	if err := auth.NewUsers().Save(filepath.Join(data, UsersFile)); err != nil {
		t.Fatal(err)
	}
	mfr := testpki.Manufacturer(t, time.Now())
	mfrFile := filepath.Join(dir, "manufacturer.pem")
	testpki.WriteCerts(t, mfrFile, mfr.Cert)
	logs := &syncbuf.Buffer{}
	d, err := Open(context.Background(), Options{DataDir: data, ManufacturerCA: mfrFile, Limits: lim, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() }) // after serveOn's cleanup has stopped serving
	return &testDaemon{Daemon: d, addr: serveOn(t, "Serve", d.Serve), mfr: mfr, logs: logs}
}

// serveOn runs serve on a loopback listener until the test ends and
// returns the listener's address.
func serveOn(t *testing.T, name string, serve func(context.Context, net.Listener) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	})
	return ln.Addr().String()
}

func (d *testDaemon) roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(d.Root)
	return p
}

// metric returns the value of the sample line that starts with series
// (name and labels as the text exposition writes them), 0 if none.
func (d *testDaemon) metric(t *testing.T, series string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return 0
}

// eventually polls cond until it holds, failing the test after 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// TestListenerServesHTTP2AndClientCerts: handshakes done by the listener
// still give net/http an HTTP/2 connection (ALPN) and the handler the
// client's certificate, over HTTP/2 and HTTP/1.1.
func TestListenerServesHTTP2AndClientCerts(t *testing.T) {
	d := startDaemon(t, Limits{})
	device, key := d.mfr.Device(t, "SN-LISTENER", time.Now())
	for _, h2 := range []bool{true, false} {
		t.Run(fmt.Sprintf("h2=%v", h2), func(t *testing.T) {
			tr := &http.Transport{
				TLSClientConfig:   &tls.Config{RootCAs: d.roots(), Certificates: []tls.Certificate{testpki.TLSCertificate(device, key)}},
				ForceAttemptHTTP2: h2,
			}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			csr := testpki.CSR(t, testpki.Key(t, ca.P256), "listener", nil, nil)
			req, _ := http.NewRequest("POST", "https://"+d.addr+est.Path("", est.OpSimpleEnroll), bytes.NewReader(est.EncodeBase64(csr)))
			req.Header.Set("Content-Type", est.MediaPKCS10)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := "HTTP/1.1"
			if h2 {
				want = "HTTP/2.0"
			}
			if resp.Proto != want {
				t.Errorf("protocol %s, want %s", resp.Proto, want)
			}
			if resp.StatusCode != 200 {
				t.Fatalf("enrollment with a manufacturer certificate: %d %s", resp.StatusCode, body)
			}
		})
	}
}

// TestConnectionCap: with room for two connections, a third is accepted
// and closed at once, counted; once one closes, a new one is served.
func TestConnectionCap(t *testing.T) {
	d := startDaemon(t, Limits{MaxConnections: 2})
	held := fillUp(t, d, 2, "max_connections")

	held[0].Close()
	eventually(t, "a free connection slot", func() bool { return d.metric(t, "estd_connections_open") == 1 })
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: d.roots()}}}
	resp, err := c.Get("https://" + d.addr + est.Path("", est.OpCACerts))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("cacerts after a slot freed: %d", resp.StatusCode)
	}
}

// TestSlowHandshake: a client that connects and never sends a ClientHello
// holds the only handshake slot until the handshake timeout, no longer;
// then it is cut off, counted as a timeout, and the next client is served.
func TestSlowHandshake(t *testing.T) {
	const timeout = time.Second // a real handshake under -race on a busy machine fits
	d := startDaemon(t, Limits{MaxHandshakes: 1, HandshakeTimeout: timeout})
	slow, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	start := time.Now()
	eventually(t, "the slow handshake to take the slot", func() bool { return d.metric(t, "estd_tls_handshakes_in_progress") == 1 })

	// Meanwhile another client waits for the slot (or, if its wait ran out
	// first, is closed and tries again) and is served once the slot frees.
	served := make(chan error, 1)
	go func() {
		for {
			c, err := tls.Dial("tcp", d.addr, &tls.Config{RootCAs: d.roots()})
			if err == nil {
				c.Close()
				served <- nil
				return
			}
			if time.Since(start) > 10*time.Second {
				served <- err
				return
			}
		}
	}()

	slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := slow.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("slow client: read %v, want it closed by the server", err)
	}
	if held := time.Since(start); held > 5*timeout {
		t.Errorf("slow client held the slot for %v, timeout %v", held, timeout)
	}
	if err := <-served; err != nil {
		t.Fatalf("next client: %v", err)
	}
	if n := d.metric(t, `estd_tls_handshake_failures_total{reason="timeout"}`); n < 1 {
		t.Errorf("timeouts counted %v, want the slow client's", n)
	}
	// The client is done before the server has read its Finished.
	eventually(t, "no handshake in progress", func() bool { return d.metric(t, "estd_tls_handshakes_in_progress") == 0 })
}

// TestHandshakeFailureReasons: each kind of failed handshake is counted
// under its own reason.
func TestHandshakeFailureReasons(t *testing.T) {
	d := startDaemon(t, Limits{})
	cases := []struct {
		reason string
		do     func(t *testing.T)
	}{
		{"protocol_version", func(t *testing.T) {
			tlsFails(t, d.addr, &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11, InsecureSkipVerify: true})
		}},
		{"no_cipher_suite", func(t *testing.T) {
			tlsFails(t, d.addr, &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}, InsecureSkipVerify: true})
		}},
		{"certificate", func(t *testing.T) {
			tlsFails(t, d.addr, &tls.Config{}) // the system roots do not know estd's CA
		}},
		{"not_tls", func(t *testing.T) {
			c, err := net.Dial("tcp", d.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			b, _ := io.ReadAll(c)
			if !strings.Contains(string(b), "HTTP request to an HTTPS server") {
				t.Errorf("plain HTTP got %q", b)
			}
		}},
		{"closed", func(t *testing.T) {
			c, err := net.Dial("tcp", d.addr)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, "\x16\x03\x01") // the start of a record, then nothing
			c.Close()
		}},
	}
	for _, c := range cases {
		t.Run(c.reason, func(t *testing.T) {
			series := fmt.Sprintf(`estd_tls_handshake_failures_total{reason=%q}`, c.reason)
			before := d.metric(t, series)
			c.do(t)
			eventually(t, series, func() bool { return d.metric(t, series) == before+1 })
		})
	}
	if n := d.metric(t, `estd_tls_handshake_failures_total{reason="other"}`); n != 0 {
		t.Errorf("%v failures counted as other", n)
	}
	// An operator looking for why a device cannot connect finds it in
	// the log (sampled: the first ten, then one a second).
	if logs := d.logs.String(); !strings.Contains(logs, "TLS handshake failed") || !strings.Contains(logs, "reason=protocol_version") || !strings.Contains(logs, "not_logged_before=0") {
		t.Errorf("handshake failures not logged:\n%s", logs)
	}
}

func tlsFails(t *testing.T, addr string, cfg *tls.Config) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	if err == nil {
		c.Close()
		t.Fatal("handshake succeeded")
	}
}

func TestHandshakeReason(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{context.DeadlineExceeded, "timeout"},
		{io.EOF, "closed"},
		{&net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, "timeout"},
		{tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, "not_tls"},
		{errors.New("tls: client offered only unsupported versions: [302 301]"), "protocol_version"},
		{errors.New("tls: unsupported SSLv2 handshake received"), "protocol_version"},
		{errors.New("tls: no cipher suite supported by both client and server; client offered: [c009]"), "no_cipher_suite"},
		{errors.New("tls: no key exchanges supported by both client and server"), "no_shared_group"},
		{errors.New("tls: failed to parse client certificate: x509: malformed"), "certificate"},
		{errors.New("tls: something new"), "other"},
	} {
		if got := handshakeReason(c.err); got != c.want {
			t.Errorf("handshakeReason(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// fillUp opens n connections to d, which has room for n, and checks that
// one more is accepted and closed at once, counted under reason. The n
// stay open until the test ends.
func fillUp(t *testing.T, d *testDaemon, n int, reason string) []net.Conn {
	t.Helper()
	var held []net.Conn
	for range n {
		c, err := net.Dial("tcp", d.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		held = append(held, c)
	}
	eventually(t, fmt.Sprintf("%d open connections", n), func() bool { return d.metric(t, "estd_connections_open") == float64(n) })
	extra, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection %d: read %v, want it closed by the server", n+1, err)
	}
	if got := d.metric(t, `estd_connections_refused_total{reason="`+reason+`"}`); got != 1 {
		t.Errorf("refused connections counted %v, want 1", got)
	}
	return held
}

// TestConnectionCapPerIP: with room for two connections per client
// address, a third from the same address is accepted and closed at once,
// counted, while another address is served; once one closes, the first
// address is served again.
func TestConnectionCapPerIP(t *testing.T) {
	d := startDaemon(t, Limits{MaxConnectionsPerIP: 2})
	held := fillUp(t, d, 2, "max_connections_per_ip")
	eventually(t, "the refusal logged", func() bool { return strings.Contains(d.logs.String(), "max_connections_per_ip") })

	get := func(local string) (int, error) {
		dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dialer.DialContext, TLSClientConfig: &tls.Config{RootCAs: d.roots()}}}
		defer c.CloseIdleConnections()
		resp, err := c.Get("https://" + d.addr + est.Path("", est.OpCACerts))
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if host, _, _ := net.SplitHostPort(d.addr); host == "127.0.0.1" {
		if st, err := get("127.0.0.2"); err != nil || st != 200 {
			t.Errorf("cacerts from another address: %d, %v", st, err)
		}
	}
	held[0].Close()
	eventually(t, "a free slot for the address", func() bool { return d.metric(t, "estd_connections_open") == 1 })
	if st, err := get(""); err != nil || st != 200 {
		t.Fatalf("cacerts after a slot freed: %d, %v", st, err)
	}
}

func TestAddrCounts(t *testing.T) {
	a := &addrCounts{max: 2, n: map[netip.Prefix]int{}}
	take := func(s string) bool {
		_, ok := a.take(net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)))
		return ok
	}
	// One IPv6 /64 is one client; an IPv4-mapped address is its IPv4 one.
	if !take("[2001:db8:1:2::1]:1") || !take("[2001:db8:1:2:ffff::9]:2") || take("[2001:db8:1:2::77]:3") {
		t.Error("addresses of one /64 not counted together")
	}
	if !take("[2001:db8:1:3::1]:1") {
		t.Error("another /64 refused")
	}
	if !take("192.0.2.1:1") || !take("[::ffff:192.0.2.1]:2") || take("192.0.2.1:3") {
		t.Error("an IPv4-mapped address not counted as its IPv4 address")
	}
	key, _ := netip.MustParseAddr("192.0.2.1").Prefix(32)
	a.give(key)
	if !take("192.0.2.1:4") {
		t.Error("a closed connection's slot was not given back")
	}
	a.give(key)
	a.give(key)
	if len(a.n) != 2 { // the two /64s; the IPv4 address has none open
		t.Errorf("counts left: %v", a.n)
	}
	var uncapped *addrCounts
	if _, ok := uncapped.take(&net.TCPAddr{IP: net.IPv4(192, 0, 2, 9)}); !ok {
		t.Error("a nil addrCounts refused")
	}
}
