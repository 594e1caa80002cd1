package auth

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/estkit/estkit/internal/fsutil"
	"golang.org/x/crypto/bcrypt"
)

// Users is the set of HTTP Basic users, each with a bcrypt hash of the
// password. On disk it is an htpasswd-compatible file ("name:$2y$..." per line,
// '#' comments), written with mode 0600; `htpasswd -B` makes entries too.
// A Users is safe for concurrent use.
type Users struct {
	mu     sync.RWMutex
	hashes map[string][]byte
	// verified remembers recent successful verifications for verifiedTTL, keyed
	// by an HMAC of name and password under a per-process random key, so a
	// client on keep-alive does not pay a bcrypt per request. Failures are
	// never remembered: guessing stays as slow as bcrypt makes it.
	verified map[[32]byte]time.Time
	macKey   [32]byte
	gen      uint64 // bumped by every change of hashes; guards verified
	now      func() time.Time
	// inflight shares one bcrypt among concurrent checks of a credential.
	inflight flights
}

const (
	verifiedTTL = 5 * time.Minute
	maxVerified = 4096
)

// BcryptCost is the cost of new password hashes: 12, about a quarter of a
// second per guess on current hardware. Tests lower it to bcrypt.MinCost in
// TestMain to keep race-detector runs short; nothing else should change it.
var BcryptCost = 12

var userNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$`)

// ValidUserName reports whether name can be a user name: 1 to 128 of
// letters, digits and ._@+- starting with a letter or digit.
func ValidUserName(name string) bool { return userNameRE.MatchString(name) }

// NewUsers returns an empty set.
func NewUsers() *Users {
	u := &Users{hashes: map[string][]byte{}, verified: map[[32]byte]time.Time{}, now: time.Now}
	if _, err := rand.Read(u.macKey[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return u
}

// LoadUsers reads a users file. A missing file is an error.
func LoadUsers(path string) (*Users, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseUsers(data)
}

// ParseUsers parses the users file format.
func ParseUsers(data []byte) (*Users, error) {
	u := NewUsers()
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hash, ok := strings.Cut(line, ":")
		if !ok || !ValidUserName(name) {
			return nil, fmt.Errorf("users file line %d: want NAME:BCRYPT-HASH", n)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("users file line %d: user %q: not a bcrypt hash", n, name)
		}
		if _, dup := u.hashes[name]; dup {
			return nil, fmt.Errorf("users file line %d: user %q listed twice", n, name)
		}
		u.hashes[name] = []byte(hash)
	}
	return u, sc.Err()
}

// Set adds the user or changes their password.
func (u *Users) Set(name, password string) error {
	if !ValidUserName(name) {
		return fmt.Errorf("invalid user name %q", name)
	}
	if password == "" {
		return errors.New("empty password")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), BcryptCost)
	if err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.hashes[name] = h
	u.gen++
	clear(u.verified)
	return nil
}

// Remove deletes the user and reports whether they existed.
func (u *Users) Remove(name string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	_, ok := u.hashes[name]
	delete(u.hashes, name)
	u.gen++
	clear(u.verified)
	return ok
}

// Has reports whether there is a user of that name.
func (u *Users) Has(name string) bool {
	u.mu.RLock()
	defer u.mu.RUnlock()
	_, ok := u.hashes[name]
	return ok
}

// Names returns the user names, sorted.
func (u *Users) Names() []string {
	u.mu.RLock()
	defer u.mu.RUnlock()
	out := make([]string, 0, len(u.hashes))
	for n := range u.hashes {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// dummyHashes are compared against when the user does not exist, so that an
// unknown user costs as much time as a wrong password: one per bcrypt cost,
// made on first need.
var (
	dummyMu     sync.Mutex
	dummyHashes = map[int][]byte{}
)

func dummyHash(cost int) []byte {
	dummyMu.Lock()
	defer dummyMu.Unlock()
	h, ok := dummyHashes[cost]
	if !ok {
		var err error
		h, err = bcrypt.GenerateFromPassword([]byte("estkit-dummy-password"), cost)
		if err != nil {
			panic(err) // only on a broken random source or an invalid cost
		}
		dummyHashes[cost] = h
	}
	return h
}

// dummyCost is the cost of the costliest stored hash (BcryptCost when none):
// an unknown user then takes as long as the slowest real one.
func (u *Users) dummyCost() int {
	c := 0
	for _, h := range u.hashes {
		if hc, err := bcrypt.Cost(h); err == nil && hc > c {
			c = hc
		}
	}
	if c == 0 {
		return BcryptCost
	}
	return c
}

// Verify reports whether password is name's password. A miss takes about
// the same time whether or not the user exists.
func (u *Users) Verify(name, password string) bool {
	mac := hmac.New(sha256.New, u.macKey[:])
	mac.Write([]byte(name))
	mac.Write([]byte{0})
	mac.Write([]byte(password))
	var tag [32]byte
	mac.Sum(tag[:0])
	now := u.now()

	u.mu.RLock()
	h, ok := u.hashes[name]
	exp, hit := u.verified[tag]
	gen := u.gen
	u.mu.RUnlock()
	if ok && hit && now.Before(exp) {
		return true
	}
	return u.inflight.do(tag, func() bool {
		if !ok {
			u.mu.RLock()
			h = dummyHash(u.dummyCost())
			u.mu.RUnlock()
		}
		if bcrypt.CompareHashAndPassword(h, []byte(password)) != nil || !ok {
			return false
		}
		u.mu.Lock()
		if u.gen == gen { // the password did not change while bcrypt ran
			if len(u.verified) >= maxVerified {
				clear(u.verified)
			}
			u.verified[tag] = now.Add(verifiedTTL)
		}
		u.mu.Unlock()
		return true
	})
}

// Marshal returns the users file content.
func (u *Users) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString("# estd users: NAME:BCRYPT-HASH, one a line. Manage with `estd user add|remove|list`.\n")
	for _, n := range u.Names() {
		u.mu.RLock()
		h := u.hashes[n]
		u.mu.RUnlock()
		fmt.Fprintf(&b, "%s:%s\n", n, h)
	}
	return b.Bytes()
}

// Save writes the users file atomically with mode 0600.
func (u *Users) Save(path string) error {
	return fsutil.WriteFileAtomic(path, u.Marshal(), 0o600)
}
