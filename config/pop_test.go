package config

import (
	"strings"
	"testing"

	"github.com/estkit/estkit/ca"
)

func TestPoPLinkKeys(t *testing.T) {
	c, err := Decode(strings.NewReader(`
profiles:
  - label: linked
    ext_key_usage: [clientAuth]
    auth: [manufacturer-cert]
    require_pop_link: true
    allow_ra: true
`))
	if err != nil {
		t.Fatal(err)
	}
	ps, err := c.CAProfiles()
	if err != nil {
		t.Fatal(err)
	}
	if !ps[0].RequirePoPLink || !ps[0].AllowRA {
		t.Fatalf("require_pop_link and allow_ra not read: %+v", ps[0])
	}
	for _, bad := range []string{
		"profiles:\n  - label: l\n    ext_key_usage: [clientAuth]\n    auth: [manufacturer-cert]\n    require_pop_link: true\n    manual_approval: true\n",
		"profiles:\n  - label: l\n    ext_key_usage: [clientAuth]\n    auth: [basic]\n    allow_ra: true\n",
	} {
		c, err := Decode(strings.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err == nil {
			t.Errorf("Validate accepted:\n%s", bad)
		}
	}
}

func TestPendingCapKeys(t *testing.T) {
	c, err := Decode(strings.NewReader(`
profiles:
  - label: held
    ext_key_usage: [clientAuth]
    auth: [basic]
    manual_approval: true
    max_pending: 50
    max_pending_per_requester: 3
  - label: uncapped
    ext_key_usage: [clientAuth]
    auth: [basic]
    manual_approval: true
    max_pending: -1
  - label: defaults
    ext_key_usage: [clientAuth]
    auth: [basic]
    manual_approval: true
`))
	if err != nil {
		t.Fatal(err)
	}
	ps, err := c.CAProfiles()
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range [][2]int{{50, 3}, {0, 0}, {ca.DefaultMaxPending, 0}} {
		if l, r := ps[i].PendingLimits(); l != want[0] || r != want[1] {
			t.Errorf("%s: PendingLimits = %d, %d; want %d, %d", ps[i].Name, l, r, want[0], want[1])
		}
	}
	for _, bad := range []string{"max_pending: -2", "max_pending_per_requester: -1", "max_pending: 2000000"} {
		c, err := Decode(strings.NewReader("profiles:\n  - label: l\n    ext_key_usage: [clientAuth]\n    auth: [basic]\n    manual_approval: true\n    " + bad + "\n"))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err == nil {
			t.Errorf("Validate accepted %s", bad)
		}
	}
}
