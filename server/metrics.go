package server

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/estkit/estkit/store"
)

// Metrics are estd's Prometheus metrics. A nil *Metrics records nothing.
type Metrics struct {
	requests   *prometheus.CounterVec
	issuance   *prometheus.HistogramVec
	handshakes *prometheus.CounterVec
	storeErrs  *prometheus.CounterVec
}

// NewMetrics registers estd's metrics with reg. pending, if not nil, counts
// the requests waiting for manual approval at each scrape; commits, if not
// nil, gives the store's group commit counts (records per commit is the
// ratio of their rates).
func NewMetrics(reg prometheus.Registerer, pending store.Approvals, commits store.GroupCommits) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "estd_requests_total", Help: "EST requests by operation, label and HTTP status.",
		}, []string{"operation", "label", "status"}),
		issuance: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "estd_issuance_seconds", Help: "Time to sign and record a certificate.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"label"}),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "estd_tls_handshake_failures_total", Help: "Failed TLS handshakes by reason.",
		}, []string{"reason"}),
		storeErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "estd_store_errors_total", Help: "Store operations that failed, by operation.",
		}, []string{"operation"}),
	}
	reg.MustRegister(m.requests, m.issuance, m.handshakes, m.storeErrs)
	if pending != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "estd_pending_approvals", Help: "Enrollment requests waiting for an operator (counted up to 1000).",
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			reqs, _, err := pending.Requests(ctx, store.RequestPending, store.ListOptions{Limit: 1000})
			if err != nil {
				m.storeErrs.WithLabelValues("requests").Inc()
				return -1
			}
			return float64(len(reqs))
		}))
	}
	if commits != nil {
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "estd_store_commits_total", Help: "Store transactions that recorded certificates (group commit).",
			}, func() float64 { c, _ := commits.GroupCommitStats(); return float64(c) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "estd_store_commit_records_total", Help: "Certificates those transactions carried.",
			}, func() float64 { _, n := commits.GroupCommitStats(); return float64(n) }),
		)
	}
	return m
}

func (m *Metrics) request(op, label string, status int) {
	if m != nil && op != "" {
		m.requests.WithLabelValues(op, label, strconv.Itoa(status)).Inc()
	}
}

func (m *Metrics) issued(label string, d time.Duration) {
	if m != nil {
		m.issuance.WithLabelValues(label).Observe(d.Seconds())
	}
}

// StoreError counts a failed store operation.
func (m *Metrics) StoreError(op string) {
	if m != nil {
		m.storeErrs.WithLabelValues(op).Inc()
	}
}

// HandshakeFailure counts a failed TLS handshake.
func (m *Metrics) HandshakeFailure(reason string) {
	if m != nil {
		m.handshakes.WithLabelValues(reason).Inc()
	}
}
