package auth

// Fuzz targets for what package auth reads from the network and from disk:
// the Authorization header as estd's Authenticators see it, and the users
// file. Crashers go to testdata/fuzz/<Target>/ and run with plain go test.
//
//	go test -run '^$' -fuzz '^FuzzAuthenticate$' -fuzztime 30s ./auth

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/estkit/estkit"
)

// fuzzUsers are the users of FuzzAuthenticate: name → password.
var fuzzUsers = map[string]string{
	"alice":           "correct horse",
	"bob@example.com": "pässwörd:with colon",
	"x":               "y",
}

// lowCostF is lowCost for fuzz targets.
func lowCostF(f *testing.F) {
	old := BcryptCost
	BcryptCost = bcrypt.MinCost
	f.Cleanup(func() { BcryptCost = old })
}

// FuzzAuthenticate feeds arbitrary Authorization header values to the
// Authenticators estd uses, with and without TLS: nothing panics, every
// refusal is ErrUnauthorized or ErrForbidden with a one-line UTF-8 reason
// that does not echo the password, and only the exact credentials of a
// known user, over TLS, on a label that accepts Basic, authenticate.
func FuzzAuthenticate(f *testing.F) {
	lowCostF(f)
	users := NewUsers()
	for name, pw := range fuzzUsers {
		if err := users.Set(name, pw); err != nil {
			f.Fatal(err)
		}
	}
	v := &Verifier{}
	v.SetUsers(users)
	authenticators := []struct {
		a     Authenticator
		basic bool
	}{
		{v.For(Basic), true},
		{v.For(Basic, Manufacturer, Issued), true},
		{v.For(Manufacturer, Issued), false},
		{v.For(), false},
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, s := range []string{
		"Basic " + b64("alice:correct horse"),
		"Basic " + b64("bob@example.com:pässwörd:with colon"),
		"basic " + b64("x:y"),
		"BASIC  " + b64("x:y"),
		"Basic " + b64("alice:wrong"),
		"Basic " + b64("nobody:correct horse"),
		"Basic " + b64("alice"),
		"Basic " + b64(":"),
		"Basic " + b64("\xff\xfe:\x00"),
		"Basic " + b64("alice\x00:correct horse"),
		"Basic " + base64.RawStdEncoding.EncodeToString([]byte("x:y")),
		"Basic " + base64.URLEncoding.EncodeToString([]byte("x:y?>")),
		"Basic !!!", "Basic", "Basic ", "Bearer " + b64("x:y"), "", " ", "Basic=" + b64("x:y"),
		"Basic " + b64("x:"+strings.Repeat("y", 100)),
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, header string, overTLS bool) {
		r := &http.Request{Method: "POST", URL: &url.URL{Path: "/.well-known/est/simpleenroll"}, Header: http.Header{"Authorization": {header}}}
		if overTLS {
			r.TLS = &tls.ConnectionState{Version: tls.VersionTLS13, HandshakeComplete: true}
		}
		user, pass, isBasic := r.BasicAuth()
		known := isBasic && overTLS && fuzzUsers[user] == pass && pass != ""
		for i, x := range authenticators {
			id, err := x.a.Authenticate(r)
			if err == nil {
				if !known || !x.basic {
					t.Fatalf("authenticator %d accepted %q (TLS %v) as %+v", i, header, overTLS, id)
				}
				if id.Method != Basic || id.Name != user || id.Cert != nil {
					t.Fatalf("authenticator %d: identity %+v for user %q", i, id, user)
				}
				continue
			}
			if known && x.basic {
				t.Fatalf("authenticator %d refused %q, the credentials of %q: %v", i, header, user, err)
			}
			var e *est.Error
			if !errors.As(err, &e) || (e.Kind != est.ErrUnauthorized && e.Kind != est.ErrForbidden) {
				t.Fatalf("authenticator %d: error %v (%T) is not ErrUnauthorized or ErrForbidden", i, err, err)
			}
			if isBasic && !overTLS && e.Kind != est.ErrForbidden {
				t.Fatalf("authenticator %d: Basic over plain HTTP is %v, want ErrForbidden", i, e.Kind)
			}
			d := est.Detail(err)
			if !utf8.ValidString(d) || strings.ContainsAny(d, "\r\n") || len(d) > 200 {
				t.Fatalf("authenticator %d: reason %q is not one short UTF-8 line", i, d)
			}
			if len(pass) >= 3 && strings.Contains(d, pass) {
				t.Fatalf("authenticator %d: reason %q echoes the password", i, d)
			}
		}
	})
}

// FuzzParseUsers parses arbitrary users files: nothing panics, and what
// parses holds only valid names with bcrypt hashes and survives Marshal and
// ParseUsers unchanged.
func FuzzParseUsers(f *testing.F) {
	lowCostF(f)
	u := NewUsers()
	for name, pw := range fuzzUsers {
		if err := u.Set(name, pw); err != nil {
			f.Fatal(err)
		}
	}
	good := u.Marshal()
	f.Add(good)
	f.Add(bytes.ReplaceAll(good, []byte("\n"), []byte("\r\n")))
	f.Add(bytes.ReplaceAll(good, []byte("$2a$"), []byte("$2y$"))) // htpasswd -B
	hash := u.hashes["alice"]
	for _, s := range []string{
		"", "\n", "# only a comment\n", "alice\n", "alice:\n", ":" + string(hash) + "\n",
		"alice:notahash\n", "alice:$2a$99$" + strings.Repeat("a", 53) + "\n",
		"alice:" + string(hash) + "\nalice:" + string(hash) + "\n",
		"  alice:" + string(hash) + "  \n", "al ice:" + string(hash) + "\n", "\xff:" + string(hash) + "\n",
		"alice:" + string(hash) + "\x00\n", "alice:" + string(hash) + " # comment\n",
		"alice:" + string(hash) + ":extra\n", strings.Repeat("a", 70000) + ":" + string(hash) + "\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		u, err := ParseUsers(data)
		if !bytes.Equal(in, data) {
			t.Fatal("ParseUsers changed its input")
		}
		if err != nil {
			if !utf8.ValidString(err.Error()) {
				t.Fatalf("error %q is not valid UTF-8", err)
			}
			return
		}
		names := u.Names()
		for _, n := range names {
			if !ValidUserName(n) {
				t.Fatalf("ParseUsers accepted the user name %q", n)
			}
			if _, err := bcrypt.Cost(u.hashes[n]); err != nil {
				t.Fatalf("user %q has the hash %q: %v", n, u.hashes[n], err)
			}
		}
		v, err := ParseUsers(u.Marshal())
		if err != nil {
			t.Fatalf("ParseUsers(Marshal()) of %q: %v", u.Marshal(), err)
		}
		if !slices.Equal(v.Names(), names) {
			t.Fatalf("names %q became %q", names, v.Names())
		}
		for _, n := range names {
			if !bytes.Equal(u.hashes[n], v.hashes[n]) {
				t.Fatalf("hash of %q changed from %q to %q", n, u.hashes[n], v.hashes[n])
			}
		}
	})
}
