// Package config is estd's configuration file: YAML, decoded strictly
// (unknown keys are errors) and checked by Validate before anything starts,
// so `estd -validate` can tell an operator what is wrong without serving.
package config

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/pemutil"
	"github.com/estkit/estkit/server"
)

// Config is estd's configuration. Every command-line flag has a key here; a
// flag given on the command line wins over the file.
type Config struct {
	// Data is the data directory (CA, TLS certificate, users, database).
	Data string `yaml:"data"`
	// Listen is the address EST is served on.
	Listen string `yaml:"listen"`
	// Hostnames are extra names or addresses for the TLS certificate.
	Hostnames []string `yaml:"hostnames"`
	// ManufacturerCA is a PEM bundle of manufacturer trust anchors.
	ManufacturerCA string `yaml:"manufacturer_ca"`
	// ManufacturerCRL holds the manufacturers' CRLs (PEM, or one DER CRL),
	// each signed by a certificate of ManufacturerCA: a device whose
	// factory certificate one of them lists is refused.
	ManufacturerCRL string `yaml:"manufacturer_crl"`
	// CAKeyType is the key type of a CA created on first start.
	CAKeyType string `yaml:"ca_key_type"`
	// LogFormat is text or json.
	LogFormat string `yaml:"log_format"`
	// MaxBody limits request bodies, in bytes.
	MaxBody int64 `yaml:"max_body"`
	// PKIListen is an address for plain HTTP serving the CRL (/crl) and OCSP
	// (/ocsp); "" for none.
	PKIListen string `yaml:"pki_listen"`
	// CRLURL and OCSPURL are written into issued certificates (CRL
	// Distribution Points, Authority Information Access); "" for none.
	CRLURL  string `yaml:"crl_url"`
	OCSPURL string `yaml:"ocsp_url"`
	// MetricsListen is an address for plain HTTP serving /metrics, /healthz
	// and /readyz; "" for none.
	MetricsListen string `yaml:"metrics_listen"`
	// AdminListen is an address for the admin dashboard (HTTPS, admin users
	// of the data directory's admin-users file); "" for none.
	AdminListen string `yaml:"admin_listen"`
	// Timeouts cut off slow clients on the EST listener; zero keeps the
	// defaults (10s headers, 30s whole request, 60s response, 120s idle).
	Timeouts Timeouts `yaml:"timeouts"`
	// Limits cap connections, TLS handshakes and failed authentication on
	// the EST listener; zero keeps the defaults.
	Limits Limits `yaml:"limits"`
	// Store selects the database; the default is SQLite in the data directory.
	Store Store `yaml:"store"`
	// CAKey is where the issuing CA key is when not in the data directory: a
	// key file or a PKCS#11 URI (RFC 7512). CAKeyPassphraseFile unlocks an
	// encrypted key file (else ESTD_CA_KEY_PASSPHRASE in the environment).
	CAKey               string `yaml:"ca_key"`
	CAKeyPassphraseFile string `yaml:"ca_key_passphrase_file"`
	// TLS narrows the TLS policy (it cannot go below TLS 1.2 or admit
	// non-AEAD or non-ECDHE suites).
	TLS TLS `yaml:"tls"`
	// Profiles replace the built-in profiles when given.
	Profiles []Profile `yaml:"profiles"`
}

// Timeouts is the timeouts: section.
type Timeouts struct {
	ReadHeader Duration `yaml:"read_header"`
	Read       Duration `yaml:"read"`
	Write      Duration `yaml:"write"`
	Idle       Duration `yaml:"idle"`
}

// Server returns the timeouts as server.Timeouts.
func (t Timeouts) Server() server.Timeouts {
	return server.Timeouts{ReadHeader: time.Duration(t.ReadHeader), Read: time.Duration(t.Read), Write: time.Duration(t.Write), Idle: time.Duration(t.Idle)}
}

// Store is the store: section.
type Store struct {
	// Driver is sqlite (default) or postgres.
	Driver string `yaml:"driver"`
	// DSN is the PostgreSQL connection string (postgres://...). Keep the
	// password out of it: PGPASSWORD or a passfile (PGPASSFILE) work.
	DSN string `yaml:"dsn"`
}

// Postgres returns the PostgreSQL DSN, or "" for SQLite.
func (s Store) Postgres() string {
	if s.Driver == "postgres" {
		return s.DSN
	}
	return ""
}

// TLS is the tls: section.
type TLS struct {
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string `yaml:"min_version"`
	// CipherSuites are IANA names of TLS 1.2 suites, a subset of
	// server.CipherSuites; empty means all of those.
	CipherSuites []string `yaml:"cipher_suites"`
	// PostQuantum offers the hybrid post-quantum key exchange
	// X25519MLKEM768 to clients that support it (default true); false
	// leaves X25519 first for everyone, ~85 us of server CPU less per full
	// handshake (see server.TLSPolicy.NoPostQuantum).
	PostQuantum *bool `yaml:"post_quantum"`
}

// Policy returns the server.TLSPolicy of t.
func (t TLS) Policy() (server.TLSPolicy, error) {
	var p server.TLSPolicy
	switch t.MinVersion {
	case "", "1.2":
		p.MinVersion = tls.VersionTLS12
	case "1.3":
		p.MinVersion = tls.VersionTLS13
	default:
		return p, fmt.Errorf("tls.min_version: want 1.2 or 1.3, got %q", t.MinVersion)
	}
	for _, name := range t.CipherSuites {
		id, ok := server.CipherSuiteByName(name)
		if !ok {
			return p, fmt.Errorf("tls.cipher_suites: %q is not an allowed suite (ECDHE with AES-GCM or ChaCha20-Poly1305 only)", name)
		}
		p.CipherSuites = append(p.CipherSuites, id)
	}
	p.NoPostQuantum = t.PostQuantum != nil && !*t.PostQuantum
	return p, nil
}

// Profile is one label's policy; see ca.Profile for the meaning of each field.
type Profile struct {
	Label        string   `yaml:"label"`
	Validity     Duration `yaml:"validity"`
	KeyTypes     []string `yaml:"key_types"`
	KeyUsage     []string `yaml:"key_usage"`
	ExtKeyUsage  []string `yaml:"ext_key_usage"`
	SANs         []string `yaml:"sans"`
	RequireSAN   []string `yaml:"require_san"`
	Auth         []string `yaml:"auth"`
	ServerKeyGen bool     `yaml:"serverkeygen"`
	// ManualApproval holds enrollments for an operator (RFC 7030 4.2.3).
	ManualApproval bool `yaml:"manual_approval"`
	// MaxPending caps the requests waiting for an operator (default
	// 10000; -1: no cap); MaxPendingPerRequester those of one requester
	// (default: no cap).
	MaxPending             int `yaml:"max_pending"`
	MaxPendingPerRequester int `yaml:"max_pending_per_requester"`
	// RevokeOnRenew revokes a certificate once its renewal is issued.
	RevokeOnRenew bool      `yaml:"revoke_on_renew"`
	CSRAttrs      []CSRAttr `yaml:"csrattrs"`
	// FullCMC serves /fullcmc (RFC 7030 4.3) on the label.
	FullCMC bool `yaml:"fullcmc"`
	// RequirePoPLink refuses CSRs not linked to their TLS connection
	// (RFC 7030 3.5); AllowRA exempts registration authorities (EKU
	// id-kp-cmcRA) from it.
	RequirePoPLink bool `yaml:"require_pop_link"`
	AllowRA        bool `yaml:"allow_ra"`
	// ManufacturerBinding binds enrollments authenticated by a factory
	// certificate to its identity: "subject" (the CSR's subject must be
	// the factory certificate's) or "serial-number" (the CSR's subject
	// must carry the factory certificate's subject serialNumber); "" or
	// "none" binds nothing.
	ManufacturerBinding string `yaml:"manufacturer_binding"`
}

// CSRAttr is one element of a label's /csrattrs answer: a bare OID, or an
// attribute type with OID values (RFC 7030 4.5.2). OIDs are dotted or one of
// the names in OIDNames.
type CSRAttr struct {
	OID       string   `yaml:"oid"`
	Attribute string   `yaml:"attribute"`
	Values    []string `yaml:"values"`
}

// Duration is a time.Duration in YAML, written as Go durations ("2160h")
// or whole days ("90d").
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// ParseDuration parses "90d" or a Go duration.
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want e.g. 90d or 2160h)", s)
	}
	return v, nil
}

// Default returns the configuration estd runs with when given none.
func Default() *Config {
	return &Config{
		Data:      "estd-data",
		Listen:    "127.0.0.1:8443",
		CAKeyType: "p256",
		LogFormat: "text",
		MaxBody:   64 << 10,
	}
}

// Load reads a configuration file over Default.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Decode reads YAML over Default, refusing unknown keys and trailing documents.
func Decode(r io.Reader) (*Config, error) {
	c := Default()
	data, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document")
	}
	return c, nil
}

// Validate checks c and returns every problem found, joined.
func (c *Config) Validate() error {
	var errs []error
	if c.Data == "" {
		errs = append(errs, errors.New("data: must not be empty"))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen: %v", err))
	}
	if kt, err := ca.ParseKeyType(c.CAKeyType); err != nil || kt == ca.Ed25519 {
		errs = append(errs, fmt.Errorf("ca_key_type: want p256, p384, rsa2048, rsa3072 or rsa4096, got %q", c.CAKeyType))
	}
	for key, addr := range map[string]string{"pki_listen": c.PKIListen, "metrics_listen": c.MetricsListen, "admin_listen": c.AdminListen} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", key, err))
		}
	}
	for key, u := range map[string]string{"crl_url": c.CRLURL, "ocsp_url": c.OCSPURL} {
		if u == "" {
			continue
		}
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			errs = append(errs, fmt.Errorf("%s: %q is not an http URL", key, u))
		}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("log_format: want text or json, got %q", c.LogFormat))
	}
	if c.MaxBody < 1024 || c.MaxBody > 16<<20 {
		errs = append(errs, fmt.Errorf("max_body: %d is outside 1024..16777216", c.MaxBody))
	}
	for _, h := range c.Hostnames {
		if net.ParseIP(h) == nil && !validHostname(h) {
			errs = append(errs, fmt.Errorf("hostnames: %q is neither a DNS name nor an IP address", h))
		}
	}
	if c.ManufacturerCA != "" {
		certs, err := pemutil.ReadCerts(c.ManufacturerCA)
		if err != nil {
			errs = append(errs, fmt.Errorf("manufacturer_ca: %v", err))
		} else if c.ManufacturerCRL != "" {
			if crls, intermediates, err := pemutil.ReadCRLs(c.ManufacturerCRL); err != nil {
				errs = append(errs, fmt.Errorf("manufacturer_crl: %v", err))
			} else if _, _, err := auth.NewRevocations(crls, certs, intermediates, time.Now()); err != nil {
				errs = append(errs, fmt.Errorf("manufacturer_crl: %v", err))
			}
		}
	} else if c.ManufacturerCRL != "" {
		errs = append(errs, fmt.Errorf("manufacturer_crl: needs manufacturer_ca, whose certificates sign the CRLs"))
	}
	for key, d := range map[string]Duration{"read_header": c.Timeouts.ReadHeader, "read": c.Timeouts.Read, "write": c.Timeouts.Write, "idle": c.Timeouts.Idle} {
		if d != 0 && (time.Duration(d) < 100*time.Millisecond || time.Duration(d) > time.Hour) {
			errs = append(errs, fmt.Errorf("timeouts.%s: %v is outside 100ms..1h", key, time.Duration(d)))
		}
	}
	errs = append(errs, c.Limits.check()...)
	switch c.Store.Driver {
	case "", "sqlite":
		if c.Store.DSN != "" {
			errs = append(errs, errors.New("store.dsn: SQLite lives in the data directory; set store.driver: postgres for a DSN"))
		}
	case "postgres":
		if !strings.HasPrefix(c.Store.DSN, "postgres://") && !strings.HasPrefix(c.Store.DSN, "postgresql://") {
			errs = append(errs, errors.New("store.dsn: want postgres://USER@HOST:PORT/DB (password in PGPASSWORD or a passfile)"))
		} else if u, err := url.Parse(c.Store.DSN); err == nil {
			if _, has := u.User.Password(); has {
				errs = append(errs, errors.New("store.dsn: holds a password; put it in PGPASSWORD or a passfile (PGPASSFILE) instead"))
			}
		}
	default:
		errs = append(errs, fmt.Errorf("store.driver: want sqlite or postgres, got %q", c.Store.Driver))
	}
	if c.CAKeyPassphraseFile != "" {
		if _, err := os.Stat(c.CAKeyPassphraseFile); err != nil {
			errs = append(errs, fmt.Errorf("ca_key_passphrase_file: %v", err))
		}
	}
	if _, err := c.TLS.Policy(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.CAProfiles(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// CAProfiles returns the profiles to serve: the configured ones, or
// ca.DefaultProfiles when none are configured.
func (c *Config) CAProfiles() ([]*ca.Profile, error) {
	if len(c.Profiles) == 0 {
		return ca.DefaultProfiles(), nil
	}
	var out []*ca.Profile
	seen := map[string]bool{}
	for i, p := range c.Profiles {
		cp, err := p.toCA()
		if err != nil {
			return nil, fmt.Errorf("profiles[%d] (label %q): %w", i, p.Label, err)
		}
		if seen[p.Label] {
			return nil, fmt.Errorf("profiles[%d]: label %q defined twice", i, p.Label)
		}
		seen[p.Label] = true
		out = append(out, cp)
	}
	return out, nil
}

var keyUsages = map[string]x509.KeyUsage{
	"digitalSignature":  x509.KeyUsageDigitalSignature,
	"contentCommitment": x509.KeyUsageContentCommitment,
	"keyEncipherment":   x509.KeyUsageKeyEncipherment,
	"dataEncipherment":  x509.KeyUsageDataEncipherment,
	"keyAgreement":      x509.KeyUsageKeyAgreement,
}

var extKeyUsages = map[string]x509.ExtKeyUsage{
	"clientAuth":      x509.ExtKeyUsageClientAuth,
	"serverAuth":      x509.ExtKeyUsageServerAuth,
	"codeSigning":     x509.ExtKeyUsageCodeSigning,
	"emailProtection": x509.ExtKeyUsageEmailProtection,
	"ipsecIKE":        x509.ExtKeyUsageIPSECEndSystem,
	"timeStamping":    x509.ExtKeyUsageTimeStamping,
	"ocspSigning":     x509.ExtKeyUsageOCSPSigning,
}

// OIDNames are the names accepted for OIDs in csrattrs.
var OIDNames = map[string]asn1.ObjectIdentifier{
	"challengePassword":       est.OIDChallengePassword,
	"extensionRequest":        est.OIDExtensionRequest,
	"ecPublicKey":             est.OIDECPublicKey,
	"rsaEncryption":           est.OIDRSAEncryption,
	"Ed25519":                 est.OIDEd25519,
	"secp256r1":               est.OIDCurveP256,
	"secp384r1":               est.OIDCurveP384,
	"ecdsa-with-SHA256":       est.OIDECDSAWithSHA256,
	"ecdsa-with-SHA384":       est.OIDECDSAWithSHA384,
	"sha256WithRSAEncryption": est.OIDSHA256WithRSA,
	"subjectAltName":          est.OIDSubjectAltName,
}

// ParseOID parses a dotted OID or a name from OIDNames.
func ParseOID(s string) (asn1.ObjectIdentifier, error) {
	if oid, ok := OIDNames[s]; ok {
		return oid, nil
	}
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return nil, fmt.Errorf("invalid OID %q", s)
	}
	oid := make(asn1.ObjectIdentifier, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("invalid OID %q", s)
		}
		oid[i] = n
	}
	if oid[0] > 2 || (oid[0] < 2 && oid[1] > 39) {
		return nil, fmt.Errorf("invalid OID %q", s)
	}
	return oid, nil
}

func (p Profile) toCA() (*ca.Profile, error) {
	cp := &ca.Profile{
		Name:           p.Label,
		Validity:       time.Duration(p.Validity),
		SANs:           p.SANs,
		RequireSAN:     p.RequireSAN,
		ServerKeyGen:   p.ServerKeyGen,
		ManualApproval: p.ManualApproval,
		MaxPending:     p.MaxPending,
		RevokeOnRenew:  p.RevokeOnRenew,
		FullCMC:        p.FullCMC,
		RequirePoPLink: p.RequirePoPLink,
		AllowRA:        p.AllowRA,
	}
	if p.ManufacturerBinding != "none" {
		cp.ManufacturerBinding = ca.Binding(p.ManufacturerBinding)
	}
	cp.MaxPendingPerRequester = p.MaxPendingPerRequester
	if p.MaxPending < -1 || p.MaxPendingPerRequester < 0 {
		return nil, fmt.Errorf("label %q: max_pending must be -1 (no cap) or more, max_pending_per_requester 0 (no cap) or more", p.Label)
	}
	if cp.Validity == 0 {
		cp.Validity = 90 * 24 * time.Hour
	}
	if len(p.KeyTypes) == 0 {
		cp.KeyTypes = ca.DefaultKeyTypes
	}
	for _, s := range p.KeyTypes {
		kt, err := ca.ParseKeyType(s)
		if err != nil {
			return nil, fmt.Errorf("key_types: %w", err)
		}
		cp.KeyTypes = append(cp.KeyTypes, kt)
	}
	for _, s := range p.KeyUsage {
		ku, ok := keyUsages[s]
		if !ok {
			return nil, fmt.Errorf("key_usage: unknown %q (want one of %s)", s, strings.Join(sortedKeys(keyUsages), ", "))
		}
		cp.KeyUsage |= ku
	}
	if len(p.ExtKeyUsage) == 0 {
		return nil, errors.New("ext_key_usage: name at least one (clientAuth, serverAuth, ...)")
	}
	for _, s := range p.ExtKeyUsage {
		if s == "cmcRA" { // id-kp-cmcRA: a registration authority of Full CMC
			cp.ExtKeyUsageOIDs = append(cp.ExtKeyUsageOIDs, est.OIDKPCMCRA)
			continue
		}
		eku, ok := extKeyUsages[s]
		if !ok {
			return nil, fmt.Errorf("ext_key_usage: unknown %q (want one of %s, cmcRA)", s, strings.Join(sortedKeys(extKeyUsages), ", "))
		}
		cp.ExtKeyUsage = append(cp.ExtKeyUsage, eku)
	}
	if len(p.Auth) == 0 {
		return nil, errors.New("auth: name at least one of basic, manufacturer-cert, issued-cert")
	}
	for _, s := range p.Auth {
		cp.Auth = append(cp.Auth, auth.Method(s))
	}
	for i, a := range p.CSRAttrs {
		item, err := a.toEST()
		if err != nil {
			return nil, fmt.Errorf("csrattrs[%d]: %w", i, err)
		}
		cp.CSRAttrs = append(cp.CSRAttrs, item)
	}
	if err := cp.Check(); err != nil {
		return nil, err
	}
	return cp, nil
}

func (a CSRAttr) toEST() (est.AttrOrOID, error) {
	switch {
	case a.OID != "" && a.Attribute == "" && len(a.Values) == 0:
		oid, err := ParseOID(a.OID)
		return est.AttrOrOID{OID: oid}, err
	case a.Attribute != "" && a.OID == "":
		typ, err := ParseOID(a.Attribute)
		if err != nil {
			return est.AttrOrOID{}, err
		}
		if len(a.Values) == 0 {
			return est.AttrOrOID{}, errors.New("an attribute needs at least one value (RFC 2986: values SET SIZE (1..MAX)); use oid for a bare OID")
		}
		attr := &est.Attribute{Type: typ}
		for _, v := range a.Values {
			oid, err := ParseOID(v)
			if err != nil {
				return est.AttrOrOID{}, fmt.Errorf("values: %w", err)
			}
			der, _ := asn1.Marshal(oid)
			attr.Values = append(attr.Values, asn1.RawValue{FullBytes: der})
		}
		return est.AttrOrOID{Attribute: attr}, nil
	}
	return est.AttrOrOID{}, errors.New("give either oid, or attribute with optional values")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
