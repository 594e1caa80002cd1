// Package dashboard is estd's admin web interface: enrollment counts over
// time, recent issuances, search, certificate detail with PEM download,
// pending requests (manual approval, RFC 7030 4.2.3) with approve and
// reject, and revocation with an RFC 5280 reason. Every action goes through
// package admin, as `estd admin` does, and names the logged-in operator.
//
// Pages are rendered on the server with html/template; CSS and the one
// script are embedded. Everything works without JavaScript: the charts are
// SVG drawn on the server, and the script only adds tooltips and confirmation
// prompts.
//
// Security: admin users have their own bcrypt users file; a login makes a
// server-side session named by a random 256-bit ID in a __Host- cookie
// (HttpOnly, Secure, SameSite=Strict) that ends after an idle timeout, a
// maximum age or a logout. Every POST must come from this origin
// (Sec-Fetch-Site, Origin or Referer) and carry the session's CSRF token.
// Failed logins are rate-limited per remote address. Responses carry a
// Content-Security-Policy without inline script, X-Frame-Options DENY and,
// for pages with certificate data, Cache-Control no-store.
package dashboard

import (
	"crypto/x509"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/internal/admin"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// CA is one of estd's CA certificates and its role: "root", "issuing", or
// "retired" (an issuing CA a rollover replaced, kept for its certificates).
type CA struct {
	Role string
	Cert *x509.Certificate
}

// Options configure a Handler.
type Options struct {
	// Admin performs the operator actions. Required.
	Admin *admin.Service
	// Users returns the current admin users; it is called on every login
	// and every request of a session, so a user removed from the file is
	// logged out. Required; it may return nil (then nobody can log in).
	Users func() *auth.Users
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// Logger receives logins, logouts and refusals; nil discards them.
	Logger *slog.Logger
	// CAs are estd's CA certificates, shown on the overview with their
	// expiry: what an operator must renew in time.
	CAs []CA
	// IdleTimeout ends a session not used for this long; 0 means 30 minutes.
	IdleTimeout time.Duration
	// MaxAge ends a session this long after login; 0 means 12 hours.
	MaxAge time.Duration
	// LoginRate and LoginBurst limit failed logins per remote address: a
	// burst of LoginBurst, then LoginRate per second. Zero means 5, then
	// one every 12 seconds.
	LoginRate  rate.Limit
	LoginBurst int
}

// Handler is the dashboard's http.Handler. It expects to be served over TLS.
type Handler struct {
	svc      *admin.Service
	users    func() *auth.Users
	clock    func() time.Time
	log      *slog.Logger
	sessions *sessions
	logins   *loginLimiter
	pages    map[string]*template.Template
	mux      *http.ServeMux
	cas      []CA
}

// New returns a Handler.
func New(o Options) (*Handler, error) {
	if o.Admin == nil || o.Users == nil {
		return nil, errors.New("dashboard: Admin and Users are required")
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 30 * time.Minute
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 12 * time.Hour
	}
	if o.LoginBurst <= 0 {
		o.LoginBurst = 5
	}
	if o.LoginRate <= 0 {
		o.LoginRate = rate.Every(12 * time.Second)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	h := &Handler{
		svc:      o.Admin,
		users:    o.Users,
		clock:    o.Clock,
		log:      o.Logger,
		sessions: newSessions(o.IdleTimeout, o.MaxAge),
		logins:   newLoginLimiter(o.LoginRate, o.LoginBurst),
		pages:    pages,
		cas:      o.CAs,
	}
	h.routes()
	return h, nil
}

func (h *Handler) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	m.Handle("GET /static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") { // no directory listings
			w.Header().Set("Cache-Control", "no-store")
			h.errorPage(w, r, nil, http.StatusNotFound, "There is no page at this address.")
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	}))
	m.HandleFunc("GET /login", h.loginPage)
	m.HandleFunc("POST /login", h.login)
	m.HandleFunc("POST /logout", h.post(h.logout))
	m.HandleFunc("GET /{$}", h.get(h.overview))
	m.HandleFunc("GET /certs", h.get(h.search))
	m.HandleFunc("GET /certs/{serial}", h.get(h.certificate))
	m.HandleFunc("GET /certs/{serial}/pem", h.get(h.certificatePEM))
	m.HandleFunc("POST /certs/{serial}/revoke", h.post(h.revoke))
	m.HandleFunc("GET /requests", h.get(h.requests))
	m.HandleFunc("GET /requests/{id}", h.get(h.request))
	m.HandleFunc("POST /requests/{id}/approve", h.post(h.approve))
	m.HandleFunc("POST /requests/{id}/reject", h.post(h.reject))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.errorPage(w, r, nil, http.StatusNotFound, "There is no page at this address.")
	})
	h.mux = m
}

// csp allows nothing but this origin's own files: no inline script or style,
// no framing, forms only to here.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	if !strings.HasPrefix(r.URL.Path, "/static/") {
		// Pages show certificate data or belong to a session: never cached.
		hd.Set("Cache-Control", "no-store")
	}
	h.mux.ServeHTTP(w, r)
}

// userExists reports whether name is a current admin user.
func (h *Handler) userExists(name string) bool {
	u := h.users()
	if u == nil {
		return false
	}
	for _, n := range u.Names() {
		if n == name {
			return true
		}
	}
	return false
}
