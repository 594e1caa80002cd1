package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/testpki"
)

// TestPendingKeyWithoutSerial: a pending key file that does not say which
// certificate it renews (written by an est that did not note it, or by
// hand) is taken for this renewal, with a note.
func TestPendingKeyWithoutSerial(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	root := testpki.NewRoot(t, "Root", now)
	cert, key := root.Issue(t, testpki.Leaf{CN: "svc", NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour)})
	o := &output{keyout: filepath.Join(dir, "next.key")}
	pending := testpki.Key(t, ca.P256)
	if err := writeKey(o.pendingKeyPath(), pending, formatPEM); err != nil { // the old format
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	k, err := o.pendingKey(&env{stderr: &stderr}, "", cert, key)
	if err != nil {
		t.Errorf("pendingKey with a pending key in the previous format: %v", err)
		if strings.Contains(err.Error(), "-----BEGIN") {
			t.Errorf("the first PEM line was taken for a serial")
		}
		return
	}
	if !est.SamePublicKey(k.Public(), pending.Public()) {
		t.Error("not the pending key")
	}
	if !strings.Contains(stderr.String(), "does not say which certificate") {
		t.Errorf("no note: %q", stderr.String())
	}
}
