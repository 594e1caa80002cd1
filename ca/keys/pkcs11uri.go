package keys

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
)

// PKCS11URI is a parsed RFC 7512 PKCS#11 URI naming a private key:
//
//	pkcs11:token=estd;object=issuing-ca?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/estd/pin
//
// Path attributes select the token (every one given must match) and the
// key; query attributes say which module to load and where the PIN is.
// Values are percent-decoded.
type PKCS11URI struct {
	// Token selection (RFC 7512 section 2.3): empty means "any".
	Token        string // token: the token label (CK_TOKEN_INFO label)
	Manufacturer string // manufacturer: CK_TOKEN_INFO manufacturerID
	Model        string // model: CK_TOKEN_INFO model
	Serial       string // serial: CK_TOKEN_INFO serialNumber
	// Slot selection.
	SlotID           *uint  // slot-id: the decimal CK_SLOT_ID
	SlotDescription  string // slot-description
	SlotManufacturer string // slot-manufacturer
	// Library selection.
	LibraryManufacturer string // library-manufacturer
	LibraryDescription  string // library-description
	LibraryVersion      string // library-version: "major[.minor]"

	// Object selection: at least one of Object (CKA_LABEL) and ID (CKA_ID).
	Object string
	ID     []byte
	// Type is the object class; only "private" (or empty) names a key to sign with.
	Type string

	// ModulePath is the PKCS#11 library to load (module-path); required.
	ModulePath string
	// PINSource (pin-source) is where the user PIN is read from: a file:
	// URI or a file path. PINValue (pin-value) is the PIN itself, which
	// puts the secret into configuration: prefer pin-source.
	PINSource string
	PINValue  string
}

// pathAttrs and queryAttrs are the attributes RFC 7512 defines and estd
// understands; any other attribute is an error rather than a constraint
// silently ignored.
var (
	pathAttrs = []string{
		"token", "manufacturer", "serial", "model",
		"library-manufacturer", "library-description", "library-version",
		"slot-manufacturer", "slot-description", "slot-id",
		"object", "id", "type",
	}
	queryAttrs = []string{"pin-source", "pin-value", "module-name", "module-path"}
)

// ParsePKCS11URI parses an RFC 7512 PKCS#11 URI that names a private key.
// Besides the grammar it requires module-path (estd does not search for
// modules by module-name), an object or id, at most one of pin-source and
// pin-value, and knows no attribute that RFC 7512 does not define.
func ParsePKCS11URI(s string) (*PKCS11URI, error) {
	if !IsPKCS11(s) {
		return nil, fmt.Errorf("pkcs11: %q is not a PKCS#11 URI (want pkcs11:...)", redactPIN(s))
	}
	rest := s[len("pkcs11:"):]
	path, query, _ := strings.Cut(rest, "?")
	if strings.Contains(rest, "#") {
		return nil, errors.New("pkcs11: a PKCS#11 URI has no fragment ('#' must be written %23)")
	}
	u := &PKCS11URI{}
	seen := map[string]bool{}
	set := func(kind, attr string, known []string) error {
		name, raw, ok := strings.Cut(attr, "=")
		if !ok {
			return fmt.Errorf("pkcs11: %s attribute %q has no '='", kind, name)
		}
		if !slices.Contains(known, name) {
			if slices.Contains(pathAttrs, name) || slices.Contains(queryAttrs, name) {
				return fmt.Errorf("pkcs11: %q is a %s attribute in the wrong part of the URI", name, otherKind(kind))
			}
			return fmt.Errorf("pkcs11: unknown %s attribute %q", kind, name)
		}
		if seen[name] {
			return fmt.Errorf("pkcs11: attribute %q appears twice", name)
		}
		seen[name] = true
		v, err := url.PathUnescape(raw)
		if err != nil {
			return fmt.Errorf("pkcs11: attribute %q: bad percent-encoding", name)
		}
		if v == "" {
			return fmt.Errorf("pkcs11: attribute %q is empty", name)
		}
		return u.set(name, v)
	}
	if path != "" {
		for attr := range strings.SplitSeq(path, ";") {
			if err := set("path", attr, pathAttrs); err != nil {
				return nil, err
			}
		}
	}
	if query != "" {
		for attr := range strings.SplitSeq(query, "&") {
			if err := set("query", attr, queryAttrs); err != nil {
				return nil, err
			}
		}
	}
	if u.ModulePath == "" {
		if seen["module-name"] {
			return nil, errors.New("pkcs11: module-name is not supported; give the library's file with module-path=")
		}
		return nil, errors.New("pkcs11: the URI needs module-path= (the PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so)")
	}
	if u.Object == "" && u.ID == nil {
		return nil, errors.New("pkcs11: the URI names no key: add object= (the key's label) or id=")
	}
	if u.PINSource != "" && u.PINValue != "" {
		return nil, errors.New("pkcs11: give pin-source or pin-value, not both")
	}
	if u.Type != "" && u.Type != "private" {
		return nil, fmt.Errorf("pkcs11: type=%s does not name a private key (want type=private or no type)", u.Type)
	}
	return u, nil
}

func otherKind(kind string) string {
	if kind == "path" {
		return "query"
	}
	return "path"
}

func (u *PKCS11URI) set(name, v string) error {
	switch name {
	case "token":
		u.Token = v
	case "manufacturer":
		u.Manufacturer = v
	case "serial":
		u.Serial = v
	case "model":
		u.Model = v
	case "library-manufacturer":
		u.LibraryManufacturer = v
	case "library-description":
		u.LibraryDescription = v
	case "library-version":
		if _, _, ok := parseVersion(v); !ok {
			return fmt.Errorf("pkcs11: library-version %q is not major[.minor]", v)
		}
		u.LibraryVersion = v
	case "slot-manufacturer":
		u.SlotManufacturer = v
	case "slot-description":
		u.SlotDescription = v
	case "slot-id":
		n, err := strconv.ParseUint(v, 10, 0)
		if err != nil {
			return fmt.Errorf("pkcs11: slot-id %q is not a decimal number", v)
		}
		id := uint(n)
		u.SlotID = &id
	case "object":
		u.Object = v
	case "id":
		u.ID = []byte(v)
	case "type":
		u.Type = v
	case "module-path":
		u.ModulePath = v
	case "module-name":
		// Ignored when module-path is present (RFC 7512 section 2.3).
	case "pin-source":
		u.PINSource = v
	case "pin-value":
		u.PINValue = v
	}
	return nil
}

// parseVersion parses library-version: "M" or "M.m" (RFC 7512 section 2.3).
func parseVersion(v string) (major, minor uint8, ok bool) {
	ma, mi, hasMinor := strings.Cut(v, ".")
	a, err := strconv.ParseUint(ma, 10, 8)
	if err != nil {
		return 0, 0, false
	}
	if !hasMinor {
		return uint8(a), 0, true
	}
	b, err := strconv.ParseUint(mi, 10, 8)
	if err != nil {
		return 0, 0, false
	}
	return uint8(a), uint8(b), true
}

// String returns the URI in RFC 7512 form with a pin-value replaced by
// "REDACTED", so it is safe for logs and error messages.
func (u *PKCS11URI) String() string {
	var path, query []string
	add := func(list *[]string, name, v string, query bool) {
		if v != "" {
			*list = append(*list, name+"="+escape(v, query))
		}
	}
	add(&path, "token", u.Token, false)
	add(&path, "manufacturer", u.Manufacturer, false)
	add(&path, "serial", u.Serial, false)
	add(&path, "model", u.Model, false)
	add(&path, "library-manufacturer", u.LibraryManufacturer, false)
	add(&path, "library-description", u.LibraryDescription, false)
	add(&path, "library-version", u.LibraryVersion, false)
	add(&path, "slot-manufacturer", u.SlotManufacturer, false)
	add(&path, "slot-description", u.SlotDescription, false)
	if u.SlotID != nil {
		add(&path, "slot-id", strconv.FormatUint(uint64(*u.SlotID), 10), false)
	}
	add(&path, "object", u.Object, false)
	if u.ID != nil {
		var b strings.Builder
		for _, c := range u.ID {
			fmt.Fprintf(&b, "%%%02X", c)
		}
		path = append(path, "id="+b.String())
	}
	add(&path, "type", u.Type, false)
	add(&query, "module-path", u.ModulePath, true)
	add(&query, "pin-source", u.PINSource, true)
	if u.PINValue != "" {
		query = append(query, "pin-value=REDACTED")
	}
	s := "pkcs11:" + strings.Join(path, ";")
	if len(query) > 0 {
		s += "?" + strings.Join(query, "&")
	}
	return s
}

// escape percent-encodes v as a path (pk11-pchar) or query (pk11-qchar)
// attribute value of RFC 7512 section 2.3.
func escape(v string, query bool) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			strings.IndexByte("-._~:[]@!$'()*+,=", c) >= 0,
			!query && c == '&',
			query && strings.IndexByte("/?|", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// redactPIN hides a pin-value in a string that failed to parse as a URI.
func redactPIN(s string) string {
	i := strings.Index(s, "pin-value=")
	if i < 0 {
		return s
	}
	j := strings.IndexAny(s[i:], "&#")
	if j < 0 {
		return s[:i] + "pin-value=REDACTED"
	}
	return s[:i] + "pin-value=REDACTED" + s[i+j:]
}

// pin returns the user PIN: from pin-source, pin-value or opts.PIN, in that
// order. A pin-value is used with a warning, as it is a secret in the
// configuration.
func (u *PKCS11URI) pin(opts Options) (string, error) {
	switch {
	case u.PINSource != "":
		path, err := pinSourcePath(u.PINSource)
		if err != nil {
			return "", err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("pkcs11: reading the PIN: %w", err)
		}
		b = trimNewline(b)
		if len(b) == 0 {
			return "", fmt.Errorf("pkcs11: the PIN file %s is empty", path)
		}
		return string(b), nil
	case u.PINValue != "":
		opts.logger().Warn("pkcs11: the key URI holds the token PIN in pin-value; anyone who can read the configuration can use the key. Prefer pin-source=file:/path/to/pin (mode 0600).", "uri", u.String())
		return u.PINValue, nil
	case opts.PIN != nil:
		b, err := opts.PIN()
		if err != nil {
			return "", fmt.Errorf("pkcs11: reading the PIN: %w", err)
		}
		return string(b), nil
	}
	return "", fmt.Errorf("pkcs11: no PIN for %s: add pin-source=file:/path/to/pin to the URI", u)
}

// pinSourcePath returns the file a pin-source names: "file:/p",
// "file:///p", "file://localhost/p" or a plain path. The value was
// percent-decoded once, as part of the PKCS#11 URI, and is not decoded again.
func pinSourcePath(src string) (string, error) {
	if len(src) >= 5 && strings.EqualFold(src[:5], "file:") {
		p := src[5:]
		if rest, ok := strings.CutPrefix(p, "//"); ok {
			host, path, _ := strings.Cut(rest, "/")
			if host != "" && host != "localhost" {
				return "", fmt.Errorf("pkcs11: pin-source %q is not a local file", src)
			}
			p = "/" + path
		}
		if !strings.HasPrefix(p, "/") || p == "/" {
			return "", fmt.Errorf("pkcs11: pin-source %q: a file: URI needs an absolute path", src)
		}
		return p, nil
	}
	if strings.HasPrefix(src, "|") || (strings.Contains(src, ":") && !strings.HasPrefix(src, "/") && !strings.HasPrefix(src, ".")) {
		return "", fmt.Errorf("pkcs11: pin-source %q is not supported; use file:/path/to/pin", src)
	}
	return src, nil
}
