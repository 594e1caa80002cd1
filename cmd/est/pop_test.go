package main

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/estd"
	"github.com/estkit/estkit/internal/estdtest"
	"github.com/estkit/estkit/internal/testpki"
)

// TestScriptsPoP runs the scripts in testdata/pop against an estd with a
// label "linked" that requires PoP linking (RFC 7030 3.5) and a shared
// serverkeygen key. Besides what TestScripts sets, each script sees
// KEKID and KEKFILE (the shared key's identifier and a file holding it),
// and RSACERT/RSAKEY (an RSA device certificate estd trusts).
func TestScriptsPoP(t *testing.T) {
	linked := &ca.Profile{
		Name: "linked", Validity: 24 * time.Hour, KeyTypes: ca.DefaultKeyTypes,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, SANs: []string{"dns"},
		Auth: []auth.Method{auth.Basic, auth.Manufacturer, auth.Issued}, ServerKeyGen: true, RequirePoPLink: true,
	}
	s := estdtest.Start(t, estdtest.Options{Profiles: append(ca.DefaultProfiles(), linked)})
	const kekID, kek = "5e45", "00112233445566778899aabbccddeeff"
	if err := os.WriteFile(filepath.Join(s.Dir, estd.KEKsFile), []byte("* "+kekID+" "+kek+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Daemon.Reload(s.ManufacturerFile, "", nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kekFile := filepath.Join(dir, "kek.hex")
	if err := os.WriteFile(kekFile, []byte(kek+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	files := map[string]string{}
	for name, kt := range map[string]ca.KeyType{"DEV": ca.P256, "RSA": ca.RSA2048} {
		cert, key := s.Manufacturer.Issue(t, testpki.Leaf{CN: "SN-" + name, Key: testpki.Key(t, kt), NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)})
		files[name+"CERT"], files[name+"KEY"] = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
		testpki.WriteCerts(t, files[name+"CERT"], cert)
		testpki.WriteKey(t, files[name+"KEY"], key)
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/pop",
		Setup: func(env *testscript.Env) error {
			env.Setenv("SERVER", s.Addr)
			env.Setenv("ANCHOR", s.RootFile)
			env.Setenv("USER", s.User)
			env.Setenv("EST_PASSWORD", s.Password)
			env.Setenv("KEKID", kekID)
			env.Setenv("KEKFILE", kekFile)
			for k, v := range files {
				env.Setenv(k, v)
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"cert": cmdCheckCert,
			"code": cmdExitCode,
			"mode": cmdCheckMode,
		},
	})
}
