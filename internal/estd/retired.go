package estd

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/ca/keys"
)

// RetiredDir, in the data directory, holds the issuing CAs that a rollover
// (estd ca rollover) replaced. For each, NAME.pem is its certificate and
// NAME.key its key (mode 0600) or NAME.keyref a PKCS#11 URI of it. Their
// certificates stay valid until they expire: they still authenticate
// renewals, and estd keeps their keys to sign their CRLs and OCSP answers,
// never a certificate.
const RetiredDir = "retired-cas"

// retiredCA is a retired issuing CA and what releases its key.
type retiredCA struct {
	*ca.CA
	closer io.Closer // nil for a key file
}

// loadRetired returns the retired issuing CAs of dir that have not expired
// at now, newest first; each must be signed by root and hold its key.
// Expired ones are skipped with a log line: every certificate they issued
// has expired too (nothing outlives its issuer). So is a copy of current,
// left by a rollover that did not finish.
func loadRetired(ctx context.Context, dir string, root, current *x509.Certificate, ko KeyOptions, now time.Time, logger *slog.Logger) ([]retiredCA, error) {
	entries, err := os.ReadDir(filepath.Join(dir, RetiredDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []retiredCA
	fail := func(err error) ([]retiredCA, error) {
		closeRetired(out)
		return nil, err
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".pem")
		if !ok || e.IsDir() {
			continue
		}
		base := filepath.Join(dir, RetiredDir, name)
		cert, err := readCert(base + ".pem")
		if err != nil {
			return fail(err)
		}
		if err := cert.CheckSignatureFrom(root); err != nil {
			return fail(fmt.Errorf("%s is not signed by %s: %w", base+".pem", RootCertFile, err))
		}
		if cert.Equal(current) {
			logger.Warn("a retired issuing CA is the current one: a rollover did not finish; run it again", "file", base+".pem")
			continue
		}
		if !now.Before(cert.NotAfter) {
			logger.Info("a retired issuing CA has expired, and with it every certificate it issued; it can be deleted",
				"file", base+".pem", "subject", cert.Subject.String(), "not_after", cert.NotAfter)
			continue
		}
		ref := base + ".key"
		if b, err := os.ReadFile(base + ".keyref"); err == nil {
			ref = strings.TrimSpace(string(b))
		}
		signer, closer, err := keys.Load(ctx, ref, keys.Options{Passphrase: ko.passphrase(), Logger: logger})
		if err != nil {
			return fail(fmt.Errorf("the key of the retired issuing CA %s: %w", base+".pem", err))
		}
		c, err := ca.New(cert, signer, []*x509.Certificate{cert, root})
		if err != nil {
			if closer != nil {
				closer.Close()
			}
			return fail(fmt.Errorf("retired issuing CA %s: %w", base+".pem", err))
		}
		out = append(out, retiredCA{CA: c, closer: closer})
	}
	// Newest first: by notBefore, then by serial (estd's serials begin
	// with the time).
	slices.SortFunc(out, func(a, b retiredCA) int {
		if c := b.Cert.NotBefore.Compare(a.Cert.NotBefore); c != 0 {
			return c
		}
		return b.Cert.SerialNumber.Cmp(a.Cert.SerialNumber)
	})
	return out, nil
}

func closeRetired(cas []retiredCA) error {
	var errs []error
	for _, c := range cas {
		if c.closer != nil {
			errs = append(errs, c.closer.Close())
		}
	}
	return errors.Join(errs...)
}
