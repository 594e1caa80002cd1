// Package client is an EST client (Enrollment over Secure Transport, RFC 7030
// with the RFC 8951 clarifications): every operation of RFC 7030 section 3.2.2,
// as methods of Client that take a context first.
//
//   - CACerts fetches the CA certificates (section 4.1, response 4.1.3).
//   - Bootstrap is the explicit bootstrap distribution of CA certificates
//     (section 4.1.1): it fetches /cacerts without authenticating the server
//     and returns the root's SHA-256 fingerprint for an out-of-band check.
//   - CSRAttrs fetches the CSR attributes the server asks for (section 4.5).
//   - FullCMC sends a Full PKI Request (section 4.3, RFC 5272): a PKCS#10
//     request or revocations, signed by the request's key or by a
//     registration authority, and reads the signed Full PKI Response;
//     SendCMC sends one made elsewhere (see fullcmc.go).
//   - Enroll and Reenroll send a PKCS#10 request (sections 4.2, 4.2.1 and
//     4.2.2) and return the certificate issued (section 4.2.3); RenewalCSR
//     makes the request Reenroll needs from the certificate being renewed.
//   - ServerKeyGen asks the server to generate the key pair as well
//     (section 4.4) and returns the key and the certificate (section 4.4.2),
//     decrypting a key the CSR asked to have encrypted (section 4.4.1) with
//     Client.KeyEncryptionKey or Client.Certificate's key.
//   - EnrollLinked, ReenrollLinked and ServerKeyGenLinked link the CSR to
//     the TLS connection it is sent on (section 3.5): its challengePassword
//     carries the connection's tls-unique on TLS 1.2 and, since TLS 1.3 has
//     none, its tls-exporter (RFC 9266) on TLS 1.3. AsksForLink tells whether
//     a server's csrattrs ask for it.
//
// # Trust
//
// The server is authenticated by TLS (RFC 7030 section 3.3.1, 3.6): against
// Client.TrustAnchors, the explicit trust anchor database of section 3.6.1,
// or, when that is nil, against the system roots (the implicit database of
// section 3.6.2). TLS 1.2 is the minimum (RFC 8996). A client that has no
// anchor yet calls Bootstrap, compares the fingerprint with one obtained out
// of band, and sets TrustAnchors from the result.
//
// # Authentication
//
// The client authenticates with a TLS client certificate (section 3.3.2:
// a manufacturer certificate, or the certificate being renewed for
// Reenroll), with HTTP Basic (section 3.2.3), or both.
//
// # Waiting
//
// A server that answers 202 Accepted with Retry-After (section 4.2.3) or 503
// Service Unavailable (or 429) with Retry-After is polled again with the same
// request after the delay it asks for (at least MinWait, at most
// Client.MaxWait), until the context's deadline: a wait that would end after
// the deadline is not started, and the call fails at once with an *Error
// that wraps context.DeadlineExceeded. Without a deadline the client polls
// for as long as the server asks. The wait goes through Client.Sleep and the
// time through Client.Clock, so tests never sleep.
//
// # What servers send
//
// Bodies are base64 with or without line breaks and with or without
// Content-Transfer-Encoding (RFC 8951 section 3.1); binary DER and PEM are
// accepted too. A certs-only PKCS#7 may carry more than the issued
// certificate; the one for the request's key is picked. The parts of a
// serverkeygen response may come in either order, and a key labelled
// application/pkcs8 may in fact be PKCS#1 or SEC 1. A missing Content-Type is
// tolerated when the body parses. Every response is read up to
// MaxResponseSize bytes.
//
// # Errors
//
// A refusal by the server is an *Error carrying the HTTP status and the
// server's one-line reason; errors.Is tells its class (ErrRejected for 4xx,
// ErrServerFailure for 5xx) and its est kind (est.ErrUnauthorized for 401,
// est.ErrForbidden for 403, ...). A response that cannot be used matches
// ErrMalformedResponse. Network and TLS failures are returned wrapped, as the
// net/http client reports them.
package client
