package conformance_test

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit/conformance"
	"github.com/estkit/estkit/internal/estdtest"
	"github.com/estkit/estkit/internal/testpki"
)

// estdConfig returns a Config with every input for a started estd: a
// device certificate from the manufacturer CA it trusts, a rogue look-alike,
// an expired one, the bootstrap user.
func estdConfig(t *testing.T, s *estdtest.Server) conformance.Config {
	t.Helper()
	now := time.Now()
	dev, devKey := s.Manufacturer.Device(t, "SN-4711", now)
	rogue, rogueKey := testpki.Rogue(t, now).Device(t, "SN-4711", now)
	exp, expKey := s.Manufacturer.Expired(t, "SN-old", now)
	tc := func(c tls.Certificate) *tls.Certificate { return &c }
	return conformance.Config{
		Server:       s.Addr,
		ClientLabel:  conformance.DefaultClientLabel,
		ServerLabel:  conformance.DefaultServerLabel,
		TrustAnchors: s.Daemon.CA.Chain[len(s.Daemon.CA.Chain)-1:],
		Manufacturer: tc(testpki.TLSCertificate(dev, devKey)),
		Rogue:        tc(testpki.TLSCertificate(rogue, rogueKey)),
		Expired:      tc(testpki.TLSCertificate(exp, expKey)),
		Username:     s.User,
		Password:     s.Password,
	}
}

// TestEstdPasses: a real estd passes every check, none skipped.
func TestEstdPasses(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{})
	rep, err := conformance.Run(context.Background(), estdConfig(t, s))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	rep.WriteText(&out)
	t.Log(out.String())
	if c := rep.Counts(); c.Failed != 0 || c.Skipped != 0 || c.Passed != len(conformance.Checks()) {
		t.Fatalf("estd: %s, want all %d passed", c, len(conformance.Checks()))
	}
}
