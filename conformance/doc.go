// Package conformance checks whether an EST server (Enrollment over Secure
// Transport, RFC 7030 with the RFC 8951 clarifications and the RFC 8996 TLS
// floor) is correct and secure, from the outside, as any client sees it. It
// depends only on the wire vocabulary of package est and on package client,
// never on estd's internals, so it checks any server.
//
// A Check is data: an ID, a group, a name, the RFC sections it enforces and
// a function that returns PASS, FAIL or SKIP with a one-line reason. Run runs
// the checks against Config.Server and returns a Report, which renders as a
// grouped table (WriteText), JSON (WriteJSON) and JUnit XML (WriteJUnit).
//
// # Normal operation
//
//   - /cacerts returns the current CA certificates, the chain verifies and
//     its root is the expected trust anchor (RFC 7030 4.1.3).
//   - Enrollment issues RSA and ECDSA certificates under the TLS client and
//     the TLS server profile, authenticated by a manufacturer certificate and
//     by a certificate the server issued earlier: the full 2×2×2 matrix, each
//     certificate checked for its key, subject, SANs, key usage, extended key
//     usage and chain (RFC 7030 4.2.1, 4.2.3, 3.3.2); and with HTTP Basic
//     (3.2.3).
//   - One subject can hold an ECDSA and an RSA certificate at once; neither
//     is revoked (by the CRL or OCSP responder the certificates name, if any,
//     and by the server still accepting both as credentials).
//   - Reenrollment keeps the subject and subjectAltName; rekey certifies the
//     new key (RFC 7030 4.2.2).
//   - Response formats: status, media types, base64 bodies with and without
//     line breaks (RFC 8951 3.1), certs-only PKCS#7 structure (RFC 5652 5.1),
//     CSR attributes (RFC 7030 4.5.2), the multipart serverkeygen response
//     with a key that matches its certificate (RFC 7030 4.4.2).
//
// # Incorrect operation
//
// Nothing may be issued: a check cannot see the server's store, so it checks
// that the answer carries no certificate, and that a health probe (GET
// /cacerts on a fresh connection) still succeeds after the hostile request.
//
//   - A rogue manufacturer certificate (the right subject from the wrong CA)
//     and an expired certificate are refused (401, 403 or the handshake).
//   - No credentials, and a wrong password, get 401 with a WWW-Authenticate
//     challenge (without a user to test with, 403 from a label that takes
//     only certificates also passes).
//   - TLS 1.0 and 1.1 are refused (RFC 8996), as are clients that offer only
//     CBC, RSA key exchange, 3DES or RC4 suites (RFC 7030 3.3.1, RFC 9325);
//     plain HTTP is not served.
//   - Reenrollment with another subject or subjectAltName is refused.
//   - Malformed base64, a CSR whose signature does not verify, a wrong
//     Content-Type and a huge body each get a 4xx.
//
// Checks that need an input Config lacks (a manufacturer certificate, a rogue
// or expired one, a Basic user, a trust anchor) are SKIP, and say which flag
// of `est check` provides it. The checks enroll real certificates: run them
// against a test instance or a label set aside for it.
package conformance
