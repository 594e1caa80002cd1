package config

import (
	"strings"
	"testing"

	"github.com/estkit/estkit"
)

func TestProfileFullCMC(t *testing.T) {
	c, err := Decode(strings.NewReader("profiles:\n  - label: ra\n    ext_key_usage: [clientAuth, cmcRA]\n    auth: [basic]\n    fullcmc: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	ps, err := c.CAProfiles()
	if err != nil {
		t.Fatal(err)
	}
	p := ps[0]
	if !p.FullCMC || len(p.ExtKeyUsage) != 1 || len(p.ExtKeyUsageOIDs) != 1 || !p.ExtKeyUsageOIDs[0].Equal(est.OIDKPCMCRA) {
		t.Fatalf("profile %+v", p)
	}
}
