package estd

import (
	"crypto"
	"crypto/tls"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/estkit/estkit/internal/syncbuf"
)

// openClocked opens a Daemon on a new data directory with the clock now.
func openClocked(t *testing.T, now func() time.Time) (*Daemon, string, *syncbuf.Buffer) {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	logs := &syncbuf.Buffer{}
	d := openWith(t, data, logs, now)
	return d, data, logs
}

// TestTLSClockJumpForward: the clock jumps ahead for a moment (an RTC
// glitch, an NTP step) while a handshake arrives, and the renewal issues a
// certificate valid only from then. Once the clock is right again, that
// certificate is renewed too, and a restart would not keep it.
func TestTLSClockJumpForward(t *testing.T) {
	var clock atomic.Int64
	real := time.Now()
	clock.Store(real.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	d, data, _ := openClocked(t, now)
	t.Cleanup(func() { d.Close() })
	addr := serveOn(t, "Serve", d.Serve)
	served := func() *tls.ConnectionState {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		st := c.ConnectionState()
		return &st
	}
	first := served().PeerCertificates[0]
	clock.Store(first.NotAfter.Add(-tlsRenewBefore + time.Hour).UnixNano()) // jump
	served()
	deadline := time.Now().Add(10 * time.Second)
	for d.tlsCert.Load().Leaf.Equal(first) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	jumped := d.tlsCert.Load().Leaf
	if tlsCertCurrent(data, d.CA.Cert, []string{"localhost"}, jumped.IPAddresses, real) {
		t.Errorf("a restart would keep a certificate not valid yet")
	}
	clock.Store(real.UnixNano()) // the clock is right again
	served()                     // notices, and renews
	deadline = time.Now().Add(10 * time.Second)
	for {
		got := served().PeerCertificates[0]
		if !got.NotBefore.After(real) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("estd serves a certificate valid only from %v (now %v) and does not renew it", got.NotBefore, real)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// failingSigner fails every signature, counting them.
type failingSigner struct {
	crypto.Signer
	n *atomic.Int32
}

func (s failingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	s.n.Add(1)
	return nil, errors.New("the HSM is gone")
}

// TestTLSRenewalFailure: a renewal that fails is logged and not tried
// again before tlsRetry however many handshakes come; the old certificate
// is served meanwhile.
func TestTLSRenewalFailure(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	d, _, logs := openClocked(t, func() time.Time { return time.Unix(0, clock.Load()) })
	t.Cleanup(func() { d.Close() })
	first := d.tlsCert.Load().Leaf
	var signatures atomic.Int32
	d.CA.Signer = failingSigner{d.CA.Signer, &signatures}
	clock.Store(first.NotAfter.Add(-tlsRenewBefore + time.Hour).UnixNano())
	addr := serveOn(t, "Serve", d.Serve)
	for range 20 {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		if !c.ConnectionState().PeerCertificates[0].Equal(first) {
			t.Fatal("another certificate served while renewing fails")
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	if n := signatures.Load(); n != 1 {
		t.Errorf("%d renewals tried, want 1 (then one an hour)", n)
	}
	if !strings.Contains(logs.String(), "could not renew the TLS server certificate") {
		t.Errorf("the failure was not logged:\n%s", logs)
	}
}
