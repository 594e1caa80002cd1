package conformance_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/conformance"
)

// brokenCase: check ID fails against a server broken as b, with want in its reason.
type brokenCase struct {
	check, server string
	b             broken
	want          string
}

// brokenCases shows every check failing against at least one server that
// gets what it checks wrong, so that no check can pass vacuously.
func brokenCases() []brokenCase {
	return []brokenCase{
		{"cacerts.chain", "returns the issuing CA with an unrelated root", broken{wrap: when(isOp(est.OpCACerts),
			func(f *fixture, _ http.Handler, w http.ResponseWriter, _ *http.Request) {
				writeCerts(w, f.d.CA.Cert, f.otherRoot.Cert)
			})}, "does not chain to a root"},
		{"cacerts.chain", "includes a device certificate", broken{wrap: when(isOp(est.OpCACerts),
			func(f *fixture, _ http.Handler, w http.ResponseWriter, _ *http.Request) {
				writeCerts(w, f.d.CA.Cert, f.d.Root, f.devCert)
			})}, "not a CA certificate"},
		{"cacerts.anchor", "returns another root", broken{wrap: when(isOp(est.OpCACerts),
			func(f *fixture, _ http.Handler, w http.ResponseWriter, _ *http.Request) {
				writeCerts(w, f.otherRoot.Cert)
			})}, "not the anchor"},
		{"format.cacerts", "returns PEM instead of PKCS#7", broken{wrap: when(isOp(est.OpCACerts),
			func(f *fixture, _ http.Handler, w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", est.MediaPKCS7)
				for _, c := range []*x509.Certificate{f.d.CA.Cert, f.d.Root} {
					pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
				}
			})}, "PEM"},
		{"format.cacerts", "returns a signed PKCS#7 type", broken{wrap: when(isOp(est.OpCACerts),
			func(f *fixture, next http.Handler, w http.ResponseWriter, r *http.Request) {
				rec := record(next, r)
				rec.Header().Set("Content-Type", "application/pkcs7-signature")
				replay(w, rec)
			})}, "Content-Type"},

		{"enroll.rsa.client.manufacturer", "refuses RSA keys", broken{wrap: when(
			func(r *http.Request) bool {
				req := csrOf(r)
				return req != nil && req.PublicKeyAlgorithm == x509.RSA
			}, refuse(400, "RSA keys are not accepted"))}, "RSA keys are not accepted"},
		{"enroll.ecdsa.client.manufacturer", "refuses manufacturer certificates", broken{wrap: whenPeer(func(f *fixture, c *x509.Certificate) bool { return verifies(c, f.manuPool) },
			refuse(403, "manufacturer certificates are not accepted"))}, "403"},
		{"enroll.rsa.server.manufacturer", "drops the SANs", broken{wrap: reissue(enrollOps,
			func(_ *fixture, r *http.Request, tmpl *x509.Certificate, pub crypto.PublicKey) crypto.PublicKey {
				tmpl.DNSNames = nil
				return pub
			})}, "DNS names"},
		{"enroll.ecdsa.server.manufacturer", "serves the client profile under the server label", broken{wrap: when(
			func(r *http.Request) bool { l, _ := opOf(r); return l == conformance.DefaultServerLabel },
			func(_ *fixture, next http.Handler, w http.ResponseWriter, r *http.Request) {
				next.ServeHTTP(w, withLabel(r, conformance.DefaultClientLabel))
			})}, "serverAuth missing"},
		{"enroll.rsa.client.issued", "forgets the certificates it issued", broken{wrap: whenPeer(func(f *fixture, c *x509.Certificate) bool { return verifies(c, f.issuingPool) },
			refuse(403, "client certificate refused: not on record"))}, "not on record"},
		{"enroll.ecdsa.client.issued", "certifies another key", broken{wrap: reissue(enrollOps,
			func(f *fixture, r *http.Request, _ *x509.Certificate, pub crypto.PublicKey) crypto.PublicKey {
				if c := peer(r); c != nil && verifies(c, f.issuingPool) {
					return newPub()
				}
				return nil
			})}, "request's key"},
		{"enroll.rsa.server.issued", "issues CA certificates", broken{wrap: reissue(enrollOps,
			func(f *fixture, r *http.Request, tmpl *x509.Certificate, pub crypto.PublicKey) crypto.PublicKey {
				if c := peer(r); c != nil && verifies(c, f.issuingPool) {
					tmpl.IsCA, tmpl.KeyUsage = true, tmpl.KeyUsage|x509.KeyUsageCertSign
					return pub
				}
				return nil
			})}, "CA certificate"},
		{"enroll.ecdsa.server.issued", "issues expired certificates", broken{wrap: reissue(enrollOps,
			func(f *fixture, r *http.Request, tmpl *x509.Certificate, pub crypto.PublicKey) crypto.PublicKey {
				if c := peer(r); c != nil && verifies(c, f.issuingPool) {
					tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)
					return pub
				}
				return nil
			})}, "does not verify"},
		{"enroll.basic", "refuses HTTP Basic", broken{wrap: when(func(r *http.Request) bool { _, _, ok := r.BasicAuth(); return ok },
			refuse(401, "invalid user name or password"))}, "401"},
		{"enroll.two-keys", "revokes a subject's earlier certificates", broken{wrap: revokeEarlier}, "no longer accepts the ECDSA certificate"},
		{"enroll.two-keys", "lists a subject's earlier certificates on its CRL", broken{wrap: supersede(false)}, "listed on the CRL"},
		{"enroll.two-keys", "says so by OCSP", broken{wrap: supersede(true)}, "says revoked"},

		{"reenroll.renew", "changes the subject on renewal", broken{wrap: reissue([]est.Operation{est.OpSimpleReenroll},
			func(_ *fixture, _ *http.Request, tmpl *x509.Certificate, pub crypto.PublicKey) crypto.PublicKey {
				tmpl.RawSubject, tmpl.Subject = nil, pkix.Name{CommonName: "renamed"}
				return pub
			})}, "subject"},
		{"reenroll.renew", "drops the subjectAltName on renewal", broken{wrap: reissue([]est.Operation{est.OpSimpleReenroll},
			func(_ *fixture, _ *http.Request, tmpl *x509.Certificate, pub crypto.PublicKey) crypto.PublicKey {
				tmpl.DNSNames = nil
				return pub
			})}, "subjectAltName"},
		{"reenroll.rekey", "certifies the old key on rekey", broken{wrap: reissue([]est.Operation{est.OpSimpleReenroll},
			func(_ *fixture, r *http.Request, _ *x509.Certificate, _ crypto.PublicKey) crypto.PublicKey {
				return peer(r).PublicKey
			})}, "request's key"},

		{"format.enroll", "omits the Content-Type", broken{wrap: when(isOp(est.OpSimpleEnroll),
			func(_ *fixture, next http.Handler, w http.ResponseWriter, r *http.Request) {
				rec := record(next, r)
				rec.Header()["Content-Type"] = nil // and no sniffing
				replay(w, rec)
			})}, "no Content-Type"},
		{"format.enroll", "adds the chain", broken{wrap: when(isOp(est.OpSimpleEnroll),
			func(f *fixture, next http.Handler, w http.ResponseWriter, r *http.Request) {
				writeCerts(w, issuedIn(record(next, r)), f.d.CA.Cert, f.d.Root)
			})}, "want only the one issued"},
		{"format.base64", "refuses base64 with line breaks", broken{wrap: when(
			func(r *http.Request) bool {
				_, op := opOf(r)
				return op == est.OpSimpleEnroll && bytes.ContainsAny(readBody(r), "\r\n")
			},
			refuse(400, "malformed base64"))}, "with line breaks"},
		{"format.csrattrs", "returns something else as CsrAttrs", broken{wrap: when(isOp(est.OpCSRAttrs),
			func(_ *fixture, _ http.Handler, w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", est.MediaCSRAttrs)
				w.Write(est.EncodeBase64([]byte{0x30, 0x03, 0x02, 0x01, 0x05}))
			})}, "unexpected element"},
		{"format.csrattrs", "answers 200 with an empty body", broken{wrap: when(isOp(est.OpCSRAttrs),
			func(_ *fixture, _ http.Handler, w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", est.MediaCSRAttrs)
			})}, "empty"},
		{"format.serverkeygen", "returns a key that does not match the certificate", broken{wrap: when(isOp(est.OpServerKeyGen),
			func(_ *fixture, next http.Handler, w http.ResponseWriter, r *http.Request) {
				rec := record(next, r)
				skg, err := est.ParseServerKeyGen(rec.Header().Get("Content-Type"), rec.Body.Bytes())
				if err != nil {
					replay(w, rec)
					return
				}
				skg.Key, _ = x509.MarshalPKCS8PrivateKey(newSigner())
				ct, body, _ := est.WriteServerKeyGen(skg)
				w.Header().Set("Content-Type", ct)
				w.Write(body)
			})}, "does not match"},
		{"format.serverkeygen", "returns the key as SEC 1 instead of PKCS#8", broken{wrap: when(isOp(est.OpServerKeyGen),
			func(_ *fixture, next http.Handler, w http.ResponseWriter, r *http.Request) {
				rec := record(next, r)
				skg, err := est.ParseServerKeyGen(rec.Header().Get("Content-Type"), rec.Body.Bytes())
				if err != nil {
					replay(w, rec)
					return
				}
				k, _ := x509.ParsePKCS8PrivateKey(skg.Key)
				skg.Key, _ = x509.MarshalECPrivateKey(k.(*ecdsa.PrivateKey))
				ct, body, _ := est.WriteServerKeyGen(skg)
				w.Header().Set("Content-Type", ct)
				w.Write(body)
			})}, "not a PKCS#8"},

		{"auth.rogue", "accepts any client certificate", broken{wrap: acceptAnyCert}, "it was issued"},
		{"auth.expired", "accepts any client certificate", broken{wrap: acceptAnyCert}, "it was issued"},
		{"auth.none", "lets anonymous clients enroll", broken{wrap: when(
			func(r *http.Request) bool { _, _, basic := r.BasicAuth(); return peer(r) == nil && !basic },
			func(f *fixture, next http.Handler, w http.ResponseWriter, r *http.Request) {
				next.ServeHTTP(w, asBasic(f, r))
			})}, "it was issued"},
		{"auth.none", "answers 403 instead of 401", broken{wrap: when(
			func(r *http.Request) bool {
				_, op := opOf(r)
				_, _, basic := r.BasicAuth()
				return op == est.OpSimpleEnroll && peer(r) == nil && !basic
			},
			refuse(403, "forbidden"))}, "want 401"},
		{"auth.none", "answers 401 without a challenge", broken{wrap: when(
			func(r *http.Request) bool {
				_, _, basic := r.BasicAuth()
				return peer(r) == nil && !basic
			},
			func(_ *fixture, next http.Handler, w http.ResponseWriter, r *http.Request) {
				rec := record(next, r)
				rec.Header().Del("WWW-Authenticate")
				replay(w, rec)
			})}, "without a WWW-Authenticate challenge"},
		{"auth.none", "stops serving after refusing a client", broken{wrap: crashAfter(func(rec *httptest.ResponseRecorder) bool { return rec.Code == 401 })}, "stopped serving"},
		{"auth.wrong-password", "accepts any password", broken{wrap: when(
			func(r *http.Request) bool { _, _, basic := r.BasicAuth(); return basic },
			func(f *fixture, next http.Handler, w http.ResponseWriter, r *http.Request) {
				next.ServeHTTP(w, asBasic(f, r))
			})}, "it was issued"},

		{"tls.version-1.0", "serves TLS 1.0 and 1.1", broken{tls: oldTLS}, "negotiated TLS 1.0"},
		{"tls.version-1.1", "serves TLS 1.0 and 1.1", broken{tls: oldTLS}, "negotiated TLS 1.1"},
		{"tls.suites-cbc", "accepts ECDHE CBC suites", broken{tls: addSuites(tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA)}, "negotiated TLS 1.2 with TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"},
		{"tls.suites-cbc", "accepts no TLS client at all", broken{tls: func(_ *testing.T, _ *fixture, cfg *tls.Config) {
			cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, fmt.Errorf("no certificate") }
		}}, "cannot connect either"},
		{"tls.suites-rsa-kex", "has an RSA key and accepts RSA key exchange", broken{tls: rsaServer(tls.TLS_RSA_WITH_AES_128_GCM_SHA256)}, "negotiated TLS 1.2 with TLS_RSA_WITH_AES_128_GCM_SHA256"},
		{"tls.suites-weak-cipher", "has an RSA key and accepts 3DES", broken{tls: rsaServer(tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA)}, "negotiated TLS 1.2 with TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"},
		{"tls.plain-http", "also serves plain HTTP on its port", broken{plainHTTP: true}, "EST is served over plain HTTP"},

		{"reenroll.other-subject", "does not compare names on reenrollment", broken{wrap: reenrollAsEnroll}, "it was issued"},
		{"reenroll.other-san", "does not compare names on reenrollment", broken{wrap: reenrollAsEnroll}, "it was issued"},
		{"reenroll.other-subject", "refuses every reenrollment", broken{wrap: when(isOp(est.OpSimpleReenroll), refuse(403, "no"))}, "proves nothing"},

		{"bad.base64", "decodes base64 leniently", broken{wrap: when(isOp(est.OpSimpleEnroll),
			func(_ *fixture, next http.Handler, w http.ResponseWriter, r *http.Request) {
				clean := bytes.Map(func(c rune) rune {
					if strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", c) {
						return c
					}
					return -1
				}, readBody(r))
				r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(clean)), int64(len(clean))
				next.ServeHTTP(w, r)
			})}, "it was issued"},
		{"bad.base64", "stops serving after malformed input", broken{wrap: crashAfter(func(rec *httptest.ResponseRecorder) bool { return rec.Code == 400 })}, "stopped serving"},
		{"bad.signature", "does not verify CSR signatures", broken{wrap: when(
			func(r *http.Request) bool { req := csrOf(r); return req != nil && req.CheckSignature() != nil },
			func(f *fixture, _ http.Handler, w http.ResponseWriter, r *http.Request) {
				writeCerts(w, f.forgeFor(csrOf(r)))
			})}, "it was issued"},
		{"bad.content-type", "ignores the Content-Type", broken{wrap: when(isOp(est.OpSimpleEnroll),
			func(_ *fixture, next http.Handler, w http.ResponseWriter, r *http.Request) {
				r.Header.Set("Content-Type", est.MediaPKCS10)
				next.ServeHTTP(w, r)
			})}, "it was issued"},
		{"bad.content-type", "refuses every enrollment", broken{wrap: when(isOp(est.OpSimpleEnroll), refuse(503, "down for maintenance"))}, "control"},
		{"bad.huge-body", "has no size limit", broken{wrap: when(
			func(r *http.Request) bool {
				_, op := opOf(r)
				return op == est.OpSimpleEnroll && len(readBody(r)) > 64<<10
			},
			func(f *fixture, _ http.Handler, w http.ResponseWriter, r *http.Request) {
				writeCerts(w, f.forgeFor(csrOf(r)))
			})}, "it was issued"},
	}
}

// TestEveryCheckFailsAgainstABrokenServer runs each check alone against a
// server broken in what it checks: it must FAIL, for the reason expected.
func TestEveryCheckFailsAgainstABrokenServer(t *testing.T) {
	f := newFixture(t)
	cases := brokenCases()
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.check] = true
	}
	for _, c := range conformance.Checks() {
		if !covered[c.ID] {
			t.Errorf("no broken server shows that check %s can fail", c.ID)
		}
	}
	for _, c := range cases {
		t.Run(c.check+"/"+strings.ReplaceAll(c.server, " ", "_"), func(t *testing.T) {
			addr := f.serve(t, c.b)
			cfg := f.config(addr)
			cfg.Filter = func(ch conformance.Check) bool { return ch.ID == c.check }
			rep, err := conformance.Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Results) != 1 {
				t.Fatalf("ran %d checks, want 1", len(rep.Results))
			}
			r := rep.Results[0]
			if r.Status != conformance.Fail || !strings.Contains(r.Reason, c.want) {
				t.Fatalf("against a server that %s: %s %s, want FAIL mentioning %q", c.server, r.Status, r.Reason, c.want)
			}
			t.Logf("%s: %s", r.Status, r.Reason)
		})
	}
}

// TestHarnessBaseline: the harness serving estd unchanged passes everything,
// so what fails above fails because of the breakage.
func TestHarnessBaseline(t *testing.T) {
	f := newFixture(t)
	rep, err := conformance.Run(context.Background(), f.config(f.serve(t, broken{})))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.Status != conformance.Pass {
			t.Errorf("%s: %s %s", r.ID, r.Status, r.Reason)
		}
	}
}

// whenPeer applies h to requests whose TLS client certificate match accepts.
func whenPeer(match func(f *fixture, c *x509.Certificate) bool, h func(*fixture, http.Handler, http.ResponseWriter, *http.Request)) wrapper {
	return func(t *testing.T, f *fixture, next http.Handler) http.Handler {
		return when(func(r *http.Request) bool {
			_, op := opOf(r)
			c := peer(r)
			return op != est.OpCACerts && c != nil && match(f, c)
		}, h)(t, f, next)
	}
}

// acceptAnyCert treats a client certificate that neither the manufacturer
// CA nor estd's CA issued (or that expired) as if it were good.
func acceptAnyCert(t *testing.T, f *fixture, next http.Handler) http.Handler {
	return whenPeer(func(f *fixture, c *x509.Certificate) bool {
		return !verifies(c, f.manuPool) && !verifies(c, f.issuingPool)
	},
		func(f *fixture, next http.Handler, w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, asBasic(f, r))
		})(t, f, next)
}

// reenrollAsEnroll serves simplereenroll as simpleenroll: no name checks.
func reenrollAsEnroll(t *testing.T, f *fixture, next http.Handler) http.Handler {
	return when(isOp(est.OpSimpleReenroll), func(_ *fixture, next http.Handler, w http.ResponseWriter, r *http.Request) {
		label, _ := opOf(r)
		r2 := r.Clone(r.Context())
		r2.URL.Path = est.Path(label, est.OpSimpleEnroll)
		next.ServeHTTP(w, r2)
	})(t, f, next)
}

// crashAfter stops answering anything once an answer matches.
func crashAfter(trip func(*httptest.ResponseRecorder) bool) wrapper {
	return func(_ *testing.T, _ *fixture, next http.Handler) http.Handler {
		var d dead
		return d.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := record(next, r)
			if trip(rec) {
				d.trip()
			}
			replay(w, rec)
		}))
	}
}

// revokeEarlier revokes, in estd's store, a subject's earlier certificates
// whenever it issues a new one for that subject.
func revokeEarlier(_ *testing.T, f *fixture, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, op := opOf(r)
		if op != est.OpSimpleEnroll {
			next.ServeHTTP(w, r)
			return
		}
		rec := record(next, r)
		if c := issuedIn(rec); c != nil {
			recs, err := f.d.Store.BySubject(r.Context(), c.Subject.String())
			if err != nil {
				panic(err)
			}
			for _, old := range recs {
				if old.Serial.Cmp(c.SerialNumber) != 0 && !old.Revoked {
					if err := f.d.Store.Revoke(r.Context(), old.Serial, 4, time.Now()); err != nil { // superseded
						panic(err)
					}
				}
			}
		}
		replay(w, rec)
	})
}

// supersede re-issues enrolled certificates naming a CRL (or, with
// useOCSP, an OCSP responder) that lists a subject's earlier certificates
// as revoked.
func supersede(useOCSP bool) wrapper {
	return func(t *testing.T, f *fixture, next http.Handler) http.Handler {
		var mu sync.Mutex
		bySubject := map[string][]*big.Int{}
		revoked := func(serial *big.Int) bool {
			mu.Lock()
			defer mu.Unlock()
			for _, serials := range bySubject {
				for _, s := range serials[:len(serials)-1] {
					if s.Cmp(serial) == 0 {
						return true
					}
				}
			}
			return false
		}
		status := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if useOCSP {
				body, _ := io.ReadAll(r.Body)
				req, err := ocsp.ParseRequest(body)
				if err != nil {
					http.Error(w, err.Error(), 400)
					return
				}
				tmpl := ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber, ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour)}
				if revoked(req.SerialNumber) {
					tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = ocsp.Revoked, time.Now().Add(-time.Minute), ocsp.Superseded
				}
				der, err := ocsp.CreateResponse(f.d.CA.Cert, f.d.CA.Cert, tmpl, f.d.CA.Signer)
				if err != nil {
					panic(err)
				}
				w.Header().Set("Content-Type", "application/ocsp-response")
				w.Write(der)
				return
			}
			var entries []x509.RevocationListEntry
			mu.Lock()
			for _, serials := range bySubject {
				for _, s := range serials[:len(serials)-1] {
					entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now().Add(-time.Minute)})
				}
			}
			mu.Unlock()
			der, err := x509.CreateRevocationList(nil, &x509.RevocationList{
				Number: big.NewInt(time.Now().UnixNano()), ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour),
				RevokedCertificateEntries: entries,
			}, f.d.CA.Cert, f.d.CA.Signer)
			if err != nil {
				panic(err)
			}
			w.Write(der)
		}))
		t.Cleanup(status.Close)
		return reissue(enrollOps, func(_ *fixture, _ *http.Request, tmpl *x509.Certificate, pub crypto.PublicKey) crypto.PublicKey {
			if useOCSP {
				tmpl.OCSPServer = []string{status.URL + "/ocsp"}
			} else {
				tmpl.CRLDistributionPoints = []string{status.URL + "/issuing.crl"}
			}
			subj := string(tmpl.RawSubject)
			mu.Lock()
			bySubject[subj] = append(bySubject[subj], tmpl.SerialNumber)
			mu.Unlock()
			return pub
		})(t, f, next)
	}
}

// oldTLS lets TLS 1.0 and 1.1 in, with a CBC suite they can use.
func oldTLS(_ *testing.T, _ *fixture, cfg *tls.Config) {
	cfg.MinVersion = tls.VersionTLS10
	cfg.CipherSuites = append(cfg.CipherSuites, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA)
}

func addSuites(ids ...uint16) func(*testing.T, *fixture, *tls.Config) {
	return func(_ *testing.T, _ *fixture, cfg *tls.Config) {
		cfg.CipherSuites = append(cfg.CipherSuites, ids...)
	}
}

// rsaServer serves an RSA certificate and also accepts the given suites.
func rsaServer(ids ...uint16) func(*testing.T, *fixture, *tls.Config) {
	return func(t *testing.T, f *fixture, cfg *tls.Config) {
		cert := f.rsaTLSCert(t)
		cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }
		cfg.CipherSuites = append(cfg.CipherSuites, ids...)
	}
}

func newSigner() crypto.Signer {
	k, err := ca.GenerateKey(ca.P256)
	if err != nil {
		panic(err)
	}
	return k
}

func newPub() crypto.PublicKey { return newSigner().Public() }
