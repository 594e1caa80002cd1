package main

import (
	"context"
	"encoding/asn1"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/estdtest"
)

// TestScriptsFullCMC runs the scripts in testdata/fullcmc against an estd
// with a label "ra" that issues registration authority certificates (EKU
// id-kp-cmcRA) and a label "fleet" that accepts registration authorities.
// Besides SERVER, ANCHOR, USER and EST_PASSWORD, scripts have the commands
// serial FILE VAR (VAR := the certificate's hex serial) and revoked FILE
// REASON (estd's store has it revoked with that reason code).
func TestScriptsFullCMC(t *testing.T) {
	ps := ca.DefaultProfiles()
	ra, fleet := *ps[1], *ps[1]
	ra.Name, ra.ExtKeyUsageOIDs = "ra", []asn1.ObjectIdentifier{est.OIDKPCMCRA}
	fleet.Name, fleet.AllowRA = "fleet", true
	s := estdtest.Start(t, estdtest.Options{Profiles: append(ps, &ra, &fleet)})
	testscript.Run(t, testscript.Params{
		Dir: "testdata/fullcmc",
		Setup: func(env *testscript.Env) error {
			env.Setenv("SERVER", s.Addr)
			env.Setenv("ANCHOR", s.RootFile)
			env.Setenv("USER", s.User)
			env.Setenv("EST_PASSWORD", s.Password)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"cert": cmdCheckCert,
			"code": cmdExitCode,
			"serial": func(ts *testscript.TestScript, neg bool, args []string) {
				certs, err := readCerts(ts.MkAbs(args[0]))
				ts.Check(err)
				ts.Setenv(args[1], certs[0].SerialNumber.Text(16))
			},
			"revoked": func(ts *testscript.TestScript, neg bool, args []string) {
				certs, err := readCerts(ts.MkAbs(args[0]))
				ts.Check(err)
				rec, err := s.Daemon.Store.BySerial(context.Background(), certs[0].SerialNumber)
				ts.Check(err)
				ok := rec.Revoked && strconv.Itoa(rec.RevocationReason) == args[1]
				if ok == neg {
					ts.Fatalf("%s: revoked %v, reason %d", args[0], rec.Revoked, rec.RevocationReason)
				}
			},
		},
	})
}
