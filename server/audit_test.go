package server_test

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/estdtest"
	"github.com/estkit/estkit/internal/syncbuf"
	"github.com/estkit/estkit/internal/testpki"
)

// jsonLines parses the JSON log lines written to buf.
func jsonLines(t *testing.T, buf *syncbuf.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		out = append(out, m)
	}
	return out
}

// TestAuditLog: every enrollment leaves one audit line, issued or refused,
// naming who asked and how; passwords and keys never reach the log.
func TestAuditLog(t *testing.T) {
	var buf syncbuf.Buffer
	s := estdtest.Start(t, estdtest.Options{Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	csr := testpki.CSR(t, testpki.Key(t, ca.P256), "audited", nil, nil)
	_, _, cert := enrollment{op: est.OpSimpleEnroll, basic: []string{s.User, s.Password}, csr: csr}.do(t, s)
	enrollment{op: est.OpSimpleEnroll, basic: []string{s.User, "wrong-password-xyz"}, csr: csr}.do(t, s)
	call(t, s.Client(), "POST", s.URL+"/.well-known/est/tls-server/serverkeygen", est.MediaPKCS10, est.EncodeBase64(
		testpki.CSR(t, testpki.Key(t, ca.P256), "kg", []string{"kg.example"}, nil)), s.User, s.Password)

	var issued, refused, requests int
	for _, m := range jsonLines(t, &buf) {
		switch m["msg"] {
		case "issued":
			issued++
			if m["op"] == "simpleenroll" && (m["serial"] != cert.SerialNumber.Text(16) || m["subject"] != "CN=audited" || m["who"] != s.User || m["auth"] != "basic") {
				t.Errorf("issued line: %v", m)
			}
		case "refused":
			refused++
			if !strings.Contains(m["reason"].(string), "invalid user name or password") {
				t.Errorf("refused line: %v", m)
			}
		case "request":
			requests++
		}
	}
	if issued != 2 || refused != 1 || requests != 3 {
		t.Fatalf("%d issued, %d refused, %d access lines; want 2, 1, 3", issued, refused, requests)
	}
	all := buf.String()
	for _, secret := range []string{s.Password, "wrong-password-xyz", "PRIVATE KEY", "MIG"} {
		if strings.Contains(all, secret) {
			t.Fatalf("the log contains %q", secret)
		}
	}
}
