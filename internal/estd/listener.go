package estd

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/estkit/estkit/internal/logsample"
	"github.com/estkit/estkit/server"
)

// Defaults of Limits.
const (
	DefaultMaxConnections      = 4096
	DefaultMaxHandshakes       = 256
	DefaultMaxConnectionsPerIP = 1024
)

// Limits bound what the EST listener takes on. Zero fields take the defaults.
type Limits struct {
	// MaxConnections caps open connections; one more is accepted and closed
	// at once.
	MaxConnections int
	// MaxConnectionsPerIP caps the open connections of one client address
	// (an IPv6 address by its /64), so that one client cannot take every
	// connection; one more is accepted and closed at once. Negative
	// switches it off: behind a TCP proxy that hides client addresses
	// every client has the proxy's.
	MaxConnectionsPerIP int
	// MaxHandshakes caps TLS handshakes in progress. A connection waits for
	// a slot as long as a handshake may take, then is closed.
	MaxHandshakes int
	// HandshakeTimeout bounds a TLS handshake once it has a slot; 0 means
	// what net/http would use: the least of the read-header, read and
	// write timeouts.
	HandshakeTimeout time.Duration
	// Auth limits failed authentication.
	Auth server.AuthLimits
}

// tlsListener accepts TCP connections within the connection cap, does the
// TLS handshake itself, within the handshake cap and timeout, and returns
// only connections whose handshake succeeded: net/http then serves them as
// it would its own (*tls.Conn: r.TLS, ALPN to HTTP/2), and a slow or
// failed handshake never reaches it.
type tlsListener struct {
	inner      net.Listener
	config     *tls.Config
	timeout    time.Duration
	conns      chan struct{} // a token per open connection
	perIP      *addrCounts   // open connections by client address; nil when uncapped
	handshakes chan struct{} // a token per handshake in progress
	metrics    *server.Metrics
	lm         *listenerMetrics
	log        *slog.Logger
	// failures samples the log lines of failed handshakes: anyone can
	// fail one, so the first ten are logged, then one a second, with
	// the number left out; the metric counts them all.
	failures *logsample.Sampler
	// capped samples the log lines of connections refused by the
	// per-address cap.
	capped *logsample.Sampler

	ctx    context.Context // cancelled by Close: ends handshakes and waits
	cancel context.CancelFunc
	start  sync.Once
	ready  chan net.Conn // handshaken *tls.Conn
	done   chan struct{} // closed when the accept loop ends; err says why
	err    error
	wg     sync.WaitGroup // the accept loop and every handshake
}

// newTLSListener wraps ln for srv, whose TLSConfig it uses.
func newTLSListener(ln net.Listener, srv *http.Server, lim Limits, m *server.Metrics, lm *listenerMetrics, log *slog.Logger) *tlsListener {
	maxConns, maxHS, timeout := lim.MaxConnections, lim.MaxHandshakes, lim.HandshakeTimeout
	if maxConns <= 0 {
		maxConns = DefaultMaxConnections
	}
	if maxHS <= 0 {
		maxHS = DefaultMaxHandshakes
	}
	if timeout <= 0 {
		for _, t := range []time.Duration{srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout} {
			if t > 0 && (timeout == 0 || t < timeout) {
				timeout = t
			}
		}
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	var perIP *addrCounts
	switch {
	case lim.MaxConnectionsPerIP == 0:
		perIP = &addrCounts{max: DefaultMaxConnectionsPerIP, n: map[netip.Prefix]int{}}
	case lim.MaxConnectionsPerIP > 0:
		perIP = &addrCounts{max: lim.MaxConnectionsPerIP, n: map[netip.Prefix]int{}}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &tlsListener{
		inner:      ln,
		config:     srv.TLSConfig,
		timeout:    timeout,
		conns:      make(chan struct{}, maxConns),
		perIP:      perIP,
		handshakes: make(chan struct{}, maxHS),
		metrics:    m,
		lm:         lm,
		log:        log,
		failures:   logsample.New(10, time.Second),
		capped:     logsample.New(1, 10*time.Second),
		ctx:        ctx,
		cancel:     cancel,
		ready:      make(chan net.Conn),
		done:       make(chan struct{}),
	}
}

// Accept returns the next connection whose TLS handshake succeeded. The
// accept loop starts on the first call, once http.Server.Serve has set up
// HTTP/2, so the TLS configuration is final before any handshake.
func (l *tlsListener) Accept() (net.Conn, error) {
	l.start.Do(func() {
		l.wg.Add(1)
		go l.acceptLoop()
	})
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		return nil, l.err
	}
}

// Close stops accepting, ends the handshakes in progress and waits for them.
func (l *tlsListener) Close() error {
	l.cancel()
	err := l.inner.Close()
	l.start.Do(func() { l.err = net.ErrClosed; close(l.done) }) // never started
	l.wg.Wait()
	return err
}

// Addr returns the listener's address.
func (l *tlsListener) Addr() net.Addr { return l.inner.Addr() }

func (l *tlsListener) acceptLoop() {
	defer l.wg.Done()
	var delay time.Duration
	for {
		c, err := l.inner.Accept()
		if err != nil {
			var ne interface{ Temporary() bool }
			if l.ctx.Err() == nil && errors.As(err, &ne) && ne.Temporary() {
				// Out of file descriptors and the like: back off as net/http does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				l.log.Warn("accept failed; retrying", "err", err.Error(), "in", delay)
				select {
				case <-time.After(delay):
					continue
				case <-l.ctx.Done():
				}
			}
			if l.ctx.Err() != nil {
				err = net.ErrClosed
			}
			l.err = err
			close(l.done)
			return
		}
		delay = 0
		select {
		case l.conns <- struct{}{}:
		default:
			l.lm.refuse("max_connections")
			c.Close()
			continue
		}
		addr, ok := l.perIP.take(c.RemoteAddr())
		if !ok {
			<-l.conns
			l.lm.refuse("max_connections_per_ip")
			l.capped.Do(func(skipped int64) {
				// Off the accept loop: a log that blocks must not stop
				// accepting (at most one such line every 10 s).
				go l.log.Warn("connection refused: this client address has too many open connections (limits.max_connections_per_ip)",
					"remote", c.RemoteAddr().String(), "open", l.perIP.max, "not_logged_before", skipped)
			})
			c.Close()
			continue
		}
		l.lm.open.Inc()
		l.wg.Add(1)
		go l.handshake(&slotConn{Conn: c, release: func() { l.perIP.give(addr); <-l.conns; l.lm.open.Dec() }})
	}
}

// handshake runs c's TLS handshake in a slot and hands the connection to
// Accept, or closes it.
func (l *tlsListener) handshake(c net.Conn) {
	defer l.wg.Done()
	wait := time.NewTimer(l.timeout)
	select {
	case l.handshakes <- struct{}{}:
		wait.Stop()
	case <-wait.C:
		l.lm.refuse("max_handshakes")
		c.Close()
		return
	case <-l.ctx.Done():
		wait.Stop()
		c.Close()
		return
	}
	l.lm.handshaking.Inc()
	tc := tls.Server(c, l.config)
	ctx, cancel := context.WithTimeout(l.ctx, l.timeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	// The slot goes back before anything is logged: a log that blocks
	// must not hold it.
	l.lm.handshaking.Dec()
	<-l.handshakes
	if err != nil && l.ctx.Err() == nil { // a shutdown is not the client's failure
		reason := handshakeReason(err)
		l.metrics.HandshakeFailure(reason)
		l.failures.Do(func(skipped int64) {
			l.log.Info("TLS handshake failed", "remote", c.RemoteAddr().String(), "reason", reason, "detail", err.Error(), "not_logged_before", skipped)
		})
	}
	if err != nil {
		var rh tls.RecordHeaderError
		if errors.As(err, &rh) && rh.Conn != nil && looksLikeHTTP(rh.RecordHeader) {
			// As net/http does: tell a plain-HTTP client what went wrong.
			rh.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			io.WriteString(rh.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		c.Close()
		return
	}
	select {
	case l.ready <- tc:
	case <-l.ctx.Done():
		tc.Close()
	}
}

func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// handshakeReason sorts a failed handshake into a few stable metric labels.
func handshakeReason(err error) string {
	var rh tls.RecordHeaderError
	var op *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.As(err, &rh):
		return "not_tls"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "closed"
	case errors.As(err, &op) && op.Op == "remote error":
		// The client sent an alert: most often it refused our certificate.
		if strings.Contains(op.Err.Error(), "certificate") || strings.Contains(op.Err.Error(), "unknown ca") {
			return "certificate"
		}
		return "client_alert"
	}
	// crypto/tls reports policy refusals as text only.
	msg := err.Error()
	switch {
	case strings.Contains(msg, "version"), strings.Contains(msg, "SSLv2"), strings.Contains(msg, "protocol fallback"):
		return "protocol_version"
	case strings.Contains(msg, "no cipher suite"):
		return "no_cipher_suite"
	case strings.Contains(msg, "no key exchanges"), strings.Contains(msg, "key share"), strings.Contains(msg, "point formats"):
		return "no_shared_group"
	case strings.Contains(msg, "certificate"):
		return "certificate"
	}
	return "other"
}

// addrCounts counts open connections by client address, an IPv6 address by
// its /64 (one host can have all of its /64).
type addrCounts struct {
	max int
	mu  sync.Mutex
	n   map[netip.Prefix]int
}

// take counts one more connection from remote and reports whether it is
// within the cap. A nil addrCounts caps nothing; so does an address that
// is not IP (a Unix socket).
func (a *addrCounts) take(remote net.Addr) (netip.Prefix, bool) {
	if a == nil {
		return netip.Prefix{}, true
	}
	ap, err := netip.ParseAddrPort(remote.String())
	if err != nil {
		return netip.Prefix{}, true
	}
	ip, bits := ap.Addr().Unmap(), 32
	if ip.Is6() {
		bits = 64
	}
	key, _ := ip.Prefix(bits)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n[key] >= a.max {
		return netip.Prefix{}, false
	}
	a.n[key]++
	return key, true
}

// give counts a connection take let through as closed.
func (a *addrCounts) give(key netip.Prefix) {
	if a == nil || !key.IsValid() {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n[key] <= 1 {
		delete(a.n, key)
	} else {
		a.n[key]--
	}
}

// slotConn gives back its connection slot when closed, once.
type slotConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// listenerMetrics are the EST listener's own metrics.
type listenerMetrics struct {
	refused     *prometheus.CounterVec
	open        prometheus.Gauge
	handshaking prometheus.Gauge
}

// newListenerMetrics registers the metrics of the EST listener with reg,
// or finds them there when an earlier Serve did.
func newListenerMetrics(reg prometheus.Registerer) *listenerMetrics {
	return listenerMetricsNamed(reg, "estd_", "the EST listener")
}

// newAdminListenerMetrics does the same for the admin dashboard's listener.
func newAdminListenerMetrics(reg prometheus.Registerer) *listenerMetrics {
	return listenerMetricsNamed(reg, "estd_admin_", "the admin dashboard's listener")
}

func listenerMetricsNamed(reg prometheus.Registerer, prefix, listener string) *listenerMetrics {
	return &listenerMetrics{
		refused: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: prefix + "connections_refused_total",
			Help: "Connections to " + listener + " closed unserved because a cap was reached, by cap (max_connections, max_connections_per_ip, max_handshakes).",
		}, []string{"reason"})),
		open: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: prefix + "connections_open", Help: "Open connections to " + listener + ".",
		})),
		handshaking: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: prefix + "tls_handshakes_in_progress", Help: "TLS handshakes in progress on " + listener + ".",
		})),
	}
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // two metrics of one name: a programming error
	}
	return c
}

func (m *listenerMetrics) refuse(reason string) { m.refused.WithLabelValues(reason).Inc() }
