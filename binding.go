package est

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
)

// ExporterLabel is the TLS exporter label of the tls-exporter channel
// binding (RFC 9266 section 2).
const ExporterLabel = "EXPORTER-Channel-Binding"

// ExporterLength is the length of a tls-exporter channel binding in bytes
// (RFC 9266 section 2).
const ExporterLength = 32

// ChannelBinding returns the value that links a CSR to the TLS connection
// it is sent on (RFC 7030 section 3.5):
//
//   - TLS 1.2: tls-unique (RFC 5929 section 3), the first Finished message
//     of the most recent handshake, as RFC 7030 specifies. It is refused on a
//     resumed session without the extended master secret, whose tls-unique
//     another connection can share.
//   - TLS 1.3, which has no tls-unique: tls-exporter (RFC 9266), the 32
//     bytes of the TLS exporter with label "EXPORTER-Channel-Binding" and no
//     context. RFC 9266 defines it as the TLS 1.3 successor of tls-unique;
//     RFC 7030 predates TLS 1.3 and names no binding for it.
//
// The CSR's challengePassword carries the value in base64 (RFC 4648 with
// padding), as LinkValue returns it.
func ChannelBinding(cs *tls.ConnectionState) ([]byte, error) {
	if cs == nil || !cs.HandshakeComplete {
		return nil, errors.New("no TLS connection to bind to")
	}
	switch {
	case cs.Version >= tls.VersionTLS13:
		b, err := cs.ExportKeyingMaterial(ExporterLabel, nil, ExporterLength)
		if err != nil {
			return nil, errors.New("the TLS 1.3 connection has no tls-exporter value")
		}
		return b, nil
	case cs.Version == tls.VersionTLS12:
		if len(cs.TLSUnique) == 0 {
			return nil, errors.New("the TLS 1.2 connection has no tls-unique value (a resumed session without extended master secret)")
		}
		return append([]byte(nil), cs.TLSUnique...), nil
	}
	return nil, errors.New("channel binding needs TLS 1.2 or 1.3")
}

// LinkValue returns the challengePassword that links a CSR to the TLS
// connection cs (RFC 7030 section 3.5): the base64 of ChannelBinding.
func LinkValue(cs *tls.ConnectionState) (string, error) {
	b, err := ChannelBinding(cs)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}
