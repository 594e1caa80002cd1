package conformance

import "fmt"

// allChecks is the suite, in the order it runs and reports.
var allChecks = buildChecks()

func buildChecks() []Check {
	cs := []Check{
		{ID: "cacerts.chain", Group: GroupCACerts, Ref: "RFC 7030 4.1.3",
			Name: "/cacerts returns the current CA certificates and the chain verifies", run: checkCACertsChain},
		{ID: "cacerts.anchor", Group: GroupCACerts, Ref: "RFC 7030 4.1.3, 3.6.1",
			Name: "the root /cacerts returns is the expected trust anchor", run: checkCACertsAnchor},
	}
	for _, alg := range []string{algRSA, algECDSA} {
		for _, server := range []bool{false, true} {
			for _, byIssued := range []bool{false, true} {
				cs = append(cs, matrixCheck(alg, server, byIssued))
			}
		}
	}
	cs = append(cs, []Check{
		{ID: "enroll.basic", Group: GroupEnroll, Ref: "RFC 7030 3.2.3, 4.2.1",
			Name: "a TLS client certificate is issued to a client authenticated by HTTP Basic", run: checkEnrollBasic},
		{ID: "enroll.two-keys", Group: GroupEnroll, Ref: "RFC 7030 4.2.1",
			Name: "one subject gets an ECDSA and an RSA certificate; neither is revoked", run: checkTwoKeys},

		{ID: "reenroll.renew", Group: GroupReenroll, Ref: "RFC 7030 4.2.2",
			Name: "renewal returns a certificate with the same subject and subjectAltName", run: checkRenew},
		{ID: "reenroll.rekey", Group: GroupReenroll, Ref: "RFC 7030 4.2.2",
			Name: "rekey certifies the new key with the same subject", run: checkRekey},

		{ID: "format.cacerts", Group: GroupFormats, Ref: "RFC 7030 4.1.3, RFC 8951 3.1, RFC 5652 5.1",
			Name: "/cacerts: 200, application/pkcs7-mime, base64 certs-only PKCS#7", run: checkFormatCACerts},
		{ID: "format.enroll", Group: GroupFormats, Ref: "RFC 7030 4.2.3, RFC 8951 3.1",
			Name: "/simpleenroll: 200, application/pkcs7-mime; smime-type=certs-only, only the issued certificate", run: checkFormatEnroll},
		{ID: "format.base64", Group: GroupFormats, Ref: "RFC 8951 3.1",
			Name: "request bodies are accepted as base64 with and without line breaks", run: checkFormatBase64},
		{ID: "format.csrattrs", Group: GroupFormats, Ref: "RFC 7030 4.5.2",
			Name: "/csrattrs: application/csrattrs that parses, or 204/404 when there are none", run: checkFormatCSRAttrs},
		{ID: "format.serverkeygen", Group: GroupFormats, Ref: "RFC 7030 4.4.2",
			Name: "/serverkeygen: multipart/mixed with a PKCS#8 key that matches the certificate", run: checkFormatServerKeyGen},

		{ID: "auth.rogue", Group: GroupAuth, Ref: "RFC 7030 3.3.2",
			Name: "a rogue manufacturer certificate (right subject, wrong CA) is refused", run: checkRogue},
		{ID: "auth.none", Group: GroupAuth, Ref: "RFC 7030 3.2.3, RFC 9110 15.5.2",
			Name: "enrollment without credentials gets 401", run: checkNoCredentials},
		{ID: "auth.wrong-password", Group: GroupAuth, Ref: "RFC 7030 3.2.3",
			Name: "enrollment with a wrong password gets 401", run: checkWrongPassword},
		{ID: "auth.expired", Group: GroupAuth, Ref: "RFC 7030 3.3.2, RFC 5280 6.1.3",
			Name: "an expired client certificate is refused", run: checkExpired},

		{ID: "tls.version-1.0", Group: GroupTLS, Ref: "RFC 8996 2, RFC 7030 3.3.1",
			Name: "a client offering only TLS 1.0 cannot connect", run: tlsVersionCheck(versionTLS10)},
		{ID: "tls.version-1.1", Group: GroupTLS, Ref: "RFC 8996 3, RFC 7030 3.3.1",
			Name: "a client offering only TLS 1.1 cannot connect", run: tlsVersionCheck(versionTLS11)},
		{ID: "tls.suites-cbc", Group: GroupTLS, Ref: "RFC 9325 4.2, RFC 7030 3.3.1",
			Name: "a client offering only CBC suites (ECDHE included) cannot connect", run: tlsSuitesCheck("CBC", suitesCBC)},
		{ID: "tls.suites-rsa-kex", Group: GroupTLS, Ref: "RFC 9325 4.1, RFC 7030 3.3.1",
			Name: "a client offering only RSA key exchange suites cannot connect", run: tlsSuitesCheck("RSA key exchange", suitesRSAKex)},
		{ID: "tls.suites-weak-cipher", Group: GroupTLS, Ref: "RFC 9325 4.1, RFC 7465",
			Name: "a client offering only 3DES and RC4 suites cannot connect", run: tlsSuitesCheck("3DES and RC4", suitesWeak)},
		{ID: "tls.plain-http", Group: GroupTLS, Ref: "RFC 7030 3.3",
			Name: "plain HTTP is not served", run: checkPlainHTTP},

		{ID: "reenroll.other-subject", Group: GroupBadReenroll, Ref: "RFC 7030 4.2.2",
			Name: "reenrollment asking for a different subject is refused", run: checkReenrollOtherSubject},
		{ID: "reenroll.other-san", Group: GroupBadReenroll, Ref: "RFC 7030 4.2.2",
			Name: "reenrollment asking for a different subjectAltName is refused", run: checkReenrollOtherSAN},

		{ID: "bad.base64", Group: GroupMalformed, Ref: "RFC 8951 3.1, RFC 7030 4.2.1",
			Name: "malformed base64 gets 4xx", run: checkBadBase64},
		{ID: "bad.signature", Group: GroupMalformed, Ref: "RFC 7030 4.2.1, RFC 2986 3",
			Name: "a CSR whose signature does not verify gets 4xx", run: checkBadSignature},
		{ID: "bad.content-type", Group: GroupMalformed, Ref: "RFC 7030 4.2.1",
			Name: "a request with the wrong Content-Type gets 4xx", run: checkBadContentType},
		{ID: "bad.huge-body", Group: GroupMalformed, Ref: "RFC 9110 15.5.14",
			Name: "a huge request body gets 4xx", run: checkHugeBody},
	}...)
	seen := map[string]bool{}
	for _, c := range cs {
		if seen[c.ID] || c.run == nil || c.Group == "" || c.Name == "" {
			panic(fmt.Sprintf("conformance: bad check %q", c.ID))
		}
		seen[c.ID] = true
	}
	return cs
}
