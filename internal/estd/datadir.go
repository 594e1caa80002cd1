package estd

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/ca/keys"
	"github.com/estkit/estkit/internal/fsutil"
	"github.com/estkit/estkit/internal/pemutil"
)

// Files in the data directory.
const (
	RootCertFile    = "root-ca.pem"
	RootKeyFile     = "root-ca.key"
	IssuingCertFile = "issuing-ca.pem"
	IssuingKeyFile  = "issuing-ca.key"
	TLSCertFile     = "tls-server.pem"
	TLSKeyFile      = "tls-server.key"
	DBFile          = "estd.db"
	UsersFile       = "users"
	// AdminUsersFile holds the admin dashboard's users, apart from EST users.
	AdminUsersFile = "admin-users"
)

// Lifetimes of what estd creates on first start.
const (
	rootValidity    = 20 * 365 * 24 * time.Hour
	issuingValidity = 10 * 365 * 24 * time.Hour
	tlsValidity     = 365 * 24 * time.Hour
	// tlsRenewBefore renews the TLS server certificate at start when it has
	// less than this left.
	tlsRenewBefore = 30 * 24 * time.Hour
)

// BootstrapUser is the user created on first start.
const BootstrapUser = "est"

// loadOrCreateCA returns the root and issuing CA of dir, creating them when
// the directory has none. created reports whether they were created now.
func loadOrCreateCA(ctx context.Context, dir string, kt ca.KeyType, ko KeyOptions, now time.Time, logger *slog.Logger) (root *x509.Certificate, issuing *ca.CA, created bool, closer io.Closer, err error) {
	rootPath := filepath.Join(dir, RootCertFile)
	if _, err := os.Stat(rootPath); errors.Is(err, fs.ErrNotExist) {
		if ko.Ref != "" {
			return nil, nil, false, nil, fmt.Errorf("no %s in %s for the configured CA key; create the CA with 'estd ca init'", RootCertFile, dir)
		}
		if err := createCA(dir, kt, now); err != nil {
			return nil, nil, false, nil, err
		}
		created = true
	}
	root, err = readCert(rootPath)
	if err != nil {
		return nil, nil, false, nil, err
	}
	cert, err := readCert(filepath.Join(dir, IssuingCertFile))
	if err != nil {
		return nil, nil, false, nil, err
	}
	if err := cert.CheckSignatureFrom(root); err != nil {
		return nil, nil, false, nil, fmt.Errorf("%s is not signed by %s: %w", IssuingCertFile, RootCertFile, err)
	}
	key, closer, err := loadIssuingKey(ctx, dir, ko, logger)
	if err != nil {
		return nil, nil, false, nil, fmt.Errorf("issuing CA key: %w", err)
	}
	issuing, err = ca.New(cert, key, []*x509.Certificate{cert, root})
	if err != nil {
		if closer != nil {
			closer.Close()
		}
		if !est.SamePublicKey(key.Public(), cert.PublicKey) {
			if ko.Ref != "" {
				err = fmt.Errorf("%w: the key given by ca_key (-ca-key) is not the issuing CA's; after 'estd ca rollover' the new key is in %s (or %s): remove ca_key, or point it at the new key", err, IssuingKeyFile, IssuingKeyRefFile)
			} else {
				err = fmt.Errorf("%w: a rollover may have been interrupted; run 'estd ca rollover' again, which takes the key back from its retired copy", err)
			}
		}
		return nil, nil, false, nil, err
	}
	return root, issuing, created, closer, nil
}

// createCA makes a root and an issuing CA in dir. The root key is kept (mode
// 0600) so the issuing CA can be renewed; an operator who wants it offline can
// move it away once the issuing CA exists.
func createCA(dir string, kt ca.KeyType, now time.Time) error {
	for _, f := range []string{RootKeyFile, IssuingCertFile, IssuingKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return fmt.Errorf("%s exists but %s does not: refusing to create a new CA over a partial one", f, RootCertFile)
		}
	}
	host, _ := os.Hostname()
	org := []string{"estkit"}
	rootKey, err := ca.GenerateKey(kt)
	if err != nil {
		return err
	}
	root, err := ca.NewRoot(rootKey, pkix.Name{Organization: org, CommonName: "estd Root CA " + host}, now.Add(-time.Hour), rootValidity)
	if err != nil {
		return err
	}
	subKey, err := ca.GenerateKey(kt)
	if err != nil {
		return err
	}
	sub, err := ca.NewSubCA(root, rootKey, subKey.Public(), pkix.Name{Organization: org, CommonName: "estd Issuing CA " + host}, now.Add(-time.Hour), issuingValidity)
	if err != nil {
		return err
	}
	// Keys first, certificates last: a present certificate means its key is there.
	if err := writeKey(filepath.Join(dir, RootKeyFile), rootKey); err != nil {
		return err
	}
	if err := writeKey(filepath.Join(dir, IssuingKeyFile), subKey); err != nil {
		return err
	}
	if err := writeCerts(filepath.Join(dir, IssuingCertFile), sub); err != nil {
		return err
	}
	return writeCerts(filepath.Join(dir, RootCertFile), root)
}

// tlsNames returns the names the TLS server certificate must carry.
func tlsNames(extra []string) (dns []string, ips []net.IP) {
	dns = []string{"localhost"}
	ips = []net.IP{net.IPv4(127, 0, 0, 1).To4(), net.IPv6loopback}
	for _, h := range extra {
		if ip := net.ParseIP(h); ip != nil {
			if v4 := ip.To4(); v4 != nil {
				ip = v4
			}
			if !slices.ContainsFunc(ips, ip.Equal) {
				ips = append(ips, ip)
			}
		} else if h != "" && !slices.Contains(dns, strings.ToLower(h)) {
			dns = append(dns, strings.ToLower(h))
		}
	}
	return dns, ips
}

// tlsCertCurrent reports whether the TLS certificate in dir exists, was issued
// by issuing, names exactly dns and ips, is valid already (it is not if the
// clock was ahead when it was issued), and has more than tlsRenewBefore left.
func tlsCertCurrent(dir string, issuing *x509.Certificate, dns []string, ips []net.IP, now time.Time) bool {
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, TLSCertFile), filepath.Join(dir, TLSKeyFile))
	if err != nil || pair.Leaf == nil {
		return false
	}
	leaf := pair.Leaf
	if leaf.CheckSignatureFrom(issuing) != nil || now.Add(tlsRenewBefore).After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		return false
	}
	// Exactly the names asked for: a name dropped from -hostname leaves too.
	if len(leaf.DNSNames) != len(dns) || len(leaf.IPAddresses) != len(ips) {
		return false
	}
	for _, d := range dns {
		if !slices.Contains(leaf.DNSNames, d) {
			return false
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

// newPassword returns a random password of 24 URL-safe characters (144 bits).
func newPassword() (string, error) {
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func writeKey(path string, key crypto.Signer) error {
	b, err := keys.MarshalPEM(key)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, b, 0o600)
}

func writeCerts(path string, certs ...*x509.Certificate) error {
	return fsutil.WriteFileAtomic(path, pemutil.EncodeCerts(certs...), 0o644)
}

func readCert(path string) (*x509.Certificate, error) {
	certs, err := pemutil.ReadCerts(path)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}
