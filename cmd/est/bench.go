package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/client"
	"github.com/estkit/estkit/internal/cputime"
)

// Connection modes of est bench.
const (
	connKeepAlive = "keepalive" // one connection per client, reused
	connNew       = "new"       // a new connection and a full TLS handshake per request
	connResume    = "resume"    // a new connection per request, resuming the TLS session
)

// benchConfig is what est bench was asked to do.
type benchConfig struct {
	op          est.Operation
	concurrency int
	count       int           // total requests; 0 means until duration
	duration    time.Duration // used when count is 0
	conn        string
	keyType     ca.KeyType
	pool        int    // distinct keys and CSRs; 0 means the default
	cnPrefix    string // CSR subject CN prefix
	dnsSuffix   string // when set, each CSR also names CN.dnsSuffix
	progress    bool   // live progress on stderr
	interval    time.Duration
}

// benchRequest is one prepared request: a body and the TLS client
// certificate to present, if any.
type benchRequest struct {
	body []byte
	cert *tls.Certificate
}

// benchResult is what est bench measured; -json writes it as is.
type benchResult struct {
	Server      string `json:"server"`
	Operation   string `json:"operation"`
	Label       string `json:"label,omitempty"`
	Concurrency int    `json:"concurrency"`
	Conn        string `json:"conn"`
	KeyType     string `json:"key_type,omitempty"`
	// Requests is every request answered or failed; OK the 2xx among them.
	Requests int `json:"requests"`
	OK       int `json:"ok"`
	// Errors counts failures by HTTP status, "transport" for requests that
	// got no answer and "malformed" for 2xx answers that did not parse.
	Errors            map[string]int `json:"errors"`
	FirstError        string         `json:"first_error,omitempty"`
	Seconds           float64        `json:"seconds"`
	RequestsPerSecond float64        `json:"requests_per_second"`
	// Latency of successful requests, in milliseconds.
	Latency latencyStats `json:"latency_ms"`
	// ClientCPUSeconds is the CPU est bench itself used while measuring.
	ClientCPUSeconds float64 `json:"client_cpu_seconds"`
	// TLSResumed counts requests whose connection resumed a TLS session.
	TLSResumed int `json:"tls_resumed"`
}

type latencyStats struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

func cmdBench(ctx context.Context, e *env, args []string) error {
	var cn conn
	fs := lookup("bench").flagSet(e)
	cn.register(fs)
	op := fs.String("op", "enroll", "`operation`: cacerts, csrattrs, enroll, reenroll, serverkeygen")
	concurrency := fs.Int("c", 1, "`number` of concurrent clients")
	count := fs.Int("n", 0, "send this `number` of requests in all (default: for -d)")
	duration := fs.Duration("d", 0, "send requests for this `duration` (default 10s unless -n)")
	connMode := fs.String("conn", connKeepAlive, "connections: keepalive (one per client), new (full TLS handshake per request), resume (new connection, resumed TLS session)")
	keyType := fs.String("key-type", "", "`type` of the CSRs' keys: p256 (default), p384, rsa2048, ...; also -key TYPE without -cert")
	pool := fs.Int("pool", 0, "distinct keys and CSRs to make before measuring (default: up to 256 EC, up to 64 RSA; reenroll: one certificate per client)")
	cnPrefix := fs.String("cn", "est-bench", "subject CN `prefix` of the CSRs")
	dnsSuffix := fs.String("dns", "", "also name CN.`SUFFIX` as a DNS subjectAltName (tls-server needs one)")
	jsonOut := fs.Bool("json", false, "write the result as JSON to standard output")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg := benchConfig{
		concurrency: *concurrency, count: *count, duration: *duration, conn: *connMode,
		pool: *pool, cnPrefix: *cnPrefix, dnsSuffix: *dnsSuffix, interval: time.Second,
		progress: isTerminal(e.stderr),
	}
	// -key names the key of -cert; without -cert, a key type name there is
	// the CSRs' key type (est bench -key rsa2048).
	if cn.key != "" && cn.cert == "" {
		if _, err := os.Stat(cn.key); err != nil {
			if _, kerr := ca.ParseKeyType(cn.key); kerr == nil {
				if *keyType != "" {
					return usageErrorf("-key %s and -key-type %s: give the key type once", cn.key, *keyType)
				}
				*keyType, cn.key = cn.key, ""
			}
		}
	}
	var err error
	if cfg, err = checkBench(cfg, *op, *keyType); err != nil {
		return err
	}
	target, err := benchURL(cn.server, cn.label, cfg.op)
	if err != nil {
		return err
	}
	ctx, cancel := cn.context(ctx)
	defer cancel()
	c, err := cn.client(ctx, e)
	if err != nil {
		return err
	}
	reqs, err := prepareBench(ctx, e, c, cfg)
	if err != nil {
		return err
	}
	res, err := runBench(ctx, e, c, target, cfg, reqs)
	if err != nil {
		return err
	}
	res.Server, res.Label = cn.server, cn.label
	if *jsonOut {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		writeBenchReport(e.stdout, res)
	}
	if failed := res.Requests - res.OK; failed > 0 {
		return fmt.Errorf("%d of %d requests failed (first: %s)", failed, res.Requests, res.FirstError)
	}
	return nil
}

// checkBench validates the flags and fills in defaults.
func checkBench(cfg benchConfig, op, keyType string) (benchConfig, error) {
	switch strings.ToLower(op) {
	case "cacerts":
		cfg.op = est.OpCACerts
	case "csrattrs":
		cfg.op = est.OpCSRAttrs
	case "enroll", "simpleenroll":
		cfg.op = est.OpSimpleEnroll
	case "reenroll", "simplereenroll":
		cfg.op = est.OpSimpleReenroll
	case "serverkeygen":
		cfg.op = est.OpServerKeyGen
	default:
		return cfg, usageErrorf("-op: want cacerts, csrattrs, enroll, reenroll or serverkeygen, got %q", op)
	}
	if cfg.concurrency < 1 {
		return cfg, usageErrorf("-c must be at least 1")
	}
	if cfg.count < 0 || cfg.duration < 0 || cfg.pool < 0 {
		return cfg, usageErrorf("-n, -d and -pool cannot be negative")
	}
	if cfg.count > 0 && cfg.duration > 0 {
		return cfg, usageErrorf("give -n or -d, not both")
	}
	if cfg.count == 0 && cfg.duration == 0 {
		cfg.duration = 10 * time.Second
	}
	switch cfg.conn {
	case "":
		cfg.conn = connKeepAlive
	case connKeepAlive, connNew, connResume:
	default:
		return cfg, usageErrorf("-conn: want keepalive, new or resume, got %q", cfg.conn)
	}
	if keyType == "" {
		keyType = string(ca.P256)
	}
	kt, err := ca.ParseKeyType(keyType)
	if err != nil {
		return cfg, usageErrorf("-key-type: %v", err)
	}
	cfg.keyType = kt
	if cfg.pool == 0 {
		cfg.pool = 256
		if strings.HasPrefix(string(kt), "rsa") {
			cfg.pool = 64
		}
		if cfg.count > 0 {
			cfg.pool = min(cfg.pool, cfg.count)
		}
	}
	if cfg.op == est.OpSimpleReenroll {
		// Every client renews its own certificate, presented in its handshake.
		cfg.pool = cfg.concurrency
	}
	return cfg, nil
}

// benchURL is the URL of op on server under label.
func benchURL(server, label string, op est.Operation) (string, error) {
	if label != "" && !est.ValidLabel(label) {
		return "", usageErrorf("-label: invalid label %q", label)
	}
	s := strings.TrimRight(strings.TrimSpace(server), "/")
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	return s + est.Path(label, op), nil
}

// prepareBench makes what the requests need before anything is measured:
// keys and CSRs and, for reenroll, one enrolled certificate per client.
func prepareBench(ctx context.Context, e *env, c *client.Client, cfg benchConfig) ([]benchRequest, error) {
	switch cfg.op {
	case est.OpCACerts, est.OpCSRAttrs:
		return []benchRequest{{}}, nil
	}
	fmt.Fprintf(e.stderr, "est bench: making %d %s keys and CSRs\n", cfg.pool, cfg.keyType)
	keys := make([]crypto.Signer, cfg.pool)
	csrs := make([][]byte, cfg.pool)
	var (
		wg      sync.WaitGroup
		next    atomic.Int64
		errOnce sync.Once
		genErr  error
	)
	for range min(cfg.pool, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= cfg.pool || ctx.Err() != nil {
					return
				}
				key, csr, err := benchCSR(cfg, i)
				if err != nil {
					errOnce.Do(func() { genErr = err })
					return
				}
				keys[i], csrs[i] = key, csr
			}
		})
	}
	wg.Wait()
	if genErr != nil {
		return nil, genErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	reqs := make([]benchRequest, cfg.pool)
	if cfg.op != est.OpSimpleReenroll {
		for i := range reqs {
			reqs[i].body = est.EncodeBase64(csrs[i])
		}
		return reqs, nil
	}
	fmt.Fprintf(e.stderr, "est bench: enrolling %d certificates to renew\n", cfg.pool)
	for i := range reqs {
		en, err := c.Enroll(ctx, csrs[i])
		if err != nil {
			return nil, fmt.Errorf("enrolling the certificates to renew: %w", err)
		}
		renewal, err := client.RenewalCSR(en.Certificate, keys[i])
		if err != nil {
			return nil, err
		}
		reqs[i] = benchRequest{body: est.EncodeBase64(renewal), cert: en.TLSCertificate(keys[i])}
	}
	return reqs, nil
}

// benchCSR makes the i-th key and a CSR for it.
func benchCSR(cfg benchConfig, i int) (crypto.Signer, []byte, error) {
	key, err := ca.GenerateKey(cfg.keyType)
	if err != nil {
		return nil, nil, err
	}
	cn := fmt.Sprintf("%s-%05d", cfg.cnPrefix, i)
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}
	if cfg.dnsSuffix != "" {
		tmpl.DNSNames = []string{cn + "." + strings.TrimPrefix(cfg.dnsSuffix, ".")}
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	return key, csr, err
}

// benchClient is one simulated client: its own connection (or its own
// series of connections) to the server.
type benchClient struct {
	hc       *http.Client
	req      benchRequest // fixed for reenroll, else taken round robin
	latency  []time.Duration
	errors   map[string]int
	firstErr string
	resumed  int
	verified bool
}

func newBenchClient(c *client.Client, cfg benchConfig, cert *tls.Certificate) *benchClient {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: c.TrustAnchors}
	if cert != nil {
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	if cfg.conn == connResume {
		tc.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	}
	tr := &http.Transport{
		TLSClientConfig:     tc,
		DisableKeepAlives:   cfg.conn != connKeepAlive,
		DisableCompression:  true,
		MaxIdleConnsPerHost: 1,
		// HTTP/1.1: one connection per client, as devices talk EST.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	return &benchClient{hc: &http.Client{Transport: tr, Timeout: client.DefaultTimeout}, errors: map[string]int{}}
}

// runBench sends the requests and measures them.
func runBench(ctx context.Context, e *env, c *client.Client, target string, cfg benchConfig, reqs []benchRequest) (*benchResult, error) {
	clients := make([]*benchClient, cfg.concurrency)
	for i := range clients {
		if cfg.op == est.OpSimpleReenroll {
			// Each client renews its own certificate, presenting it.
			clients[i] = newBenchClient(c, cfg, reqs[i].cert)
			clients[i].req = reqs[i]
		} else {
			clients[i] = newBenchClient(c, cfg, c.Certificate)
		}
	}
	var (
		next     atomic.Int64 // requests handed out
		done     atomic.Int64 // requests finished
		failed   atomic.Int64
		wg       sync.WaitGroup
		stopOnce sync.Once
		stop     = make(chan struct{})
	)
	basic := c.Username != "" && cfg.op != est.OpCACerts && cfg.op != est.OpSimpleReenroll
	method := cfg.op.Method()
	start := time.Now()
	cpuStart := cputime.Process()
	if cfg.count == 0 {
		t := time.AfterFunc(cfg.duration, func() { stopOnce.Do(func() { close(stop) }) })
		defer t.Stop()
	}
	for _, bc := range clients {
		wg.Go(func() {
			defer bc.hc.CloseIdleConnections()
			for {
				select {
				case <-stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				n := next.Add(1)
				if cfg.count > 0 && n > int64(cfg.count) {
					return
				}
				r := bc.req
				if cfg.op != est.OpSimpleReenroll {
					r = reqs[int(n-1)%len(reqs)]
				}
				if !bc.do(ctx, method, target, r, cfg.op, basic, c) {
					failed.Add(1)
				}
				done.Add(1)
			}
		})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	if cfg.progress {
		showProgress(e.stderr, start, cfg.interval, &done, &failed, finished)
	}
	<-finished
	elapsed := time.Since(start)
	cpu := cputime.Process() - cpuStart
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return summarize(cfg, clients, elapsed, cpu), nil
}

// do sends one request and records how it went; it reports success.
func (bc *benchClient) do(ctx context.Context, method, target string, r benchRequest, op est.Operation, basic bool, c *client.Client) bool {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return bc.fail("transport", err.Error())
	}
	if r.body != nil {
		req.Header.Set("Content-Type", est.MediaPKCS10)
		req.Header.Set("Content-Transfer-Encoding", "base64")
	}
	req.Header.Set("User-Agent", "est-bench/"+version())
	if basic {
		req.SetBasicAuth(c.Username, c.Password)
	}
	t0 := time.Now()
	resp, err := bc.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return true // stopped, not failed: not counted below
		}
		return bc.fail("transport", err.Error())
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, client.MaxResponseSize))
	resp.Body.Close()
	if err != nil {
		return bc.fail("transport", err.Error())
	}
	d := time.Since(t0)
	if resp.StatusCode/100 != 2 || resp.StatusCode == http.StatusAccepted {
		msg, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		return bc.fail(strconv.Itoa(resp.StatusCode), fmt.Sprintf("%s: %s", resp.Status, msg))
	}
	if resp.TLS != nil && resp.TLS.DidResume {
		bc.resumed++
	}
	if !bc.verified {
		// The first answer of each client is parsed in full; the others
		// are only counted, so that est bench spends its CPU sending.
		if err := checkBenchResponse(op, resp.Header.Get("Content-Type"), b); err != nil {
			return bc.fail("malformed", err.Error())
		}
		bc.verified = true
	}
	bc.latency = append(bc.latency, d)
	return true
}

func (bc *benchClient) fail(kind, msg string) bool {
	bc.errors[kind]++
	if bc.firstErr == "" {
		bc.firstErr = msg
	}
	return false
}

// checkBenchResponse checks that a 2xx answer to op is what op returns.
func checkBenchResponse(op est.Operation, ctype string, body []byte) error {
	mt, _, _ := mime.ParseMediaType(ctype)
	switch op {
	case est.OpCSRAttrs:
		return nil
	case est.OpServerKeyGen:
		if mt != "multipart/mixed" {
			return fmt.Errorf("serverkeygen answered %q, want multipart/mixed", ctype)
		}
		return nil
	}
	der, err := est.DecodeBase64(body)
	if err != nil {
		return err
	}
	certs, err := est.ParseCertsOnly(der)
	if err != nil {
		return err
	}
	if op != est.OpCACerts && len(certs) == 0 {
		return errors.New("no certificate in the answer")
	}
	return nil
}

// summarize merges what the clients measured.
func summarize(cfg benchConfig, clients []*benchClient, elapsed, cpu time.Duration) *benchResult {
	res := &benchResult{
		Operation: string(cfg.op), Concurrency: cfg.concurrency, Conn: cfg.conn,
		Errors: map[string]int{}, Seconds: elapsed.Seconds(), ClientCPUSeconds: cpu.Seconds(),
	}
	switch cfg.op {
	case est.OpSimpleEnroll, est.OpSimpleReenroll, est.OpServerKeyGen:
		res.KeyType = string(cfg.keyType)
	}
	var lat []time.Duration
	for _, bc := range clients {
		lat = append(lat, bc.latency...)
		res.TLSResumed += bc.resumed
		for k, n := range bc.errors {
			res.Errors[k] += n
			res.Requests += n
		}
		if res.FirstError == "" {
			res.FirstError = bc.firstErr
		}
	}
	res.OK = len(lat)
	res.Requests += res.OK
	if elapsed > 0 {
		res.RequestsPerSecond = float64(res.Requests) / elapsed.Seconds()
	}
	res.Latency = latencies(lat)
	return res
}

// latencies returns the mean, the nearest-rank percentiles and the maximum
// of lat, in milliseconds; lat is sorted.
func latencies(lat []time.Duration) latencyStats {
	if len(lat) == 0 {
		return latencyStats{}
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
	pct := func(p float64) float64 {
		i := int(math.Ceil(p/100*float64(len(lat)))) - 1
		return ms(lat[max(0, min(i, len(lat)-1))])
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	return latencyStats{
		Mean: ms(sum / time.Duration(len(lat))),
		P50:  pct(50), P90: pct(90), P99: pct(99),
		Max: ms(lat[len(lat)-1]),
	}
}

// writeBenchReport writes the result for people.
func writeBenchReport(w io.Writer, r *benchResult) {
	what := r.Operation
	if r.KeyType != "" {
		what += ", " + r.KeyType + " keys"
	}
	fmt.Fprintf(w, "est bench: %s, %d clients, %s connections, %.1fs\n", what, r.Concurrency, r.Conn, r.Seconds)
	failed := r.Requests - r.OK
	fmt.Fprintf(w, "  requests    %d ok, %d failed", r.OK, failed)
	if failed > 0 {
		kinds := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		var parts []string
		for _, k := range kinds {
			parts = append(parts, fmt.Sprintf("%s: %d", k, r.Errors[k]))
		}
		fmt.Fprintf(w, " (%s)", strings.Join(parts, ", "))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  throughput  %.1f requests/s\n", r.RequestsPerSecond)
	l := r.Latency
	fmt.Fprintf(w, "  latency     p50 %.2fms  p90 %.2fms  p99 %.2fms  max %.2fms  (mean %.2fms)\n", l.P50, l.P90, l.P99, l.Max, l.Mean)
	if r.Conn == connResume {
		fmt.Fprintf(w, "  resumed     %d of %d TLS sessions\n", r.TLSResumed, r.OK)
	}
	if r.Requests > 0 {
		fmt.Fprintf(w, "  client CPU  %.3fs (%.0fµs per request)\n", r.ClientCPUSeconds, r.ClientCPUSeconds/float64(r.Requests)*1e6)
	}
	if failed > 0 && r.FirstError != "" {
		fmt.Fprintf(w, "  first error %s\n", r.FirstError)
	}
}

// showProgress rewrites one line on w every interval until finished: time,
// requests done, errors and the rate over the last interval.
func showProgress(w io.Writer, start time.Time, interval time.Duration, done, failed *atomic.Int64, finished <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	last, lastAt := int64(0), start
	for {
		select {
		case <-finished:
			fmt.Fprint(w, "\r\x1b[K")
			return
		case now := <-t.C:
			n := done.Load()
			rate := float64(n-last) / now.Sub(lastAt).Seconds()
			last, lastAt = n, now
			fmt.Fprint(w, progressLine(now.Sub(start), n, failed.Load(), rate))
		}
	}
}

// progressLine is one update of the live progress line.
func progressLine(elapsed time.Duration, done, failed int64, rate float64) string {
	return fmt.Sprintf("\r\x1b[K%6.1fs  %d done  %d errors  %.0f requests/s", elapsed.Seconds(), done, failed, rate)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
