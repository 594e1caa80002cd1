// Package est holds the wire vocabulary of Enrollment over Secure Transport
// (EST, RFC 7030 with the RFC 8951 clarifications) shared by the estkit client
// and server: operations and their well-known paths (RFC 7030 section 3.2.2),
// media types (section 3.2.4 and 4), the base64 body codec (RFC 8951 section
// 3.1), certs-only PKCS#7 (RFC 7030 section 4.1.3, RFC 5652), CSR attributes
// (RFC 7030 section 4.5.2), the multipart/mixed body of server-side key
// generation (RFC 7030 section 4.4.2) and its encrypted key (EncryptServerKey,
// DecryptServerKey: sections 4.4.1.1, 4.4.1.2), the channel binding that links
// a CSR to its TLS connection (ChannelBinding: section 3.5, tls-unique on TLS
// 1.2 and tls-exporter of RFC 9266 on TLS 1.3, which has no tls-unique), the
// attributes inside a CSR (RequestAttributes, SetRequestAttributes), and the
// domain error type Error.
//
// The package does no I/O; the client/ and server/ packages build on it.
package est
