package estd

import (
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/ca/keys"
	"github.com/estkit/estkit/internal/fsutil"
)

// RolloverOptions configure RolloverCA.
type RolloverOptions struct {
	// RootKey is where the root CA key is: a key file or a PKCS#11 URI
	// (for a CA made by 'estd ca init -hsm', object=NAME-root). "" means
	// RootKeyFile in the data directory.
	RootKey string
	// HSM is a PKCS#11 URI with object=NAME for the new issuing key, made
	// in that token; it must name an object that does not exist yet. ""
	// makes a key file in the data directory.
	HSM string
	// KeyType of the new issuing key; "" keeps the current one's.
	KeyType ca.KeyType
	// Key unlocks encrypted key files (the root's).
	Key    KeyOptions
	Logger *slog.Logger
	// Now is the time of the rollover; zero means time.Now().
	Now time.Time
}

// Rollover is what RolloverCA did.
type Rollover struct {
	Retired, Issuing *x509.Certificate
	// RetiredAs is where the retired CA went (RetiredDir/NAME.pem).
	RetiredAs string
}

// RolloverCA replaces the issuing CA of dir with a new one, with a new key,
// signed by the root; the one it replaces moves to RetiredDir, where estd
// keeps it while certificates it issued are valid (to authenticate their
// renewals and sign their CRLs and OCSP answers). estd takes the new CA
// when it starts next. The current issuing key must be in dir
// (IssuingKeyFile or IssuingKeyRefFile).
func RolloverCA(ctx context.Context, dir string, o RolloverOptions) (*Rollover, error) {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	root, err := readCert(filepath.Join(dir, RootCertFile))
	if err != nil {
		return nil, err
	}
	current, err := readCert(filepath.Join(dir, IssuingCertFile))
	if err != nil {
		return nil, err
	}
	keyFile, refFile := filepath.Join(dir, IssuingKeyFile), filepath.Join(dir, IssuingKeyRefFile)
	currentKey, currentRef := readIfExists(keyFile), readIfExists(refFile)
	if currentKey == nil && currentRef == nil {
		return nil, fmt.Errorf("neither %s nor %s is in %s: a rollover keeps the current issuing key with the CA it retires, so it must be there (an issuing key configured elsewhere with ca_key: copy it or its PKCS#11 URI there first)", IssuingKeyFile, IssuingKeyRefFile, dir)
	}
	if !now.Before(root.NotAfter.Add(-24 * time.Hour)) {
		return nil, fmt.Errorf("the root CA expires on %s: a new issuing CA under it would not outlive it", root.NotAfter.Format(time.DateOnly))
	}

	rootRef := o.RootKey
	if rootRef == "" {
		rootRef = filepath.Join(dir, RootKeyFile)
		if _, err := os.Stat(rootRef); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no %s in %s: give the root key with -root-key (a key file, or the PKCS#11 URI of the root key, object=NAME-root for a CA made by 'estd ca init -hsm')", RootKeyFile, dir)
		}
	}
	rootKey, rootCloser, err := keys.Load(ctx, rootRef, keys.Options{Passphrase: o.Key.passphrase(), Logger: o.Logger})
	if err != nil {
		return nil, fmt.Errorf("root key: %w", err)
	}
	if rootCloser != nil {
		defer rootCloser.Close()
	}
	if !sameKey(rootKey.Public(), root.PublicKey) {
		return nil, fmt.Errorf("root key: it is not the key of %s", RootCertFile)
	}

	kt := o.KeyType
	if kt == "" {
		if kt, err = ca.KeyTypeOf(current.PublicKey); err != nil {
			return nil, fmt.Errorf("the current issuing key: %w", err)
		}
	}
	var newKey crypto.Signer
	if o.HSM != "" {
		signer, closer, err := keys.Generate(ctx, o.HSM, kt, keys.Options{Logger: o.Logger})
		if err != nil {
			return nil, fmt.Errorf("new issuing key: %w", err)
		}
		defer closer.Close()
		newKey = signer
	} else if newKey, err = ca.GenerateKey(kt); err != nil {
		return nil, err
	}
	subject := nextIssuingName(current.Subject, countRetired(dir)+2)
	issuing, err := ca.NewSubCA(root, rootKey, newKey.Public(), subject, now.Add(-time.Hour), issuingValidity)
	if err != nil {
		return nil, err
	}

	// The retired CA first: until the new certificate is in place, estd
	// starts with the current CA (and skips a retired copy of it).
	if err := os.MkdirAll(filepath.Join(dir, RetiredDir), 0o700); err != nil {
		return nil, err
	}
	name := "issuing-ca-" + current.SerialNumber.Text(16)
	base := filepath.Join(dir, RetiredDir, name)
	if currentRef != nil {
		err = fsutil.WriteFileAtomic(base+".keyref", currentRef, 0o600)
	} else {
		err = fsutil.WriteFileAtomic(base+".key", currentKey, 0o600)
	}
	if err != nil {
		return nil, err
	}
	if err := writeCerts(base+".pem", current); err != nil {
		return nil, err
	}
	// Then the new key, and the new certificate last: a certificate in
	// place means its key is.
	if o.HSM != "" {
		if err := fsutil.WriteFileAtomic(refFile, []byte(o.HSM+"\n"), 0o600); err != nil {
			return nil, err
		}
		if currentKey != nil {
			if err := os.Remove(keyFile); err != nil {
				return nil, err
			}
		}
	} else {
		if err := writeKey(keyFile, newKey); err != nil {
			return nil, err
		}
		if currentRef != nil {
			if err := os.Remove(refFile); err != nil {
				return nil, err
			}
		}
	}
	if err := writeCerts(filepath.Join(dir, IssuingCertFile), issuing); err != nil {
		return nil, err
	}
	o.Logger.Info("issuing CA rolled over", "retired", current.Subject.String(), "new", issuing.Subject.String(), "retired_as", base+".pem")
	return &Rollover{Retired: current, Issuing: issuing, RetiredAs: base + ".pem"}, nil
}

// generation matches the generation suffix of an issuing CA's common name.
var generation = regexp.MustCompile(` G[0-9]+$`)

// nextIssuingName is the subject of the issuing CA of generation gen (the
// first has none): the current one's with its common name's suffix " Gn"
// replaced, so that the CAs of a chain can be told apart by name.
func nextIssuingName(current pkix.Name, gen int) pkix.Name {
	n := current
	n.Names, n.ExtraNames = nil, nil
	n.CommonName = generation.ReplaceAllString(current.CommonName, "") + " G" + strconv.Itoa(gen)
	return n
}

// countRetired is how many issuing CAs dir has retired.
func countRetired(dir string) int {
	entries, _ := os.ReadDir(filepath.Join(dir, RetiredDir))
	n := 0
	for _, e := range entries {
		if filepath.Ext(e.Name()) == ".pem" {
			n++
		}
	}
	return n
}

func readIfExists(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return b
}

func sameKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}
