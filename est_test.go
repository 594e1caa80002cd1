package est

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		name  string
		path  string
		label string
		op    Operation
		ok    bool
	}{
		{"cacerts", "/.well-known/est/cacerts", "", OpCACerts, true},
		{"simpleenroll", "/.well-known/est/simpleenroll", "", OpSimpleEnroll, true},
		{"simplereenroll", "/.well-known/est/simplereenroll", "", OpSimpleReenroll, true},
		{"fullcmc", "/.well-known/est/fullcmc", "", OpFullCMC, true},
		{"serverkeygen", "/.well-known/est/serverkeygen", "", OpServerKeyGen, true},
		{"csrattrs", "/.well-known/est/csrattrs", "", OpCSRAttrs, true},
		{"label", "/.well-known/est/arbitraryLabel1/simpleenroll", "arbitraryLabel1", OpSimpleEnroll, true},
		{"label punctuation", "/.well-known/est/a.b_c~d-e/cacerts", "a.b_c~d-e", OpCACerts, true},
		{"label digit first", "/.well-known/est/0ca/csrattrs", "0ca", OpCSRAttrs, true},
		{"label 64 chars", "/.well-known/est/" + strings.Repeat("a", 64) + "/cacerts", strings.Repeat("a", 64), OpCACerts, true},
		{"label prefix of op", "/.well-known/est/cacert/cacerts", "cacert", OpCACerts, true},
		{"label op in other case", "/.well-known/est/CACERTS/cacerts", "CACERTS", OpCACerts, true},

		{"empty", "", "", "", false},
		{"root", "/", "", "", false},
		{"prefix without slash", "/.well-known/est", "", "", false},
		{"prefix only", "/.well-known/est/", "", "", false},
		{"no leading slash", ".well-known/est/cacerts", "", "", false},
		{"other prefix", "/.well-known/acme/cacerts", "", "", false},
		{"unknown op", "/.well-known/est/enroll", "", "", false},
		{"op wrong case", "/.well-known/est/CACerts", "", "", false},
		{"unknown op under label", "/.well-known/est/ca1/enroll", "", "", false},
		{"label equal to op", "/.well-known/est/cacerts/simpleenroll", "", "", false},
		{"label equal to same op", "/.well-known/est/csrattrs/csrattrs", "", "", false},
		{"trailing slash", "/.well-known/est/cacerts/", "", "", false},
		{"trailing slash after label", "/.well-known/est/ca1/cacerts/", "", "", false},
		{"label only with slash", "/.well-known/est/ca1/", "", "", false},
		{"extra segment", "/.well-known/est/a/b/cacerts", "", "", false},
		{"op then extra", "/.well-known/est/ca1/cacerts/x", "", "", false},
		{"double slash", "/.well-known/est//cacerts", "", "", false},
		{"label dot", "/.well-known/est/./cacerts", "", "", false},
		{"label dotdot", "/.well-known/est/../cacerts", "", "", false},
		{"label leading dash", "/.well-known/est/-ca/cacerts", "", "", false},
		{"label 65 chars", "/.well-known/est/" + strings.Repeat("a", 65) + "/cacerts", "", "", false},
		{"label with space", "/.well-known/est/a b/cacerts", "", "", false},
		{"label percent", "/.well-known/est/a%2Fb/cacerts", "", "", false},
		{"label non-ascii", "/.well-known/est/caé/cacerts", "", "", false},
		{"label newline", "/.well-known/est/ca\n/cacerts", "", "", false},
		{"query kept in path", "/.well-known/est/cacerts?x=1", "", "", false},
		{"op with NUL", "/.well-known/est/cacerts\x00", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			label, op, err := ParsePath(tt.path)
			if !tt.ok {
				if err == nil {
					t.Fatalf("ParsePath(%q) = %q, %q, nil; want an error", tt.path, label, op)
				}
				if !errors.Is(err, ErrNotFound) || KindOf(err) != ErrNotFound {
					t.Fatalf("ParsePath(%q) error %v is not of kind ErrNotFound", tt.path, err)
				}
				if label != "" || op != "" {
					t.Errorf("ParsePath(%q) returned %q, %q with its error", tt.path, label, op)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePath(%q): %v", tt.path, err)
			}
			if label != tt.label || op != tt.op {
				t.Fatalf("ParsePath(%q) = %q, %q; want %q, %q", tt.path, label, op, tt.label, tt.op)
			}
			if got := Path(label, op); got != tt.path {
				t.Errorf("Path(%q, %q) = %q; want %q", label, op, got, tt.path)
			}
		})
	}
}

// TestParsePathErrorDetail checks that the requester-safe detail of a path
// error is bounded and valid UTF-8 whatever the path holds.
func TestParsePathErrorDetail(t *testing.T) {
	for _, path := range []string{
		"/.well-known/est/" + strings.Repeat("x", 1000),
		"/.well-known/est/" + strings.Repeat("é", 100) + "/cacerts",
		"/.well-known/est/\xff\xfe/cacerts",
		"/.well-known/est/" + strings.Repeat("a", 39) + "é",
	} {
		_, _, err := ParsePath(path)
		if err == nil {
			t.Fatalf("ParsePath(%q) succeeded", path)
		}
		d := Detail(err)
		if len(d) > 100 {
			t.Errorf("detail of %q is %d bytes long: %q", path, len(d), d)
		}
		if !utf8.ValidString(d) {
			t.Errorf("detail of %q is not valid UTF-8: %q", path, d)
		}
	}
}

func TestPathRoundTrip(t *testing.T) {
	for _, label := range []string{"", "ca1", "arbitraryLabel1", "a.b-c_d~e", strings.Repeat("z", 64)} {
		for _, op := range Operations {
			p := Path(label, op)
			if !strings.HasPrefix(p, WellKnownPrefix) {
				t.Errorf("Path(%q, %q) = %q lacks the well-known prefix", label, op, p)
			}
			gl, gop, err := ParsePath(p)
			if err != nil {
				t.Errorf("ParsePath(Path(%q, %q) = %q): %v", label, op, p, err)
				continue
			}
			if gl != label || gop != op {
				t.Errorf("ParsePath(%q) = %q, %q; want %q, %q", p, gl, gop, label, op)
			}
		}
	}
	if got, want := Path("", OpCACerts), "/.well-known/est/cacerts"; got != want {
		t.Errorf("Path without label = %q; want %q", got, want)
	}
	if got, want := Path("ca1", OpSimpleEnroll), "/.well-known/est/ca1/simpleenroll"; got != want {
		t.Errorf("Path with label = %q; want %q", got, want)
	}
}

func TestOperation(t *testing.T) {
	tests := []struct {
		op     Operation
		valid  bool
		method string
	}{
		{OpCACerts, true, "GET"},
		{OpSimpleEnroll, true, "POST"},
		{OpSimpleReenroll, true, "POST"},
		{OpFullCMC, true, "POST"},
		{OpServerKeyGen, true, "POST"},
		{OpCSRAttrs, true, "GET"},
		{"", false, "POST"},
		{"CACERTS", false, "POST"},
		{"enroll", false, "POST"},
		{"cacerts/", false, "POST"},
	}
	for _, tt := range tests {
		if got := tt.op.Valid(); got != tt.valid {
			t.Errorf("Operation(%q).Valid() = %v; want %v", tt.op, got, tt.valid)
		}
		if got := tt.op.Method(); got != tt.method {
			t.Errorf("Operation(%q).Method() = %q; want %q", tt.op, got, tt.method)
		}
	}
	// Operations is exactly the six of RFC 7030 3.2.2, in order, no duplicates.
	want := []Operation{"cacerts", "simpleenroll", "simplereenroll", "fullcmc", "serverkeygen", "csrattrs"}
	if len(Operations) != len(want) {
		t.Fatalf("Operations has %d entries; want %d", len(Operations), len(want))
	}
	for i := range want {
		if Operations[i] != want[i] {
			t.Errorf("Operations[%d] = %q; want %q", i, Operations[i], want[i])
		}
	}
}

func TestValidLabel(t *testing.T) {
	tests := []struct {
		label string
		ok    bool
	}{
		{"a", true},
		{"0", true},
		{"ca1", true},
		{"arbitraryLabel1", true},
		{"a.b", true},
		{"a_b", true},
		{"a~b", true},
		{"a-b", true},
		{"a.", true},
		{"Cacerts", true},
		{"cacerts2", true},
		{strings.Repeat("a", 64), true},

		{"", false},
		{strings.Repeat("a", 65), false},
		{".a", false},
		{"-a", false},
		{"_a", false},
		{"~a", false},
		{".", false},
		{"..", false},
		{"a/b", false},
		{"a b", false},
		{"a%20b", false},
		{"a+b", false},
		{"a:b", false},
		{"é", false},
		{"a\n", false},
		{"a\x00", false},
		{"cacerts", false},
		{"simpleenroll", false},
		{"simplereenroll", false},
		{"fullcmc", false},
		{"serverkeygen", false},
		{"csrattrs", false},
	}
	for _, tt := range tests {
		if got := ValidLabel(tt.label); got != tt.ok {
			t.Errorf("ValidLabel(%q) = %v; want %v", tt.label, got, tt.ok)
		}
	}
}

func TestMediaTypes(t *testing.T) {
	// The media types are wire constants; a typo would break interoperability.
	for got, want := range map[string]string{
		MediaPKCS10:         "application/pkcs10",
		MediaPKCS7:          "application/pkcs7-mime",
		MediaCertsOnly:      "application/pkcs7-mime; smime-type=certs-only",
		MediaCMCRequest:     "application/pkcs7-mime; smime-type=CMC-request",
		MediaCMCResponse:    "application/pkcs7-mime; smime-type=CMC-response",
		MediaServerKey:      "application/pkcs7-mime; smime-type=server-generated-key",
		MediaPKCS8:          "application/pkcs8",
		MediaCSRAttrs:       "application/csrattrs",
		MediaMultipartMixed: "multipart/mixed",
		WellKnownPrefix:     "/.well-known/est/",
	} {
		if got != want {
			t.Errorf("constant = %q; want %q", got, want)
		}
	}
}
