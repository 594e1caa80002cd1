package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit/internal/estd"
)

// userCmdRun runs `estd user ARGS...` in process with stdin.
func userCmdRun(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var o, e syncBuffer
	code = run(ctx, append([]string{"user"}, args...), env{stdin: strings.NewReader(stdin), stdout: &o, stderr: &e})
	return code, o.String(), e.String()
}

// TestUserCommand: estd user add reads one password line from standard
// input and stores only a hash; the running estd takes users in and out on
// SIGHUP; short passwords are refused.
func TestUserCommand(t *testing.T) {
	requireTools(t, "curl", "openssl")
	t.Parallel()
	base := t.TempDir()
	dataDir := filepath.Join(base, "estd-data")
	writeUsers(t, dataDir, "est", "bootstrap-password")
	d := startEstd(t, dataDir)
	usersFile := filepath.Join(dataDir, estd.UsersFile)

	const alicePassword = "correct horse battery staple"
	code, _, errOut := userCmdRun(t, alicePassword+"\nsecond line, not the password\n", "add", "-data", dataDir, "alice")
	if code != 0 {
		t.Fatalf("user add alice: exit %d: %s", code, errOut)
	}
	users := readFile(t, usersFile)
	if bytes.Contains(users, []byte("correct horse")) || bytes.Contains(users, []byte("second line")) || !bytes.Contains(users, []byte("\nalice:$2")) {
		t.Errorf("users file should hold a bcrypt hash for alice and no password:\n%s", users)
	}
	if fi, err := os.Stat(usersFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("users file mode %v (%v), want 0600", modeOf(fi), err)
	}
	listUsers := func(want string) {
		t.Helper()
		code, out, errOut := userCmdRun(t, "", "list", "-data", dataDir)
		if code != 0 || out != want {
			t.Errorf("user list: exit %d, %q (%s), want %q", code, out, errOut, want)
		}
	}
	listUsers("alice\nest\n")

	// A short or missing password is refused and changes nothing.
	for _, stdin := range []string{"short\n", "1234567", "\n", ""} {
		if code, _, _ := userCmdRun(t, stdin, "add", "-data", dataDir, "bob"); code != 1 {
			t.Errorf("user add bob with %q: exit %d, want 1", stdin, code)
		}
	}
	if !bytes.Equal(readFile(t, usersFile), users) {
		t.Error("a refused user add changed the users file")
	}
	listUsers("alice\nest\n")

	// After a reload alice enrolls with her password.
	d.reload(t)
	work := t.TempDir()
	alice := []string{"-K", curlConfig(t, base, "alice", alicePassword)}
	key := genKey(t, work, "alice", "p256")
	csr := makeCSR(t, work, "alice", key, "/CN=alice-device", "")
	d.enroll(t, work, "alice", "simpleenroll", csr, 200, alice...)

	// Removed and reloaded, alice is refused.
	if code, _, errOut := userCmdRun(t, "", "remove", "-data", dataDir, "alice"); code != 0 {
		t.Fatalf("user remove alice: exit %d: %s", code, errOut)
	}
	if code, _, _ := userCmdRun(t, "", "remove", "-data", dataDir, "alice"); code != 1 {
		t.Errorf("removing alice twice: exit %d, want 1", code)
	}
	listUsers("est\n")
	d.reload(t)
	if code := d.post(t, work, "removed.txt", "simpleenroll", csr, alice...); code != 401 {
		t.Errorf("removed user: status %d, want 401", code)
	}
}
