package estd

import (
	"fmt"
	"path/filepath"

	"github.com/estkit/estkit/server"
)

// KEKsFile, in the data directory, holds the symmetric keys estd shares
// with clients that ask for their server-generated private key encrypted
// with one (RFC 7030 4.4.1.1, DecryptKeyIdentifier): one "LABEL KEY-ID KEY"
// a line, in hex (see server.ParseKEKs). It must be mode 0600; estd never
// writes it, and reads it at start and on reload.
const KEKsFile = "serverkeygen-keys"

func (d *Daemon) loadKEKs() (*server.KEKs, error) {
	k, err := server.LoadKEKs(filepath.Join(d.opts.DataDir, KEKsFile))
	if err != nil {
		return nil, fmt.Errorf("serverkeygen keys: %w", err)
	}
	return k, nil
}
