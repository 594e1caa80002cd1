package estd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/syncbuf"
	"github.com/estkit/estkit/internal/testpki"
)

// openAt opens a Daemon on data (creating its CA on the first call) and
// closes it when the test ends.
func openAt(t *testing.T, data string, logs *syncbuf.Buffer) *Daemon {
	t.Helper()
	return openWith(t, data, logs, nil)
}

// openWith is openAt with the clock now (nil: time.Now).
func openWith(t *testing.T, data string, logs *syncbuf.Buffer, now func() time.Time) *Daemon {
	t.Helper()
	if _, err := os.Stat(filepath.Join(data, UsersFile)); err != nil {
		if err := os.MkdirAll(data, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := auth.NewUsers().Save(filepath.Join(data, UsersFile)); err != nil {
			t.Fatal(err)
		}
	}
	if logs == nil {
		logs = &syncbuf.Buffer{}
	}
	d, err := Open(context.Background(), Options{DataDir: data, Clock: now, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// TestRolloverGenerations: each rollover retires the issuing CA and makes
// the next generation under the same root; estd then signs with the newest
// and keeps the retired ones, newest first, for their certificates; a root
// key moved offline is given with RootKey.
func TestRolloverGenerations(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	first := openAt(t, data, nil)
	first.Close()
	g1 := first.CA.Cert

	offline := filepath.Join(t.TempDir(), "root-ca.key")
	if err := os.Rename(filepath.Join(data, RootKeyFile), offline); err != nil {
		t.Fatal(err)
	}
	if _, err := RolloverCA(context.Background(), data, RolloverOptions{}); err == nil || !strings.Contains(err.Error(), "-root-key") {
		t.Fatalf("rollover with the root key offline: %v, want a pointer to -root-key", err)
	}
	if _, err := RolloverCA(context.Background(), data, RolloverOptions{RootKey: filepath.Join(data, IssuingKeyFile)}); err == nil || !strings.Contains(err.Error(), "not the key of") {
		t.Fatalf("rollover with the wrong root key: %v", err)
	}
	r2, err := RolloverCA(context.Background(), data, RolloverOptions{RootKey: offline, KeyType: "p384"})
	if err != nil {
		t.Fatal(err)
	}
	r3, err := RolloverCA(context.Background(), data, RolloverOptions{RootKey: offline})
	if err != nil {
		t.Fatal(err)
	}
	if !r2.Retired.Equal(g1) || !r3.Retired.Equal(r2.Issuing) {
		t.Fatal("the rollovers did not retire the CA before them")
	}
	if cn := r3.Issuing.Subject.CommonName; !strings.HasSuffix(cn, " G3") || strings.Contains(cn, "G2") {
		t.Errorf("third generation named %q", cn)
	}

	d := openAt(t, data, nil)
	if !d.CA.Cert.Equal(r3.Issuing) {
		t.Fatalf("estd signs with %q, want the newest CA", d.CA.Cert.Subject)
	}
	if len(d.Retired) != 2 || !d.Retired[0].Cert.Equal(r2.Issuing) || !d.Retired[1].Cert.Equal(g1) {
		t.Fatalf("retired CAs: %d, want generations 2 then 1", len(d.Retired))
	}
	if kt, _ := ca.KeyTypeOf(d.Retired[0].Cert.PublicKey); kt != ca.P384 {
		t.Errorf("generation 2 key %s, want the p384 asked for", kt)
	}
	if len(d.Verifier.Retired) != 2 {
		t.Errorf("the verifier knows %d retired CAs, want 2", len(d.Verifier.Retired))
	}
	if certs := d.caCerts(); len(certs) != 4 || !certs[3].Equal(d.Root) {
		t.Errorf("cacerts: %d certificates, want the issuing CA, two retired and the root", len(certs))
	}
}

// TestLoadRetired: expired retired CAs are skipped, as is a copy of the
// current one (a rollover that did not finish); one that the root did not
// sign, or without its key, stops estd from starting.
func TestLoadRetired(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	d := openAt(t, data, nil)
	d.Close()
	if _, err := RolloverCA(context.Background(), data, RolloverOptions{}); err != nil {
		t.Fatal(err)
	}
	root, current := d.Root, mustReadCert(t, filepath.Join(data, IssuingCertFile))
	load := func(now time.Time) ([]retiredCA, string, error) {
		logs := &syncbuf.Buffer{}
		r, err := loadRetired(context.Background(), data, root, current, KeyOptions{}, now, slog.New(slog.NewTextHandler(logs, nil)))
		closeRetired(r)
		return r, logs.String(), err
	}
	if r, _, err := load(time.Now()); err != nil || len(r) != 1 {
		t.Fatalf("loadRetired: %d, %v; want the one retired CA", len(r), err)
	}
	if r, logs, err := load(d.CA.Cert.NotAfter.Add(time.Second)); err != nil || len(r) != 0 || !strings.Contains(logs, "has expired") {
		t.Fatalf("loadRetired after expiry: %d, %v, %q; want none, logged", len(r), err, logs)
	}

	// A copy of the current CA, as a rollover interrupted after retiring
	// it would leave.
	copyFile(t, filepath.Join(data, IssuingCertFile), filepath.Join(data, RetiredDir, "interrupted.pem"))
	copyFile(t, filepath.Join(data, IssuingKeyFile), filepath.Join(data, RetiredDir, "interrupted.key"))
	if r, logs, err := load(time.Now()); err != nil || len(r) != 1 || !strings.Contains(logs, "did not finish") {
		t.Fatalf("loadRetired with a copy of the current CA: %d, %v, %q", len(r), err, logs)
	}

	// A CA of another root.
	other := testpki.NewRoot(t, "Someone Else", time.Now())
	testpki.WriteCerts(t, filepath.Join(data, RetiredDir, "foreign.pem"), other.Cert)
	testpki.WriteKey(t, filepath.Join(data, RetiredDir, "foreign.key"), other.Key)
	if _, _, err := load(time.Now()); err == nil || !strings.Contains(err.Error(), "not signed by") {
		t.Fatalf("loadRetired with a foreign CA: %v", err)
	}
	os.Remove(filepath.Join(data, RetiredDir, "foreign.pem"))
	// A retired CA without its key.
	os.Remove(filepath.Join(data, RetiredDir, "issuing-ca-"+d.CA.Cert.SerialNumber.Text(16)+".key"))
	if _, _, err := load(time.Now()); err == nil || !strings.Contains(err.Error(), "key of the retired issuing CA") {
		t.Fatalf("loadRetired without a key: %v", err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustReadCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	c, err := readCert(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTLSRenewedWhileServing: a TLS server certificate nearing its expiry
// is renewed while estd serves, without a restart: the next handshakes get
// the new one.
func TestTLSRenewedWhileServing(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	logs := &syncbuf.Buffer{}
	d := openWith(t, filepath.Join(t.TempDir(), "data"), logs, now)
	addr := serveOn(t, "Serve", d.Serve)
	served := func() *x509.Certificate {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // the test clock is not the client's
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0]
	}
	first := served()
	clock.Store(first.NotAfter.Add(-tlsRenewBefore + time.Hour).UnixNano())
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := served()
		if !got.Equal(first) {
			if !got.NotAfter.After(now().Add(tlsRenewBefore)) || got.CheckSignatureFrom(d.CA.Cert) != nil {
				t.Fatalf("renewed certificate valid until %v, from %q", got.NotAfter, got.Issuer)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the TLS certificate was not renewed:\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "renewed the TLS server certificate") {
		t.Errorf("the renewal was not logged:\n%s", logs)
	}
}
