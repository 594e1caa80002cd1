package ca

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"slices"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/auth"
)

// DefaultMaxPending is how many requests a label holds for an operator
// when its profile does not say: more than anyone reviews, few enough that
// a leaked credential cannot fill the database with requests.
const DefaultMaxPending = 10000

// MaxPendingLimit bounds the pending-request caps of a profile.
const MaxPendingLimit = 1_000_000

// Profile is what one CA label may issue, and to whom (RFC 7030 3.2.2: a label
// selects a CA policy).
type Profile struct {
	// Name is the label; "" is the unlabeled default profile.
	Name string
	// Validity is how long issued certificates are valid; capped by the
	// issuing CA's own expiry.
	Validity time.Duration
	// KeyTypes are the subject public key types accepted in CSRs and generated
	// by serverkeygen.
	KeyTypes []KeyType
	// KeyUsage of issued certificates; 0 means digitalSignature, plus
	// keyEncipherment for RSA keys.
	KeyUsage x509.KeyUsage
	// ExtKeyUsage of issued certificates.
	ExtKeyUsage []x509.ExtKeyUsage
	// SANs are the SubjectAltName kinds copied from the CSR: "dns", "ip",
	// "email", "uri". A CSR with a SAN of another kind is refused, so that the
	// certificate says exactly what the CSR asked for or nothing is issued.
	SANs []string
	// RequireSAN refuses CSRs without at least one SAN of a kind in RequireSAN
	// (tls-server: "dns" or "ip").
	RequireSAN []string
	// Auth lists the authentication methods accepted for enrollment.
	// Reenrollment always needs a certificate this CA issued.
	Auth []auth.Method
	// CSRAttrs is what /csrattrs returns; empty means 204 No Content.
	CSRAttrs est.CSRAttrs
	// ServerKeyGen allows /serverkeygen on this label.
	ServerKeyGen bool
	// ManualApproval holds simpleenroll and serverkeygen requests until an
	// operator approves them (RFC 7030 4.2.3: 202 Accepted with Retry-After).
	// Renewals by a certificate this CA issued are not held.
	ManualApproval bool
	// MaxPending caps the requests of this label waiting for an operator:
	// 0 means DefaultMaxPending, negative no cap. MaxPendingPerRequester
	// caps those of one requester (a Basic user name or a certificate
	// subject): 0 or negative means no cap. A new request over a cap gets
	// 503 with Retry-After.
	MaxPending             int
	MaxPendingPerRequester int
	// RevokeOnRenew revokes the certificate being renewed once its
	// successor is issued (reason superseded).
	RevokeOnRenew bool
	// FullCMC serves /fullcmc on this label (RFC 7030 4.3): Full PKI
	// Requests signed by the requester, authenticated as for simpleenroll and
	// held like them when ManualApproval is set.
	FullCMC bool
	// ExtKeyUsageOIDs are further extended key usages of issued
	// certificates, by OID: est.OIDKPCMCRA makes certificates of registration
	// authorities (RFC 6402 2.10).
	ExtKeyUsageOIDs []asn1.ObjectIdentifier
	// RequirePoPLink refuses enrollment CSRs that are not linked to the TLS
	// connection they arrive on (RFC 7030 3.5): their challengePassword must
	// hold the connection's channel binding (est.ChannelBinding). /csrattrs
	// then asks for challengePassword.
	RequirePoPLink bool
	// AllowRA accepts CSRs that a registration authority did not make: a
	// requester authenticated by a certificate with EKU id-kp-cmcRA needs
	// no PoP link, nor ManufacturerBinding.
	AllowRA bool
	// ManufacturerBinding limits what a device authenticated by a
	// certificate (its factory certificate, or one this CA issued under
	// this label; one of another label is refused) may ask for to the
	// identity of that certificate: the CSR's subject must name
	// what its subject names (see Binding), and the CSR's subjectAltNames
	// must be among its own. Basic users and registration authorities
	// (AllowRA) are not bound; a renewal keeps its subject anyway (RFC 7030
	// 4.2.2).
	ManufacturerBinding Binding
}

// Binding is how an enrollment authenticated by a factory certificate is
// bound to that certificate's identity.
type Binding string

const (
	// BindNone: a device may ask for any subject the profile allows.
	BindNone Binding = ""
	// BindSubject: the CSR's subject must be the factory certificate's.
	BindSubject Binding = "subject"
	// BindSerialNumber: the CSR's subject must hold the serialNumber
	// attribute (2.5.4.5) of the factory certificate's subject, as IEEE
	// 802.1AR device identities carry the device's serial number, and no
	// other.
	BindSerialNumber Binding = "serial-number"
)

// Accepts reports whether the profile accepts authentication method m.
func (p *Profile) Accepts(m auth.Method) bool { return slices.Contains(p.Auth, m) }

// Check reports a configuration mistake in p.
func (p *Profile) Check() error {
	if p.Name != "" && !est.ValidLabel(p.Name) {
		return fmt.Errorf("profile %q: not a valid label", p.Name)
	}
	if p.Validity < time.Minute {
		return fmt.Errorf("profile %q: validity %v is too short", p.Name, p.Validity)
	}
	if len(p.KeyTypes) == 0 {
		return fmt.Errorf("profile %q: no key types allowed", p.Name)
	}
	for _, s := range append(slices.Clone(p.SANs), p.RequireSAN...) {
		if !slices.Contains(sanKinds, s) {
			return fmt.Errorf("profile %q: unknown SAN kind %q (want dns, ip, email or uri)", p.Name, s)
		}
	}
	for _, s := range p.RequireSAN {
		if !slices.Contains(p.SANs, s) {
			return fmt.Errorf("profile %q: requires SAN kind %q that it does not copy", p.Name, s)
		}
	}
	for _, m := range p.Auth {
		if !m.Valid() {
			return fmt.Errorf("profile %q: unknown authentication method %q", p.Name, m)
		}
	}
	if p.MaxPending > MaxPendingLimit || p.MaxPendingPerRequester > MaxPendingLimit {
		return fmt.Errorf("profile %q: pending-request caps above %d", p.Name, MaxPendingLimit)
	}
	if p.RequirePoPLink && p.ManualApproval {
		// The CSR polled for later travels on another connection, linked
		// anew: it is not the request that waits for approval.
		return fmt.Errorf("profile %q: a PoP link requirement cannot be combined with manual approval", p.Name)
	}
	switch p.ManufacturerBinding {
	case BindNone:
	case BindSubject, BindSerialNumber:
		if !p.Accepts(auth.Manufacturer) {
			return fmt.Errorf("profile %q: a manufacturer binding needs manufacturer-cert authentication", p.Name)
		}
	default:
		return fmt.Errorf("profile %q: unknown manufacturer binding %q (want %q or %q)", p.Name, p.ManufacturerBinding, BindSubject, BindSerialNumber)
	}
	if p.AllowRA && !p.Accepts(auth.Manufacturer) && !p.Accepts(auth.Issued) {
		return fmt.Errorf("profile %q: allowing a registration authority needs certificate authentication (manufacturer-cert or issued-cert)", p.Name)
	}
	return nil
}

var sanKinds = []string{"dns", "ip", "email", "uri"}

// DefaultKeyTypes are the subject key types profiles accept by default.
var DefaultKeyTypes = []KeyType{P256, P384, RSA2048, RSA3072, RSA4096, Ed25519}

// DefaultProfiles returns the profiles estd serves with no configuration:
//   - "" (unlabeled): a device's operational certificate, clientAuth, SANs
//     of any kind copied;
//   - "tls-client": clientAuth;
//   - "tls-server": serverAuth, the CSR must name a DNS name or IP address.
//
// All accept Basic, manufacturer and issued certificates, serverkeygen and
// fullcmc.
func DefaultProfiles() []*Profile {
	all := []auth.Method{auth.Basic, auth.Manufacturer, auth.Issued}
	return []*Profile{
		{
			Name:         "",
			Validity:     90 * 24 * time.Hour,
			KeyTypes:     DefaultKeyTypes,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			SANs:         sanKinds,
			Auth:         all,
			ServerKeyGen: true,
			FullCMC:      true,
		},
		{
			Name:         "tls-client",
			Validity:     90 * 24 * time.Hour,
			KeyTypes:     DefaultKeyTypes,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			SANs:         sanKinds,
			Auth:         all,
			ServerKeyGen: true,
			FullCMC:      true,
			CSRAttrs: est.CSRAttrs{
				{OID: est.OIDECDSAWithSHA256},
			},
		},
		{
			Name:         "tls-server",
			Validity:     90 * 24 * time.Hour,
			KeyTypes:     DefaultKeyTypes,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			SANs:         []string{"dns", "ip"},
			RequireSAN:   []string{"dns", "ip"},
			Auth:         all,
			ServerKeyGen: true,
			FullCMC:      true,
			CSRAttrs: est.CSRAttrs{
				{OID: est.OIDECDSAWithSHA256},
				{Attribute: &est.Attribute{Type: est.OIDECPublicKey, Values: []asn1.RawValue{mustOID(est.OIDCurveP256)}}},
			},
		},
	}
}

func mustOID(oid asn1.ObjectIdentifier) asn1.RawValue {
	der, err := asn1.Marshal(oid)
	if err != nil {
		panic(err)
	}
	return asn1.RawValue{FullBytes: der}
}

// PendingLimits returns the caps on requests of the label waiting for an
// operator, as the store counts them.
func (p *Profile) PendingLimits() (perLabel, perRequester int) {
	perLabel = p.MaxPending
	switch {
	case perLabel == 0:
		perLabel = DefaultMaxPending
	case perLabel < 0:
		perLabel = 0
	}
	return perLabel, max(p.MaxPendingPerRequester, 0)
}
