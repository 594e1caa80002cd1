//go:build cgo

package keys

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
	"github.com/thales-e-security/pool"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
)

// moduleMu serialises loading, initialising and finalising PKCS#11 modules:
// the slot scan of findSlot initialises a module on its own for a moment,
// and crypto11 initialises it on the first Configure and finalises it when
// the last Context of the module closes. All three happen only under
// moduleMu, so they never overlap. Signing does not take it.
var moduleMu sync.Mutex

// scanners holds one module handle per module path for findSlot. It is
// never unloaded: that keeps the library mapped for the life of the
// process, so closing the last token does not unload and reload it.
var scanners = map[string]*pkcs11.Ctx{}

// A PKCS#11 login belongs to the whole process, not to one session: while
// one Context of a token is logged in, C_Login of another returns
// CKR_USER_ALREADY_LOGGED_IN without looking at the PIN, and crypto11
// takes that as success. So open checks a second PIN against the one that
// logged in, remembered here (as a hash) per module and slot while any
// Context of the slot is open. Guarded by moduleMu.
type slotKey struct {
	module string
	slot   uint
}

type login struct {
	pin  [sha256.Size]byte
	open int
}

var logins = map[slotKey]*login{}

// token is an open, logged-in crypto11 Context: the io.Closer of Load and
// Generate.
type token struct {
	ctx   *crypto11.Context
	key   slotKey
	label string
	once  sync.Once
}

// Close logs out and closes the sessions, once; it waits for signatures in
// progress.
func (t *token) Close() error {
	var err error
	t.once.Do(func() {
		moduleMu.Lock()
		defer moduleMu.Unlock()
		err = t.ctx.Close()
		if l := logins[t.key]; l != nil {
			if l.open--; l.open == 0 {
				delete(logins, t.key)
			}
		}
	})
	return err
}

func ckr(err error, code uint) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && uint(e) == code
}

// scanner returns the module handle for findSlot, loading it once.
func scanner(path string) (*pkcs11.Ctx, error) {
	if m, ok := scanners[path]; ok {
		return m, nil
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("pkcs11: module-path: %w", err)
	}
	m := pkcs11.New(path)
	if m == nil {
		return nil, fmt.Errorf("pkcs11: %s is not a loadable PKCS#11 module", path)
	}
	scanners[path] = m
	return m, nil
}

func trimPad(s string) string { return strings.TrimRight(s, " \x00") }

// findSlot returns the one slot whose library, slot and token match every
// selection attribute of u (RFC 7512 section 3.3 matching), among slots
// with an initialised token. It is called with moduleMu held.
func findSlot(u *PKCS11URI) (uint, string, error) {
	m, err := scanner(u.ModulePath)
	if err != nil {
		return 0, "", err
	}
	if err := m.Initialize(); err == nil {
		defer m.Finalize()
	} else if !ckr(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		return 0, "", fmt.Errorf("pkcs11: initialising %s: %w", u.ModulePath, err)
	}
	if u.LibraryManufacturer != "" || u.LibraryDescription != "" || u.LibraryVersion != "" {
		info, err := m.GetInfo()
		if err != nil {
			return 0, "", fmt.Errorf("pkcs11: C_GetInfo: %w", err)
		}
		major, minor, _ := parseVersion(u.LibraryVersion)
		if !matches(u.LibraryManufacturer, info.ManufacturerID) || !matches(u.LibraryDescription, info.LibraryDescription) ||
			(u.LibraryVersion != "" && (info.LibraryVersion.Major != major || info.LibraryVersion.Minor != minor)) {
			return 0, "", fmt.Errorf("pkcs11: the module %s is not the library the URI names (%s %s %d.%d)",
				u.ModulePath, trimPad(info.ManufacturerID), trimPad(info.LibraryDescription), info.LibraryVersion.Major, info.LibraryVersion.Minor)
		}
	}
	slots, err := m.GetSlotList(true)
	if err != nil {
		return 0, "", fmt.Errorf("pkcs11: C_GetSlotList: %w", err)
	}
	var found []uint
	var labels []string
	var present []string
	for _, slot := range slots {
		ti, err := m.GetTokenInfo(slot)
		if err != nil || ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			continue
		}
		present = append(present, fmt.Sprintf("%q (serial %s, slot %d)", trimPad(ti.Label), trimPad(ti.SerialNumber), slot))
		if (u.SlotID != nil && *u.SlotID != slot) || !matches(u.Token, ti.Label) || !matches(u.Manufacturer, ti.ManufacturerID) ||
			!matches(u.Model, ti.Model) || !matches(u.Serial, ti.SerialNumber) {
			continue
		}
		if u.SlotDescription != "" || u.SlotManufacturer != "" {
			si, err := m.GetSlotInfo(slot)
			if err != nil || !matches(u.SlotDescription, si.SlotDescription) || !matches(u.SlotManufacturer, si.ManufacturerID) {
				continue
			}
		}
		found = append(found, slot)
		labels = append(labels, trimPad(ti.Label))
	}
	switch {
	case len(found) == 1:
		return found[0], labels[0], nil
	case len(found) > 1:
		return 0, "", fmt.Errorf("pkcs11: %d tokens match %s; name one with token= or serial=", len(found), u)
	case len(present) == 0:
		return 0, "", fmt.Errorf("pkcs11: the module %s has no initialised token", u.ModulePath)
	}
	return 0, "", fmt.Errorf("pkcs11: no token matches %s; the module has %s", u, strings.Join(present, ", "))
}

// matches is RFC 7512 attribute matching: an absent attribute matches anything.
func matches(want, have string) bool { return want == "" || want == trimPad(have) }

// SessionWait bounds how long a signature waits for a free session of the
// token (crypto11 keeps a pool of them, as many as the token allows). Past
// it the request fails with est.ErrUnavailable (503 and Retry-After)
// rather than wait for ever behind a token that stopped answering.
var SessionWait = 10 * time.Second

// SignTimeout bounds a signature in the token, waiting for a session
// included. A token that stops answering in the middle of a signature keeps
// that session until it answers; the request gets est.ErrUnavailable (503
// and Retry-After) instead of waiting with it. Once every session is held
// so, signatures find none within SessionWait, and /readyz reports the CA
// key as not signing.
var SignTimeout = 30 * time.Second

// tokenSigner is a key in a token. A signature that found no free session
// within SessionWait, or did not end within SignTimeout, is an
// est.ErrUnavailable.
type tokenSigner struct{ crypto11.Signer }

func (s tokenSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	type result struct {
		sig []byte
		err error
	}
	done := make(chan result, 1) // the signature may end after Sign has returned
	digest = bytes.Clone(digest)
	go func() {
		sig, err := s.Signer.Sign(r, digest, opts)
		done <- result{sig, err}
	}()
	timer := time.NewTimer(SignTimeout)
	defer timer.Stop()
	select {
	case res := <-done:
		if errors.Is(res.err, pool.ErrTimeout) {
			return nil, est.Wrap(est.ErrUnavailable, res.err, "every session of the HSM is busy; try again")
		}
		return res.sig, res.err
	case <-timer.C:
		return nil, est.Errorf(est.ErrUnavailable, "the HSM did not sign within %v; try again", SignTimeout)
	}
}

// open finds the token u names and logs in to it.
func open(u *PKCS11URI, opts Options) (*token, error) {
	pin, err := u.pin(opts)
	if err != nil {
		return nil, err
	}
	moduleMu.Lock()
	defer moduleMu.Unlock()
	slot, label, err := findSlot(u)
	if err != nil {
		return nil, err
	}
	key := slotKey{u.ModulePath, slot}
	sum := sha256.Sum256([]byte(pin))
	if l := logins[key]; l != nil && subtle.ConstantTimeCompare(l.pin[:], sum[:]) != 1 {
		return nil, fmt.Errorf("pkcs11: wrong PIN for the token of %s (this process is logged in to it with another PIN)", u)
	}
	n := int(slot)
	c, err := crypto11.Configure(&crypto11.Config{Path: u.ModulePath, SlotNumber: &n, Pin: pin, PoolWaitTimeout: SessionWait})
	if err != nil {
		switch {
		case ckr(err, pkcs11.CKR_PIN_INCORRECT):
			return nil, fmt.Errorf("pkcs11: wrong PIN for the token of %s", u)
		case ckr(err, pkcs11.CKR_PIN_LOCKED):
			return nil, fmt.Errorf("pkcs11: the user PIN of the token of %s is locked (too many wrong PINs)", u)
		case ckr(err, pkcs11.CKR_USER_PIN_NOT_INITIALIZED):
			return nil, fmt.Errorf("pkcs11: the token of %s has no user PIN yet; initialise it", u)
		}
		return nil, fmt.Errorf("pkcs11: opening the token of %s: %w", u, err)
	}
	if logins[key] == nil {
		logins[key] = &login{pin: sum}
	}
	logins[key].open++
	return &token{ctx: c, key: key, label: label}, nil
}

func (u *PKCS11URI) label() []byte {
	if u.Object == "" {
		return nil
	}
	return []byte(u.Object)
}

func loadPKCS11(ctx context.Context, u *PKCS11URI, opts Options) (crypto.Signer, io.Closer, error) {
	t, err := open(u, opts)
	if err != nil {
		return nil, nil, err
	}
	s, err := findKey(t, u)
	if err != nil {
		t.Close()
		return nil, nil, err
	}
	if a, err := t.ctx.GetAttributes(s, []crypto11.AttributeType{crypto11.CkaSensitive, crypto11.CkaExtractable}); err == nil {
		if !boolAttr(a, crypto11.CkaSensitive, false) || boolAttr(a, crypto11.CkaExtractable, true) {
			opts.logger().Warn("pkcs11: the CA private key can be read out of the token (CKA_SENSITIVE false or CKA_EXTRACTABLE true); estd ca init -hsm creates keys that cannot", "uri", u.String())
		}
	}
	return tokenSigner{s}, t, nil
}

// findKey returns the one key pair u names.
func findKey(t *token, u *PKCS11URI) (crypto11.Signer, error) {
	found, err := t.ctx.FindKeyPairs(u.ID, u.label())
	if err != nil {
		return nil, fmt.Errorf("pkcs11: looking for %s: %w", u, err)
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("pkcs11: no key pair %s in the token %q (the private key needs a CKA_ID, and a public key with the same CKA_ID and label)", objectName(u), t.label)
	case 1:
	default:
		return nil, fmt.Errorf("pkcs11: %d key pairs match %s in the token %q; name one with id=", len(found), objectName(u), t.label)
	}
	switch found[0].Public().(type) {
	case *ecdsa.PublicKey, *rsa.PublicKey:
		return found[0], nil
	}
	return nil, fmt.Errorf("pkcs11: the key %s is of type %T; want ECDSA or RSA", objectName(u), found[0].Public())
}

func objectName(u *PKCS11URI) string {
	var parts []string
	if u.Object != "" {
		parts = append(parts, "object="+escape(u.Object, false))
	}
	if u.ID != nil {
		parts = append(parts, fmt.Sprintf("id=%x", u.ID))
	}
	return strings.Join(parts, ";")
}

// refuseExisting fails if the token has a key pair or private key with
// CKA_ID id or CKA_LABEL label.
func refuseExisting(t *token, id, label []byte, name string) error {
	pairs, err := t.ctx.FindKeyPairs(id, label)
	if err != nil {
		return fmt.Errorf("pkcs11: looking for %s: %w", name, err)
	}
	privs, err := t.ctx.FindPrivateKeys(id, label)
	if err != nil {
		return fmt.Errorf("pkcs11: looking for %s: %w", name, err)
	}
	if len(pairs)+len(privs) > 0 {
		return fmt.Errorf("pkcs11: the token already has a key with %s; refusing to create another", name)
	}
	return nil
}

// boolAttr returns a CK_BBOOL attribute, or def if the token did not say.
func boolAttr(a crypto11.AttributeSet, t crypto11.AttributeType, def bool) bool {
	v, ok := a[t]
	if !ok || v == nil || len(v.Value) != 1 {
		return def
	}
	return v.Value[0] != 0
}

func generatePKCS11(ctx context.Context, u *PKCS11URI, kt ca.KeyType, opts Options) (crypto.Signer, io.Closer, error) {
	t, err := open(u, opts)
	if err != nil {
		return nil, nil, err
	}
	s, err := generate(t, u, kt)
	if err != nil {
		t.Close()
		return nil, nil, err
	}
	return tokenSigner{s}, t, nil
}

func generate(t *token, u *PKCS11URI, kt ca.KeyType) (crypto11.Signer, error) {
	// A second key with the same label or CKA_ID would make the URI
	// ambiguous, and crypto11 pairs private and public keys by CKA_ID.
	if u.ID != nil {
		if err := refuseExisting(t, u.ID, nil, fmt.Sprintf("id=%x", u.ID)); err != nil {
			return nil, err
		}
	}
	if u.Object != "" {
		if err := refuseExisting(t, nil, u.label(), "object="+escape(u.Object, false)); err != nil {
			return nil, err
		}
	}
	id := u.ID
	if id == nil {
		id = make([]byte, 16)
		if _, err := rand.Read(id); err != nil {
			return nil, err
		}
	}
	pub, err := crypto11.NewAttributeSetWithID(id)
	if err != nil {
		return nil, err
	}
	if u.Object != "" {
		if err := pub.Set(crypto11.CkaLabel, u.Object); err != nil {
			return nil, err
		}
	}
	priv := pub.Copy()
	set := func(a crypto11.AttributeSet, v map[crypto11.AttributeType]bool) error {
		for k, b := range v {
			if err := a.Set(k, b); err != nil {
				return err
			}
		}
		return nil
	}
	// The private key: only for signing, and never to leave the token.
	if err := set(priv, map[crypto11.AttributeType]bool{
		crypto11.CkaToken: true, crypto11.CkaPrivate: true,
		crypto11.CkaSensitive: true, crypto11.CkaExtractable: false,
		crypto11.CkaSign: true, crypto11.CkaDecrypt: false, crypto11.CkaUnwrap: false, crypto11.CkaDerive: false,
	}); err != nil {
		return nil, err
	}
	if err := set(pub, map[crypto11.AttributeType]bool{
		crypto11.CkaToken: true, crypto11.CkaPrivate: false,
		crypto11.CkaVerify: true, crypto11.CkaEncrypt: false, crypto11.CkaWrap: false,
	}); err != nil {
		return nil, err
	}
	var s crypto11.Signer
	switch kt {
	case ca.P256:
		s, err = t.ctx.GenerateECDSAKeyPairWithAttributes(pub, priv, elliptic.P256())
	case ca.P384:
		s, err = t.ctx.GenerateECDSAKeyPairWithAttributes(pub, priv, elliptic.P384())
	case ca.RSA2048:
		s, err = t.ctx.GenerateRSAKeyPairWithAttributes(pub, priv, 2048)
	case ca.RSA3072:
		s, err = t.ctx.GenerateRSAKeyPairWithAttributes(pub, priv, 3072)
	case ca.RSA4096:
		s, err = t.ctx.GenerateRSAKeyPairWithAttributes(pub, priv, 4096)
	default:
		return nil, fmt.Errorf("pkcs11: cannot generate key type %q", kt)
	}
	if err != nil {
		return nil, fmt.Errorf("pkcs11: generating a %s key in the token: %w", kt, err)
	}
	// Trust, but verify: a token may ignore parts of the template.
	a, err := t.ctx.GetAttributes(s, []crypto11.AttributeType{crypto11.CkaSensitive, crypto11.CkaExtractable})
	if err != nil || !boolAttr(a, crypto11.CkaSensitive, false) || boolAttr(a, crypto11.CkaExtractable, true) {
		_ = s.Delete()
		if err == nil {
			err = errors.New("CKA_SENSITIVE is not true or CKA_EXTRACTABLE is not false")
		}
		return nil, fmt.Errorf("pkcs11: the token did not create a non-extractable key, so it was deleted: %w", err)
	}
	return s, nil
}
