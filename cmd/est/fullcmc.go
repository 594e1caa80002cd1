package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/client"
)

// cmdFullCMC enrolls with a Full PKI Request (RFC 7030 4.3), signed by the
// new key (or with -ra by the -cert/-key registration authority), or with
// -revoke revokes certificates as a registration authority.
func cmdFullCMC(ctx context.Context, e *env, args []string) error {
	var ef enrollFlags
	var revoke listFlag
	fs := lookup("fullcmc").flagSet(e)
	ef.cn.register(fs)
	subjectFlags(fs, &ef.s)
	fs.StringVar(&ef.k.keyType, "key-type", "", "new key `type`: p256 (default), p384, rsa2048, rsa3072, rsa4096, ed25519")
	fs.StringVar(&ef.k.keyFile, "csr-key", "", "make the CSR for this existing private key `file` (without -cert, -key does the same)")
	fs.StringVar(&ef.csrFile, "csr", "", "send this CSR `file` (PEM, DER or base64) instead of making one (with -ra, or -csr-key for its key)")
	ef.o.register(fs, "certificate")
	fs.StringVar(&ef.o.keyout, "keyout", "", "write the private key to this `file` (mode 0600)")
	fs.StringVar(&ef.o.dir, "dir", "", "write key, CSR, CA chain (PEM and PKCS#7), certificate and a .tar.gz of them into this `directory`")
	ra := fs.Bool("ra", false, "sign the request with -cert/-key, a registration authority certificate (EKU id-kp-cmcRA), instead of the CSR's key")
	fs.Var(&revoke, "revoke", "revoke the certificate with this hex `serial` of the server's issuing CA (repeatable; needs -cert/-key of an RA)")
	reason := fs.String("reason", "unspecified", "revocation `reason`: "+strings.Join(reasonNames(), ", ")+", or its number")
	if err := parse(fs, args); err != nil {
		return err
	}
	if len(revoke) > 0 {
		return revokeCMC(ctx, e, &ef.cn, revoke, *reason)
	}
	f, err := parseFormat(ef.o.outform)
	if err != nil {
		return err
	}
	if *ra && (ef.cn.cert == "" || ef.cn.key == "") {
		return usageErrorf("-ra needs -cert and -key (the registration authority's)")
	}
	generates := ef.resolveKey()
	if ef.csrFile != "" && !*ra && ef.k.keyFile == "" {
		return usageErrorf("-csr needs -csr-key (its key signs the request) or -ra")
	}
	if generates && ef.o.dir == "" && ef.o.keyout == "" {
		return usageErrorf("-keyout (or -dir) is required: the new private key must go somewhere")
	}
	ctx, cancel := ef.cn.context(ctx)
	defer cancel()
	c, err := ef.cn.client(ctx, e)
	if err != nil {
		return err
	}
	w := ef.serverWants(ctx, e, c)
	var csr []byte
	var key crypto.Signer
	generated := false
	if ef.csrFile != "" {
		if csr, err = readCSR(ef.csrFile); err != nil {
			return err
		}
		if ef.k.keyFile != "" {
			if key, err = readKey(ef.k.keyFile); err != nil {
				return err
			}
		}
	} else {
		if key, generated, err = ef.k.key(w); err != nil {
			return err
		}
		tmpl, err := ef.s.template()
		if err != nil {
			return err
		}
		// RFC 5272 3.2.1.3.1: a request signed by its own key declares the
		// key's identifier, which names the signer.
		if err := addKeyID(tmpl, key); err != nil {
			return err
		}
		if csr, err = makeCSR(tmpl, key, sigAlgFits(w.sigAlg, key)); err != nil {
			return err
		}
	}
	req := &client.CMCRequest{CSR: csr, Key: key}
	if *ra {
		req.Key, req.Certificate = c.Certificate.PrivateKey.(crypto.Signer), c.Certificate.Leaf
	}
	if c.Username != "" {
		req.Identification = c.Username
	}
	res, err := c.FullCMC(ctx, req)
	if err != nil {
		return err
	}
	if res.Certificate == nil {
		return fmt.Errorf("the response holds no certificate for the request's key")
	}
	if !generated {
		key = nil
	}
	return ef.o.write(ctx, e, c, f, res.Certificate, key, csr)
}

// addKeyID adds the subjectKeyIdentifier extension for key to tmpl.
func addKeyID(tmpl *x509.CertificateRequest, key crypto.Signer) error {
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return err
	}
	id, err := est.KeyID(spki)
	if err != nil {
		return err
	}
	val, err := asn1.Marshal(id)
	if err != nil {
		return err
	}
	tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: est.OIDSubjectKeyIdentifier, Value: val})
	return nil
}

// revokeCMC revokes the certificates of the server's issuing CA with the
// given serials, signed by the -cert/-key registration authority.
func revokeCMC(ctx context.Context, e *env, cn *conn, serials []string, reasonName string) error {
	if cn.cert == "" || cn.key == "" {
		return usageErrorf("-revoke needs -cert and -key: a registration authority certificate (EKU id-kp-cmcRA) and its key")
	}
	reason, err := parseReason(reasonName)
	if err != nil {
		return err
	}
	var nums []*big.Int
	for _, s := range serials {
		n, err := parseSerial(s)
		if err != nil {
			return err
		}
		nums = append(nums, n)
	}
	ctx, cancel := cn.context(ctx)
	defer cancel()
	c, err := cn.client(ctx, e)
	if err != nil {
		return err
	}
	chain, err := c.CACerts(ctx)
	if err != nil {
		return fmt.Errorf("the issuing CA's name: %w", err)
	}
	req := &client.CMCRequest{Key: c.Certificate.PrivateKey.(crypto.Signer), Certificate: c.Certificate.Leaf}
	for _, n := range nums {
		req.Revoke = append(req.Revoke, est.RevokeRequest{Issuer: chain[0].RawSubject, Serial: n, Reason: reason})
	}
	if _, err := c.FullCMC(ctx, req); err != nil {
		return err
	}
	for _, n := range nums {
		fmt.Fprintf(e.stderr, "est: revoked serial %s (%s)\n", n.Text(16), reasonName)
	}
	return nil
}

// parseSerial parses a hex serial: "4f1c", "0x4f1c" or "4F:1C".
func parseSerial(s string) (*big.Int, error) {
	h := strings.ReplaceAll(strings.TrimPrefix(strings.ToLower(s), "0x"), ":", "")
	n, ok := new(big.Int).SetString(h, 16)
	if !ok || n.Sign() <= 0 {
		return nil, usageErrorf("-revoke: %q is not a hex serial number", s)
	}
	return n, nil
}

func parseReason(s string) (int, error) {
	if n, ok := est.CRLReasons[s]; ok {
		return n, nil
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 0 && n <= 10 && n != 7 {
		return n, nil
	}
	return 0, usageErrorf("-reason: %q is not one of %s or 0..10", s, strings.Join(reasonNames(), ", "))
}

func reasonNames() []string {
	names := make([]string, 0, len(est.CRLReasons))
	for n := range est.CRLReasons {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return est.CRLReasons[names[i]] < est.CRLReasons[names[j]] })
	return names
}
