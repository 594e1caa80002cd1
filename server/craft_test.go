package server_test

// Builders of hostile input for hostile_test.go: hand-made PKCS#10 requests
// (keys and structures crypto/x509 will not make), raw HTTP/1.1 requests
// sent byte for byte over TLS, and raw TLS ClientHellos.

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/estkit/estkit/internal/estdtest"
)

var (
	oidSHA256WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
)

// csrInfo is a CertificationRequestInfo (RFC 2986 4.1) with every part raw.
type csrInfo struct {
	Version    int
	Subject    asn1.RawValue
	SPKI       asn1.RawValue
	Attributes []asn1.RawValue `asn1:"tag:0"`
}

// craftCSR returns a DER CertificationRequest of subject, spki (DER
// SubjectPublicKeyInfo) and attributes, signed by sign over the DER of the
// CertificationRequestInfo with the algorithm alg.
func craftCSR(t testing.TB, subject, spki []byte, attrs []asn1.RawValue, alg asn1.ObjectIdentifier, sign func(info []byte) []byte) []byte {
	t.Helper()
	if attrs == nil {
		attrs = []asn1.RawValue{}
	}
	info, err := asn1.Marshal(csrInfo{Subject: asn1.RawValue{FullBytes: subject}, SPKI: asn1.RawValue{FullBytes: spki}, Attributes: attrs})
	if err != nil {
		t.Fatal(err)
	}
	sig := sign(info)
	der, err := asn1.Marshal(struct {
		Info      asn1.RawValue
		Algorithm pkix.AlgorithmIdentifier
		Signature asn1.BitString
	}{asn1.RawValue{FullBytes: info}, pkix.AlgorithmIdentifier{Algorithm: alg}, asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// ecdsaSigner signs a CertificationRequestInfo with key (ecdsa-with-SHA256).
func ecdsaSigner(t testing.TB, key *ecdsa.PrivateKey) func([]byte) []byte {
	return func(info []byte) []byte {
		d := sha256.Sum256(info)
		sig, err := ecdsa.SignASN1(rand.Reader, key, d[:])
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
}

// attribute returns the DER of an Attribute (RFC 2986) of type oid with values.
func attribute(t testing.TB, oid asn1.ObjectIdentifier, values ...any) asn1.RawValue {
	t.Helper()
	var raw []asn1.RawValue
	for _, v := range values {
		b, err := asn1.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, asn1.RawValue{FullBytes: b})
	}
	b, err := asn1.Marshal(struct {
		Type   asn1.ObjectIdentifier
		Values []asn1.RawValue `asn1:"set"`
	}{oid, raw})
	if err != nil {
		t.Fatal(err)
	}
	return asn1.RawValue{FullBytes: b}
}

// hugeRSA is an RSA public key with a 16384-bit modulus that can sign: the
// modulus is a product of 32 primes of about 512 bits, so it takes
// milliseconds to make (a real two-prime 16384-bit key takes minutes) and a
// PKCS#1 v1.5 signature by it verifies like any other.
type hugeRSA struct {
	N      *big.Int
	primes []*big.Int
}

const hugeRSABits = 16384

func newHugeRSA(t testing.TB) *hugeRSA {
	t.Helper()
	e := big.NewInt(65537)
	one := big.NewInt(1)
	prime := func(bits int) *big.Int {
		for {
			p, err := rand.Prime(rand.Reader, bits)
			if err != nil {
				t.Fatal(err)
			}
			if new(big.Int).GCD(nil, nil, e, new(big.Int).Sub(p, one)).Cmp(one) == 0 {
				return p
			}
		}
	}
	k := &hugeRSA{N: big.NewInt(1)}
	for range 31 {
		p := prime(512)
		k.primes = append(k.primes, p)
		k.N.Mul(k.N, p)
	}
	// The last prime brings the modulus to exactly hugeRSABits bits.
	rest := hugeRSABits - k.N.BitLen()
	for {
		p := prime(rest + 1)
		if n := new(big.Int).Mul(k.N, p); n.BitLen() == hugeRSABits {
			k.N = n
			k.primes = append(k.primes, p)
			return k
		}
		p = prime(rest)
		if n := new(big.Int).Mul(k.N, p); n.BitLen() == hugeRSABits {
			k.N = n
			k.primes = append(k.primes, p)
			return k
		}
	}
}

// spki returns the DER SubjectPublicKeyInfo.
func (k *hugeRSA) spki(t testing.TB) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: k.N, E: 65537})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// sign signs info with sha256WithRSAEncryption (PKCS#1 v1.5), by the
// Chinese remainder theorem over the primes.
func (k *hugeRSA) sign(info []byte) []byte {
	d := sha256.Sum256(info)
	prefix := []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}
	size := hugeRSABits / 8
	em := make([]byte, size)
	em[1] = 1
	t := append(prefix, d[:]...)
	for i := 2; i < size-len(t)-1; i++ {
		em[i] = 0xff
	}
	copy(em[size-len(t):], t)
	m := new(big.Int).SetBytes(em)
	e, one := big.NewInt(65537), big.NewInt(1)
	s := new(big.Int)
	for _, p := range k.primes {
		dp := new(big.Int).ModInverse(e, new(big.Int).Sub(p, one))
		sp := new(big.Int).Exp(new(big.Int).Mod(m, p), dp, p)
		mp := new(big.Int).Div(k.N, p)
		inv := new(big.Int).ModInverse(new(big.Int).Mod(mp, p), p)
		s.Add(s, sp.Mul(sp, mp).Mul(sp, inv))
	}
	s.Mod(s, k.N)
	return s.FillBytes(make([]byte, size))
}

// pemFile reads the first PEM block of a file under testdata.
func pemFile(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM block", name)
	}
	return b.Bytes
}

// rawExchange sends req byte for byte over a new TLS connection speaking
// HTTP/1.1 and reads the first response. closeWrite sends close_notify after
// the request, so the server sees the end of the body where it ends. The
// request is written while the response is read: a server that answers
// before reading everything (431, 413) must not make the test hang.
func rawExchange(t testing.TB, s *estdtest.Server, certs []tls.Certificate, method string, req []byte, closeWrite bool) (*http.Response, []byte, error) {
	t.Helper()
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{RootCAs: s.Roots(), Certificates: certs, NextProtos: []string{"http/1.1"}}}
	c, err := d.Dial("tcp", s.Addr)
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	tc := c.(*tls.Conn)
	go func() {
		if _, err := tc.Write(req); err == nil && closeWrite {
			tc.CloseWrite()
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// TLS record and handshake bytes for raw ClientHellos.
const (
	recordHandshake = 22
	recordAlert     = 21
	alertHandshake  = 40
	alertProtocol   = 70
	versionSSL30    = 0x0300
	versionTLS10    = 0x0301
	versionTLS11    = 0x0302
	versionTLS12    = 0x0303
)

// clientHello returns a TLS record holding a ClientHello of clientVersion
// offering suites, with the extensions a TLS 1.2 ECDHE handshake needs when
// exts is set.
func clientHello(recordVersion, clientVersion uint16, suites []uint16, exts bool) []byte {
	u16 := func(b []byte, v int) []byte { return binary.BigEndian.AppendUint16(b, uint16(v)) }
	var h []byte
	h = u16(h, int(clientVersion))
	random := make([]byte, 32)
	rand.Read(random)
	h = append(h, random...)
	h = append(h, 0) // no session ID
	h = u16(h, 2*len(suites))
	for _, s := range suites {
		h = u16(h, int(s))
	}
	h = append(h, 1, 0) // compression: null
	if exts {
		var e []byte
		ext := func(typ int, body []byte) {
			e = u16(e, typ)
			e = u16(e, len(body))
			e = append(e, body...)
		}
		ext(0x000a, []byte{0, 4, 0x00, 0x1d, 0x00, 0x17})             // supported_groups: x25519, secp256r1
		ext(0x000b, []byte{1, 0})                                     // ec_point_formats: uncompressed
		ext(0x000d, []byte{0, 6, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01}) // signature_algorithms
		ext(0xff01, []byte{0})                                        // renegotiation_info
		h = u16(h, len(e))
		h = append(h, e...)
	}
	hs := append([]byte{1, byte(len(h) >> 16), byte(len(h) >> 8), byte(len(h))}, h...)
	rec := []byte{recordHandshake}
	rec = u16(rec, int(recordVersion))
	rec = u16(rec, len(hs))
	return append(rec, hs...)
}

// helloAnswer sends hello on a new TCP connection and returns the type of
// the first record the server answers with and, for an alert, its
// description; 0, 0 when the server closes without a record.
func helloAnswer(t testing.TB, addr string, hello []byte) (recordType, alert byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(hello); err != nil {
		return 0, 0
	}
	var hdr [7]byte
	n, err := io.ReadFull(c, hdr[:])
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server neither answered nor closed the connection")
	}
	if n == 0 {
		return 0, 0
	}
	if hdr[0] == recordAlert && n == 7 {
		return hdr[0], hdr[6]
	}
	return hdr[0], 0
}

// requestBytes returns an HTTP/1.1 request: the request line, Host (unless ""), the
// header lines and, unless framing is given, a Content-Length for body;
// with framing, its lines replace Content-Length and body is sent as is.
func requestBytes(method, target, host string, header []string, framing []string, body []byte) []byte {
	var b bytes.Buffer
	b.WriteString(method + " " + target + " HTTP/1.1\r\n")
	if host != "" {
		b.WriteString("Host: " + host + "\r\n")
	}
	for _, h := range header {
		b.WriteString(h + "\r\n")
	}
	if framing == nil {
		if body != nil || method == "POST" {
			b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
		}
	} else {
		for _, h := range framing {
			b.WriteString(h + "\r\n")
		}
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}
