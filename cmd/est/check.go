package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/conformance"
	"github.com/estkit/estkit/internal/estd"
	"github.com/estkit/estkit/internal/fsutil"
)

// exitCheckFailed is the exit status of `est check` when a check FAILs.
const exitCheckFailed = 6

// checkFailed is the error of a run in which checks failed; the report has
// already been written.
type checkFailed struct{ counts conformance.Counts }

func (c *checkFailed) Error() string {
	total := c.counts.Passed + c.counts.Failed + c.counts.Skipped
	return fmt.Sprintf("%d of %d checks failed", c.counts.Failed, total)
}

// ExitCode is the exit status for a run with failed checks.
func (c *checkFailed) ExitCode() int { return exitCheckFailed }

// checkFlags are the flags of `est check`.
type checkFlags struct {
	server, clientLabel, serverLabel, anchor string
	manufacturerCert, manufacturerKey        string
	rogueCert, rogueKey                      string
	expiredCert, expiredKey                  string
	user, passwordFile, domain               string
	timeout                                  time.Duration
	run, junit                               string
	json, self, verbose                      bool
}

func (f *checkFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.server, "server", "", "EST server `HOST:PORT` or https URL to check")
	fs.StringVar(&f.clientLabel, "client-label", conformance.DefaultClientLabel, "CA `label` of the TLS client certificate profile (\"\" for the default CA)")
	fs.StringVar(&f.serverLabel, "server-label", conformance.DefaultServerLabel, "CA `label` of the TLS server certificate profile (\"\" for the default CA)")
	fs.StringVar(&f.anchor, "anchor", "", "PEM `file` of the expected root CA (default: the system roots, and the root is not compared)")
	fs.StringVar(&f.manufacturerCert, "manufacturer-cert", "", "device certificate `file` from a manufacturer CA the server trusts")
	fs.StringVar(&f.manufacturerKey, "manufacturer-key", "", "private key `file` of -manufacturer-cert")
	fs.StringVar(&f.rogueCert, "rogue-cert", "", "certificate `file` that looks like a manufacturer's but comes from a CA the server must not trust")
	fs.StringVar(&f.rogueKey, "rogue-key", "", "private key `file` of -rogue-cert")
	fs.StringVar(&f.expiredCert, "expired-cert", "", "expired certificate `file` from the manufacturer CA")
	fs.StringVar(&f.expiredKey, "expired-key", "", "private key `file` of -expired-cert")
	fs.StringVar(&f.user, "user", "", "HTTP Basic user `name` the server accepts (password: EST_PASSWORD, -password-file or a prompt)")
	fs.StringVar(&f.passwordFile, "password-file", "", "`file` whose first line is the password")
	fs.StringVar(&f.domain, "domain", "example.net", "DNS `domain` under which to name the TLS server certificates requested")
	fs.DurationVar(&f.timeout, "timeout", conformance.DefaultTimeout, "give up on one check after this `duration`")
	fs.StringVar(&f.run, "run", "", "run only the checks whose ID matches this `regexp` (IDs: est check -list)")
	fs.BoolVar(&f.json, "json", false, "write the report as JSON instead of a table")
	fs.StringVar(&f.junit, "junit", "", "also write the report as JUnit XML to this `file`, for CI")
	fs.BoolVar(&f.self, "self", false, "start a throw-away estd with its own test PKI and check it")
	fs.BoolVar(&f.verbose, "v", false, "print each result on standard error as it comes")
}

func cmdCheck(ctx context.Context, e *env, args []string) error {
	var f checkFlags
	cmd := lookup("check")
	fs := cmd.flagSet(e)
	f.register(fs)
	list := fs.Bool("list", false, "list the checks and exit")
	usage := fs.Usage
	fs.Usage = func() {
		usage()
		fmt.Fprintf(e.stderr, "\nChecks whose inputs are not given are SKIP. The checks enroll real certificates:\n"+
			"run them against a test instance. Exit status: 0 when no check fails, %d when one does,\n"+
			"2 for a usage mistake, 1 when the checks could not run.\n", exitCheckFailed)
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if *list {
		for _, c := range conformance.Checks() {
			fmt.Fprintf(e.stdout, "%-34s %s: %s\n", c.ID, c.Group, c.Name)
		}
		return nil
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	cfg, err := f.config(e, set)
	if err != nil {
		return err
	}
	if f.self {
		self, stop, err := startSelf(ctx)
		if err != nil {
			return fmt.Errorf("starting a throw-away estd: %w", err)
		}
		defer stop()
		fmt.Fprintf(e.stderr, "est: checking a throw-away estd on %s\n", self.Server)
		self.Timeout, self.Filter, self.Progress, self.Domain = cfg.Timeout, cfg.Filter, cfg.Progress, cfg.Domain
		cfg = self
	}
	rep, err := conformance.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if f.junit != "" {
		var b bytes.Buffer
		if err := rep.WriteJUnit(&b); err != nil {
			return err
		}
		if err := fsutil.WriteFileAtomic(f.junit, b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if f.json {
		err = rep.WriteJSON(e.stdout)
	} else {
		err = rep.WriteText(e.stdout)
	}
	if err != nil {
		return err
	}
	if rep.Failed() {
		return &checkFailed{rep.Counts()}
	}
	return nil
}

// config checks the flags and loads the inputs they name.
func (f *checkFlags) config(e *env, set map[string]bool) (conformance.Config, error) {
	cfg := conformance.Config{
		Server:      f.server,
		ClientLabel: f.clientLabel,
		ServerLabel: f.serverLabel,
		Domain:      f.domain,
		Timeout:     f.timeout,
	}
	if f.run != "" {
		re, err := regexp.Compile(f.run)
		if err != nil {
			return cfg, usageErrorf("-run: %v", err)
		}
		cfg.Filter = func(c conformance.Check) bool { return re.MatchString(c.ID) }
	}
	if f.verbose {
		cfg.Progress = func(r conformance.Result) {
			fmt.Fprintf(e.stderr, "est: %s %s (%s)\n", r.Status, r.ID, r.Duration.Round(time.Millisecond))
		}
	}
	if f.timeout <= 0 {
		return cfg, usageErrorf("-timeout must be positive")
	}
	if f.self {
		for _, name := range []string{"server", "anchor", "client-label", "server-label", "manufacturer-cert", "manufacturer-key",
			"rogue-cert", "rogue-key", "expired-cert", "expired-key", "user", "password-file"} {
			if set[name] {
				return cfg, usageErrorf("-self checks its own throw-away estd and takes no -%s", name)
			}
		}
		return cfg, nil
	}
	if f.server == "" {
		return cfg, usageErrorf("-server is required (or -self to check a throw-away estd)")
	}
	if strings.HasPrefix(f.server, "http://") {
		return cfg, usageErrorf("-server: EST runs over HTTPS only")
	}
	for flagName, l := range map[string]string{"client-label": f.clientLabel, "server-label": f.serverLabel} {
		if l != "" && !est.ValidLabel(l) {
			return cfg, usageErrorf("-%s: %q is not a valid CA label", flagName, l)
		}
	}
	if f.anchor != "" {
		certs, err := readCerts(f.anchor)
		if err != nil {
			return cfg, err
		}
		cfg.TrustAnchors = certs
	}
	for _, p := range []struct {
		what, cert, key string
		dst             **tls.Certificate
	}{
		{"manufacturer", f.manufacturerCert, f.manufacturerKey, &cfg.Manufacturer},
		{"rogue", f.rogueCert, f.rogueKey, &cfg.Rogue},
		{"expired", f.expiredCert, f.expiredKey, &cfg.Expired},
	} {
		if (p.cert == "") != (p.key == "") {
			return cfg, usageErrorf("-%s-cert and -%s-key go together", p.what, p.what)
		}
		if p.cert == "" {
			continue
		}
		tc, err := loadTLSCert(p.cert, p.key)
		if err != nil {
			var ue *usageError
			if errors.As(err, &ue) {
				return cfg, usageErrorf("-%s-key does not match -%s-cert", p.what, p.what)
			}
			return cfg, err
		}
		*p.dst = tc
	}
	if f.user != "" {
		pw, err := password(e, f.user, f.passwordFile)
		if err != nil {
			return cfg, err
		}
		cfg.Username, cfg.Password = f.user, pw
	}
	return cfg, nil
}

// startSelf starts estd in a new temporary directory on 127.0.0.1 with a
// test PKI made here: a manufacturer CA it trusts, a device certificate from
// it, a rogue look-alike and an expired one. stop shuts it down and removes
// the directory.
func startSelf(ctx context.Context) (cfg conformance.Config, stop func(), err error) {
	dir, err := os.MkdirTemp("", "est-check-self-")
	if err != nil {
		return cfg, nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	pki, err := newSelfPKI(time.Now())
	if err != nil {
		return cfg, nil, err
	}
	manuFile := filepath.Join(dir, "manufacturer-ca.pem")
	if err := os.WriteFile(manuFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pki.manufacturer.Raw}), 0o644); err != nil {
		return cfg, nil, err
	}
	d, err := estd.Open(ctx, estd.Options{DataDir: filepath.Join(dir, "estd-data"), ManufacturerCA: manuFile})
	if err != nil {
		return cfg, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		d.Close()
		return cfg, nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(sctx, ln) }()
	stop = func() {
		cancel()
		<-done
		d.Close()
		os.RemoveAll(dir)
	}
	return conformance.Config{
		Server:       ln.Addr().String(),
		ClientLabel:  conformance.DefaultClientLabel,
		ServerLabel:  conformance.DefaultServerLabel,
		TrustAnchors: []*x509.Certificate{d.Root},
		Manufacturer: pki.device,
		Rogue:        pki.rogue,
		Expired:      pki.expired,
		Username:     estd.BootstrapUser,
		Password:     d.BootstrapPassword,
	}, stop, nil
}

// selfPKI is the test PKI of -self.
type selfPKI struct {
	manufacturer           *x509.Certificate
	device, rogue, expired *tls.Certificate
}

func newSelfPKI(now time.Time) (*selfPKI, error) {
	name := pkix.Name{Organization: []string{"est check self-test"}, CommonName: "Self-Test Manufacturer CA"}
	root := func() (*x509.Certificate, crypto.Signer, error) {
		key, err := ca.GenerateKey(ca.P256)
		if err != nil {
			return nil, nil, err
		}
		cert, err := ca.NewRoot(key, name, now.Add(-3*time.Hour), 27*time.Hour)
		return cert, key, err
	}
	leaf := func(issuer *x509.Certificate, issuerKey crypto.Signer, cn string, notBefore, notAfter time.Time) (*tls.Certificate, error) {
		key, err := ca.GenerateKey(ca.P256)
		if err != nil {
			return nil, err
		}
		serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
		if err != nil {
			return nil, err
		}
		der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
			SerialNumber:          serial,
			Subject:               pkix.Name{Organization: []string{"est check self-test"}, CommonName: cn},
			NotBefore:             notBefore,
			NotAfter:              notAfter,
			KeyUsage:              x509.KeyUsageDigitalSignature,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			BasicConstraintsValid: true,
		}, issuer, key.Public(), issuerKey)
		if err != nil {
			return nil, err
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, err
		}
		return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, nil
	}
	manu, manuKey, err := root()
	if err != nil {
		return nil, err
	}
	rogue, rogueKey, err := root() // the same name, another key
	if err != nil {
		return nil, err
	}
	p := &selfPKI{manufacturer: manu}
	if p.device, err = leaf(manu, manuKey, "SN-SELF-0001", now.Add(-time.Hour), now.Add(24*time.Hour)); err != nil {
		return nil, err
	}
	if p.rogue, err = leaf(rogue, rogueKey, "SN-SELF-0001", now.Add(-time.Hour), now.Add(24*time.Hour)); err != nil {
		return nil, err
	}
	if p.expired, err = leaf(manu, manuKey, "SN-SELF-OLD", now.Add(-2*time.Hour), now.Add(-time.Minute)); err != nil {
		return nil, err
	}
	return p, nil
}
