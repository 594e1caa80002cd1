package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/estd"
	"github.com/estkit/estkit/internal/pgtest"
	"github.com/estkit/estkit/internal/testpki"
	"github.com/estkit/estkit/store"
	"github.com/estkit/estkit/store/postgres"
	"github.com/estkit/estkit/store/sqlite"
)

// TestCrashSafety runs enrollments from several clients at once, kills
// estd with SIGKILL in the middle of them, restarts it on the same data
// (twice), and checks that every certificate a client received is on
// record, byte for byte, that no serial is recorded twice, and that the
// store opens cleanly; on SQLite and on PostgreSQL.
func TestCrashSafety(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			writeUsers(t, dir, "dev", "dev-password-1")
			args := []string{"-data", dir}
			var dsn string
			if backend == "postgres" {
				dsn = pgtest.NewDatabase(t)
				args = append(args, "-store", dsn)
			}
			var received []*x509.Certificate
			const rounds = 2
			for round := range rounds {
				n := startNode(t, nil, args...)
				roots := x509.NewCertPool()
				roots.AddCert(readPEMCert(t, filepath.Join(dir, estd.RootCertFile)))
				got, lost := enrollUntilKilled(t, n, roots, fmt.Sprintf("crash-%d", round), 40)
				t.Logf("round %d: %d certificates received before SIGKILL, %d requests cut off", round, len(got), lost)
				received = append(received, got...)
			}
			// The last restart: estd opens the store again and serves.
			n := startNode(t, nil, args...)
			roots := x509.NewCertPool()
			roots.AddCert(readPEMCert(t, filepath.Join(dir, estd.RootCertFile)))
			c := crashClient(roots)
			cert, status, err := tryEnroll(c, n.addr, testpki.CSR(t, testpki.Key(t, ca.P256), "after-crash", nil, nil))
			if err != nil || status != 200 {
				t.Fatalf("enrollment after restart: %d %v", status, err)
			}
			received = append(received, cert)

			st := openCrashStore(t, dir, dsn)
			recs := allRecords(t, st)
			seen := map[string]int{}
			for _, r := range recs {
				seen[r.Serial.Text(16)]++
			}
			for s, k := range seen {
				if k > 1 {
					t.Errorf("serial %s recorded %d times", s, k)
				}
			}
			for _, c := range received {
				rec, err := st.BySerial(context.Background(), c.SerialNumber)
				if err != nil {
					t.Errorf("certificate %s was handed out but is not on record: %v", c.SerialNumber.Text(16), err)
					continue
				}
				if !bytes.Equal(rec.DER, c.Raw) {
					t.Errorf("certificate %s on record differs from the one handed out", c.SerialNumber.Text(16))
				}
			}
			t.Logf("%d certificates received, %d records (the TLS certificate and requests cut off by the kill may be among them)", len(received), len(recs))
		})
	}
}

// enrollUntilKilled runs 8 clients enrolling against n in a loop; once
// kill certificates have come back it sends n SIGKILL while the others are
// in flight, and returns what the clients received and how many requests
// were cut off.
func enrollUntilKilled(t *testing.T, n *node, roots *x509.CertPool, prefix string, kill int) ([]*x509.Certificate, int) {
	t.Helper()
	const workers = 8
	var (
		mu       sync.Mutex
		received []*x509.Certificate
		ok, lost atomic.Int64
		killOnce sync.Once
		killed   = make(chan struct{})
		wg       sync.WaitGroup
	)
	// Keys and CSRs are made before the load, so the clients only send.
	csrs := make([][][]byte, workers)
	for w := range workers {
		for i := range 2 * kill / workers {
			csrs[w] = append(csrs[w], testpki.CSR(t, testpki.Key(t, ca.P256), fmt.Sprintf("%s-%d-%d", prefix, w, i), nil, nil))
		}
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := crashClient(roots)
			defer c.CloseIdleConnections()
			for _, csr := range csrs[w] {
				cert, status, err := tryEnroll(c, n.addr, csr)
				if err != nil {
					select {
					case <-killed:
						lost.Add(1)
					default:
						t.Errorf("enrollment failed before the kill: %v", err)
					}
					return
				}
				if status != 200 {
					t.Errorf("enrollment: status %d", status)
					return
				}
				mu.Lock()
				received = append(received, cert)
				mu.Unlock()
				if ok.Add(1) == int64(kill) {
					killOnce.Do(func() {
						close(killed)
						n.cmd.Process.Kill() // SIGKILL: no shutdown, no flush
					})
				}
			}
		}()
	}
	wg.Wait()
	killOnce.Do(func() {
		close(killed)
		n.cmd.Process.Kill()
		t.Errorf("only %d of %d enrollments succeeded; killed after the load", ok.Load(), kill)
	})
	err := n.cmd.Wait()
	var ee interface{ ExitCode() int }
	if !errors.As(err, &ee) || ee.ExitCode() != -1 {
		t.Fatalf("estd did not die of SIGKILL: %v\n%s", err, n.out.String())
	}
	return received, int(lost.Load())
}

func crashClient(roots *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
}

// tryEnroll sends one simpleenroll; a certificate counts as received only
// once the whole response is read and parsed.
func tryEnroll(c *http.Client, addr string, csr []byte) (*x509.Certificate, int, error) {
	req, err := http.NewRequest("POST", "https://"+addr+est.Path("", est.OpSimpleEnroll), bytes.NewReader(est.EncodeBase64(csr)))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Content-Type", est.MediaPKCS10)
	req.SetBasicAuth("dev", "dev-password-1")
	resp, err := c.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode != 200 {
		return nil, resp.StatusCode, nil
	}
	der, err := est.DecodeBase64(body)
	if err != nil {
		return nil, 0, err
	}
	certs, err := est.ParseCertsOnly(der)
	if err != nil {
		return nil, 0, err
	}
	if len(certs) != 1 {
		return nil, 0, fmt.Errorf("%d certificates in the response", len(certs))
	}
	return certs[0], 200, nil
}

// openCrashStore opens the store estd used; for SQLite it first checks the
// database file's integrity.
func openCrashStore(t *testing.T, dir, dsn string) store.Store {
	t.Helper()
	ctx := context.Background()
	var st store.Store
	var err error
	if dsn != "" {
		st, err = postgres.Open(ctx, dsn)
	} else {
		path := filepath.Join(dir, estd.DBFile)
		db, dbErr := sql.Open("sqlite", "file:"+path+"?mode=ro")
		if dbErr != nil {
			t.Fatal(dbErr)
		}
		var res string
		if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil || res != "ok" {
			t.Errorf("SQLite integrity_check: %q %v", res, err)
		}
		db.Close()
		st, err = sqlite.Open(ctx, path)
	}
	if err != nil {
		t.Fatalf("store does not open after the crashes: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// allRecords lists every record in st.
func allRecords(t *testing.T, st store.Store) []*store.Record {
	t.Helper()
	var all []*store.Record
	after := ""
	for {
		recs, next, err := st.List(context.Background(), store.ListOptions{After: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, recs...)
		if next == "" {
			return all
		}
		after = next
	}
}
