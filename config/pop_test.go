package config

import (
	"strings"
	"testing"
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
