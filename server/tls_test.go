package server_test

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"

	"github.com/estkit/estkit/internal/testpki"
	"github.com/estkit/estkit/server"
)

// The key exchange a client gets: X25519MLKEM768 when it offers it (the
// default), X25519 when the policy leaves post-quantum out or the client
// does not offer it, never a NIST curve when X25519 is offered.
func TestKeyExchange(t *testing.T) {
	now := time.Now()
	root := testpki.NewRoot(t, "TLS test root", now)
	leaf, key := root.Issue(t, testpki.Leaf{
		CN: "127.0.0.1", IPs: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	tlsCert := testpki.TLSCertificate(leaf, key)
	cert := &tlsCert
	for _, tc := range []struct {
		name   string
		policy server.TLSPolicy
		client []tls.CurveID // nil: crypto/tls's default offer
		want   tls.CurveID
	}{
		{"default, modern client", server.TLSPolicy{}, nil, tls.X25519MLKEM768},
		{"default, classical client", server.TLSPolicy{}, []tls.CurveID{tls.CurveP256, tls.X25519}, tls.X25519},
		{"no post-quantum, modern client", server.TLSPolicy{NoPostQuantum: true}, nil, tls.X25519},
		{"no post-quantum, P-256 only client", server.TLSPolicy{NoPostQuantum: true}, []tls.CurveID{tls.CurveP256}, tls.CurveP256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := server.TLSConfig(tc.policy, func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil })
			ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.(*tls.Conn).Handshake()
				c.Close()
			}()
			roots := x509.NewCertPool()
			roots.AddCert(root.Cert)
			conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, CurvePreferences: tc.client, ServerName: "127.0.0.1"})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if got := conn.ConnectionState().CurveID; got != tc.want {
				t.Errorf("key exchange %v, want %v", got, tc.want)
			}
		})
	}
}
