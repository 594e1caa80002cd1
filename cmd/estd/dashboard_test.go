package main

// The admin dashboard in a real browser: headless Chromium driven over the
// DevTools protocol by chromedp, against an estd started in process.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/admin"
	"github.com/estkit/estkit/internal/estd"
	"github.com/estkit/estkit/internal/testenv"
	"github.com/estkit/estkit/internal/testpki"
	"github.com/estkit/estkit/store"
)

const chromiumPath = "/usr/bin/chromium"

// writeAdminUsers writes the admin users file of dataDir with hashes of
// bcrypt's minimum cost, as writeUsers does for EST users.
func writeAdminUsers(t *testing.T, dataDir string, namePassword ...string) {
	t.Helper()
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i := 0; i+1 < len(namePassword); i += 2 {
		h, err := bcrypt.GenerateFromPassword([]byte(namePassword[i+1]), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s\n", namePassword[i], h)
	}
	if err := os.WriteFile(filepath.Join(dataDir, estd.AdminUsersFile), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDashboardNeedsAdminUsers: -admin-listen without an admin user stops
// estd with an error that says what to do; `estd user add -admin` writes
// the admin users file, not the EST one; a bad address is a usage error.
func TestDashboardNeedsAdminUsers(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	writeUsers(t, dir, "dev", "dev-password-1")
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for _, empty := range []bool{false, true} {
		if empty {
			if err := os.WriteFile(filepath.Join(dir, estd.AdminUsersFile), []byte("# nobody\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		var out, errb syncBuffer
		code := run(ctx, []string{"-data", dir, "-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0"}, env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb})
		if code != 1 || !strings.Contains(errb.String(), "no admin users") || !strings.Contains(errb.String(), "estd user add -admin") {
			t.Fatalf("estd with an admin listener and no admin users (file present: %v): exit %d\n%s", empty, code, errb.String())
		}
	}

	code, _, errOut := userCmdRun(t, "admin-password-1\n", "add", "-admin", "-data", dir, "alice")
	if code != 0 || !strings.Contains(errOut, `saved admin user "alice"`) {
		t.Fatalf("user add -admin: exit %d: %s", code, errOut)
	}
	if code, out, _ := userCmdRun(t, "", "list", "-admin", "-data", dir); code != 0 || out != "alice\n" {
		t.Fatalf("user list -admin: %d %q", code, out)
	}
	if code, out, _ := userCmdRun(t, "", "list", "-data", dir); code != 0 || out != "dev\n" {
		t.Fatalf("user list (EST users) after adding an admin: %d %q", code, out)
	}

	var out, errb syncBuffer
	if code := run(ctx, []string{"-data", dir, "-admin-listen", "nonsense", "-validate"}, env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb}); code != 2 || !strings.Contains(errb.String(), "-admin-listen:") {
		t.Fatalf("-admin-listen nonsense: exit %d\n%s", code, errb.String())
	}
}

// TestDashboardInChromium logs in to the dashboard with headless Chromium,
// sees an enrollment made after login appear, approves a held request (the
// requester's retry then gets its certificate), revokes a certificate with
// a reason (the store then says revoked), and takes a screenshot.
func TestDashboardInChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		testenv.Missing(t, "Chromium (Debian package chromium)")
	}
	t.Parallel()
	tmp := t.TempDir()
	cfgFile := filepath.Join(tmp, "estd.yaml")
	if err := os.WriteFile(cfgFile, []byte(heldConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tmp, "data")
	writeUsers(t, dir, "dev", "dev-password-1")
	writeAdminUsers(t, dir, "alice", "alice-password-1")
	d := startEstd(t, dir, "-config", cfgFile, "-admin-listen", "127.0.0.1:0")
	m := regexp.MustCompile(`serving admin dashboard on (https://\S+)/`).FindStringSubmatch(d.stdout.String())
	if m == nil {
		t.Fatalf("banner lacks the dashboard address:\n%s", d.stdout)
	}
	dash := m[1]

	st, err := estd.OpenStore(context.Background(), estd.StoreOptions{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })

	// EST requests made with Go, as a device would.
	roots := x509.NewCertPool()
	roots.AddCert(readPEMCert(t, d.rootFile()))
	estClient := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	enroll := func(label string, csr []byte) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("POST", "https://"+d.addr+est.Path(label, est.OpSimpleEnroll), bytes.NewReader(est.EncodeBase64(csr)))
		req.Header.Set("Content-Type", est.MediaPKCS10)
		req.SetBasicAuth("dev", "dev-password-1")
		resp, err := estClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	certOf := func(body []byte) *x509.Certificate {
		t.Helper()
		der, err := est.DecodeBase64(body)
		if err != nil {
			t.Fatal(err)
		}
		certs, err := est.ParseCertsOnly(der)
		if err != nil {
			t.Fatal(err)
		}
		return certs[0]
	}

	// Chromium trusts estd's TLS certificate by the issuing CA's key, and
	// nothing else: a certificate error elsewhere still fails.
	issuing := readPEMCert(t, d.issuingFile())
	spki := sha256.Sum256(issuing.RawSubjectPublicKeyInfo)
	var chromeOut syncBuffer
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])),
		chromedp.UserDataDir(filepath.Join(tmp, "chromium-profile")),
		chromedp.Env("HOME="+tmp),
		chromedp.WindowSize(1280, 1000),
		chromedp.CombinedOutput(&chromeOut),
	)
	defer cancelAlloc()
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	// The browser is bound to the context of the first Run: it gets no
	// timeout of its own; every later step does.
	start, cancelStart := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelStart()
	go func() {
		<-start.Done()
		if start.Err() == context.DeadlineExceeded {
			cancelBrowser()
		}
	}()
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("starting Chromium: %v\n%s", err, chromeOut.String())
	}
	cancelStart()

	// Console errors (a CSP violation, a script exception) fail the test.
	var consoleMu sync.Mutex
	var consoleErrors []string
	messages := chromedp.Console(browserCtx)
	go func() {
		for msg, err := range messages {
			if err != nil {
				return
			}
			if msg.Type == chromedp.ConsoleError || msg.IsException() {
				consoleMu.Lock()
				consoleErrors = append(consoleErrors, msg.String()+" ("+msg.URL+")")
				consoleMu.Unlock()
			}
		}
	}()
	// The revoke button asks for confirmation: say yes.
	dialogs := chromedp.Events(browserCtx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			chromedp.Call(browserCtx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()

	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(browserCtx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v\nestd stderr:\n%s", what, err, d.stderr)
		}
	}
	text := func(sel string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(browserCtx, 20*time.Second)
		defer cancel()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	location := func() string {
		t.Helper()
		ctx, cancel := context.WithTimeout(browserCtx, 20*time.Second)
		defer cancel()
		s, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	// shoot takes a screenshot of the whole page into a temporary file and
	// checks it is a PNG; with ESTD_DASHBOARD_SCREENSHOTS=DIR it is kept
	// there too, for a person to look at.
	shoot := func(name string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(browserCtx, 20*time.Second)
		defer cancel()
		shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(tmp, name+".png"), shot, 0o600); err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(shot))
		if err != nil || img.Bounds().Dx() < 100 || img.Bounds().Dy() < 100 {
			t.Fatalf("screenshot %s is no PNG of a page: %v", name, err)
		}
		if dir := os.Getenv("ESTD_DASHBOARD_SCREENSHOTS"); dir != "" {
			if err := os.WriteFile(filepath.Join(dir, name+".png"), shot, 0o644); err != nil {
				t.Error(err)
			}
		}
	}

	// Log in: the dashboard sends us to the login form first.
	step("open the dashboard", chromedp.Navigate(dash+"/"), chromedp.WaitVisible(chromedp.ID("password")))
	if loc := location(); !strings.HasPrefix(loc, dash+"/login") {
		t.Fatalf("without a session the dashboard is at %s, want the login page", loc)
	}
	step("log in",
		chromedp.SendKeys(chromedp.ID("user"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), "alice-password-1"),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.CSS("header .who")),
	)
	if who := text("header .who"); who != "alice" {
		t.Fatalf("logged in as %q", who)
	}

	// A fresh enrollment appears in the recent issuances.
	code, body := enroll("", testpki.CSR(t, testpki.Key(t, ca.P256), "browser-fresh-1", nil, nil))
	if code != 200 {
		t.Fatalf("enroll: %d %s", code, body)
	}
	fresh := certOf(body)
	step("reload the overview", chromedp.Navigate(dash+"/"), chromedp.WaitVisible(chromedp.ID("records")))
	if recent := text("#records"); !strings.Contains(recent, "CN=browser-fresh-1") || !strings.Contains(recent, fresh.SerialNumber.Text(16)) {
		t.Fatalf("recent issuances lack the fresh certificate:\n%s", recent)
	}
	if n := text("#stat-24h"); n == "0" || n == "" {
		t.Fatalf("issued in the last 24 hours: %q", n)
	}
	// The chart script runs (CSP allows it): focusing a bar shows its tooltip.
	step("focus a bar", chromedp.Focus(chromedp.CSS("#chart-hourly rect.bar:last-of-type")), chromedp.WaitVisible(chromedp.CSS("#chart-hourly .tip")))
	if tip := text("#chart-hourly .tip"); !strings.Contains(tip, "certificate") {
		t.Fatalf("chart tooltip %q", tip)
	}

	// Approve a held request; the requester's retry then gets its certificate.
	heldCSR := testpki.CSR(t, testpki.Key(t, ca.P256), "browser-held-1", nil, nil)
	if code, body := enroll("held", heldCSR); code != 202 {
		t.Fatalf("enroll on the held label: %d %s", code, body)
	}
	pending, _, err := st.(store.Approvals).Requests(context.Background(), store.RequestPending, store.ListOptions{})
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending requests: %d %v", len(pending), err)
	}
	id := pending[0].ID
	step("requests", chromedp.Navigate(dash+"/requests"), chromedp.WaitVisible(chromedp.ID("req-"+id)))
	if os.Getenv("ESTD_DASHBOARD_SCREENSHOTS") != "" {
		shoot("requests")
	}
	step("approve", chromedp.Click(chromedp.CSS("#req-"+id+" button.approve")), chromedp.WaitVisible(chromedp.CSS(".flash.ok")))
	if msg := text(".flash.ok"); !strings.Contains(msg, "Approved request "+id) {
		t.Fatalf("after approve: %q", msg)
	}
	code, body = enroll("held", heldCSR)
	if code != 200 {
		t.Fatalf("retry after approval: %d %s", code, body)
	}
	if req, _ := st.(store.Approvals).Request(context.Background(), id); req.DecidedBy != "alice" {
		t.Fatalf("approved by %q, want alice", req.DecidedBy)
	}
	held := certOf(body)

	// Revoke the fresh certificate with a reason.
	serial := fresh.SerialNumber.Text(16)
	step("revoke", chromedp.Navigate(dash+"/certs/"+serial), chromedp.WaitVisible(chromedp.ID("revoke")),
		chromedp.SetValue(chromedp.ID("reason"), "keyCompromise"),
		chromedp.Click(chromedp.ID("revoke")), chromedp.WaitVisible(chromedp.CSS(".flash.ok")))
	if msg := text(".flash.ok"); !strings.Contains(msg, "Revoked "+serial) {
		t.Fatalf("after revoke: %q", msg)
	}
	if os.Getenv("ESTD_DASHBOARD_SCREENSHOTS") != "" {
		shoot("certificate")
	}
	if s := text("#cert-status"); s != "revoked" {
		t.Fatalf("certificate status on the page: %q", s)
	}
	rec, err := st.BySerial(context.Background(), fresh.SerialNumber)
	if err != nil || !rec.Revoked || rec.RevocationReason != admin.Reasons["keyCompromise"] {
		t.Fatalf("store after revoke: %+v %v", rec, err)
	}
	if rec, _ := st.BySerial(context.Background(), held.SerialNumber); rec.Revoked {
		t.Fatal("the approved certificate was revoked too")
	}

	// A screenshot of the overview, as an operator sees it.
	step("overview again", chromedp.Navigate(dash+"/"), chromedp.WaitVisible(chromedp.ID("records")))
	shoot("overview")

	// The admin users file is read again when it changes: alice, removed,
	// is logged out; bob, added, can log in.
	writeAdminUsers(t, dir, "bob", "bob-password-1")
	step("alice removed", chromedp.Navigate(dash+"/"), chromedp.WaitVisible(chromedp.ID("password")))
	if msg := text(".flash.error"); !strings.Contains(msg, "session ended") {
		t.Fatalf("after alice's removal: %q", msg)
	}
	step("log in as bob",
		chromedp.SendKeys(chromedp.ID("user"), "bob"),
		chromedp.SendKeys(chromedp.ID("password"), "bob-password-1"),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.CSS("header .who")),
	)
	if who := text("header .who"); who != "bob" {
		t.Fatalf("logged in as %q, want bob", who)
	}

	// Log out: the dashboard is closed again.
	step("log out", chromedp.Click(chromedp.CSS("form.logout button")), chromedp.WaitVisible(chromedp.ID("password")))
	step("after logout", chromedp.Navigate(dash+"/certs"), chromedp.WaitVisible(chromedp.ID("password")))

	consoleMu.Lock()
	defer consoleMu.Unlock()
	if len(consoleErrors) > 0 {
		t.Fatalf("browser console errors:\n%s", strings.Join(consoleErrors, "\n"))
	}
}
