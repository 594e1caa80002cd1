package est

// Full CMC (RFC 7030 section 4.3): the Certificate Management over CMS
// structures of RFC 5272 (as updated by RFC 6402) that EST carries, and the
// controls of RFC 5272 section 6 that estkit's client and server use. A Full
// PKI Request is a PKIData, a Full PKI Response a PKIResponse, each the
// content of a CMS SignedData (cms.go) with eContentType id-cct-PKIData or
// id-cct-PKIResponse (RFC 5272 section 3.2 and 4.2).
//
// The module of RFC 5272 uses IMPLICIT tags: the [0] of a TaggedRequest
// replaces the SEQUENCE tag of the TaggedCertificationRequest.

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"math"
	"math/big"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Object identifiers of CMC.
var (
	// OIDCCTPKIData and OIDCCTPKIResponse are the content types of a Full PKI
	// Request and a Full PKI Response (RFC 5272 section 3.2.1 and 4.2):
	// id-cct-PKIData and id-cct-PKIResponse.
	OIDCCTPKIData     = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 12, 2}
	OIDCCTPKIResponse = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 12, 3}

	// OIDKPCMCRA is the extended key usage id-kp-cmcRA (RFC 6402 section
	// 2.10): the certificate of a registration authority, which may submit
	// requests on behalf of others.
	OIDKPCMCRA = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 28}

	// The controls of RFC 5272 section 6 (id-cmc arc 1.3.6.1.5.5.7.7) and
	// RFC 6402.
	OIDCMCStatusInfo            = cmcOID(1)
	OIDCMCIdentification        = cmcOID(2)
	OIDCMCIdentityProof         = cmcOID(3)
	OIDCMCDataReturn            = cmcOID(4)
	OIDCMCTransactionID         = cmcOID(5)
	OIDCMCSenderNonce           = cmcOID(6)
	OIDCMCRecipientNonce        = cmcOID(7)
	OIDCMCAddExtensions         = cmcOID(8)
	OIDCMCEncryptedPOP          = cmcOID(9)
	OIDCMCDecryptedPOP          = cmcOID(10)
	OIDCMCLRAPOPWitness         = cmcOID(11)
	OIDCMCGetCert               = cmcOID(15)
	OIDCMCGetCRL                = cmcOID(16)
	OIDCMCRevokeRequest         = cmcOID(17)
	OIDCMCRegInfo               = cmcOID(18)
	OIDCMCResponseInfo          = cmcOID(19)
	OIDCMCQueryPending          = cmcOID(21)
	OIDCMCPOPLinkRandom         = cmcOID(22)
	OIDCMCPOPLinkWitness        = cmcOID(23)
	OIDCMCConfirmCertAcceptance = cmcOID(24)
	OIDCMCStatusInfoV2          = cmcOID(25)
	OIDCMCTrustedAnchors        = cmcOID(26)
	OIDCMCAuthData              = cmcOID(27)
	OIDCMCBatchRequests         = cmcOID(28)
	OIDCMCBatchResponses        = cmcOID(29)
	OIDCMCPublishCert           = cmcOID(30)
	OIDCMCModCertTemplate       = cmcOID(31)
	OIDCMCControlProcessed      = cmcOID(32)
	OIDCMCPOPLinkWitnessV2      = cmcOID(33)
	OIDCMCIdentityProofV2       = cmcOID(34)
	OIDCMCRAIdentityWitness     = cmcOID(35)
	OIDCMCChangeSubjectName     = cmcOID(36)
	OIDCMCResponseBody          = cmcOID(37)

	// OIDSubjectKeyIdentifier is the subjectKeyIdentifier extension (RFC
	// 5280 4.2.1.2), which a CSR signing its own Full PKI Request carries.
	OIDSubjectKeyIdentifier = asn1.ObjectIdentifier{2, 5, 29, 14}
)

// maxBodyPartID is bodyIdMax of RFC 5272 section 3.2.2.
const maxBodyPartID = uint64(math.MaxUint32)

func cmcOID(n int) asn1.ObjectIdentifier { return asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 7, n} }

// TaggedAttribute is a control (RFC 5272 section 3.2.1.2.1): its body part
// ID, type and DER values.
type TaggedAttribute struct {
	BodyPartID uint32
	Type       asn1.ObjectIdentifier
	Values     []asn1.RawValue
}

// RequestKind is the choice of a TaggedRequest.
type RequestKind int

// The choices of TaggedRequest (RFC 5272 section 3.2.1.3).
const (
	// RequestPKCS10 is tcr, a TaggedCertificationRequest: a PKCS#10 request.
	RequestPKCS10 RequestKind = iota
	// RequestCRMF is crm, a CRMF CertReqMsg (RFC 4211).
	RequestCRMF
	// RequestOther is orm, another request format.
	RequestOther
)

// TaggedRequest is one certification request of a PKIData (RFC 5272
// section 3.2.1.3). Only PKCS#10 requests are given a structure; the others
// keep their DER in Raw.
type TaggedRequest struct {
	Kind RequestKind
	// BodyPartID is the body part ID of a tcr or orm, and the certReqId of a crm.
	BodyPartID uint32
	// CSR is the DER PKCS#10 request of a tcr.
	CSR []byte
	// Raw is the whole element as received (parse only).
	Raw []byte
}

// TaggedContentInfo is an element of cmsSequence (RFC 5272 section 3.2.1.4).
type TaggedContentInfo struct {
	BodyPartID  uint32
	ContentInfo []byte // DER
}

// OtherMsg is an element of otherMsgSequence (RFC 5272 section 3.2.1.5).
type OtherMsg struct {
	BodyPartID uint32
	Type       asn1.ObjectIdentifier
	Value      []byte // DER
}

// PKIData is the content of a Full PKI Request (RFC 5272 section 3.2.1):
//
//	PKIData ::= SEQUENCE {
//	    controlSequence    SEQUENCE SIZE(0..MAX) OF TaggedAttribute,
//	    reqSequence        SEQUENCE SIZE(0..MAX) OF TaggedRequest,
//	    cmsSequence        SEQUENCE SIZE(0..MAX) OF TaggedContentInfo,
//	    otherMsgSequence   SEQUENCE SIZE(0..MAX) OF OtherMsg }
type PKIData struct {
	Controls  []TaggedAttribute
	Requests  []TaggedRequest
	CMS       []TaggedContentInfo
	OtherMsgs []OtherMsg
}

// PKIResponse is the content of a Full PKI Response (RFC 5272 section 4.2):
//
//	PKIResponse ::= SEQUENCE {
//	    controlSequence   SEQUENCE SIZE(0..MAX) OF TaggedAttribute,
//	    cmsSequence       SEQUENCE SIZE(0..MAX) OF TaggedContentInfo,
//	    otherMsgSequence  SEQUENCE SIZE(0..MAX) OF OtherMsg }
type PKIResponse struct {
	Controls  []TaggedAttribute
	CMS       []TaggedContentInfo
	OtherMsgs []OtherMsg
}

// CMCStatus is the status of a CMCStatusInfoV2 (RFC 5272 section 6.1.1).
type CMCStatus int

// The values of CMCStatus.
const (
	CMCSuccess         CMCStatus = 0
	CMCFailed          CMCStatus = 2
	CMCPending         CMCStatus = 3
	CMCNoSupport       CMCStatus = 4
	CMCConfirmRequired CMCStatus = 5
	CMCPOPRequired     CMCStatus = 6
	CMCPartial         CMCStatus = 7
)

var cmcStatusNames = map[CMCStatus]string{
	CMCSuccess: "success", CMCFailed: "failed", CMCPending: "pending", CMCNoSupport: "noSupport",
	CMCConfirmRequired: "confirmRequired", CMCPOPRequired: "popRequired", CMCPartial: "partial",
}

func (s CMCStatus) String() string {
	if n, ok := cmcStatusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("CMCStatus(%d)", int(s))
}

// CMCFailInfo says why a request failed (RFC 5272 section 6.1.4).
type CMCFailInfo int

// The values of CMCFailInfo.
const (
	FailBadAlg          CMCFailInfo = 0  // unrecognized or unsupported algorithm
	FailBadMessageCheck CMCFailInfo = 1  // integrity check (signature) failed
	FailBadRequest      CMCFailInfo = 2  // transaction not permitted or supported
	FailBadTime         CMCFailInfo = 3  // message time not close enough to the system time
	FailBadCertID       CMCFailInfo = 4  // no certificate matches the criteria given
	FailUnsupportedExt  CMCFailInfo = 5  // a requested X.509 extension is not supported
	FailMustArchiveKeys CMCFailInfo = 6  // private key material must be supplied
	FailBadIdentity     CMCFailInfo = 7  // the identification control failed to verify
	FailPOPRequired     CMCFailInfo = 8  // proof of possession is required
	FailPOPFailed       CMCFailInfo = 9  // proof of possession failed
	FailNoKeyReuse      CMCFailInfo = 10 // the server's policy does not allow key reuse
	FailInternalCAError CMCFailInfo = 11 // an internal failure of the CA
	FailTryLater        CMCFailInfo = 12 // the server cannot serve the request now
	FailAuthDataFail    CMCFailInfo = 13 // failure in an authData control
)

var cmcFailNames = []string{"badAlg", "badMessageCheck", "badRequest", "badTime", "badCertId", "unsupportedExt",
	"mustArchiveKeys", "badIdentity", "popRequired", "popFailed", "noKeyReuse", "internalCAError", "tryLater", "authDataFail"}

func (f CMCFailInfo) String() string {
	if f >= 0 && int(f) < len(cmcFailNames) {
		return cmcFailNames[f]
	}
	return fmt.Sprintf("CMCFailInfo(%d)", int(f))
}

// PendInfo is the otherInfo of a pending status (RFC 5272 section 6.1.1):
// a token that names the request, and when to ask again.
type PendInfo struct {
	Token []byte
	Time  time.Time
}

// ExtendedFailInfo is the extendedFailInfo choice of otherInfo.
type ExtendedFailInfo struct {
	Type  asn1.ObjectIdentifier
	Value []byte // DER
}

// BodyPartReference names what a status applies to: one element is a
// bodyPartID; more are a bodyPartPath into nested PKIData (RFC 5272 section
// 3.2.2). A path of one element is marshalled as a bodyPartID.
type BodyPartReference []uint32

// CMCStatusInfoV2 is the value of the statusInfoV2 control (RFC 5272
// section 6.1.1):
//
//	CMCStatusInfoV2 ::= SEQUENCE {
//	    cMCStatus     CMCStatus,
//	    bodyList      SEQUENCE SIZE (1..MAX) OF BodyPartReference,
//	    statusString  UTF8String OPTIONAL,
//	    otherInfo     OtherStatusInfo OPTIONAL }
//	OtherStatusInfo ::= CHOICE {
//	    failInfo          CMCFailInfo,
//	    pendInfo          PendInfo,
//	    extendedFailInfo  ExtendedFailInfo }
//
// At most one of FailInfo, PendInfo and ExtendedFailInfo is set.
type CMCStatusInfoV2 struct {
	Status           CMCStatus
	BodyList         []BodyPartReference
	StatusString     string
	FailInfo         *CMCFailInfo
	PendInfo         *PendInfo
	ExtendedFailInfo *ExtendedFailInfo
}

// RevokeRequest is the value of the revokeRequest control (RFC 5272
// section 6.11): the certificate to revoke, named by its issuer and serial,
// and the CRLReason (RFC 5280 5.3.1).
type RevokeRequest struct {
	Issuer         []byte // DER Name
	Serial         *big.Int
	Reason         int
	InvalidityDate time.Time // zero when absent
	Passphrase     []byte    // nil when absent
	Comment        string    // "" when absent
}

// CRL reason codes of RFC 5280 section 5.3.1, by the names RFC 5280 gives them.
var CRLReasons = map[string]int{
	"unspecified": 0, "keyCompromise": 1, "cACompromise": 2, "affiliationChanged": 3, "superseded": 4,
	"cessationOfOperation": 5, "certificateHold": 6, "removeFromCRL": 8, "privilegeWithdrawn": 9, "aACompromise": 10,
}

// errCMC builds the ErrBadRequest of a malformed CMC structure.
func errCMC(format string, args ...any) error {
	return Errorf(ErrBadRequest, "malformed CMC: "+format, args...)
}

// NewControl returns a control of type typ with one value: a []byte is an
// OCTET STRING, a string a UTF8String, an int, int64 or *big.Int an INTEGER,
// a *CMCStatusInfoV2 or *RevokeRequest its structure, an asn1.RawValue the
// DER it holds.
func NewControl(id uint32, typ asn1.ObjectIdentifier, value any) (TaggedAttribute, error) {
	var b cryptobyte.Builder
	switch v := value.(type) {
	case []byte:
		b.AddASN1OctetString(v)
	case string:
		if !utf8.ValidString(v) {
			return TaggedAttribute{}, fmt.Errorf("est: control %v: invalid UTF-8", typ)
		}
		b.AddASN1(casn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(v)) })
	case int:
		b.AddASN1Int64(int64(v))
	case int64:
		b.AddASN1Int64(v)
	case *big.Int:
		if v == nil {
			return TaggedAttribute{}, fmt.Errorf("est: control %v: nil integer", typ)
		}
		b.AddASN1BigInt(v)
	case *CMCStatusInfoV2:
		der, err := v.Marshal()
		if err != nil {
			return TaggedAttribute{}, err
		}
		b.AddBytes(der)
	case *RevokeRequest:
		der, err := v.Marshal()
		if err != nil {
			return TaggedAttribute{}, err
		}
		b.AddBytes(der)
	case asn1.RawValue:
		der, err := cmcRawDER(v)
		if err != nil {
			return TaggedAttribute{}, err
		}
		b.AddBytes(der)
	default:
		return TaggedAttribute{}, fmt.Errorf("est: control %v: unsupported value type %T", typ, value)
	}
	der, err := b.Bytes()
	if err != nil {
		return TaggedAttribute{}, fmt.Errorf("est: control %v: %w", typ, err)
	}
	return TaggedAttribute{BodyPartID: id, Type: typ, Values: []asn1.RawValue{{FullBytes: der}}}, nil
}

func cmcRawDER(v asn1.RawValue) ([]byte, error) {
	if len(v.FullBytes) > 0 {
		return v.FullBytes, nil
	}
	return asn1.Marshal(v)
}

// value returns the DER of the only value of a, or an ErrBadRequest.
func (a *TaggedAttribute) value() (cryptobyte.String, error) {
	if len(a.Values) != 1 {
		return nil, errCMC("control %v (body part %d) has %d values, want 1", a.Type, a.BodyPartID, len(a.Values))
	}
	der, err := cmcRawDER(a.Values[0])
	if err != nil {
		return nil, errCMC("control %v (body part %d): %v", a.Type, a.BodyPartID, err)
	}
	return cryptobyte.String(der), nil
}

func (a *TaggedAttribute) bad(what string) error {
	return errCMC("control %v (body part %d) is not %s", a.Type, a.BodyPartID, what)
}

// OctetString returns the only value of a as an OCTET STRING (senderNonce,
// recipientNonce, regInfo, responseInfo, ...).
func (a *TaggedAttribute) OctetString() ([]byte, error) {
	s, err := a.value()
	if err != nil {
		return nil, err
	}
	var out []byte
	if !s.ReadASN1Bytes(&out, casn1.OCTET_STRING) || !s.Empty() {
		return nil, a.bad("an OCTET STRING")
	}
	return out, nil
}

// Integer returns the only value of a as an INTEGER (transactionId).
func (a *TaggedAttribute) Integer() (*big.Int, error) {
	s, err := a.value()
	if err != nil {
		return nil, err
	}
	n := new(big.Int)
	if !s.ReadASN1Integer(n) || !s.Empty() {
		return nil, a.bad("an INTEGER")
	}
	return n, nil
}

// UTF8String returns the only value of a as a UTF8String (identification).
func (a *TaggedAttribute) UTF8String() (string, error) {
	s, err := a.value()
	if err != nil {
		return "", err
	}
	var out []byte
	if !s.ReadASN1Bytes(&out, casn1.UTF8String) || !s.Empty() || !utf8.Valid(out) {
		return "", a.bad("a UTF8String")
	}
	return string(out), nil
}

// StatusInfoV2 returns the only value of a as a CMCStatusInfoV2.
func (a *TaggedAttribute) StatusInfoV2() (*CMCStatusInfoV2, error) {
	s, err := a.value()
	if err != nil {
		return nil, err
	}
	return ParseCMCStatusInfoV2(s)
}

// RevokeRequest returns the only value of a as a RevokeRequest.
func (a *TaggedAttribute) RevokeRequest() (*RevokeRequest, error) {
	s, err := a.value()
	if err != nil {
		return nil, err
	}
	return ParseRevokeRequest(s)
}

// cmcFindControl returns the first control of type typ and how many there are.
func cmcFindControl(cs []TaggedAttribute, typ asn1.ObjectIdentifier) (*TaggedAttribute, int) {
	var first *TaggedAttribute
	n := 0
	for i := range cs {
		if cs[i].Type.Equal(typ) {
			if first == nil {
				first = &cs[i]
			}
			n++
		}
	}
	return first, n
}

// Control returns the first control of type typ, or nil.
func (d *PKIData) Control(typ asn1.ObjectIdentifier) *TaggedAttribute {
	c, _ := cmcFindControl(d.Controls, typ)
	return c
}

// Control returns the first control of type typ, or nil.
func (r *PKIResponse) Control(typ asn1.ObjectIdentifier) *TaggedAttribute {
	c, _ := cmcFindControl(r.Controls, typ)
	return c
}

// Statuses returns the values of every statusInfoV2 control of r, in order.
func (r *PKIResponse) Statuses() ([]*CMCStatusInfoV2, error) {
	var out []*CMCStatusInfoV2
	for i := range r.Controls {
		if !r.Controls[i].Type.Equal(OIDCMCStatusInfoV2) {
			continue
		}
		for _, v := range r.Controls[i].Values {
			der, err := cmcRawDER(v)
			if err != nil {
				return nil, errCMC("statusInfoV2: %v", err)
			}
			st, err := ParseCMCStatusInfoV2(der)
			if err != nil {
				return nil, err
			}
			out = append(out, st)
		}
	}
	return out, nil
}

// Marshal returns the DER of d.
func (d *PKIData) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		cmcAddControls(b, d.Controls)
		b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for _, r := range d.Requests {
				cmcAddRequest(b, r)
			}
		})
		cmcAddCMSSequence(b, d.CMS)
		cmcAddOtherMsgs(b, d.OtherMsgs)
	})
	return b.Bytes()
}

// Marshal returns the DER of r.
func (r *PKIResponse) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		cmcAddControls(b, r.Controls)
		cmcAddCMSSequence(b, r.CMS)
		cmcAddOtherMsgs(b, r.OtherMsgs)
	})
	return b.Bytes()
}

func cmcAddControls(b *cryptobyte.Builder, cs []TaggedAttribute) {
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, c := range cs {
			b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1Uint64(uint64(c.BodyPartID))
				b.AddASN1ObjectIdentifier(c.Type)
				b.AddASN1(casn1.SET, func(b *cryptobyte.Builder) {
					vals := make([][]byte, 0, len(c.Values))
					for _, v := range c.Values {
						der, err := cmcRawDER(v)
						if err != nil {
							b.SetError(err)
							return
						}
						vals = append(vals, der)
					}
					derSetOf(b, vals)
				})
			})
		}
	})
}

func cmcAddRequest(b *cryptobyte.Builder, r TaggedRequest) {
	switch r.Kind {
	case RequestPKCS10:
		if len(r.CSR) == 0 {
			b.SetError(fmt.Errorf("est: TaggedRequest %d without a CSR", r.BodyPartID))
			return
		}
		b.AddASN1(casn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1Uint64(uint64(r.BodyPartID))
			b.AddBytes(r.CSR)
		})
	default:
		if len(r.Raw) == 0 {
			b.SetError(fmt.Errorf("est: TaggedRequest %d of kind %d without Raw", r.BodyPartID, r.Kind))
			return
		}
		b.AddBytes(r.Raw)
	}
}

func cmcAddCMSSequence(b *cryptobyte.Builder, cs []TaggedContentInfo) {
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, c := range cs {
			b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1Uint64(uint64(c.BodyPartID))
				b.AddBytes(c.ContentInfo)
			})
		}
	})
}

func cmcAddOtherMsgs(b *cryptobyte.Builder, ms []OtherMsg) {
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, m := range ms {
			b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1Uint64(uint64(m.BodyPartID))
				b.AddASN1ObjectIdentifier(m.Type)
				b.AddBytes(m.Value)
			})
		}
	})
}

// ParsePKIData parses the DER of a PKIData. Errors are of kind ErrBadRequest.
func ParsePKIData(der []byte) (*PKIData, error) {
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, casn1.SEQUENCE) || !in.Empty() {
		return nil, errCMC("PKIData is not one DER SEQUENCE")
	}
	d := &PKIData{}
	var err error
	if d.Controls, err = cmcReadControls(&seq); err != nil {
		return nil, err
	}
	var reqs cryptobyte.String
	if !seq.ReadASN1(&reqs, casn1.SEQUENCE) {
		return nil, errCMC("reqSequence")
	}
	for !reqs.Empty() {
		r, err := cmcReadRequest(&reqs)
		if err != nil {
			return nil, err
		}
		d.Requests = append(d.Requests, r)
	}
	if d.CMS, err = cmcReadCMSSequence(&seq); err != nil {
		return nil, err
	}
	if d.OtherMsgs, err = cmcReadOtherMsgs(&seq); err != nil {
		return nil, err
	}
	if !seq.Empty() {
		return nil, errCMC("trailing data in PKIData")
	}
	return d, nil
}

// ParsePKIResponse parses the DER of a PKIResponse. Errors are of kind ErrBadRequest.
func ParsePKIResponse(der []byte) (*PKIResponse, error) {
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, casn1.SEQUENCE) || !in.Empty() {
		return nil, errCMC("PKIResponse is not one DER SEQUENCE")
	}
	r := &PKIResponse{}
	var err error
	if r.Controls, err = cmcReadControls(&seq); err != nil {
		return nil, err
	}
	if r.CMS, err = cmcReadCMSSequence(&seq); err != nil {
		return nil, err
	}
	if r.OtherMsgs, err = cmcReadOtherMsgs(&seq); err != nil {
		return nil, err
	}
	if !seq.Empty() {
		return nil, errCMC("trailing data in PKIResponse")
	}
	return r, nil
}

func cmcReadBodyPartID(s *cryptobyte.String, id *uint32) bool {
	var v uint64
	if !s.ReadASN1Integer(&v) || v > maxBodyPartID {
		return false
	}
	*id = uint32(v)
	return true
}

func cmcReadControls(s *cryptobyte.String) ([]TaggedAttribute, error) {
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, casn1.SEQUENCE) {
		return nil, errCMC("controlSequence")
	}
	var out []TaggedAttribute
	for !seq.Empty() {
		var ta, vals cryptobyte.String
		var a TaggedAttribute
		if !seq.ReadASN1(&ta, casn1.SEQUENCE) || !cmcReadBodyPartID(&ta, &a.BodyPartID) ||
			!ta.ReadASN1ObjectIdentifier(&a.Type) || !ta.ReadASN1(&vals, casn1.SET) || !ta.Empty() {
			return nil, errCMC("TaggedAttribute %d", len(out)+1)
		}
		for !vals.Empty() {
			var v cryptobyte.String
			if !vals.ReadAnyASN1Element(&v, new(casn1.Tag)) {
				return nil, errCMC("value of control %v", a.Type)
			}
			a.Values = append(a.Values, asn1.RawValue{FullBytes: v})
		}
		out = append(out, a)
	}
	return out, nil
}

func cmcReadRequest(s *cryptobyte.String) (TaggedRequest, error) {
	var el, body cryptobyte.String
	var tag casn1.Tag
	if !s.ReadAnyASN1Element(&el, &tag) {
		return TaggedRequest{}, errCMC("TaggedRequest")
	}
	r := TaggedRequest{Raw: el}
	outer := el
	if !outer.ReadASN1(&body, tag) {
		return TaggedRequest{}, errCMC("TaggedRequest")
	}
	switch tag {
	case casn1.Tag(0).Constructed().ContextSpecific():
		r.Kind = RequestPKCS10
		var csr cryptobyte.String
		if !cmcReadBodyPartID(&body, &r.BodyPartID) || !body.ReadASN1Element(&csr, casn1.SEQUENCE) || !body.Empty() {
			return TaggedRequest{}, errCMC("TaggedCertificationRequest")
		}
		r.CSR = csr
	case casn1.Tag(1).Constructed().ContextSpecific():
		// CertReqMsg ::= SEQUENCE { certReq CertRequest, ... };
		// CertRequest ::= SEQUENCE { certReqId INTEGER, ... }.
		r.Kind = RequestCRMF
		var certReq cryptobyte.String
		if !body.ReadASN1(&certReq, casn1.SEQUENCE) || !cmcReadBodyPartID(&certReq, &r.BodyPartID) {
			return TaggedRequest{}, errCMC("CertReqMsg")
		}
	case casn1.Tag(2).Constructed().ContextSpecific():
		r.Kind = RequestOther
		var typ asn1.ObjectIdentifier
		if !cmcReadBodyPartID(&body, &r.BodyPartID) || !body.ReadASN1ObjectIdentifier(&typ) {
			return TaggedRequest{}, errCMC("other request message")
		}
	default:
		return TaggedRequest{}, errCMC("TaggedRequest of unknown choice")
	}
	return r, nil
}

func cmcReadCMSSequence(s *cryptobyte.String) ([]TaggedContentInfo, error) {
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, casn1.SEQUENCE) {
		return nil, errCMC("cmsSequence")
	}
	var out []TaggedContentInfo
	for !seq.Empty() {
		var el, ci cryptobyte.String
		var t TaggedContentInfo
		if !seq.ReadASN1(&el, casn1.SEQUENCE) || !cmcReadBodyPartID(&el, &t.BodyPartID) ||
			!el.ReadASN1Element(&ci, casn1.SEQUENCE) || !el.Empty() {
			return nil, errCMC("TaggedContentInfo")
		}
		t.ContentInfo = ci
		out = append(out, t)
	}
	return out, nil
}

func cmcReadOtherMsgs(s *cryptobyte.String) ([]OtherMsg, error) {
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, casn1.SEQUENCE) {
		return nil, errCMC("otherMsgSequence")
	}
	var out []OtherMsg
	for !seq.Empty() {
		var el, v cryptobyte.String
		var m OtherMsg
		if !seq.ReadASN1(&el, casn1.SEQUENCE) || !cmcReadBodyPartID(&el, &m.BodyPartID) ||
			!el.ReadASN1ObjectIdentifier(&m.Type) || !el.ReadAnyASN1Element(&v, new(casn1.Tag)) || !el.Empty() {
			return nil, errCMC("OtherMsg")
		}
		m.Value = v
		out = append(out, m)
	}
	return out, nil
}

// Marshal returns the DER of s.
func (s *CMCStatusInfoV2) Marshal() ([]byte, error) {
	if len(s.BodyList) == 0 {
		return nil, fmt.Errorf("est: CMCStatusInfoV2 needs a bodyList")
	}
	n := 0
	for _, set := range []bool{s.FailInfo != nil, s.PendInfo != nil, s.ExtendedFailInfo != nil} {
		if set {
			n++
		}
	}
	if n > 1 {
		return nil, fmt.Errorf("est: CMCStatusInfoV2 with more than one otherInfo")
	}
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(int64(s.Status))
		b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for _, ref := range s.BodyList {
				switch len(ref) {
				case 0:
					b.SetError(fmt.Errorf("est: empty BodyPartReference"))
				case 1:
					b.AddASN1Uint64(uint64(ref[0]))
				default:
					b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
						for _, id := range ref {
							b.AddASN1Uint64(uint64(id))
						}
					})
				}
			}
		})
		if s.StatusString != "" {
			b.AddASN1(casn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(s.StatusString)) })
		}
		switch {
		case s.FailInfo != nil:
			b.AddASN1Int64(int64(*s.FailInfo))
		case s.PendInfo != nil:
			b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1OctetString(s.PendInfo.Token)
				b.AddASN1GeneralizedTime(s.PendInfo.Time.UTC().Truncate(time.Second))
			})
		case s.ExtendedFailInfo != nil:
			b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(s.ExtendedFailInfo.Type)
				b.AddBytes(s.ExtendedFailInfo.Value)
			})
		}
	})
	return b.Bytes()
}

// ParseCMCStatusInfoV2 parses the DER of a CMCStatusInfoV2. Errors are of
// kind ErrBadRequest.
func ParseCMCStatusInfoV2(der []byte) (*CMCStatusInfoV2, error) {
	in := cryptobyte.String(der)
	var seq, list cryptobyte.String
	var status int64
	if !in.ReadASN1(&seq, casn1.SEQUENCE) || !in.Empty() || !seq.ReadASN1Integer(&status) ||
		status < 0 || status > math.MaxInt32 || !seq.ReadASN1(&list, casn1.SEQUENCE) {
		return nil, errCMC("CMCStatusInfoV2")
	}
	s := &CMCStatusInfoV2{Status: CMCStatus(status)}
	for !list.Empty() {
		var id uint32
		switch {
		case list.PeekASN1Tag(casn1.INTEGER):
			if !cmcReadBodyPartID(&list, &id) {
				return nil, errCMC("bodyList")
			}
			s.BodyList = append(s.BodyList, BodyPartReference{id})
		default:
			var path cryptobyte.String
			if !list.ReadASN1(&path, casn1.SEQUENCE) || path.Empty() {
				return nil, errCMC("bodyList")
			}
			var ref BodyPartReference
			for !path.Empty() {
				if !cmcReadBodyPartID(&path, &id) {
					return nil, errCMC("bodyPartPath")
				}
				ref = append(ref, id)
			}
			s.BodyList = append(s.BodyList, ref)
		}
	}
	if len(s.BodyList) == 0 {
		return nil, errCMC("CMCStatusInfoV2 with an empty bodyList")
	}
	if seq.PeekASN1Tag(casn1.UTF8String) {
		var str []byte
		if !seq.ReadASN1Bytes(&str, casn1.UTF8String) || !utf8.Valid(str) {
			return nil, errCMC("statusString")
		}
		s.StatusString = string(str)
	}
	switch {
	case seq.Empty():
	case seq.PeekASN1Tag(casn1.INTEGER):
		var f int64
		if !seq.ReadASN1Integer(&f) || f < 0 || f > math.MaxInt32 {
			return nil, errCMC("failInfo")
		}
		fi := CMCFailInfo(f)
		s.FailInfo = &fi
	case seq.PeekASN1Tag(casn1.SEQUENCE):
		var other cryptobyte.String
		if !seq.ReadASN1(&other, casn1.SEQUENCE) {
			return nil, errCMC("otherInfo")
		}
		if other.PeekASN1Tag(casn1.OCTET_STRING) {
			p := &PendInfo{}
			if !other.ReadASN1Bytes(&p.Token, casn1.OCTET_STRING) || !other.ReadASN1GeneralizedTime(&p.Time) || !other.Empty() {
				return nil, errCMC("pendInfo")
			}
			s.PendInfo = p
		} else {
			e := &ExtendedFailInfo{}
			var v cryptobyte.String
			if !other.ReadASN1ObjectIdentifier(&e.Type) || !other.ReadAnyASN1Element(&v, new(casn1.Tag)) || !other.Empty() {
				return nil, errCMC("extendedFailInfo")
			}
			e.Value = v
			s.ExtendedFailInfo = e
		}
	default:
		return nil, errCMC("otherInfo")
	}
	if !seq.Empty() {
		return nil, errCMC("trailing data in CMCStatusInfoV2")
	}
	return s, nil
}

// Marshal returns the DER of r.
func (r *RevokeRequest) Marshal() ([]byte, error) {
	if r.Serial == nil || len(r.Issuer) == 0 {
		return nil, fmt.Errorf("est: RevokeRequest needs an issuer and a serial")
	}
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(r.Issuer)
		b.AddASN1BigInt(r.Serial)
		b.AddASN1Enum(int64(r.Reason))
		if !r.InvalidityDate.IsZero() {
			b.AddASN1GeneralizedTime(r.InvalidityDate.UTC().Truncate(time.Second))
		}
		if r.Passphrase != nil {
			b.AddASN1OctetString(r.Passphrase)
		}
		if r.Comment != "" {
			b.AddASN1(casn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(r.Comment)) })
		}
	})
	return b.Bytes()
}

// ParseRevokeRequest parses the DER of a RevokeRequest. Errors are of kind
// ErrBadRequest.
func ParseRevokeRequest(der []byte) (*RevokeRequest, error) {
	in := cryptobyte.String(der)
	var seq, issuer cryptobyte.String
	r := &RevokeRequest{Serial: new(big.Int)}
	if !in.ReadASN1(&seq, casn1.SEQUENCE) || !in.Empty() || !seq.ReadASN1Element(&issuer, casn1.SEQUENCE) ||
		!seq.ReadASN1Integer(r.Serial) || !seq.ReadASN1Enum(&r.Reason) {
		return nil, errCMC("RevokeRequest")
	}
	r.Issuer = issuer
	if seq.PeekASN1Tag(casn1.GeneralizedTime) && !seq.ReadASN1GeneralizedTime(&r.InvalidityDate) {
		return nil, errCMC("RevokeRequest invalidityDate")
	}
	if seq.PeekASN1Tag(casn1.OCTET_STRING) {
		if !seq.ReadASN1Bytes(&r.Passphrase, casn1.OCTET_STRING) {
			return nil, errCMC("RevokeRequest passphrase")
		}
		if r.Passphrase == nil {
			r.Passphrase = []byte{}
		}
	}
	if seq.PeekASN1Tag(casn1.UTF8String) {
		var c []byte
		if !seq.ReadASN1Bytes(&c, casn1.UTF8String) || !utf8.Valid(c) {
			return nil, errCMC("RevokeRequest comment")
		}
		r.Comment = string(c)
	}
	if !seq.Empty() {
		return nil, errCMC("trailing data in RevokeRequest")
	}
	return r, nil
}

// HasEKU reports whether cert lists the extended key usage oid (as
// x509.Certificate.UnknownExtKeyUsage holds those Go has no name for).
func HasEKU(cert *x509.Certificate, oid asn1.ObjectIdentifier) bool {
	for _, u := range cert.UnknownExtKeyUsage {
		if u.Equal(oid) {
			return true
		}
	}
	return false
}
