package est

import (
	"bytes"
	"encoding/base64"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestDecodeBase64(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // decoded bytes
	}{
		{"padded", "QUJD", "ABC"},
		{"one pad", "QUI=", "AB"},
		{"two pads", "QQ==", "A"},
		{"missing one pad", "QUI", "AB"},
		{"missing two pads", "QQ", "A"},
		{"trailing LF", "QUJD\n", "ABC"},
		{"trailing CRLF", "QUJD\r\n", "ABC"},
		{"leading white space", " \t\r\nQUJD", "ABC"},
		{"LF lines", "QUJD\nREVG\n", "ABCDEF"},
		{"CRLF lines", "QUJD\r\nREVG\r\n", "ABCDEF"},
		{"CR only lines", "QUJD\rREVG\r", "ABCDEF"},
		{"break inside a quantum", "QU\nJD\nRE\r\nVG", "ABCDEF"},
		{"spaces and tabs", "QU JD\tRE VG", "ABCDEF"},
		{"white space inside padding", "QQ=\n=\n", "A"},
		{"unpadded with breaks", "QUJD\nREVGRw\n", "ABCDEFG"},
		{"binary", "AP8Afw==", "\x00\xff\x00\x7f"},
		{"plus and slash", "+/+/", "\xfb\xff\xbf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeBase64([]byte(tt.in))
			if err != nil {
				t.Fatalf("DecodeBase64(%q): %v", tt.in, err)
			}
			if string(got) != tt.want {
				t.Fatalf("DecodeBase64(%q) = %q; want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestDecodeBase64Errors(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"only spaces", "   "},
		{"only white space", " \t\r\n\r\n"},
		{"only padding", "===="},
		{"padding and white space", "=\n=\n"},
		{"single char", "Q"},
		{"five chars", "QUJDR"},
		{"illegal char", "QU!D"},
		{"URL alphabet minus", "QUJD-A=="},
		{"URL alphabet underscore", "QUJD_A=="},
		{"padding in the middle", "QQ==QUJD"},
		{"pad inside quantum", "QU=D"},
		{"NUL", "QUJD\x00"},
		{"non-ASCII", "QUJDé"},
		{"high byte", "QUJD\xff"},
		{"form feed", "QUJD\fREVG"},
		{"vertical tab", "QUJD\vREVG"},
		{"PEM armour", "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n"},
		{"data URL", "data:;base64,QUJD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeBase64([]byte(tt.in))
			if err == nil {
				t.Fatalf("DecodeBase64(%q) = %q; want an error", tt.in, got)
			}
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("DecodeBase64(%q) error %v is not of kind ErrBadRequest", tt.in, err)
			}
			if got != nil {
				t.Errorf("DecodeBase64(%q) returned %q with its error", tt.in, got)
			}
			if d := Detail(err); d == "" || d == ErrInternal.Error() {
				t.Errorf("DecodeBase64(%q) error has no useful detail: %q", tt.in, d)
			}
		})
	}
}

// TestDecodeBase64DoesNotAlias checks the result does not share memory with
// the input, so a caller may reuse its body buffer.
func TestDecodeBase64DoesNotAlias(t *testing.T) {
	in := []byte("QUJDREVG")
	out, err := DecodeBase64(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i] = 'A'
	}
	if string(out) != "ABCDEF" {
		t.Fatalf("decoded bytes changed with the input: %q", out)
	}
}

func TestEncodeBase64(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 3, 4, 45, 46, 47, 48, 49, 50, 95, 96, 97, 144, 1000, 4096} {
		der := make([]byte, n)
		for i := range der {
			der[i] = byte(r.UintN(256))
		}
		enc := EncodeBase64(der)
		if bytes.ContainsAny(enc, "\r\n \t") {
			t.Errorf("n=%d: encoding has white space or line breaks (RFC 8951 3.1)", n)
		}
		if want := base64.StdEncoding.EncodeToString(der); string(enc) != want {
			t.Errorf("n=%d: not the padded standard encoding", n)
		}
		back, err := DecodeBase64(enc)
		if err != nil {
			t.Fatalf("n=%d: DecodeBase64(EncodeBase64(x)): %v", n, err)
		}
		if !bytes.Equal(back, der) {
			t.Fatalf("n=%d: round trip changed the bytes", n)
		}
		// The line-broken forms peers send (64 or 76 columns, LF or CRLF)
		// decode to the same bytes.
		for _, width := range []int{64, 76} {
			for _, eol := range []string{"\n", "\r\n"} {
				var broken []byte
				for rest := enc; len(rest) > 0; {
					m := min(width, len(rest))
					broken = append(append(broken, rest[:m]...), eol...)
					rest = rest[m:]
				}
				if back, err := DecodeBase64(broken); err != nil || !bytes.Equal(back, der) {
					t.Fatalf("n=%d width=%d eol=%q: %v", n, width, eol, err)
				}
			}
		}
		// And so does the unpadded form.
		raw := []byte(base64.RawStdEncoding.EncodeToString(der))
		if back, err := DecodeBase64(raw); err != nil || !bytes.Equal(back, der) {
			t.Fatalf("n=%d: unpadded round trip: %v", n, err)
		}
	}
}

func TestEncodeBase64Exact(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"A", "QQ=="},
		{"ABC", "QUJD"},
		{strings.Repeat("\x00", 49), strings.Repeat("A", 64) + "AA=="},
	}
	for _, tt := range tests {
		if got := string(EncodeBase64([]byte(tt.in))); got != tt.want {
			t.Errorf("EncodeBase64(%d bytes) = %q; want %q", len(tt.in), got, tt.want)
		}
	}
}
