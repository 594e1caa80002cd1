package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/crypto/bcrypt"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/internal/estdtest"
	"github.com/estkit/estkit/internal/testpki"
)

func TestMain(m *testing.M) {
	auth.BcryptCost = bcrypt.MinCost // hashing strength is tested in package auth
	testscript.Main(m, map[string]func(){
		"est": func() { main() },
	})
}

// TestScripts runs the CLI scripts in testdata/script against one real estd.
// Each script sees: SERVER (host:port), ANCHOR (root PEM), FP (root
// fingerprint), EST_PASSWORD and USER (a Basic user), DEVCERT/DEVKEY (a
// manufacturer device certificate estd trusts), ROGUECERT/ROGUEKEY (one it
// must refuse), EXPCERT/EXPKEY (an expired device certificate).
func TestScripts(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{})
	dir := t.TempDir()
	now := time.Now()
	write := func(name string) func(*x509.Certificate, crypto.Signer) (string, string) {
		return func(cert *x509.Certificate, key crypto.Signer) (string, string) {
			c, k := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
			testpki.WriteCerts(t, c, cert)
			testpki.WriteKey(t, k, key)
			return c, k
		}
	}
	devCert, devKey := write("device")(s.Manufacturer.Device(t, "SN-4711", now))
	rogueCert, rogueKey := write("rogue")(testpki.Rogue(t, now).Device(t, "SN-4711", now))
	expCert, expKey := write("expired")(s.Manufacturer.Expired(t, "SN-old", now))
	pwFile := filepath.Join(dir, "password")
	if err := os.WriteFile(pwFile, []byte(s.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("SERVER", s.Addr)
			env.Setenv("ANCHOR", s.RootFile)
			env.Setenv("FP", est.Fingerprint(s.Root))
			env.Setenv("USER", s.User)
			env.Setenv("EST_PASSWORD", s.Password)
			env.Setenv("PASSWORD", s.Password)
			env.Setenv("PWFILE", pwFile)
			env.Setenv("DEVCERT", devCert)
			env.Setenv("DEVKEY", devKey)
			env.Setenv("ROGUECERT", rogueCert)
			env.Setenv("ROGUEKEY", rogueKey)
			env.Setenv("EXPCERT", expCert)
			env.Setenv("EXPKEY", expKey)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"cert": cmdCheckCert,
			"code": cmdExitCode,
			"mode": cmdCheckMode,
			"issued": func(ts *testscript.TestScript, neg bool, args []string) {
				// issued FILE: the certificate is on record in estd's store.
				certs, err := readCerts(ts.MkAbs(args[0]))
				ts.Check(err)
				_, err = s.Daemon.Store.BySerial(context.Background(), certs[0].SerialNumber)
				if (err == nil) == neg {
					ts.Fatalf("record of %s: %v", args[0], err)
				}
			},
		},
	})
}

// cmdCheckCert: cert FILE [cn=NAME] [dns=NAME] [eku=clientAuth|serverAuth]
// [key=KEYFILE] [keytype=p256|rsa2048|...] [same=OTHERFILE] [serial!=OTHERFILE]
// [count=N] — checks a PEM or DER certificate file.
func cmdCheckCert(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 {
		ts.Fatalf("usage: cert FILE [checks...]")
	}
	certs, err := readCerts(ts.MkAbs(args[0]))
	ts.Check(err)
	c := certs[0]
	for _, a := range args[1:] {
		k, v, _ := strings.Cut(a, "=")
		var ok bool
		switch k {
		case "cn":
			ok = c.Subject.CommonName == v
		case "dns":
			ok = slices.Contains(c.DNSNames, v)
		case "eku":
			want := map[string]x509.ExtKeyUsage{"clientAuth": x509.ExtKeyUsageClientAuth, "serverAuth": x509.ExtKeyUsageServerAuth}[v]
			ok = slices.Contains(c.ExtKeyUsage, want)
		case "key":
			key, err := readKey(ts.MkAbs(v))
			ts.Check(err)
			ok = c.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public())
		case "keytype":
			ok = keyTypeName(signerOf(c)) == v
		case "same":
			o, err := readCerts(ts.MkAbs(v))
			ts.Check(err)
			ok = string(o[0].RawSubject) == string(c.RawSubject) && slices.Equal(o[0].DNSNames, c.DNSNames)
		case "serial!":
			o, err := readCerts(ts.MkAbs(v))
			ts.Check(err)
			ok = o[0].SerialNumber.Cmp(c.SerialNumber) != 0
		case "count":
			ok = fmt.Sprint(len(certs)) == v
		default:
			ts.Fatalf("unknown check %q", a)
		}
		if ok == neg {
			ts.Fatalf("%s: check %s failed (subject %s, DNS %v, EKU %v)", args[0], a, c.Subject, c.DNSNames, c.ExtKeyUsage)
		}
	}
}

// signerOf wraps a certificate's public key so keyTypeName can name it.
type pubOnly struct{ pub crypto.PublicKey }

func (p pubOnly) Public() crypto.PublicKey { return p.pub }
func (pubOnly) Sign(_ io.Reader, _ []byte, _ crypto.SignerOpts) ([]byte, error) {
	return nil, fmt.Errorf("public key only")
}

func signerOf(c *x509.Certificate) crypto.Signer { return pubOnly{c.PublicKey} }

// cmdCheckMode: mode FILE PERM — the file's permission bits.
func cmdCheckMode(ts *testscript.TestScript, neg bool, args []string) {
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	if got := fmt.Sprintf("%04o", fi.Mode().Perm()); (got == args[1]) == neg {
		ts.Fatalf("%s has mode %s, want %s", args[0], got, args[1])
	}
}

// cmdExitCode: code N PROGRAM ARGS... — runs the program and wants exit code N.
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: code N PROGRAM [ARGS...]")
	}
	err := ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		got = ee.ExitCode()
	} else if err != nil {
		ts.Fatalf("%v", err)
	}
	if (fmt.Sprint(got) == args[0]) == neg {
		ts.Fatalf("%s exited %d, want %s", args[1], got, args[0])
	}
}
