package estd

import (
	"crypto"
	"crypto/tls"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// signTracker signs after a delay and notes whether a signature finished
// after the test marked Close as returned.
type signTracker struct {
	crypto.Signer
	closed, afterClose *atomic.Bool
}

func (s signTracker) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	time.Sleep(300 * time.Millisecond)
	if s.closed.Load() {
		s.afterClose.Store(true)
	}
	return s.Signer.Sign(r, d, o)
}

// TestCloseWaitsForTLSRenewal: Close does not return while a renewal still
// uses the CA key (an HSM session Close is about to release).
func TestCloseWaitsForTLSRenewal(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	d, _, _ := openClocked(t, func() time.Time { return time.Unix(0, clock.Load()) })
	first := d.tlsCert.Load().Leaf
	clock.Store(first.NotAfter.Add(-tlsRenewBefore + time.Hour).UnixNano())
	var closed, afterClose atomic.Bool
	d.CA.Signer = signTracker{d.CA.Signer, &closed, &afterClose}
	d.renewTLS(time.Unix(0, clock.Load()), true)
	time.Sleep(50 * time.Millisecond) // the renewal is signing
	d.Close()
	closed.Store(true)
	time.Sleep(500 * time.Millisecond)
	if afterClose.Load() {
		t.Error("the CA key signed after Close returned")
	}
}

// TestTLSCutShortThenNotValidYet: a clock that jumps into the issuing CA's
// last 30 days gets a renewal cut short by the CA's expiry, after which
// renewals for expiry stop. When the clock comes back, the certificate is
// not valid yet, and that is renewed at once.
func TestTLSCutShortThenNotValidYet(t *testing.T) {
	var clock atomic.Int64
	real := time.Now()
	clock.Store(real.UnixNano())
	d, _, _ := openClocked(t, func() time.Time { return time.Unix(0, clock.Load()) })
	t.Cleanup(func() { d.Close() })
	clock.Store(d.CA.Cert.NotAfter.Add(-10 * 24 * time.Hour).UnixNano()) // the jump
	d.renewTLS(time.Unix(0, clock.Load()), true)
	d.renewWG.Wait()
	jumped := d.tlsCert.Load().Leaf
	if !jumped.NotBefore.After(real.Add(time.Hour)) {
		t.Fatalf("no renewal at the jumped time: %v", jumped.NotBefore)
	}
	clock.Store(real.UnixNano()) // the clock is right again
	cfg := d.TLSConfig()
	for range 5 {
		cfg.GetCertificate(&tls.ClientHelloInfo{})
		d.renewWG.Wait()
	}
	got := d.tlsCert.Load().Leaf
	if got.NotBefore.After(real) {
		t.Errorf("serving a certificate valid only from %v (now %v)", got.NotBefore, real)
	}
}

// TestTLSRenewalHammer: many handshakes during a renewal, and a Close
// racing them (the package runs with -race).
func TestTLSRenewalHammer(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	d, _, _ := openClocked(t, func() time.Time { return time.Unix(0, clock.Load()) })
	first := d.tlsCert.Load().Leaf
	clock.Store(first.NotAfter.Add(-tlsRenewBefore + time.Hour).UnixNano())
	cfg := d.TLSConfig()
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 200 {
				if c, err := cfg.GetCertificate(&tls.ClientHelloInfo{}); err != nil || c == nil {
					t.Error(err)
					return
				}
			}
		})
	}
	time.Sleep(5 * time.Millisecond)
	wg.Go(func() { d.Close() })
	wg.Wait()
}

// TestCRLURLPercentEncoded: an escaped separator in crl_url's path stays
// escaped in the URLs of later CAs' CRLs.
func TestCRLURLPercentEncoded(t *testing.T) {
	got := crlURL("http://pki.example/tenant%2Fone/crl", "/crl/ab01")
	if want := "http://pki.example/tenant%2Fone/crl/ab01"; got != want {
		t.Errorf("crlURL = %q, want %q (RawPath dropped: %%2F became a path separator)", got, want)
	}
}
