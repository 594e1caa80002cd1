//go:build cgo

package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThalesGroup/crypto11"
	"github.com/thales-e-security/pool"

	"github.com/estkit/estkit"

	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/hsmtest"
)

// These tests use real SoftHSM2 tokens. hsmtest.NewToken sets
// SOFTHSM2_CONF with t.Setenv, so none of them may run in parallel, and
// every signer is closed before its test ends so that the next test's
// token is read afresh.

func closeAtEnd(t *testing.T, c io.Closer) {
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
}

func TestPKCS11GenerateLoadIssue(t *testing.T) {
	for _, kt := range []ca.KeyType{ca.P256, ca.RSA2048} {
		t.Run(string(kt), func(t *testing.T) {
			ctx := context.Background()
			tok := hsmtest.NewToken(t, "estd")
			uri := tok.URI("issuing-ca")

			gen, closer, err := Generate(ctx, uri, kt, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got, err := ca.KeyTypeOf(gen.Public()); err != nil || got != kt {
				t.Fatalf("generated %s, want %s (%v)", got, kt, err)
			}
			checkNotExtractable(t, closer, gen, kt)
			if _, _, err := Generate(ctx, uri, kt, Options{}); err == nil || !strings.Contains(err.Error(), "already has a key") {
				t.Fatalf("second Generate with the same label: %v", err)
			}
			if err := closer.Close(); err != nil {
				t.Fatal(err)
			}

			// A new process would do this: load the key by its URI.
			signer, closer, err := Load(ctx, uri, Options{})
			if err != nil {
				t.Fatal(err)
			}
			closeAtEnd(t, closer)
			if !samePublic(signer.Public(), gen.Public()) {
				t.Fatal("Load found another key than Generate made")
			}
			checkNotExtractable(t, closer, signer, kt)
			issueWith(t, signer)

			// A second signer of the same key in the same process works
			// alongside, and after the first one is closed.
			other, otherCloser, err := Load(ctx, uri, Options{})
			if err != nil {
				t.Fatal(err)
			}
			issueWith(t, other)
			if err := closer.Close(); err != nil {
				t.Fatal(err)
			}
			issueWith(t, other)
			if err := otherCloser.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := other.Sign(rand.Reader, make([]byte, 32), crypto.SHA256); err == nil {
				t.Error("signed after Close")
			}
		})
	}
}

// checkNotExtractable reads the private key's attributes from the token.
func checkNotExtractable(t *testing.T, c io.Closer, s crypto.Signer, kt ca.KeyType) {
	t.Helper()
	tok := c.(*token)
	want := map[crypto11.AttributeType]bool{
		crypto11.CkaSensitive:        true,
		crypto11.CkaExtractable:      false,
		crypto11.CkaAlwaysSensitive:  true,
		crypto11.CkaNeverExtractable: true,
		crypto11.CkaPrivate:          true,
		crypto11.CkaToken:            true,
		crypto11.CkaSign:             true,
		crypto11.CkaDerive:           false,
	}
	if kt == ca.RSA2048 {
		want[crypto11.CkaDecrypt] = false
		want[crypto11.CkaUnwrap] = false
	}
	var types []crypto11.AttributeType
	for a := range want {
		types = append(types, a)
	}
	if ts, ok := s.(tokenSigner); ok {
		s = ts.Signer
	}
	got, err := tok.ctx.GetAttributes(s, types)
	if err != nil {
		t.Fatal(err)
	}
	for a, v := range want {
		if attr, ok := got[a]; !ok || len(attr.Value) != 1 || (attr.Value[0] != 0) != v {
			t.Errorf("attribute %#x of the private key: %v, want %v", a, got[a], v)
		}
	}
}

// issueWith makes a root CA with signer, issues leaves from many goroutines
// at once and verifies them.
func issueWith(t *testing.T, signer crypto.Signer) {
	t.Helper()
	now := time.Now()
	root, err := ca.NewRoot(signer, pkix.Name{CommonName: "HSM Test Root"}, now, 24*time.Hour)
	if err != nil {
		t.Fatalf("self-signing with the token key: %v", err)
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		t.Fatalf("root signature: %v", err)
	}
	c, err := ca.New(root, signer, []*x509.Certificate{root})
	if err != nil {
		t.Fatal(err)
	}
	profile := &ca.Profile{Validity: time.Hour, KeyTypes: []ca.KeyType{ca.P256}, SANs: []string{"dns"}}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
				Subject: pkix.Name{CommonName: "device"}, DNSNames: []string{"device.example"},
			}, leafKey)
			if err != nil {
				errs <- err
				return
			}
			req, _ := x509.ParseCertificateRequest(der)
			leaf, err := c.Issue(context.Background(), req, profile, auth.Identity{Method: auth.Basic, Name: "test"})
			if err != nil {
				errs <- err
				return
			}
			if err := leaf.CheckSignatureFrom(root); err != nil {
				errs <- err
				return
			}
			_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "device.example", CurrentTime: now})
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("issue with the token key: %v", err)
	}
}

func TestPKCS11Errors(t *testing.T) {
	ctx := context.Background()
	tok := hsmtest.NewToken(t, "estd")
	_, closer, err := Generate(ctx, tok.URI("ca"), ca.P384, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := closer.Close(); err != nil {
		t.Fatal(err)
	}
	// Nothing of this token is open now: a wrong PIN meets a token that
	// nobody in this process is logged in to (see the report on
	// CKR_USER_ALREADY_LOGGED_IN).
	wrongPIN := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(wrongPIN, []byte("000000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "pkcs11:token=estd;object=ca?module-path=" + tok.Module
	for name, tc := range map[string]struct {
		uri  string
		opts Options
		want string
	}{
		"wrong PIN":       {base + "&pin-source=file:" + wrongPIN, Options{}, "wrong PIN"},
		"wrong PIN value": {base + "&pin-value=000000", Options{Logger: slog.New(slog.DiscardHandler)}, "wrong PIN"},
		"unknown object":  {strings.Replace(tok.URI("ca"), "object=ca", "object=nope", 1), Options{}, "no key pair object=nope"},
		"unknown id":      {strings.Replace(tok.URI("ca"), "object=ca", "id=%01%02", 1), Options{}, "no key pair id=0102"},
		"unknown token":   {strings.Replace(tok.URI("ca"), "token=estd", "token=other", 1), Options{}, `no token matches pkcs11:token=other;object=ca`},
		"other serial":    {strings.Replace(tok.URI("ca"), "token=estd", "token=estd;serial=0000", 1), Options{}, "no token matches"},
		"no PIN":          {base, Options{}, "no PIN"},
		"no module":       {"pkcs11:token=estd;object=ca?module-path=/nonexistent/libpkcs11.so&pin-source=file:" + tok.PINFile, Options{}, "/nonexistent/libpkcs11.so"},
		"not a module":    {"pkcs11:token=estd;object=ca?module-path=" + tok.PINFile + "&pin-source=file:" + tok.PINFile, Options{}, "not a loadable PKCS#11 module"},
	} {
		s, c, err := Load(ctx, tc.uri, tc.opts)
		if err == nil {
			c.Close()
			t.Errorf("%s: loaded %T", name, s)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %q", name, err, tc.want)
		}
		if strings.Contains(err.Error(), tok.PIN) || strings.Contains(err.Error(), "000000") {
			t.Errorf("%s: the error shows the PIN: %v", name, err)
		}
	}

	// A wrong PIN is refused also while this process is logged in to the
	// token, when PKCS#11 itself would not check it.
	_, open, err := Load(ctx, tok.URI("ca"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(ctx, base+"&pin-source="+wrongPIN, Options{}); err == nil || !strings.Contains(err.Error(), "wrong PIN") {
		t.Errorf("wrong PIN while logged in: %v", err)
	}
	if err := open.Close(); err != nil {
		t.Fatal(err)
	}

	// The PIN can come from Options when the URI has none; every token
	// attribute given must match.
	u, err := ParsePKCS11URI(tok.URI("ca"))
	if err != nil {
		t.Fatal(err)
	}
	u.PINSource = ""
	u.Manufacturer = "SoftHSM project"
	s, c, err := Load(ctx, u.String(), Options{PIN: PassphraseFromFile(tok.PINFile)})
	if err != nil {
		t.Fatalf("PIN from Options: %v", err)
	}
	closeAtEnd(t, c)
	if got, _ := ca.KeyTypeOf(s.Public()); got != ca.P384 {
		t.Fatalf("loaded a %s key", got)
	}
}

func TestPKCS11GenerateByID(t *testing.T) {
	ctx := context.Background()
	tok := hsmtest.NewToken(t, "estd")
	uri := "pkcs11:token=estd;id=%CA%FE?module-path=" + tok.Module + "&pin-source=" + tok.PINFile
	gen, c, err := Generate(ctx, uri, ca.P256, Options{})
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, c)
	s, c2, err := Load(ctx, uri, Options{})
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, c2)
	if !samePublic(s.Public(), gen.Public()) {
		t.Fatal("another key")
	}
	// Neither the id nor the label of an existing key may be reused.
	for _, dup := range []string{
		strings.Replace(uri, "id=%CA%FE", "id=%CA%FE;object=new", 1),
	} {
		if _, _, err := Generate(ctx, dup, ca.P256, Options{}); err == nil || !strings.Contains(err.Error(), "already has a key with id=cafe") {
			t.Errorf("%s: %v", dup, err)
		}
	}
	_, c3, err := Generate(ctx, strings.Replace(uri, "id=%CA%FE", "object=labelled", 1), ca.P256, Options{})
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, c3)
	if _, _, err := Generate(ctx, strings.Replace(uri, "id=%CA%FE", "id=%01;object=labelled", 1), ca.P256, Options{}); err == nil || !strings.Contains(err.Error(), "already has a key with object=labelled") {
		t.Errorf("reused label: %v", err)
	}
}

// busyToken is a token key whose every signature finds no free session.
type busyToken struct{ crypto.Signer }

func (busyToken) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, pool.ErrTimeout
}
func (busyToken) Delete() error { return nil }

// hungToken is a token key whose signatures wait until release is closed.
type hungToken struct {
	crypto.Signer
	release chan struct{}
}

func (h hungToken) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	<-h.release
	return h.Signer.Sign(r, digest, opts)
}
func (hungToken) Delete() error { return nil }

// TestPKCS11SignTimeout: a token that stops answering in the middle of a
// signature makes it fail as unavailable within SignTimeout instead of
// holding the request; a token that answers signs as before.
func TestPKCS11SignTimeout(t *testing.T) {
	saved := SignTimeout
	SignTimeout = 50 * time.Millisecond
	t.Cleanup(func() { SignTimeout = saved })
	key, _ := ca.GenerateKey(ca.P256)
	hung := hungToken{key, make(chan struct{})}
	defer close(hung.release)
	digest := make([]byte, 32)
	start := time.Now()
	_, err := tokenSigner{hung}.Sign(rand.Reader, digest, crypto.SHA256)
	if est.KindOf(err) != est.ErrUnavailable || !strings.Contains(err.Error(), "did not sign within") {
		t.Fatalf("signing with a hung token: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the hung signature held the caller %v", d)
	}
	answering := hungToken{key, make(chan struct{})}
	close(answering.release)
	sig, err := tokenSigner{answering}.Sign(rand.Reader, digest, crypto.SHA256)
	if err != nil || !ecdsa.VerifyASN1(key.Public().(*ecdsa.PublicKey), digest, sig) {
		t.Fatalf("signing with an answering token: %v", err)
	}
}

// TestPKCS11SessionWait: a signature that finds no free session of the
// token within SessionWait fails as unavailable (503, try again), not as an
// internal error; and SessionWait reaches crypto11.
func TestPKCS11SessionWait(t *testing.T) {
	key, _ := ca.GenerateKey(ca.P256)
	now := time.Now()
	root, err := ca.NewRoot(key, pkix.Name{CommonName: "Busy Root"}, now, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.New(root, tokenSigner{busyToken{key}}, []*x509.Certificate{root})
	if err != nil {
		t.Fatal(err)
	}
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"device.example"}}, leafKey)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := x509.ParseCertificateRequest(der)
	profile := &ca.Profile{Validity: time.Hour, KeyTypes: []ca.KeyType{ca.P256}, SANs: []string{"dns"}}
	_, err = c.Issue(context.Background(), req, profile, auth.Identity{})
	if est.KindOf(err) != est.ErrUnavailable {
		t.Fatalf("issuing with a busy token: %v (kind %v), want ErrUnavailable", err, est.KindOf(err))
	}

	// With no time to wait at all, even finding the key finds no session.
	tok := hsmtest.NewToken(t, "estd")
	_, closer, err := Generate(context.Background(), tok.URI("ca"), ca.P256, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := closer.Close(); err != nil {
		t.Fatal(err)
	}
	saved := SessionWait
	SessionWait = time.Nanosecond
	t.Cleanup(func() { SessionWait = saved })
	if _, closer, err := Load(context.Background(), tok.URI("ca"), Options{}); err == nil {
		closer.Close()
		t.Fatal("loaded a key without waiting for a session: SessionWait does not reach crypto11")
	} else if !strings.Contains(err.Error(), pool.ErrTimeout.Error()) {
		t.Fatalf("Load with no session wait: %v, want %v", err, pool.ErrTimeout)
	}
}
