//go:build !cgo

package keys

import (
	"context"
	"crypto"
	"io"

	"github.com/estkit/estkit/ca"
)

// Without cgo there is no PKCS#11: the URI is still parsed (so a typo is
// reported as such), then refused with ErrNoPKCS11.

func loadPKCS11(context.Context, *PKCS11URI, Options) (crypto.Signer, io.Closer, error) {
	return nil, nil, ErrNoPKCS11
}

func generatePKCS11(context.Context, *PKCS11URI, ca.KeyType, Options) (crypto.Signer, io.Closer, error) {
	return nil, nil, ErrNoPKCS11
}
