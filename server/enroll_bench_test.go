package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/admin"
	"github.com/estkit/estkit/internal/cputime"
	"github.com/estkit/estkit/internal/pgtest"
	"github.com/estkit/estkit/internal/testpki"
	"github.com/estkit/estkit/server"
	"github.com/estkit/estkit/store"
	"github.com/estkit/estkit/store/postgres"
	"github.com/estkit/estkit/store/sqlite"
)

// benchFixture is a Handler wired as estd wires it (metrics, a text logger,
// Basic auth with the verified-credential cache), in process.
type benchFixture struct {
	h              *server.Handler
	st             store.Store
	user, password string
	bodies         [][]byte // base64 CSRs, used round robin
	next           atomic.Uint64
}

// newBenchFixture makes 64 CSRs with the subjects bench-device-0000 to
// bench-device-0063; newBenchFleet any number with random subjects.
func newBenchFixture(b *testing.B, caKT ca.KeyType, st store.Store) *benchFixture {
	return newBenchFleet(b, caKT, st, 64, func(i int) string { return fmt.Sprintf("bench-device-%04d", i) })
}

// newBenchFleet makes n CSRs, the i-th for the common name cn(i).
func newBenchFleet(b *testing.B, caKT ca.KeyType, st store.Store, n int, cn func(i int) string) *benchFixture {
	b.Helper()
	issuer := testpki.IssuingCA(b, caKT)
	f := &benchFixture{st: st, user: "bench", password: "bench-password"}
	users := auth.NewUsers()
	if err := users.Set(f.user, f.password); err != nil {
		b.Fatal(err)
	}
	v := &auth.Verifier{Issuing: issuer.Cert, Store: st}
	v.SetUsers(users)
	var err error
	f.h, err = server.New(server.Options{
		Issuer:   issuer,
		CACerts:  issuer.Chain,
		Profiles: ca.DefaultProfiles(),
		Verifier: v,
		Store:    st,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics:  server.NewMetrics(prometheus.NewRegistry(), nil, nil),
	})
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		key, err := ca.GenerateKey(ca.P256)
		if err != nil {
			b.Fatal(err)
		}
		cn := cn(i)
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
			Subject: pkix.Name{CommonName: cn}, DNSNames: []string{cn + ".example.net"},
		}, key)
		if err != nil {
			b.Fatal(err)
		}
		f.bodies = append(f.bodies, est.EncodeBase64(der))
	}
	return f
}

// enroll sends one simpleenroll through the handler, as a request that
// arrived over TLS with Basic credentials, and fails b unless it is a 200.
func (f *benchFixture) enroll(b *testing.B) {
	body := f.bodies[f.next.Add(1)%uint64(len(f.bodies))]
	req := httptest.NewRequest("POST", "https://estd.example"+est.Path("", est.OpSimpleEnroll), bytes.NewReader(body))
	req.TLS = &tls.ConnectionState{HandshakeComplete: true, Version: tls.VersionTLS13}
	req.Header.Set("Content-Type", est.MediaPKCS10)
	req.SetBasicAuth(f.user, f.password)
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("enroll: %d %s", rec.Code, rec.Body)
	}
}

// run measures f.enroll, c requests at a time (rounded to a multiple of
// GOMAXPROCS); c=1 runs them one after the other.
func (f *benchFixture) run(b *testing.B, c int) {
	f.enroll(b) // the first Basic verification runs bcrypt; it is cached after
	b.ReportAllocs()
	b.ResetTimer()
	gc, _ := f.st.(store.GroupCommits)
	var commits0, puts0 int64
	if gc != nil {
		commits0, puts0 = gc.GroupCommitStats()
	}
	start := cputime.Process()
	if c > 1 {
		b.SetParallelism(max(1, c/runtime.GOMAXPROCS(0)))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				f.enroll(b)
			}
		})
	} else {
		for b.Loop() {
			f.enroll(b)
		}
	}
	cputime.Report(b, start)
	if gc != nil {
		commits, puts := gc.GroupCommitStats()
		if commits > commits0 {
			b.ReportMetric(float64(puts-puts0)/float64(commits-commits0), "records/commit")
		}
	}
}

func openBenchSQLite(b *testing.B, path string) *sqlite.Store {
	b.Helper()
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// tmpfsDir returns a temporary directory in memory (tmpfs, where fsync
// costs nothing), removed when b ends; b is skipped where there is none.
func tmpfsDir(b *testing.B) string {
	b.Helper()
	var st syscall.Statfs_t
	const tmpfsMagic = 0x01021994
	if err := syscall.Statfs("/dev/shm", &st); err != nil || st.Type != tmpfsMagic {
		b.Skip("no tmpfs at /dev/shm")
	}
	dir, err := os.MkdirTemp("/dev/shm", "estkit-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// openBenchPostgres opens a new database on the test package's PostgreSQL
// cluster (fsync and synchronous_commit on; see internal/pgtest).
func openBenchPostgres(b *testing.B) *postgres.Store {
	b.Helper()
	st, err := postgres.Open(context.Background(), pgtest.NewDatabase(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// BenchmarkEnroll is the enroll handler end to end in process: decode,
// verify, authenticate, issue, record, encode. store=sqlite is the durable
// store estd uses by default (WAL, synchronous=FULL); store=sqlite-tmpfs
// the same store on tmpfs, in memory, where fsync costs nothing (what
// durability costs is the difference); store=postgres the
// one of several nodes (a local cluster, fsync on, as internal/pgtest runs
// it: it is skipped where PostgreSQL is not installed); store=memory is a
// map, the baseline the durable stores are measured against. c is the number of
// requests at a time.
func BenchmarkEnroll(b *testing.B) {
	for _, kt := range []ca.KeyType{ca.P256, ca.RSA2048} {
		for _, c := range []int{1, 16, 64} {
			for _, stName := range []string{"sqlite", "sqlite-tmpfs", "postgres", "memory"} {
				b.Run(fmt.Sprintf("ca=%s/c=%d/store=%s", kt, c, stName), func(b *testing.B) {
					var st store.Store = newMemStore()
					switch stName {
					case "sqlite":
						st = openBenchSQLite(b, filepath.Join(b.TempDir(), "estd.db"))
					case "sqlite-tmpfs":
						st = openBenchSQLite(b, filepath.Join(tmpfsDir(b), "estd.db"))
					case "postgres":
						st = openBenchPostgres(b)
					}
					newBenchFixture(b, kt, st).run(b, c)
				})
			}
		}
	}
}

// scaleRecords is how many certificates BenchmarkEnrollScale puts in the
// store before it enrolls.
const scaleRecords = 1_000_000

// BenchmarkEnrollScale enrolls with an empty store and with one that
// already holds a million certificates, and looks a certificate up by
// serial in each, for the durable SQLite store and for PostgreSQL (skipped
// where PostgreSQL is not installed).
func BenchmarkEnrollScale(b *testing.B) {
	dir := b.TempDir()
	for _, stName := range []string{"sqlite", "postgres"} {
		for _, n := range []int{0, scaleRecords} {
			b.Run(fmt.Sprintf("store=%s/records=%d", stName, n), func(b *testing.B) {
				var open func(b *testing.B) store.Store
				var serials []*big.Int
				switch stName {
				case "sqlite":
					path := filepath.Join(dir, fmt.Sprintf("estd-%d.db", n))
					openBenchSQLite(b, path).Close() // create and migrate
					var err error
					if serials, err = bulkFill(path, n); err != nil {
						b.Fatal(err)
					}
					open = func(b *testing.B) store.Store { return openBenchSQLite(b, path) }
				case "postgres":
					dsn := pgtest.NewDatabase(b)
					st, err := postgres.Open(context.Background(), dsn)
					if err != nil {
						b.Fatal(err)
					}
					st.Close()
					if serials, err = bulkFillPostgres(dsn, n); err != nil {
						b.Fatal(err)
					}
					open = func(b *testing.B) store.Store {
						st, err := postgres.Open(context.Background(), dsn)
						if err != nil {
							b.Fatal(err)
						}
						b.Cleanup(func() { st.Close() })
						return st
					}
				}
				b.Run("enroll", func(b *testing.B) {
					// A fleet: every device its own subject, in no order
					// among the million already there.
					newBenchFleet(b, ca.P256, open(b), 4096, randomDeviceName).run(b, 16)
				})
				if n == 0 {
					return
				}
				b.Run("byserial", func(b *testing.B) {
					st := open(b)
					ctx := context.Background()
					b.ReportAllocs()
					b.ResetTimer()
					i := 0
					for b.Loop() {
						if _, err := st.BySerial(ctx, serials[i%len(serials)]); err != nil {
							b.Fatal(err)
						}
						i += 7919 // a prime stride: lookups all over the index
					}
				})
				b.Run("dashboard", func(b *testing.B) {
					// The dashboard's overview: the newest certificates, the
					// issuance of the last day by hour and of the last 30
					// days by day (the fill issued one a second, so the last
					// day holds 86,400 and the 30 days 1,000,000).
					svc := admin.New(open(b), nil, nil)
					ctx := context.Background()
					b.ReportAllocs()
					b.ResetTimer()
					for b.Loop() {
						if _, err := svc.Search(ctx, "", 15); err != nil {
							b.Fatal(err)
						}
						if _, err := svc.Issuance(ctx, time.Hour, 24); err != nil {
							b.Fatal(err)
						}
						if _, err := svc.Issuance(ctx, 24*time.Hour, 30); err != nil {
							b.Fatal(err)
						}
					}
				})
			})
		}
	}
}

// bulkFill inserts n synthetic certificate records into the SQLite database
// at path in large transactions, without fsync (it is setup, not what is
// measured), and returns a sample of their serials.
func bulkFill(path string, n int) ([]*big.Int, error) {
	if n == 0 {
		return nil, nil
	}
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(path)+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	der := make([]byte, 480) // the size of an issued P-256 certificate
	rand.Read(der)
	now := time.Now().UTC()
	const batch = 50_000
	var sample []*big.Int
	for done := 0; done < n; done += batch {
		tx, err := db.Begin()
		if err != nil {
			return nil, err
		}
		stmt, err := tx.Prepare(`INSERT INTO certificates (serial, subject, sans, not_before, not_after,
			key_algorithm, profile, requester, auth_method, issued_at, der) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			tx.Rollback()
			return nil, err
		}
		for i := done; i < min(done+batch, n); i++ {
			serial, err := ca.NewSerial()
			if err != nil {
				tx.Rollback()
				return nil, err
			}
			if i%1000 == 0 {
				sample = append(sample, serial)
			}
			issued := now.Add(time.Duration(i-n) * time.Second).Format("2006-01-02T15:04:05.000000000Z07:00")
			cn := randomDeviceName(i)
			if _, err := stmt.Exec(serial.Text(16), "CN="+cn, `["dns:`+cn+`.example.net"]`, issued, issued,
				"ECDSA-P256", "", "bench", "basic", issued, der); err != nil {
				tx.Rollback()
				return nil, err
			}
		}
		if err := tx.Commit(); err != nil {
			return nil, err
		}
	}
	_, err = db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	return sample, err
}

// randomDeviceName is a device's common name as a fleet has them: unique and
// in no particular order.
func randomDeviceName(int) string {
	return "device-" + rand.Text()
}

// memStore is the in-memory baseline: what recording costs when it costs
// nothing.
type memStore struct {
	mu   sync.RWMutex
	recs map[string]*store.Record
	seq  []*store.Record
}

func newMemStore() *memStore { return &memStore{recs: map[string]*store.Record{}} }

func (m *memStore) Put(ctx context.Context, rec *store.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := rec.Serial.Text(16)
	if _, ok := m.recs[k]; ok {
		return store.ErrDuplicate
	}
	m.recs[k] = rec
	m.seq = append(m.seq, rec)
	return nil
}

func (m *memStore) BySerial(ctx context.Context, serial *big.Int) (*store.Record, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if r, ok := m.recs[serial.Text(16)]; ok {
		return r, nil
	}
	return nil, store.ErrNotFound
}

func (m *memStore) BySubject(ctx context.Context, subject string) ([]*store.Record, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []*store.Record
	for _, r := range m.seq {
		if r.Subject == subject {
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *memStore) List(ctx context.Context, opts store.ListOptions) ([]*store.Record, string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Clone(m.seq), "", nil
}

func (m *memStore) Revoke(ctx context.Context, serial *big.Int, reason int, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[serial.Text(16)]
	if !ok {
		return store.ErrNotFound
	}
	if !r.Revoked {
		r.Revoked, r.RevokedAt, r.RevocationReason = true, at, reason
	}
	return nil
}

func (m *memStore) Ping(context.Context) error { return nil }
func (m *memStore) Close() error               { return nil }

// bulkFillPostgres copies n synthetic certificate records into the
// PostgreSQL database at dsn, then vacuums, analyzes and checkpoints so that
// the enrollments measured after it do not pay for the fill; it returns a
// sample of their serials.
func bulkFillPostgres(dsn string, n int) ([]*big.Int, error) {
	if n == 0 {
		return nil, nil
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	der := make([]byte, 480) // the size of an issued P-256 certificate
	rand.Read(der)
	now := time.Now().UTC()
	var sample []*big.Int
	i := 0
	rows := pgx.CopyFromFunc(func() ([]any, error) {
		if i == n {
			return nil, nil
		}
		serial, err := ca.NewSerial()
		if err != nil {
			return nil, err
		}
		if i%1000 == 0 {
			sample = append(sample, serial)
		}
		issued := now.Add(time.Duration(i-n) * time.Second)
		cn := randomDeviceName(i)
		i++
		return []any{serial.Text(16), "CN=" + cn, []string{"dns:" + cn + ".example.net"}, issued, issued,
			"ECDSA-P256", "", "bench", "basic", issued, der}, nil
	})
	copied, err := conn.CopyFrom(ctx, pgx.Identifier{"certificates"}, []string{"serial", "subject", "sans",
		"not_before", "not_after", "key_algorithm", "profile", "requester", "auth_method", "issued_at", "der"}, rows)
	if err != nil {
		return nil, err
	}
	if copied != int64(n) {
		return nil, fmt.Errorf("copied %d records, not %d", copied, n)
	}
	if _, err := conn.Exec(ctx, `VACUUM (ANALYZE) certificates`); err != nil {
		return nil, err
	}
	// CHECKPOINT needs a superuser (or pg_checkpoint): the throw-away
	// cluster's role is one; on a server of ESTKIT_TEST_POSTGRES_DSN the
	// fill's checkpoint may then land in the measurement.
	conn.Exec(ctx, `CHECKPOINT`)
	return sample, nil
}
