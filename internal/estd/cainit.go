package estd

import (
	"context"
	"crypto/x509/pkix"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/ca/keys"
	"github.com/estkit/estkit/internal/fsutil"
)

// InitOptions configure InitCA.
type InitOptions struct {
	// HSM is a PKCS#11 URI (RFC 7512) with object=NAME: the issuing CA key is
	// made in that token as NAME and the root key as NAME-root; neither ever
	// leaves it. "" makes key files in the data directory, as a first start does.
	HSM string
	// KeyType of the CA keys; default p256.
	KeyType ca.KeyType
	Logger  *slog.Logger
}

// InitCA creates a root and an issuing CA in dir. With an HSM the keys are
// generated inside the token and the data directory holds only the
// certificates and a reference to the issuing key (IssuingKeyRefFile).
func InitCA(ctx context.Context, dir string, o InitOptions) error {
	if o.KeyType == "" {
		o.KeyType = ca.P256
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, RootCertFile)); err == nil {
		return fmt.Errorf("%s already holds a CA (%s); refusing to replace it", dir, RootCertFile)
	} else if !os.IsNotExist(err) {
		return err
	}
	now := time.Now()
	if o.HSM == "" {
		return createCA(dir, o.KeyType, now)
	}
	u, err := keys.ParsePKCS11URI(o.HSM)
	if err != nil {
		return err
	}
	if u.Object == "" {
		return fmt.Errorf("the PKCS#11 URI needs object=NAME: the issuing key is made as NAME, the root key as NAME-root")
	}
	rootURI, err := renameObject(o.HSM, u.Object+"-root")
	if err != nil {
		return err
	}
	opts := keys.Options{Logger: o.Logger}
	rootKey, rootCloser, err := keys.Generate(ctx, rootURI, o.KeyType, opts)
	if err != nil {
		return fmt.Errorf("root key: %w", err)
	}
	defer rootCloser.Close()
	subKey, subCloser, err := keys.Generate(ctx, o.HSM, o.KeyType, opts)
	if err != nil {
		return fmt.Errorf("issuing key: %w", err)
	}
	defer subCloser.Close()
	host, _ := os.Hostname()
	org := []string{"estkit"}
	root, err := ca.NewRoot(rootKey, pkix.Name{Organization: org, CommonName: "estd Root CA " + host}, now.Add(-time.Hour), rootValidity)
	if err != nil {
		return err
	}
	sub, err := ca.NewSubCA(root, rootKey, subKey.Public(), pkix.Name{Organization: org, CommonName: "estd Issuing CA " + host}, now.Add(-time.Hour), issuingValidity)
	if err != nil {
		return err
	}
	// The reference first, the certificates last: a present certificate means its key is reachable.
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, IssuingKeyRefFile), []byte(o.HSM+"\n"), 0o600); err != nil {
		return err
	}
	if err := writeCerts(filepath.Join(dir, IssuingCertFile), sub); err != nil {
		return err
	}
	return writeCerts(filepath.Join(dir, RootCertFile), root)
}

// renameObject returns the URI with its object attribute set to name.
func renameObject(uri, name string) (string, error) {
	path, query, hasQuery := strings.Cut(uri, "?")
	attrs := strings.Split(strings.TrimPrefix(path, "pkcs11:"), ";")
	found := false
	for i, a := range attrs {
		if strings.HasPrefix(a, "object=") {
			attrs[i], found = "object="+name, true
		}
		if strings.HasPrefix(a, "id=") {
			return "", fmt.Errorf("give the key by object=NAME, not id=, to 'estd ca init'")
		}
	}
	if !found {
		return "", fs.ErrNotExist
	}
	out := "pkcs11:" + strings.Join(attrs, ";")
	if hasQuery {
		out += "?" + query
	}
	return out, nil
}
