package estd

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/ca/keys"
	"github.com/estkit/estkit/internal/fsutil"
	"github.com/estkit/estkit/internal/pemutil"
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
	// Key unlocks an encrypted issuing key file, and the root's unless
	// RootPassphraseFile is set.
	Key KeyOptions
	// RootPassphraseFile holds the passphrase of an encrypted root key
	// file when it is not the issuing key's; "" means
	// ESTD_ROOT_KEY_PASSPHRASE if set, else what Key says.
	RootPassphraseFile string
	Logger             *slog.Logger
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
	unlock, err := lockRollover(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Read under the lock: a rollover that ran meanwhile changed them.
	root, err := readCert(filepath.Join(dir, RootCertFile))
	if err != nil {
		return nil, err
	}
	current, err := readCert(filepath.Join(dir, IssuingCertFile))
	if err != nil {
		return nil, err
	}
	if !now.Before(root.NotAfter.Add(-24 * time.Hour)) {
		return nil, fmt.Errorf("the root CA expires on %s: a new issuing CA under it would not outlive it", root.NotAfter.Format(time.DateOnly))
	}

	keyFile, refFile := filepath.Join(dir, IssuingKeyFile), filepath.Join(dir, IssuingKeyRefFile)
	name := "issuing-ca-" + current.SerialNumber.Text(16)
	base := filepath.Join(dir, RetiredDir, name)
	currentKey, currentRef, err := currentIssuingKey(ctx, dir, current, base, o)
	if err != nil {
		return nil, err
	}

	rootRef := o.RootKey
	if rootRef == "" {
		rootRef = filepath.Join(dir, RootKeyFile)
		if _, err := os.Stat(rootRef); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no %s in %s: give the root key with -root-key (a key file, or the PKCS#11 URI of the root key, object=NAME-root for a CA made by 'estd ca init -hsm')", RootKeyFile, dir)
		}
	}
	rootKey, rootCloser, err := keys.Load(ctx, rootRef, keys.Options{Passphrase: o.rootPassphrase(), Logger: o.Logger})
	if err != nil {
		return nil, fmt.Errorf("root key: %w", err)
	}
	if rootCloser != nil {
		defer rootCloser.Close()
	}
	if !est.SamePublicKey(rootKey.Public(), root.PublicKey) {
		return nil, fmt.Errorf("root key: it is not the key of %s", RootCertFile)
	}

	kt := o.KeyType
	if kt == "" {
		if kt, err = ca.KeyTypeOf(current.PublicKey); err != nil {
			return nil, fmt.Errorf("the current issuing key: %w", err)
		}
	}
	var (
		newKey     crypto.Signer
		newKeyFile []byte // the new key file's contents; nil with an HSM
	)
	if o.HSM != "" {
		signer, closer, err := hsmIssuingKey(ctx, dir, o, kt, current)
		if err != nil {
			return nil, fmt.Errorf("new issuing key: %w", err)
		}
		defer closer.Close()
		newKey = signer
	} else {
		if newKey, err = ca.GenerateKey(kt); err != nil {
			return nil, err
		}
		// An encrypted issuing key is followed by one encrypted with the
		// same passphrase, never by a plaintext one.
		if currentKey != nil && isEncryptedPEM(currentKey) {
			pass, perr := o.Key.passphrase()()
			if perr != nil {
				return nil, fmt.Errorf("the current issuing key is encrypted, and so will the new one be: %w", perr)
			}
			newKeyFile, err = keys.MarshalEncryptedPEM(newKey, pass)
			clear(pass)
		} else {
			newKeyFile, err = keys.MarshalPEM(newKey)
		}
		if err != nil {
			return nil, err
		}
	}
	subject, err := nextIssuingName(dir, current)
	if err != nil {
		return nil, err
	}
	issuing, err := ca.NewSubCA(root, rootKey, newKey.Public(), subject, now.Add(-time.Hour), issuingValidity)
	if err != nil {
		return nil, err
	}

	// The retired CA first: until the new certificate is in place, estd
	// starts with the current CA (and skips a retired copy of it). Nothing
	// in RetiredDir is overwritten with anything else.
	if err := os.MkdirAll(filepath.Join(dir, RetiredDir), 0o700); err != nil {
		return nil, err
	}
	if currentRef != nil {
		err = writeOnce(base+".keyref", currentRef, 0o600)
	} else {
		err = writeOnce(base+".key", currentKey, 0o600)
	}
	if err != nil {
		return nil, err
	}
	if err := writeOnce(base+".pem", pemutil.EncodeCerts(current), 0o644); err != nil {
		return nil, err
	}
	// Then the new key, and the new certificate last: a certificate in
	// place means its key is. Interrupted in between, the next rollover
	// finds the retired copy and takes the current key from it.
	if o.HSM != "" {
		if err := fsutil.WriteFileAtomic(refFile, []byte(o.HSM+"\n"), 0o600); err != nil {
			return nil, err
		}
		if err := removeIfExists(keyFile); err != nil {
			return nil, err
		}
	} else {
		if err := fsutil.WriteFileAtomic(keyFile, newKeyFile, 0o600); err != nil {
			return nil, err
		}
		if err := removeIfExists(refFile); err != nil {
			return nil, err
		}
	}
	if err := writeCerts(filepath.Join(dir, IssuingCertFile), issuing); err != nil {
		return nil, err
	}
	o.Logger.Info("issuing CA rolled over", "retired", current.Subject.String(), "new", issuing.Subject.String(), "retired_as", base+".pem")
	return &Rollover{Retired: current, Issuing: issuing, RetiredAs: base + ".pem"}, nil
}

// rootPassphrase is what unlocks an encrypted root key file.
func (o RolloverOptions) rootPassphrase() keys.Passphrase {
	if o.RootPassphraseFile != "" {
		return keys.PassphraseFromFile(o.RootPassphraseFile)
	}
	if v, ok := os.LookupEnv("ESTD_ROOT_KEY_PASSPHRASE"); ok && v != "" {
		return keys.PassphraseFromEnv("ESTD_ROOT_KEY_PASSPHRASE")
	}
	return o.Key.passphrase()
}

// currentIssuingKey returns the key file or key reference of the current
// issuing CA, checked against its certificate. A rollover interrupted after
// it wrote the new key but before the new certificate left the new key
// next to the old certificate: the current key is then the retired copy
// (base), which that rollover had written first.
func currentIssuingKey(ctx context.Context, dir string, current *x509.Certificate, base string, o RolloverOptions) (key, ref []byte, err error) {
	candidates := []struct{ key, ref []byte }{
		{readIfExists(filepath.Join(dir, IssuingKeyFile)), readIfExists(filepath.Join(dir, IssuingKeyRefFile))},
	}
	if copied, err := readCert(base + ".pem"); err == nil && copied.Equal(current) {
		candidates = append(candidates, struct{ key, ref []byte }{readIfExists(base + ".key"), readIfExists(base + ".keyref")})
	}
	if candidates[0].key == nil && candidates[0].ref == nil {
		return nil, nil, fmt.Errorf("neither %s nor %s is in %s: a rollover keeps the current issuing key with the CA it retires, so it must be there. With ca_key set in the configuration, copy that key (or its PKCS#11 URI, as %s) into %s first, and remove ca_key before estd starts again", IssuingKeyFile, IssuingKeyRefFile, dir, IssuingKeyRefFile, dir)
	}
	for i, c := range candidates {
		where := filepath.Join(dir, IssuingKeyFile)
		if c.ref != nil {
			where = strings.TrimSpace(string(c.ref))
		} else if c.key == nil {
			continue
		} else if i > 0 {
			where = base + ".key"
		}
		signer, closer, err := keys.Load(ctx, where, keys.Options{Passphrase: o.Key.passphrase(), Logger: o.Logger})
		if err != nil {
			return nil, nil, fmt.Errorf("the current issuing key (%s): %w", where, err)
		}
		if closer != nil {
			closer.Close()
		}
		if est.SamePublicKey(signer.Public(), current.PublicKey) {
			if i > 0 {
				o.Logger.Warn("an earlier rollover did not finish: taking the current issuing key from its retired copy", "retired_copy", base+".pem")
			}
			return c.key, c.ref, nil
		}
	}
	return nil, nil, fmt.Errorf("the issuing key in %s is not the key of %s, and no retired copy of that CA holds it: put the key of %s back as %s (or %s) before rolling over", dir, IssuingCertFile, IssuingCertFile, IssuingKeyFile, IssuingKeyRefFile)
}

// hsmIssuingKey makes the new issuing key in the token o.HSM names, or
// takes the one an interrupted rollover made there: the data directory's
// key reference names it already and it is not the current CA's.
func hsmIssuingKey(ctx context.Context, dir string, o RolloverOptions, kt ca.KeyType, current *x509.Certificate) (crypto.Signer, io.Closer, error) {
	if ref := readIfExists(filepath.Join(dir, IssuingKeyRefFile)); strings.TrimSpace(string(ref)) == o.HSM {
		signer, closer, err := keys.Load(ctx, o.HSM, keys.Options{Logger: o.Logger})
		if err != nil {
			return nil, nil, err
		}
		if !est.SamePublicKey(signer.Public(), current.PublicKey) {
			o.Logger.Warn("taking the key an interrupted rollover made in the token", "uri", o.HSM)
			return signer, closer, nil
		}
		closer.Close()
		return nil, nil, fmt.Errorf("%s is the current issuing CA's key: name a new object for the new one", o.HSM)
	}
	signer, closer, err := keys.Generate(ctx, o.HSM, kt, keys.Options{Logger: o.Logger})
	if err != nil {
		return nil, nil, fmt.Errorf("%w (an earlier rollover interrupted before it wrote %s may have made it: name another object)", err, IssuingKeyRefFile)
	}
	return signer, closer, nil
}

// lockRollover takes the data directory's rollover lock: one rollover at a
// time. It returns the lock's release.
func lockRollover(dir string) (func(), error) {
	path := filepath.Join(dir, "rollover.lock")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("another rollover is running (%s exists; remove it if none is)", path)
	}
	if err != nil {
		return nil, err
	}
	f.Close()
	return func() { os.Remove(path) }, nil
}

// writeOnce writes data to path with mode unless path holds data already;
// it never replaces other contents.
func writeOnce(path string, data []byte, mode os.FileMode) error {
	if old, err := os.ReadFile(path); err == nil {
		if bytes.Equal(old, data) {
			return nil
		}
		return fmt.Errorf("%s exists and holds something else: not overwriting it", path)
	}
	return fsutil.WriteFileAtomic(path, data, mode)
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func isEncryptedPEM(b []byte) bool {
	return bytes.Contains(b, []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----")) || bytes.Contains(b, []byte("Proc-Type: 4,ENCRYPTED"))
}

// nextIssuingName is the subject of the issuing CA after current: its
// subject with the next generation's suffix in the common name, one no
// retired CA of dir has, so that the CAs of a chain can be told apart by
// name.
func nextIssuingName(dir string, current *x509.Certificate) (pkix.Name, error) {
	taken := map[string]bool{current.Subject.CommonName: true}
	entries, _ := os.ReadDir(filepath.Join(dir, RetiredDir))
	for _, e := range entries {
		if filepath.Ext(e.Name()) != ".pem" {
			continue
		}
		if c, err := readCert(filepath.Join(dir, RetiredDir, e.Name())); err == nil {
			taken[c.Subject.CommonName] = true
		}
	}
	n := current.Subject
	n.Names, n.ExtraNames = nil, nil
	stem := ca.GenerationStem(current)
	for gen := ca.Generation(current) + 1; gen < 10000; gen++ {
		if cn := stem + " G" + strconv.Itoa(gen); !taken[cn] {
			n.CommonName = cn
			return n, nil
		}
	}
	return n, errors.New("no free generation name")
}

func readIfExists(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return b
}
