package main

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/client"
)

// Exit codes; see the package documentation.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
	exitAuth    = 3
	exitRefused = 4
	exitTrust   = 5
)

// usageError is a mistake on the command line.
type usageError struct{ msg string }

func (u *usageError) Error() string { return u.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// trustError means the server's root was not confirmed.
type trustError struct{ msg string }

func (t *trustError) Error() string { return t.msg }

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// command is one subcommand.
type command struct {
	name, args, summary, example string
	run                          func(ctx context.Context, e *env, args []string) error
}

var commands []*command

func init() {
	commands = []*command{
		{"cacerts", "[-out FILE] [-outform pem|der]", "get the CA certificates (and bootstrap trust)",
			"est cacerts -server est.example.com:8443 -fingerprint AB:CD:... -out ca.pem", cmdCACerts},
		{"csrattrs", "[-out FILE]", "show the CSR attributes the server wants",
			"est csrattrs -server est.example.com:8443 -anchor root.pem -label tls-server", cmdCSRAttrs},
		{"csr", "-cn CN [-dns NAME ...] [-key-type T | -key FILE] -keyout KEY -out CSR", "make a key and a PKCS#10 request",
			"est csr -cn device-1 -key-type p256 -keyout device.key -out device.csr", cmdCSR},
		{"enroll", "-cn CN [-dns ...] [-csr FILE] -keyout KEY -out CERT", "get a certificate (simpleenroll)",
			"est enroll -server HOST:PORT -anchor root.pem -user est -cn device-1 -key-type p256 -keyout key.pem -out cert.pem", cmdEnroll},
		{"reenroll", "-cert CERT -key KEY [-rekey -keyout KEY] -out CERT", "renew a certificate (simplereenroll)",
			"est reenroll -server HOST:PORT -anchor root.pem -cert cert.pem -key key.pem -out cert.pem", cmdReenroll},
		{"serverkeygen", "-cn CN [-dns ...] [-key-type T] -keyout KEY -out CERT", "have the server make the key (serverkeygen)",
			"est serverkeygen -server HOST:PORT -anchor root.pem -user est -cn sensor-7 -keyout key.pem -out cert.pem", cmdServerKeyGen},
		{"fullcmc", "-cn CN [-dns ...] [-ra] -keyout KEY -out CERT | -revoke SERIAL [-reason R] -cert RA.pem -key RA.key", "enroll or revoke with Full CMC (fullcmc)",
			"est fullcmc -server HOST:PORT -anchor root.pem -user est -cn device-1 -keyout key.pem -out cert.pem", cmdFullCMC},
		{"check", "-server HOST:PORT -anchor ROOT.pem -manufacturer-cert F -manufacturer-key F -rogue-cert F -rogue-key F [-expired-cert F -expired-key F] [-user NAME] [-client-label L] [-server-label L] [-json] [-junit FILE] | -self",
			"check that a server conforms to RFC 7030, 8951 and 8996",
			"est check -server HOST:PORT -anchor root.pem -manufacturer-cert dev.pem -manufacturer-key dev.key -rogue-cert rogue.pem -rogue-key rogue.key -user est", cmdCheck},
		{"bench", "-server HOST:PORT -anchor ROOT.pem -op enroll|reenroll|serverkeygen|cacerts [-c N] [-n N | -d DURATION] [-conn keepalive|new|resume] [-key-type T] [-json]",
			"measure a server: requests/s and latency under load",
			"est bench -server HOST:PORT -anchor root.pem -user est -op enroll -c 16 -d 30s", cmdBench},
		{"version", "", "print the version", "est version", cmdVersion},
	}
}

func run(ctx context.Context, args []string, e *env) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		if len(args) > 1 {
			if c := lookup(args[1]); c != nil {
				return c.exec(ctx, e, []string{"-h"})
			}
		}
		mainUsage(e.stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	c := lookup(args[0])
	if c == nil {
		fmt.Fprintf(e.stderr, "est: unknown subcommand %q\n\n", args[0])
		mainUsage(e.stderr)
		return exitUsage
	}
	return c.exec(ctx, e, args[1:])
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func mainUsage(w io.Writer) {
	fmt.Fprintf(w, "usage: est SUBCOMMAND [flags]\n\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'est help SUBCOMMAND' for its flags and an example.\n")
	fmt.Fprintf(w, "Exit codes: 0 ok, 1 failure, 2 usage, 3 authentication refused, 4 request refused, 5 trust not established, 6 a conformance check failed.\n")
}

// exec runs c and maps its error to an exit code and a one-line message.
func (c *command) exec(ctx context.Context, e *env, args []string) int {
	err := c.run(ctx, e, args)
	if err == nil {
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	code := exitCode(err)
	fmt.Fprintf(e.stderr, "est %s: %s\n", c.name, strings.TrimPrefix(err.Error(), "est: "))
	return code
}

func exitCode(err error) int {
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	var ue *usageError
	var te *trustError
	var ce *client.Error
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &te):
		return exitTrust
	case errors.Is(err, est.ErrUnauthorized), errors.Is(err, est.ErrForbidden):
		if errors.As(err, &ce) && ce.StatusCode/100 == 4 {
			return exitAuth
		}
	case errors.Is(err, client.ErrRejected):
		return exitRefused
	}
	return exitFailure
}

// flagSet returns a flag set for c whose usage shows c's synopsis and example.
func (c *command) flagSet(e *env) *flag.FlagSet {
	fs := flag.NewFlagSet("est "+c.name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: est %s %s\n%s.\n\nexample:\n  %s\n\nflags:\n", c.name, c.args, c.summary, c.example)
		printFlags(e.stderr, fs)
	}
	return fs
}

// printFlags lists flags one a line, so a subcommand's help fits a screen.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		left := "-" + f.Name
		if name != "" {
			left += " " + name
		}
		if f.DefValue != "" && f.DefValue != "false" {
			usage += " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(w, "  %-22s %s\n", left, usage)
	})
}

// parse parses args and refuses positional arguments.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// conn are the flags every subcommand that talks to a server has.
type conn struct {
	server, label, anchor, fingerprint string
	insecure                           bool
	cert, key                          string
	user, passwordFile                 string
	timeout                            time.Duration
}

func (cn *conn) register(fs *flag.FlagSet) {
	fs.StringVar(&cn.server, "server", "", "EST server `HOST:PORT` or https URL")
	fs.StringVar(&cn.label, "label", "", "CA `label` (/.well-known/est/LABEL/...)")
	fs.StringVar(&cn.anchor, "anchor", "", "PEM `file` of the trust anchor (root CA)")
	fs.StringVar(&cn.fingerprint, "fingerprint", "", "expected SHA-256 fingerprint `FP` of the server's root CA, for bootstrap")
	fs.BoolVar(&cn.insecure, "insecure", false, "trust the server's root CA without checking its fingerprint")
	fs.StringVar(&cn.cert, "cert", "", "client certificate `file` for TLS client authentication")
	fs.StringVar(&cn.key, "key", "", "private key `file` of -cert")
	fs.StringVar(&cn.user, "user", "", "HTTP Basic user `name` (password: EST_PASSWORD, -password-file or a prompt)")
	fs.StringVar(&cn.passwordFile, "password-file", "", "`file` whose first line is the password")
	fs.DurationVar(&cn.timeout, "timeout", 10*time.Minute, "give up after this `duration`, waits included")
}

// client builds an EST client: trust from -anchor, or bootstrapped from
// /cacerts and confirmed by -fingerprint or -insecure.
func (cn *conn) client(ctx context.Context, e *env) (*client.Client, error) {
	if cn.server == "" {
		return nil, usageErrorf("-server is required")
	}
	if strings.HasPrefix(cn.server, "http://") {
		return nil, usageErrorf("-server: EST runs over HTTPS only")
	}
	c := &client.Client{Server: cn.server, Label: cn.label, UserAgent: "est/" + version()}
	now := time.Now
	if e.now != nil {
		now = e.now
	}
	c.Sleep, c.Clock = e.sleep, e.now
	c.OnWait = func(op est.Operation, d time.Duration, reason string) {
		fmt.Fprintf(e.stderr, "est: %s: %s; waiting %s (until %s)\n", op, reason, d.Round(time.Second), now().Add(d).Format(time.TimeOnly))
	}
	if (cn.cert == "") != (cn.key == "") && cn.cert != "" {
		return nil, usageErrorf("-cert needs -key")
	}
	if cn.cert != "" {
		tc, err := loadTLSCert(cn.cert, cn.key)
		if err != nil {
			return nil, err
		}
		c.Certificate = tc
	}
	if cn.user != "" {
		pw, err := password(e, cn.user, cn.passwordFile)
		if err != nil {
			return nil, err
		}
		c.Username, c.Password = cn.user, pw
	}
	switch {
	case cn.anchor != "":
		certs, err := readCerts(cn.anchor)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		for _, ct := range certs {
			pool.AddCert(ct)
		}
		c.TrustAnchors = pool
	default:
		b, err := c.Bootstrap(ctx)
		if err != nil {
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
		fmt.Fprintf(e.stderr, "est: server root CA: %s\nest: SHA-256 fingerprint: %s\n", b.Root.Subject, b.Fingerprint)
		switch {
		case cn.fingerprint != "" && b.Matches(cn.fingerprint):
			fmt.Fprintf(e.stderr, "est: fingerprint matches -fingerprint\n")
		case cn.fingerprint != "":
			return nil, &trustError{fmt.Sprintf("the server's root fingerprint %s does not match -fingerprint %s", b.Fingerprint, cn.fingerprint)}
		case cn.insecure:
			fmt.Fprintf(e.stderr, "est: WARNING: trusting this root without checking its fingerprint (-insecure)\n")
		default:
			return nil, &trustError{"refusing to trust an unverified root: compare the fingerprint above out of band, then pass -fingerprint FP (or -anchor ROOT.pem; -insecure to skip the check)"}
		}
		c.TrustAnchors = b.Anchors()
	}
	return c, nil
}

func (cn *conn) context(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, cn.timeout)
}

func loadTLSCert(certFile, keyFile string) (*tls.Certificate, error) {
	certs, err := readCerts(certFile)
	if err != nil {
		return nil, err
	}
	key, err := readKey(keyFile)
	if err != nil {
		return nil, err
	}
	if k, ok := certs[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(key.Public()) {
		return nil, usageErrorf("-key does not match -cert")
	}
	tc := &tls.Certificate{PrivateKey: key, Leaf: certs[0]}
	for _, c := range certs {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	return tc, nil
}

// output are the flags of subcommands that write a certificate.
type output struct {
	out, keyout, outform, dir string
	// keyLast writes the key after the certificate: a renewal's -keyout
	// may be the key it renews, which must stay until the new certificate
	// is safe. Otherwise the new key goes first, so a certificate that
	// cannot be written does not take the only copy of its key with it.
	keyLast bool
}

func (o *output) register(fs *flag.FlagSet, what string) {
	fs.StringVar(&o.out, "out", "", "write the "+what+" to this `file` (default: standard output)")
	fs.StringVar(&o.outform, "outform", "pem", "`format` of -out and -keyout: pem or der")
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

func cmdVersion(ctx context.Context, e *env, args []string) error {
	c := lookup("version")
	if err := parse(c.flagSet(e), args); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "est %s\n", version())
	return nil
}

// oidName names well-known OIDs in csrattrs output.
var oidName = map[string]string{
	est.OIDChallengePassword.String(): "challengePassword",
	est.OIDExtensionRequest.String():  "extensionRequest",
	est.OIDECPublicKey.String():       "ecPublicKey",
	est.OIDRSAEncryption.String():     "rsaEncryption",
	est.OIDEd25519.String():           "Ed25519",
	est.OIDCurveP256.String():         "secp256r1",
	est.OIDCurveP384.String():         "secp384r1",
	est.OIDECDSAWithSHA256.String():   "ecdsa-with-SHA256",
	est.OIDECDSAWithSHA384.String():   "ecdsa-with-SHA384",
	est.OIDSHA256WithRSA.String():     "sha256WithRSAEncryption",
	est.OIDSubjectAltName.String():    "subjectAltName",
}

func named(oid string) string {
	if n, ok := oidName[oid]; ok {
		return n + " (" + oid + ")"
	}
	return oid
}
