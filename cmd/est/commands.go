package main

import (
	"archive/tar"
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/client"
	"github.com/estkit/estkit/internal/fsutil"
	"github.com/estkit/estkit/internal/pemutil"
)

func cmdCACerts(ctx context.Context, e *env, args []string) error {
	var cn conn
	var o output
	fs := lookup("cacerts").flagSet(e)
	cn.register(fs)
	o.register(fs, "CA certificates (der: certs-only PKCS#7)")
	if err := parse(fs, args); err != nil {
		return err
	}
	f, err := parseFormat(o.outform)
	if err != nil {
		return err
	}
	ctx, cancel := cn.context(ctx)
	defer cancel()
	c, err := cn.client(ctx, e)
	if err != nil {
		return err
	}
	certs, err := c.CACerts(ctx)
	if err != nil {
		return err
	}
	var data []byte
	if f == formatDER {
		if data, err = est.EncodeCertsOnly(certs...); err != nil {
			return err
		}
	} else {
		data = pemutil.EncodeCerts(certs...)
	}
	for _, ct := range certs {
		fmt.Fprintf(e.stderr, "est: %s (SHA-256 %s)\n", ct.Subject, est.Fingerprint(ct))
	}
	return writeOut(e, o.out, data, 0o644)
}

func cmdCSRAttrs(ctx context.Context, e *env, args []string) error {
	var cn conn
	fs := lookup("csrattrs").flagSet(e)
	cn.register(fs)
	out := fs.String("out", "", "also write the DER CsrAttrs to this `file`")
	if err := parse(fs, args); err != nil {
		return err
	}
	ctx, cancel := cn.context(ctx)
	defer cancel()
	c, err := cn.client(ctx, e)
	if err != nil {
		return err
	}
	attrs, err := c.CSRAttrs(ctx)
	if err != nil {
		return err
	}
	if len(attrs) == 0 {
		fmt.Fprintln(e.stdout, "(no CSR attributes requested)")
	}
	for _, it := range attrs {
		if it.Attribute == nil {
			fmt.Fprintf(e.stdout, "%s\n", named(it.OID.String()))
			continue
		}
		fmt.Fprintf(e.stdout, "%s:", named(it.Attribute.Type.String()))
		for _, v := range it.Attribute.Values {
			var oid asn1.ObjectIdentifier
			if _, err := asn1.Unmarshal(v.FullBytes, &oid); err == nil {
				fmt.Fprintf(e.stdout, " %s", named(oid.String()))
			} else {
				fmt.Fprintf(e.stdout, " %x", v.FullBytes)
			}
		}
		fmt.Fprintln(e.stdout)
	}
	if *out != "" {
		der, err := attrs.Marshal()
		if err != nil {
			return err
		}
		return fsutil.WriteFileAtomic(*out, der, 0o644)
	}
	return nil
}

// subjectFlags registers the flags that name a CSR's subject.
func subjectFlags(fs *flag.FlagSet, s *subject) {
	fs.StringVar(&s.cn, "cn", "", "subject common `name`")
	fs.StringVar(&s.o, "o", "", "subject `organization`")
	fs.StringVar(&s.ou, "ou", "", "subject organizational `unit`")
	fs.StringVar(&s.serial, "serial", "", "subject serialNumber (e.g. a device serial `number`)")
	fs.Var(&s.dns, "dns", "DNS `name` subjectAltName (repeatable)")
	fs.Var(&s.ips, "ip", "IP `address` subjectAltName (repeatable)")
	fs.Var(&s.emails, "email", "email `address` subjectAltName (repeatable)")
	fs.Var(&s.uris, "uri", "URI subjectAltName (repeatable)")
}

// keySpec is how a subcommand gets the key its CSR is made for.
type keySpec struct {
	keyType, keyFile string
}

// key loads keyFile or generates a key of keyType (or of what the server's
// csrattrs asked for when keyType was not given). generated reports which.
func (k keySpec) key(w wanted) (key crypto.Signer, generated bool, err error) {
	if k.keyFile != "" {
		key, err = readKey(k.keyFile)
		return key, false, err
	}
	kt := k.keyType
	if kt == "" {
		kt = w.keyType
	}
	if kt == "" {
		kt = "p256"
	}
	key, err = newKey(kt)
	return key, true, err
}

func cmdCSR(ctx context.Context, e *env, args []string) error {
	var s subject
	var k keySpec
	var cn conn
	fs := lookup("csr").flagSet(e)
	subjectFlags(fs, &s)
	fs.StringVar(&k.keyType, "key-type", "", "new key `type`: p256 (default), p384, rsa2048, rsa3072, rsa4096, ed25519")
	fs.StringVar(&k.keyFile, "key", "", "make the CSR for this existing private key `file`")
	keyout := fs.String("keyout", "", "write the new private key to this `file` (mode 0600)")
	out := fs.String("out", "", "write the CSR to this `file` (default: standard output)")
	outform := fs.String("outform", "pem", "`format` of -out and -keyout: pem or der")
	fs.StringVar(&cn.server, "server", "", "follow this server's csrattrs (key type, signature algorithm)")
	fs.StringVar(&cn.label, "label", "", "CA `label` whose csrattrs to follow")
	fs.StringVar(&cn.anchor, "anchor", "", "PEM `file` of the server's trust anchor")
	fs.StringVar(&cn.fingerprint, "fingerprint", "", "expected SHA-256 fingerprint `FP` of the server's root CA")
	fs.BoolVar(&cn.insecure, "insecure", false, "trust the server's root CA without checking its fingerprint")
	cn.timeout = time.Minute
	if err := parse(fs, args); err != nil {
		return err
	}
	f, err := parseFormat(*outform)
	if err != nil {
		return err
	}
	var w wanted
	if cn.server != "" {
		ctx, cancel := cn.context(ctx)
		defer cancel()
		c, err := cn.client(ctx, e)
		if err != nil {
			return err
		}
		attrs, err := c.CSRAttrs(ctx)
		if err != nil {
			return err
		}
		w = fromCSRAttrs(attrs)
		for _, oid := range w.unsupported {
			fmt.Fprintf(e.stderr, "est: note: the server asks for %s, which est csr does not fill in\n", named(oid))
		}
		if w.link {
			fmt.Fprintf(e.stderr, "est: note: the server asks for CSRs linked to their TLS connection (challengePassword, RFC 7030 3.5), which only est enroll can make\n")
		}
	}
	key, generated, err := k.key(w)
	if err != nil {
		return err
	}
	if generated && *keyout == "" {
		return usageErrorf("-keyout is required for a new key (or give -key FILE)")
	}
	tmpl, err := s.template()
	if err != nil {
		return err
	}
	der, err := makeCSR(tmpl, key, sigAlgFits(w.sigAlg, key))
	if err != nil {
		return err
	}
	if generated {
		if err := writeKey(*keyout, key, f); err != nil {
			return err
		}
	}
	if f == formatPEM {
		der = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	}
	return writeOut(e, *out, der, 0o644)
}

// readCSR reads a CSR file: PEM, DER or base64 DER.
func readCSR(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if b, _ := pem.Decode(data); b != nil {
		data = b.Bytes
	} else if _, err := x509.ParseCertificateRequest(data); err != nil {
		if d, err := est.DecodeBase64(data); err == nil {
			data = d
		}
	}
	if _, err := x509.ParseCertificateRequest(data); err != nil {
		return nil, fmt.Errorf("%s: not a PKCS#10 request (PEM, DER or base64)", path)
	}
	return data, nil
}

// enrollFlags are the flags of enroll and serverkeygen.
type enrollFlags struct {
	cn      conn
	s       subject
	k       keySpec
	csrFile string
	o       output
	pop     popFlags // -link, and for serverkeygen key encryption (pop.go)
}

func (ef *enrollFlags) register(fs *flag.FlagSet, serverKeyGen bool) {
	ef.cn.register(fs)
	subjectFlags(fs, &ef.s)
	if serverKeyGen {
		fs.StringVar(&ef.k.keyType, "key-type", "", "`type` of the key the server makes: p256 (default), p384, rsa2048, rsa3072, rsa4096, ed25519")
	} else {
		fs.StringVar(&ef.k.keyType, "key-type", "", "new key `type`: p256 (default), p384, rsa2048, rsa3072, rsa4096, ed25519")
		fs.StringVar(&ef.k.keyFile, "csr-key", "", "make the CSR for this existing private key `file` (without -cert, -key does the same)")
	}
	fs.StringVar(&ef.csrFile, "csr", "", "send this CSR `file` (PEM, DER or base64) instead of making one")
	ef.o.register(fs, "certificate")
	fs.StringVar(&ef.o.keyout, "keyout", "", "write the private key to this `file` (mode 0600)")
	fs.StringVar(&ef.o.dir, "dir", "", "write key, CSR, CA chain (PEM and PKCS#7), certificate and a .tar.gz of them into this `directory`")
	ef.pop.register(fs, serverKeyGen)
}

// resolveKey settles which key the CSR is made for: -csr-key, or -key when
// there is no -cert (then -key is not a TLS key). It reports whether a new
// key will be generated.
func (ef *enrollFlags) resolveKey() (generates bool) {
	if ef.k.keyFile == "" && ef.cn.cert == "" {
		ef.k.keyFile = ef.cn.key
	}
	return ef.csrFile == "" && ef.k.keyFile == ""
}

// request makes or reads the CSR. key is nil when -csr was given.
func (ef *enrollFlags) request(w wanted) (csr []byte, key crypto.Signer, generated bool, err error) {
	if ef.csrFile != "" {
		csr, err = readCSR(ef.csrFile)
		return csr, nil, false, err
	}
	key, generated, err = ef.k.key(w)
	if err != nil {
		return nil, nil, false, err
	}
	tmpl, err := ef.s.template()
	if err != nil {
		return nil, nil, false, err
	}
	csr, err = makeCSR(tmpl, key, sigAlgFits(w.sigAlg, key))
	return csr, key, generated, err
}

func cmdEnroll(ctx context.Context, e *env, args []string) error {
	var ef enrollFlags
	fs := lookup("enroll").flagSet(e)
	ef.register(fs, false)
	if err := parse(fs, args); err != nil {
		return err
	}
	return ef.enroll(ctx, e, est.OpSimpleEnroll)
}

func cmdServerKeyGen(ctx context.Context, e *env, args []string) error {
	var ef enrollFlags
	fs := lookup("serverkeygen").flagSet(e)
	ef.register(fs, true)
	if err := parse(fs, args); err != nil {
		return err
	}
	return ef.enroll(ctx, e, est.OpServerKeyGen)
}

// serverWants follows the server's csrattrs for the key type and signature
// algorithm when the command line names no key and no CSR.
func (ef *enrollFlags) serverWants(ctx context.Context, e *env, c *client.Client) wanted {
	if ef.csrFile != "" || ef.k.keyFile != "" || ef.k.keyType != "" {
		return wanted{}
	}
	attrs, err := c.CSRAttrs(ctx)
	if err != nil {
		fmt.Fprintf(e.stderr, "est: note: csrattrs unavailable (%v); using defaults\n", err)
		return wanted{}
	}
	return fromCSRAttrs(attrs)
}

// enroll runs simpleenroll or serverkeygen and writes what it got.
func (ef *enrollFlags) enroll(ctx context.Context, e *env, op est.Operation) error {
	f, err := parseFormat(ef.o.outform)
	if err != nil {
		return err
	}
	generates := ef.resolveKey() || op == est.OpServerKeyGen
	if generates && ef.o.dir == "" && ef.o.keyout == "" {
		return usageErrorf("-keyout (or -dir) is required: the new private key must go somewhere")
	}
	// A -keyout that is the -key this request authenticates with is written
	// last, as a renewal's is: it must stay until the new certificate is
	// safe.
	ef.o.keyLast = sameFile(ef.o.keyout, ef.cn.key)
	ctx, cancel := ef.cn.context(ctx)
	defer cancel()
	c, err := ef.cn.client(ctx, e)
	if err != nil {
		return err
	}
	w := ef.serverWants(ctx, e, c)
	csr, key, generated, err := ef.request(w)
	if err != nil {
		return err
	}
	if op == est.OpServerKeyGen {
		if csr, err = ef.pop.encrypt(c, csr, key); err != nil {
			return err
		}
	}
	res, err := ef.pop.send(ctx, c, op, csr, key, w.link)
	if err == nil && op == est.OpServerKeyGen {
		if res.KeyEncrypted || res.Key == nil {
			return errEncryptedKey
		}
		key, generated = res.Key, true
	}
	if err != nil {
		return err
	}
	if !generated {
		key = nil
	}
	return ef.o.write(ctx, e, c, f, res.Certificate, key, csr)
}

func cmdReenroll(ctx context.Context, e *env, args []string) error {
	var ef enrollFlags
	fs := lookup("reenroll").flagSet(e)
	ef.cn.register(fs)
	rekey := fs.Bool("rekey", false, "make a new key (of -key-type, default the current key's type) instead of reusing -key")
	fs.StringVar(&ef.k.keyType, "key-type", "", "`type` of the new key with -rekey")
	fs.StringVar(&ef.csrFile, "csr", "", "send this CSR `file` instead of one copied from -cert")
	ef.o.register(fs, "renewed certificate")
	fs.StringVar(&ef.o.keyout, "keyout", "", "with -rekey: write the new private key to this `file` (mode 0600)")
	fs.StringVar(&ef.o.dir, "dir", "", "write key, CSR, CA chain, certificate and a .tar.gz of them into this `directory`")
	ef.pop.register(fs, false)
	if err := parse(fs, args); err != nil {
		return err
	}
	if ef.cn.cert == "" || ef.cn.key == "" {
		return usageErrorf("-cert and -key (the certificate being renewed) are required")
	}
	if *rekey && ef.o.keyout == "" && ef.o.dir == "" {
		return usageErrorf("-rekey needs -keyout (or -dir) for the new key")
	}
	if ef.o.keyout != "" && ef.o.dir != "" {
		return usageErrorf("-keyout and -dir do not go together: with -dir the key is DIR/key.pem")
	}
	ef.o.keyLast = true
	f, err := parseFormat(ef.o.outform)
	if err != nil {
		return err
	}
	if *rekey {
		if done, err := ef.o.finishPending(e, ef.cn.cert, f); done || err != nil {
			return err
		}
	}
	ctx, cancel := ef.cn.context(ctx)
	defer cancel()
	c, err := ef.cn.client(ctx, e)
	if err != nil {
		return err
	}
	current := c.Certificate.Leaf
	key := c.Certificate.PrivateKey.(crypto.Signer)
	var csr []byte
	var newKeyOut crypto.Signer
	switch {
	case ef.csrFile != "":
		csr, err = readCSR(ef.csrFile)
	case *rekey:
		if newKeyOut, err = ef.o.pendingKey(e, ef.k.keyType, current, key); err == nil {
			csr, err = client.RenewalCSR(current, newKeyOut)
		}
	default:
		csr, err = client.RenewalCSR(current, key)
	}
	if err != nil {
		return err
	}
	csrKey := key
	switch {
	case ef.csrFile != "":
		csrKey = nil
	case *rekey:
		csrKey = newKeyOut
	}
	res, err := ef.pop.send(ctx, c, est.OpSimpleReenroll, csr, csrKey, false)
	if err != nil {
		if newKeyOut != nil {
			fmt.Fprintf(e.stderr, "est: the new key stays in %s: the same command again asks with it (a server that renewed already sends that certificate again)\n", ef.o.pendingKeyPath())
		}
		return err
	}
	if err := ef.o.write(ctx, e, c, f, res.Certificate, newKeyOut, csr); err != nil {
		if newKeyOut != nil {
			fmt.Fprintf(e.stderr, "est: the new key stays in %s: the same command again finishes the renewal\n", ef.o.pendingKeyPath())
		}
		return err
	}
	if newKeyOut != nil {
		if err := os.Remove(ef.o.pendingKeyPath()); err != nil {
			fmt.Fprintf(e.stderr, "est: warning: could not remove %s: %v\n", ef.o.pendingKeyPath(), err)
		}
	}
	return nil
}

// pendingKeyPath is where reenroll -rekey keeps the new key until the
// renewal is written: next to -keyout, or in -dir.
func (o *output) pendingKeyPath() string {
	if o.keyout != "" {
		return o.keyout + ".pending"
	}
	return filepath.Join(o.dir, "key.pem.pending")
}

// pendingKey returns the new key of reenroll -rekey for renewing current
// (whose key is currentKey): the one an earlier attempt at that renewal
// left at pendingKeyPath, whose answer was lost (on a label that revokes
// what it renews, only that key gets the renewal again), or a new one of
// type kt (default: currentKey's type), written there (mode 0600), with
// the serial of the certificate it renews, before it is used. A pending
// key for another certificate, or of another type than kt asks, is
// refused rather than used or replaced: it may be the only key that can
// fetch a renewal already issued.
func (o *output) pendingKey(e *env, kt string, current *x509.Certificate, currentKey crypto.Signer) (crypto.Signer, error) {
	path := o.pendingKeyPath()
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		k, err := readKey(path)
		if err != nil {
			return nil, fmt.Errorf("the new key of an earlier attempt, %s: %w", path, err)
		}
		if est.SamePublicKey(k.Public(), currentKey.Public()) {
			// That renewal succeeded; removing the file did not.
			if err := os.Remove(path); err != nil {
				return nil, err
			}
			break
		}
		switch renews, known := pendingFor(data); {
		case !known:
			// Written by an est that did not note the serial: it is
			// this renewal's, as far as anyone can tell.
			fmt.Fprintf(e.stderr, "est: %s does not say which certificate it renews; taking it for this renewal\n", path)
		case renews != current.SerialNumber.Text(16):
			return nil, fmt.Errorf("%s holds the new key of a renewal of another certificate (serial %s): finish that renewal with it, or remove the file", path, renews)
		}
		if kt != "" && keyTypeName(k) != kt {
			return nil, fmt.Errorf("%s holds the %s key of an earlier attempt at this renewal, and -key-type asks %s: run without -key-type to ask with it (a server that renewed already sends that certificate again), or remove the file", path, keyTypeName(k), kt)
		}
		fmt.Fprintf(e.stderr, "est: asking with the new key of an earlier attempt, %s\n", path)
		return k, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("the new key of an earlier attempt, %s: %w", path, err)
	}
	if kt == "" {
		kt = keyTypeName(currentKey)
	}
	k, err := newKey(kt)
	if err != nil {
		return nil, err
	}
	if o.dir != "" {
		if err := os.MkdirAll(o.dir, 0o700); err != nil {
			return nil, err
		}
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	body := append([]byte(pendingPrefix+current.SerialNumber.Text(16)+"\n"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})...)
	if err := fsutil.WriteFileAtomic(path, body, 0o600); err != nil {
		return nil, err
	}
	return k, nil
}

// finishPending completes a rekey whose certificate was written (to -cert,
// the file it renewed) but whose key was not: the pending key is the key of
// certFile's certificate. It writes the key where it goes and removes the
// pending file, and reports whether it did.
func (o *output) finishPending(e *env, certFile string, f format) (bool, error) {
	path := o.pendingKeyPath()
	k, err := readKey(path)
	if err != nil {
		return false, nil
	}
	certs, err := pemutil.ReadCerts(certFile)
	if err != nil || len(certs) == 0 {
		return false, nil
	}
	if !est.SamePublicKey(k.Public(), certs[0].PublicKey) {
		return false, nil
	}
	keyout := o.keyout
	if keyout == "" {
		keyout, f = filepath.Join(o.dir, "key.pem"), formatPEM // as bundle writes it
	}
	if have, err := readKey(keyout); err == nil && est.SamePublicKey(have.Public(), k.Public()) {
		// That renewal was finished; only removing the file failed. This
		// is a renewal of its own.
		if err := os.Remove(path); err != nil {
			return true, err
		}
		return false, nil
	}
	if err := writeKey(keyout, k, f); err != nil {
		return true, err
	}
	if err := os.Remove(path); err != nil {
		fmt.Fprintf(e.stderr, "est: warning: could not remove %s: %v\n", path, err)
	}
	fmt.Fprintf(e.stderr, "est: %s already holds the renewed certificate; wrote its key, kept in %s, to %s\n", certFile, path, keyout)
	return true, nil
}

// sameFile reports whether a and b name one existing file.
func sameFile(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

// pendingPrefix starts the line before the PEM block of a pending key that
// names the certificate it renews.
const pendingPrefix = "est reenroll -rekey: the new key for the renewal of serial "

// pendingFor returns the serial a pending key file says it renews, if it
// says.
func pendingFor(data []byte) (serial string, ok bool) {
	line, _, _ := strings.Cut(string(data), "\n")
	serial, ok = strings.CutPrefix(line, pendingPrefix)
	return strings.TrimSpace(serial), ok
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// certPath returns the CA certificates among cas that certify cert, from
// its issuer up to a root: what chain.pem and fullchain.pem hold. /cacerts
// may carry more (after a rollover, the issuing CA before the current one),
// and a TLS chain must hold only the path. When cas do not reach a root
// from cert, the path as far as it goes; when they hold no issuer of cert
// at all, cas whole.
func certPath(cert *x509.Certificate, cas []*x509.Certificate) []*x509.Certificate {
	var path []*x509.Certificate
	for cur := cert; len(path) < len(cas); {
		var next *x509.Certificate
		for _, c := range cas {
			if bytes.Equal(c.RawSubject, cur.RawIssuer) && !slices.Contains(path, c) && cur.CheckSignatureFrom(c) == nil {
				next = c
				break
			}
		}
		if next == nil {
			if len(path) > 0 {
				return path
			}
			break
		}
		path = append(path, next)
		if bytes.Equal(next.RawIssuer, next.RawSubject) {
			return path
		}
		cur = next
	}
	return cas
}

// write stores the results: -out/-keyout, and with -dir the whole set.
func (o *output) write(ctx context.Context, e *env, c *client.Client, f format, cert *x509.Certificate, key crypto.Signer, csr []byte) error {
	if o.dir == "" {
		fmt.Fprintf(e.stderr, "est: issued %s, serial %s, valid until %s\n", cert.Subject, cert.SerialNumber.Text(16), cert.NotAfter.UTC().Format(time.RFC3339))
		var data []byte
		if f == formatDER {
			data = cert.Raw
		} else {
			data = pemutil.EncodeCerts(cert)
		}
		if key != nil && !o.keyLast {
			if err := writeKey(o.keyout, key, f); err != nil {
				return err
			}
		}
		if err := writeOut(e, o.out, data, 0o644); err != nil {
			return err
		}
		if key != nil && o.keyLast {
			return writeKey(o.keyout, key, f)
		}
		return nil
	}
	chain, err := c.CACerts(ctx)
	if err != nil {
		return fmt.Errorf("certificate issued, but fetching the CA chain failed: %w", err)
	}
	files, err := bundle(cert, key, csr, certPath(cert, chain))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return err
	}
	if o.keyLast {
		slices.SortStableFunc(files, func(a, b file) int {
			return cmp.Compare(btoi(a.name == "key.pem"), btoi(b.name == "key.pem"))
		})
	}
	for _, fl := range files {
		if err := fsutil.WriteFileAtomic(filepath.Join(o.dir, fl.name), fl.data, fl.mode); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stderr, "est: issued %s, serial %s; wrote %s\n", cert.Subject, cert.SerialNumber.Text(16), o.dir)
	return nil
}

type file struct {
	name string
	data []byte
	mode os.FileMode
}

// bundle returns the files of a -dir: key.pem (when there is a key),
// csr.pem, cert.pem, chain.pem, chain.p7b, fullchain.pem and bundle.tar.gz
// holding all the others.
func bundle(cert *x509.Certificate, key crypto.Signer, csr []byte, chain []*x509.Certificate) ([]file, error) {
	p7, err := est.EncodeCertsOnly(chain...)
	if err != nil {
		return nil, err
	}
	files := []file{
		{"cert.pem", pemutil.EncodeCerts(cert), 0o644},
		{"chain.pem", pemutil.EncodeCerts(chain...), 0o644},
		{"chain.p7b", p7, 0o644},
		{"fullchain.pem", pemutil.EncodeCerts(append([]*x509.Certificate{cert}, chain...)...), 0o644},
		{"csr.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}), 0o644},
	}
	if key != nil {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		files = append([]file{{"key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600}}, files...)
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	now := time.Now()
	for _, fl := range files {
		if err := tw.WriteHeader(&tar.Header{Name: fl.name, Mode: int64(fl.mode), Size: int64(len(fl.data)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(fl.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	mode := os.FileMode(0o644)
	if key != nil {
		mode = 0o600 // it holds the private key
	}
	return append(files, file{"bundle.tar.gz", buf.Bytes(), mode}), nil
}

// writeOut writes data to path, or to standard output when path is "" or "-".
func writeOut(e *env, path string, data []byte, mode os.FileMode) error {
	if path == "" || path == "-" {
		_, err := e.stdout.Write(data)
		return err
	}
	return fsutil.WriteFileAtomic(path, data, mode)
}
