package config

import (
	"strings"
	"testing"

	"github.com/estkit/estkit/ca"
)

func TestManufacturerBindingKey(t *testing.T) {
	for value, want := range map[string]ca.Binding{"subject": ca.BindSubject, "serial-number": ca.BindSerialNumber, "none": ca.BindNone} {
		c, err := Decode(strings.NewReader("profiles:\n  - label: devices\n    ext_key_usage: [clientAuth]\n    auth: [manufacturer-cert]\n    manufacturer_binding: " + value + "\n"))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("%s: %v", value, err)
		}
		ps, err := c.CAProfiles()
		if err != nil {
			t.Fatal(err)
		}
		if ps[0].ManufacturerBinding != want {
			t.Errorf("manufacturer_binding: %s read as %q", value, ps[0].ManufacturerBinding)
		}
	}
	for _, bad := range []string{
		"profiles:\n  - label: l\n    ext_key_usage: [clientAuth]\n    auth: [manufacturer-cert]\n    manufacturer_binding: serial\n",
		"profiles:\n  - label: l\n    ext_key_usage: [clientAuth]\n    auth: [basic]\n    manufacturer_binding: subject\n",
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
