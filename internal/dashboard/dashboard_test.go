package dashboard

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"html"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/admin"
	"github.com/estkit/estkit/internal/syncbuf"
	"github.com/estkit/estkit/internal/testpki"
	"github.com/estkit/estkit/server"
	"github.com/estkit/estkit/store"
	"github.com/estkit/estkit/store/sqlite"
)

func TestMain(m *testing.M) {
	auth.BcryptCost = bcrypt.MinCost // hashing strength is tested in package auth
	os.Exit(m.Run())
}

const (
	host     = "dash.test"
	origin   = "https://" + host
	alice    = "alice"
	alicePW  = "alice-password-1"
	deviceCN = "sensor-42"
)

// fixture is a dashboard over a real SQLite store with one issued
// certificate and one pending request, on a clock the test moves.
type fixture struct {
	t       *testing.T
	h       *Handler
	st      store.Store
	now     time.Time
	users   *auth.Users
	cert    *x509.Certificate
	request *store.Request
	logs    syncbuf.Buffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "estd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{t: t, st: st, now: time.Date(2026, 5, 4, 10, 30, 0, 0, time.UTC)}
	clock := func() time.Time { return f.now }
	f.users = auth.NewUsers()
	if err := f.users.Set(alice, alicePW); err != nil {
		t.Fatal(err)
	}
	issuing := testpki.NewRoot(t, "Test Issuing CA", f.now)
	ending := testpki.NewRoot(t, "Ending Issuing CA", f.now.Add(-10*365*24*time.Hour+60*24*time.Hour)) // 60 days left
	retired := testpki.NewRoot(t, "Retired Issuing CA", f.now.Add(-10*365*24*time.Hour+30*24*time.Hour))
	f.h, err = New(Options{Admin: admin.New(st, clock, nil), Users: func() *auth.Users { return f.users }, Clock: clock,
		Logger: slog.New(slog.NewTextHandler(&f.logs, nil)),
		CAs:    []CA{{Role: "issuing", Cert: ending.Cert}, {Role: "retired", Cert: retired.Cert}, {Role: "root", Cert: issuing.Cert}}})
	if err != nil {
		t.Fatal(err)
	}
	f.cert, _ = issuing.Issue(t, testpki.Leaf{CN: deviceCN, NotBefore: f.now.Add(-time.Minute), NotAfter: f.now.Add(90 * 24 * time.Hour),
		DNS: []string{"sensor-42.example.net"}, IPs: []net.IP{net.IPv4(192, 0, 2, 7)}})
	if err := st.Put(ctx, server.Record(f.cert, "tls-client", auth.Identity{Method: auth.Basic, Name: "factory-line-3"}, f.now.Add(-2*time.Hour))); err != nil {
		t.Fatal(err)
	}
	csr := testpki.CSR(t, testpki.Key(t, ca.P256), "held-device", []string{"held.example.net"}, nil)
	f.request, err = st.AddRequest(ctx, &store.Request{
		ID: "0123456789abcdef0123456789abcdef", Label: "held", Operation: "simpleenroll", Requester: "dev", AuthMethod: "basic",
		Subject: "CN=held-device", SANs: []string{"dns:held.example.net"}, KeyAlgorithm: "ECDSA-P256", CSR: csr,
		CreatedAt: f.now.Add(-time.Hour), Status: store.RequestPending,
	}, store.PendingLimits{})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) serial() string { return f.cert.SerialNumber.Text(16) }

// browser sends requests to the handler as one browser would: it keeps
// cookies and sends this origin with POSTs.
type browser struct {
	f       *fixture
	remote  string
	cookies map[string]*http.Cookie
	header  http.Header // extra headers for the next requests
}

func (f *fixture) browser(remote string) *browser {
	return &browser{f: f, remote: remote, cookies: map[string]*http.Cookie{}, header: http.Header{}}
}

func (b *browser) do(method, path string, form url.Values) *http.Response {
	b.f.t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	r := httptest.NewRequest(method, origin+path, body)
	r.RemoteAddr = b.remote + ":40000"
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Origin", origin)
		r.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	for k, v := range b.header {
		r.Header[k] = v
	}
	for k, v := range r.Header {
		if len(v) == 1 && v[0] == "" {
			delete(r.Header, k)
		}
	}
	for _, c := range b.cookies {
		r.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	b.f.h.ServeHTTP(rec, r)
	resp := rec.Result()
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	return resp
}

func bodyOf(t *testing.T, resp *http.Response) string {
	t.Helper()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return html.UnescapeString(b.String())
}

// get fetches path and returns status and body.
func (b *browser) get(path string) (int, string) {
	b.f.t.Helper()
	resp := b.do("GET", path, nil)
	return resp.StatusCode, bodyOf(b.f.t, resp)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// token returns the CSRF token of the form on path.
func (b *browser) token(path string) string {
	b.f.t.Helper()
	code, body := b.get(path)
	m := csrfRE.FindStringSubmatch(body)
	if code != 200 || m == nil {
		b.f.t.Fatalf("GET %s: %d, no CSRF token:\n%s", path, code, body)
	}
	return m[1]
}

// login logs in through the form and returns the response to the POST.
func (b *browser) login(user, password string) *http.Response {
	b.f.t.Helper()
	tok := b.token("/login")
	return b.do("POST", "/login", url.Values{"csrf": {tok}, "user": {user}, "password": {password}})
}

func (b *browser) mustLogin() {
	b.f.t.Helper()
	if resp := b.login(alice, alicePW); resp.StatusCode != http.StatusSeeOther {
		b.f.t.Fatalf("login: %d\n%s", resp.StatusCode, bodyOf(b.f.t, resp))
	}
}

// post sends a form with the session's CSRF token (taken from the overview)
// and follows the redirect; it returns the POST's status and the next page.
func (b *browser) post(path string, form url.Values) (int, string) {
	b.f.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.token("/"))
	}
	resp := b.do("POST", path, form)
	if resp.StatusCode != http.StatusSeeOther {
		return resp.StatusCode, bodyOf(b.f.t, resp)
	}
	_, body := b.get(resp.Header.Get("Location"))
	return resp.StatusCode, body
}

func TestNewNeedsAdminAndUsers(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without Admin and Users succeeded")
	}
}

func TestLogin(t *testing.T) {
	f := newFixture(t)
	b := f.browser("192.0.2.10")

	// Pages need a session: the login page comes first, remembering where to go.
	resp := b.do("GET", "/certs?q=sensor", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next=%2Fcerts%3Fq%3Dsensor" {
		t.Fatalf("unauthenticated GET: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// Wrong password, unknown user, the password typed as the user name:
	// 401 and no session.
	for _, up := range [][2]string{{alice, "wrong-password"}, {"mallory", alicePW}, {alicePW, ""}} {
		resp := b.login(up[0], up[1])
		if body := bodyOf(t, resp); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Wrong user name or password") {
			t.Fatalf("login %s: %d\n%s", up[0], resp.StatusCode, body)
		}
		if _, ok := b.cookies[sessionCookie]; ok {
			t.Fatalf("failed login %s set a session cookie", up[0])
		}
	}

	// Only a known user's name is logged: a name typed may be a password.
	if logs := f.logs.String(); !strings.Contains(logs, "user="+alice) || strings.Contains(logs, "mallory") || strings.Contains(logs, alicePW) {
		t.Errorf("failed logins logged:\n%s", logs)
	}

	// Right password: a session cookie as the brief says, and a redirect to next.
	tok := b.token("/login?next=/certs%3Fq%3Dsensor")
	resp = b.do("POST", "/login", url.Values{"csrf": {tok}, "user": {alice}, "password": {alicePW}, "next": {"/certs?q=sensor"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/certs?q=sensor" {
		t.Fatalf("login: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	c := b.cookies[sessionCookie]
	if c == nil || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Domain != "" {
		t.Fatalf("session cookie %+v", c)
	}
	if len(c.Value) != 43 { // 32 bytes, base64url without padding
		t.Fatalf("session ID %q is not 256 bits", c.Value)
	}
	if _, ok := b.cookies[loginCookie]; ok {
		t.Error("the login token cookie outlived the login")
	}
	code, body := b.get("/")
	if code != 200 || !strings.Contains(body, alice) || !strings.Contains(body, "Log out") {
		t.Fatalf("overview after login: %d\n%s", code, body)
	}
	// Logged in, the login page goes on to the dashboard.
	if resp := b.do("GET", "/login", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login page while logged in: %d", resp.StatusCode)
	}

	// No open redirect after login.
	for _, next := range []string{"//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"} {
		b2 := f.browser("192.0.2.11")
		tok := b2.token("/login")
		resp := b2.do("POST", "/login", url.Values{"csrf": {tok}, "user": {alice}, "password": {alicePW}, "next": {next}})
		if loc := resp.Header.Get("Location"); loc != "/" {
			t.Errorf("next=%q redirected to %q", next, loc)
		}
	}

	// A login form posted without its token (login CSRF) is refused.
	b3 := f.browser("192.0.2.12")
	resp = b3.do("POST", "/login", url.Values{"user": {alice}, "password": {alicePW}})
	if resp.StatusCode != http.StatusForbidden || b3.cookies[sessionCookie] != nil {
		t.Fatalf("login without token: %d", resp.StatusCode)
	}

	// Logout ends the session on the server, not just in the browser.
	stolen := *b.cookies[sessionCookie]
	code, body = b.post("/logout", nil)
	if code != http.StatusSeeOther || !strings.Contains(body, "You are logged out") {
		t.Fatalf("logout: %d\n%s", code, body)
	}
	if _, ok := b.cookies[sessionCookie]; ok {
		t.Error("logout kept the session cookie")
	}
	b.cookies[sessionCookie] = &stolen
	if resp := b.do("GET", "/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("old session after logout: %d", resp.StatusCode)
	}
}

func TestLoginRateLimit(t *testing.T) {
	f := newFixture(t)
	b := f.browser("192.0.2.20")
	for i := range 5 {
		if resp := b.login(alice, "wrong"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, resp.StatusCode)
		}
	}
	// The budget is spent: even the right password waits.
	resp := b.login(alice, alicePW)
	if body := bodyOf(t, resp); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "12" || !strings.Contains(body, "Too many failed logins") {
		t.Fatalf("sixth attempt: %d Retry-After %q\n%s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// Another address is not affected.
	other := f.browser("198.51.100.7")
	if resp := other.login(alice, alicePW); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("another address: %d", resp.StatusCode)
	}
	// Successes cost nothing.
	for range 10 {
		if resp := f.browser("198.51.100.7").login(alice, alicePW); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("repeated successful logins: %d", resp.StatusCode)
		}
	}
	// One attempt comes back every 12 seconds.
	f.now = f.now.Add(12 * time.Second)
	if resp := b.login(alice, alicePW); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after waiting: %d", resp.StatusCode)
	}
}

func TestCSRF(t *testing.T) {
	f := newFixture(t)
	b := f.browser("192.0.2.30")
	b.mustLogin()
	approve := "/requests/" + f.request.ID + "/approve"
	tok := b.token("/")

	refused := func(name string, form url.Values, hdr http.Header) {
		t.Helper()
		b.header = hdr
		resp := b.do("POST", approve, form)
		b.header = http.Header{}
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, resp.StatusCode)
		}
		req, _ := f.st.(store.Approvals).Request(context.Background(), f.request.ID)
		if req.Status != store.RequestPending {
			t.Fatalf("%s: the request was decided", name)
		}
	}
	refused("no token", url.Values{}, nil)
	refused("wrong token", url.Values{"csrf": {strings.Repeat("A", 43)}}, nil)
	refused("foreign Origin", url.Values{"csrf": {tok}}, http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {""}})
	refused("http Origin", url.Values{"csrf": {tok}}, http.Header{"Origin": {"http://" + host}, "Sec-Fetch-Site": {""}})
	refused("cross-site fetch", url.Values{"csrf": {tok}}, http.Header{"Sec-Fetch-Site": {"cross-site"}})
	refused("neither Origin nor Referer", url.Values{"csrf": {tok}}, http.Header{"Origin": {""}, "Sec-Fetch-Site": {""}})
	refused("foreign Referer", url.Values{"csrf": {tok}}, http.Header{"Origin": {""}, "Sec-Fetch-Site": {""}, "Referer": {"https://evil.example/x"}})
	// Another session's token does not do.
	other := f.browser("192.0.2.31")
	other.mustLogin()
	refused("another session's token", url.Values{"csrf": {other.token("/")}}, nil)

	// A login from another origin is refused too.
	b2 := f.browser("192.0.2.32")
	ltok := b2.token("/login")
	b2.header = http.Header{"Origin": {"https://evil.example"}}
	if resp := b2.do("POST", "/login", url.Values{"csrf": {ltok}, "user": {alice}, "password": {alicePW}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin login: %d", resp.StatusCode)
	}

	// Same-site Referer without Origin, with the token: accepted.
	b.header = http.Header{"Origin": {""}, "Sec-Fetch-Site": {""}, "Referer": {origin + "/requests"}}
	resp := b.do("POST", approve, url.Values{"csrf": {tok}})
	b.header = http.Header{}
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("same-origin POST by Referer: %d", resp.StatusCode)
	}
}

func TestSessionExpiry(t *testing.T) {
	f := newFixture(t)
	b := f.browser("192.0.2.40")
	b.mustLogin()
	f.now = f.now.Add(29 * time.Minute)
	if code, _ := b.get("/"); code != 200 {
		t.Fatalf("after 29 idle minutes: %d", code)
	}
	f.now = f.now.Add(31 * time.Minute)
	resp := b.do("GET", "/certs", nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "m=expired") {
		t.Fatalf("after 31 idle minutes: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, body := b.get(resp.Header.Get("Location")); !strings.Contains(body, "Your session ended") {
		t.Fatalf("login page after expiry:\n%s", body)
	}

	// Used every 20 minutes, a session still ends 12 hours after login.
	b.mustLogin()
	for range 35 {
		f.now = f.now.Add(20 * time.Minute)
		if code, _ := b.get("/requests"); code != 200 {
			t.Fatalf("active session ended early: %d", code)
		}
	}
	f.now = f.now.Add(25 * time.Minute) // 12h05m after login, 25 minutes idle
	if resp := b.do("GET", "/requests", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("session older than 12 hours: %d", resp.StatusCode)
	}

	// A user removed from the admin users file is logged out.
	b.mustLogin()
	f.users.Remove(alice)
	if resp := b.do("GET", "/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("session of a removed user: %d", resp.StatusCode)
	}
}

func TestPages(t *testing.T) {
	f := newFixture(t)
	b := f.browser("192.0.2.50")
	b.mustLogin()
	for _, p := range []struct {
		path string
		code int
		want []string
	}{
		{"/", 200, []string{"Overview", "<svg", `class="bar"`, "<table", "Recent issuances", "CN=" + deviceCN, "1</span> pending request", "factory-line-3",
			"Certificate authorities", "Test Issuing CA", "<td>issuing</td><td>CN=Ending Issuing CA", "<td>retired</td><td>CN=Retired Issuing CA", `<span class="badge bad">`, "estd ca rollover"}},
		{"/certs", 200, []string{"CN=" + deviceCN, f.serial()}},
		{"/certs?q=SENSOR-4", 200, []string{"1 certificate matches", f.serial()}},
		{"/certs?q=factory-line", 200, []string{f.serial()}},
		{"/certs?q=" + f.serial(), 200, []string{f.serial()}},
		{"/certs?q=nothing-like-this", 200, []string{"No certificates."}},
		{"/certs/" + f.serial(), 200, []string{"CN=Test Issuing CA", "sensor-42.example.net", "192.0.2.7", "digitalSignature", "clientAuth",
			"ECDSA P-256", "tls-client", "factory-line-3", "basic", "Download PEM", "keyCompromise", `name="reason"`, "valid"}},
		{"/requests", 200, []string{"CN=held-device", "Approve", "Reject", "dns:held.example.net"}},
		{"/requests?status=all", 200, []string{"CN=held-device"}},
		{"/requests?status=rejected", 200, []string{"No rejected requests."}},
		{"/requests/" + f.request.ID, 200, []string{"held.example.net", "ECDSA P-256", "(valid)", "pending"}},
		// Bad input: 4xx with a reason, never 500.
		{"/certs/not-hex", 400, []string{"is not a serial number"}},
		{"/certs/ffffffffffffff", 404, []string{"No certificate has the serial number"}},
		{"/certs/-1/pem", 400, []string{"is not a serial number"}},
		{"/requests/nope", 404, []string{"There is no request nope"}},
		{"/requests?status=bogus", 400, []string{"is not a request status"}},
		{"/nowhere", 404, []string{"There is no page"}},
		{"/static/", 404, []string{"There is no page"}},
	} {
		resp := b.do("GET", p.path, nil)
		body := bodyOf(t, resp)
		if resp.StatusCode != p.code {
			t.Errorf("GET %s: %d, want %d\n%s", p.path, resp.StatusCode, p.code, body)
			continue
		}
		for _, w := range p.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s: no %q in\n%s", p.path, w, body)
			}
		}
		h := resp.Header
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("GET %s: CSP %q", p.path, csp)
		}
		if h.Get("X-Frame-Options") != "DENY" || h.Get("Cache-Control") != "no-store" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: headers %v", p.path, h)
		}
		if strings.Contains(strings.ToLower(body), "<script>") || strings.Contains(body, " style=") || strings.Contains(body, "onclick") {
			t.Errorf("GET %s: inline script or style", p.path)
		}
	}
	// Assets are embedded and served with their types; nothing from elsewhere.
	for path, ctype := range map[string]string{"/static/dashboard.css": "text/css", "/static/dashboard.js": "text/javascript"} {
		resp := b.do("GET", path, nil)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) {
			t.Errorf("GET %s: %d %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	// Only the issuing CA whose end is near is flagged: not the root with
	// ten years left, nor a retired CA, whose end needs nothing done.
	if _, body := b.get("/"); !regexp.MustCompile(`Ending Issuing CA[^\n]*badge bad`).MatchString(body) ||
		regexp.MustCompile(`(Test|Retired) Issuing CA[^\n]*badge bad`).MatchString(body) {
		t.Errorf("the overview flags the wrong CA:\n%s", body)
	}
	// A certificate a renewal superseded links to its successor.
	old := &store.Record{Serial: big.NewInt(0x01d), Subject: "CN=" + deviceCN, NotBefore: f.now.Add(-100 * 24 * time.Hour),
		NotAfter: f.now.Add(time.Hour), KeyAlgorithm: "ECDSA-P256", Profile: "tls-client", Requester: "factory-line-3",
		AuthMethod: "basic", IssuedAt: f.now.Add(-100 * 24 * time.Hour), DER: []byte{0x30, 0}}
	if err := f.st.Put(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	if ok, err := f.st.(store.Supersedes).Supersede(context.Background(), old.Serial, f.cert.SerialNumber, f.now); !ok || err != nil {
		t.Fatalf("Supersede = %v, %v", ok, err)
	}
	if _, body := b.get("/certs/" + old.Serial.Text(16)); !strings.Contains(body, `id="successor" href="/certs/`+f.serial()+`"`) || !strings.Contains(body, "superseded") {
		t.Errorf("a superseded certificate's page does not link its successor:\n%s", body)
	}
	_, body := b.get("/")
	if m := regexp.MustCompile(`(src|href|action)="(https?:)?//`).FindString(body); m != "" {
		t.Errorf("the overview loads or links elsewhere (%s):\n%s", m, body)
	}
}

func TestPEMDownload(t *testing.T) {
	f := newFixture(t)
	b := f.browser("192.0.2.60")
	b.mustLogin()
	resp := b.do("GET", "/certs/"+f.serial()+"/pem", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("PEM: %d", resp.StatusCode)
	}
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="`+f.serial()+`.pem"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	var raw bytes.Buffer
	raw.ReadFrom(resp.Body)
	blk, rest := pem.Decode(raw.Bytes())
	if blk == nil || blk.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 || !bytes.Equal(blk.Bytes, f.cert.Raw) {
		t.Fatalf("PEM body:\n%s", raw.String())
	}
	// Without a session: the login page, not the certificate.
	if resp := f.browser("192.0.2.61").do("GET", "/certs/"+f.serial()+"/pem", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("PEM without session: %d", resp.StatusCode)
	}
}

func TestActions(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	approvals := f.st.(store.Approvals)
	b := f.browser("192.0.2.70")
	b.mustLogin()

	// Rejecting needs a reason.
	reject := "/requests/" + f.request.ID + "/reject"
	if _, body := b.post(reject, url.Values{"reason": {"  "}}); !strings.Contains(body, "Give a reason") {
		t.Fatalf("reject without reason:\n%s", body)
	}
	if req, _ := approvals.Request(ctx, f.request.ID); req.Status != store.RequestPending {
		t.Fatalf("rejected without a reason: %s", req.Status)
	}
	// Approve: the store says approved, by alice.
	code, body := b.post("/requests/"+f.request.ID+"/approve", url.Values{"back": {"/requests?status=all"}})
	if code != http.StatusSeeOther || !strings.Contains(body, "Approved request "+f.request.ID) || !strings.Contains(body, "CN=held-device") {
		t.Fatalf("approve: %d\n%s", code, body)
	}
	req, err := approvals.Request(ctx, f.request.ID)
	if err != nil || req.Status != store.RequestApproved || req.DecidedBy != alice {
		t.Fatalf("after approve: %+v %v", req, err)
	}
	// Deciding twice: a clear message, no change.
	if _, body := b.post(reject, url.Values{"reason": {"too late"}}); !strings.Contains(body, "no longer pending (approved by alice)") {
		t.Fatalf("reject after approve:\n%s", body)
	}
	if _, body := b.post("/requests/ffff/approve", nil); !strings.Contains(body, "There is no request ffff") {
		t.Fatalf("approve unknown:\n%s", body)
	}

	// Reject another: the reason is stored with the admin's name.
	other, err := approvals.AddRequest(ctx, &store.Request{ID: "fedcba9876543210fedcba9876543210", Label: "held", Operation: "simpleenroll",
		Requester: "dev", AuthMethod: "basic", Subject: "CN=unwanted", CSR: []byte{0x30, 0}, CreatedAt: f.now, Status: store.RequestPending}, store.PendingLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, body := b.post("/requests/"+other.ID+"/reject", url.Values{"reason": {"not one of ours"}}); !strings.Contains(body, "Rejected request") {
		t.Fatalf("reject:\n%s", body)
	}
	if req, _ := approvals.Request(ctx, other.ID); req.Status != store.RequestRejected || req.Reason != "not one of ours" || req.DecidedBy != alice {
		t.Fatalf("after reject: %+v", req)
	}
	// Its page shows the undecodable CSR as such, not as an error page.
	if code, body := b.get("/requests/" + other.ID); code != 200 || !strings.Contains(body, "does not parse") {
		t.Fatalf("request with a bad CSR: %d\n%s", code, body)
	}

	// Revoke: an unknown reason changes nothing; a listed one revokes.
	revoke := "/certs/" + f.serial() + "/revoke"
	if _, body := b.post(revoke, url.Values{"reason": {"because"}}); !strings.Contains(body, "Choose a revocation reason") {
		t.Fatalf("revoke with unknown reason:\n%s", body)
	}
	if rec, _ := f.st.BySerial(ctx, f.cert.SerialNumber); rec.Revoked {
		t.Fatal("revoked with an unknown reason")
	}
	code, body = b.post(revoke, url.Values{"reason": {"keyCompromise"}})
	if code != http.StatusSeeOther || !strings.Contains(body, "Revoked "+f.serial()) || !strings.Contains(body, "keyCompromise") {
		t.Fatalf("revoke: %d\n%s", code, body)
	}
	rec, err := f.st.BySerial(ctx, f.cert.SerialNumber)
	if err != nil || !rec.Revoked || rec.RevocationReason != admin.Reasons["keyCompromise"] || !rec.RevokedAt.Equal(f.now) {
		t.Fatalf("after revoke: %+v %v", rec, err)
	}
	if strings.Contains(body, `id="revoke"`) {
		t.Error("a revoked certificate still offers to revoke")
	}
	if _, body := b.post(revoke, url.Values{"reason": {"superseded"}}); !strings.Contains(body, "revoked already") {
		t.Fatalf("revoke twice:\n%s", body)
	}
	if _, body := b.post("/certs/zz/revoke", url.Values{"reason": {"superseded"}}); !strings.Contains(body, "is not a serial number") {
		t.Fatalf("revoke bad serial:\n%s", body)
	}
	if _, body := b.post("/certs/abcdef0123/revoke", url.Values{"reason": {"superseded"}}); !strings.Contains(body, "No certificate has") {
		t.Fatalf("revoke unknown serial:\n%s", body)
	}
	// A flash is shown once.
	if _, body := b.get("/"); strings.Contains(body, "No certificate has") {
		t.Error("a flash message was shown twice")
	}
}

func TestChart(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var buckets []admin.Bucket
	for i, n := range []int{0, 3, 7, 1} {
		buckets = append(buckets, admin.Bucket{Start: start.Add(time.Duration(i) * time.Hour), Count: n})
	}
	c := newChart("t", "test", buckets, "15:04", "15:04")
	if c.Total != 11 || c.Max != 7 || len(c.Bars) != 4 {
		t.Fatalf("chart %+v", c)
	}
	// Scale to 10: the 7 bar is 70% of the plot, the 0 bar empty, the 1 bar visible.
	if c.Bars[0].H != 0 || c.Bars[2].H != 7*c.Plot.H/10 || c.Bars[3].H < 2 {
		t.Fatalf("bar heights %+v", c.Bars)
	}
	for _, b := range c.Bars {
		if b.Y+b.H != c.Plot.Y+c.Plot.H {
			t.Fatalf("bar %+v does not stand on the axis", b)
		}
	}
	for n, want := range map[int]int{0: 1, 1: 1, 2: 2, 3: 5, 7: 10, 11: 20, 50: 50, 51: 100} {
		if got := niceCeil(n); got != want {
			t.Errorf("niceCeil(%d) = %d, want %d", n, got, want)
		}
	}
}
