package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestUsersRoundTrip(t *testing.T) {
	lowCost(t)
	u := NewUsers()
	if err := u.Set("alice", "correct horse"); err != nil {
		t.Fatal(err)
	}
	if err := u.Set("bob@example.com", "battery staple"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "users")
	if err := u.Save(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("users file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), "correct horse") || strings.Contains(string(data), "battery") {
		t.Fatal("users file holds a plain-text password")
	}
	v, err := LoadUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(v.Names(), ","); got != "alice,bob@example.com" {
		t.Fatalf("names %q", got)
	}
	if !v.Verify("alice", "correct horse") || v.Verify("alice", "battery staple") || v.Verify("carol", "correct horse") || v.Verify("alice", "") {
		t.Fatal("Verify answers wrongly")
	}
}

// TestHtpasswdCompatible: entries made by `htpasswd -B` ($2y$) load and verify.
func TestHtpasswdCompatible(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("s3cret-pass"), 5)
	if err != nil {
		t.Fatal(err)
	}
	y := "$2y$" + string(h[4:])
	u, err := ParseUsers([]byte("# comment\n\nfactory:" + y + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !u.Verify("factory", "s3cret-pass") || u.Verify("factory", "nope") {
		t.Fatal("$2y$ hash does not verify")
	}
}

func TestParseUsersRefusesBadFiles(t *testing.T) {
	for name, in := range map[string]string{
		"plain password": "alice:hunter2\n",
		"no colon":       "alice\n",
		"bad name":       "al ice:$2a$05$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZa\n",
		"twice":          "a:" + mustHash(t) + "\na:" + mustHash(t) + "\n",
	} {
		if _, err := ParseUsers([]byte(in)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func mustHash(t *testing.T) string {
	h, err := bcrypt.GenerateFromPassword([]byte("x"), 4)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// TestVerifiedCache: a verified password is remembered, a changed or
// removed user's old password is not, and expiry is honoured.
func TestVerifiedCache(t *testing.T) {
	lowCost(t)
	u := NewUsers()
	now := time.Unix(1_700_000_000, 0)
	u.now = func() time.Time { return now }
	if err := u.Set("dev", "first-password"); err != nil {
		t.Fatal(err)
	}
	if !u.Verify("dev", "first-password") || len(u.verified) != 1 {
		t.Fatal("successful verification not remembered")
	}
	if u.Verify("dev", "wrong") || len(u.verified) != 1 {
		t.Fatal("a failure was remembered")
	}
	if err := u.Set("dev", "second-password"); err != nil {
		t.Fatal(err)
	}
	if u.Verify("dev", "first-password") {
		t.Fatal("old password accepted after a change")
	}
	if !u.Verify("dev", "second-password") {
		t.Fatal("new password refused")
	}
	// Expired entries are verified again, and a removal forgets everything.
	now = now.Add(verifiedTTL + time.Second)
	if !u.Verify("dev", "second-password") {
		t.Fatal("password refused after cache expiry")
	}
	u.Remove("dev")
	if u.Verify("dev", "second-password") {
		t.Fatal("removed user accepted")
	}
}

func TestValidUserName(t *testing.T) {
	for _, n := range []string{"est", "a", "device-01", "ops@example.com", "x.y_z+1"} {
		if !ValidUserName(n) {
			t.Errorf("%q refused", n)
		}
	}
	for _, n := range []string{"", "-x", "a:b", "a b", "é", strings.Repeat("a", 129)} {
		if ValidUserName(n) {
			t.Errorf("%q accepted", n)
		}
	}
}

// TestDefaultCost: stored hashes use cost 12 unless a test lowered it.
func TestDefaultCost(t *testing.T) {
	if BcryptCost != 12 {
		t.Fatalf("BcryptCost = %d, want 12", BcryptCost)
	}
	u := NewUsers()
	if err := u.Set("a", "password-1"); err != nil {
		t.Fatal(err)
	}
	if c, err := bcrypt.Cost(u.hashes["a"]); err != nil || c != 12 {
		t.Fatalf("stored hash cost %d, %v", c, err)
	}
}

// lowCost makes hashing cheap for one test (tests here are not parallel).
func lowCost(t *testing.T) {
	old := BcryptCost
	BcryptCost = bcrypt.MinCost
	t.Cleanup(func() { BcryptCost = old })
}
