package dashboard

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

const (
	// sessionCookie names the session. The __Host- prefix makes browsers
	// keep it only when Secure, for this host, with Path=/.
	sessionCookie = "__Host-estd-admin"
	// loginCookie holds the token that the login form must echo (login CSRF).
	loginCookie = "__Host-estd-login"
	// maxSessions bounds the sessions kept; the least recently used goes first.
	maxSessions = 1000
	// maxForm bounds a form body.
	maxForm = 64 << 10
)

// session is one logged-in admin.
type session struct {
	id, user, csrf string
	created, seen  time.Time
	flash          []flash
}

// flash is a one-time message shown on the next page.
type flash struct {
	Kind string // "ok" or "error"
	Text string
}

type sessions struct {
	mu           sync.Mutex
	byID         map[string]*session
	idle, maxAge time.Duration
}

func newSessions(idle, maxAge time.Duration) *sessions {
	return &sessions{byID: map[string]*session{}, idle: idle, maxAge: maxAge}
}

// newToken returns 256 random bits, base64url.
func newToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// create starts a session for user.
func (s *sessions) create(user string, now time.Time) *session {
	sess := &session{id: newToken(), user: user, csrf: newToken(), created: now, seen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, o := range s.byID {
		if s.expired(o, now) {
			delete(s.byID, id)
		}
	}
	for len(s.byID) >= maxSessions {
		var oldest *session
		for _, o := range s.byID {
			if oldest == nil || o.seen.Before(oldest.seen) {
				oldest = o
			}
		}
		delete(s.byID, oldest.id)
	}
	s.byID[sess.id] = sess
	return sess
}

func (s *sessions) expired(sess *session, now time.Time) bool {
	return now.Sub(sess.seen) > s.idle || now.Sub(sess.created) > s.maxAge
}

// use returns the live session with that ID and marks it used, or nil and
// whether a session of that ID just expired.
func (s *sessions) use(id string, now time.Time) (sess *session, expired bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess = s.byID[id]
	if sess == nil {
		return nil, false
	}
	if s.expired(sess, now) {
		delete(s.byID, id)
		return nil, true
	}
	sess.seen = now
	return sess, false
}

func (s *sessions) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
}

func (s *sessions) addFlash(sess *session, kind, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess.flash = append(sess.flash, flash{Kind: kind, Text: text})
}

func (s *sessions) takeFlash(sess *session) []flash {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := sess.flash
	sess.flash = nil
	return f
}

// tokenEqual compares tokens in constant time.
func tokenEqual(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// session returns the request's live session, or nil and whether it expired.
func (h *Handler) session(r *http.Request) (*session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, false
	}
	sess, expired := h.sessions.use(c.Value, h.clock())
	if sess != nil && !h.userExists(sess.user) {
		h.sessions.remove(sess.id)
		return nil, true
	}
	return sess, expired
}

// toLogin sends the browser to the login page, back to where it was after.
func (h *Handler) toLogin(w http.ResponseWriter, r *http.Request, expired bool) {
	q := url.Values{}
	if r.Method == http.MethodGet && r.URL.Path != "/" {
		q.Set("next", r.URL.RequestURI())
	}
	if expired {
		q.Set("m", "expired")
		clearCookie(w, sessionCookie)
	}
	target := "/login"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// get wraps a page that needs a session.
func (h *Handler) get(fn func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, expired := h.session(r)
		if sess == nil {
			h.toLogin(w, r, expired)
			return
		}
		fn(w, r, sess)
	}
}

// post wraps an action: same origin, a session, and its CSRF token.
func (h *Handler) post(fn func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if why := crossOrigin(r); why != "" {
			h.refuse(w, r, why)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if err := r.ParseForm(); err != nil {
			h.errorPage(w, r, nil, http.StatusBadRequest, "The form could not be read.")
			return
		}
		sess, expired := h.session(r)
		if sess == nil {
			h.toLogin(w, r, expired)
			return
		}
		if !tokenEqual(r.PostForm.Get("csrf"), sess.csrf) {
			h.refuse(w, r, "the form's CSRF token is missing or wrong; reload the page and try again")
			return
		}
		fn(w, r, sess)
	}
}

// refuse answers 403 to a request that may be forged.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, why string) {
	h.log.Warn("dashboard: refused a request", slog.String("path", r.URL.Path), slog.String("remote", remoteIP(r)), slog.String("why", why))
	h.errorPage(w, r, nil, http.StatusForbidden, "Request refused: "+why+".")
}

// crossOrigin returns why r may not come from a page of this origin, or "".
// Browsers send Sec-Fetch-Site and Origin with every form POST; without
// both, a Referer of this host is required.
func crossOrigin(r *http.Request) string {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" {
		return "it comes from another site (Sec-Fetch-Site: " + s + ")"
	}
	self := "https://" + r.Host
	if o := r.Header.Get("Origin"); o != "" {
		if o != self {
			return "it comes from another origin (" + o + ")"
		}
		return ""
	}
	ref := r.Header.Get("Referer")
	if ref == "" {
		return "it names no Origin or Referer"
	}
	u, err := url.Parse(ref)
	if err != nil || u.Scheme != "https" || u.Host != r.Host {
		return "its Referer is not this site"
	}
	return ""
}

// loginPage shows the login form with a fresh login token.
func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	if sess, _ := h.session(r); sess != nil {
		http.Redirect(w, r, localPath(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	var msg []flash
	switch r.URL.Query().Get("m") {
	case "expired":
		msg = append(msg, flash{"error", "Your session ended. Log in again."})
	case "out":
		msg = append(msg, flash{"ok", "You are logged out."})
	}
	h.renderLogin(w, r, http.StatusOK, r.URL.Query().Get("next"), "", msg)
}

func (h *Handler) renderLogin(w http.ResponseWriter, r *http.Request, status int, next, user string, msg []flash) {
	tok := newToken()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: tok, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	h.render(w, r, status, "login", &page{
		Title: "Log in",
		CSRF:  tok,
		Flash: msg,
		Data:  struct{ Next, User string }{localPath(next), user},
	})
}

// login checks the form and starts a session.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if why := crossOrigin(r); why != "" {
		h.refuse(w, r, why)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		h.errorPage(w, r, nil, http.StatusBadRequest, "The form could not be read.")
		return
	}
	next, user, pw := r.PostForm.Get("next"), r.PostForm.Get("user"), r.PostForm.Get("password")
	c, err := r.Cookie(loginCookie)
	if err != nil || !tokenEqual(r.PostForm.Get("csrf"), c.Value) {
		h.renderLogin(w, r, http.StatusForbidden, next, user, []flash{{"error", "The login form expired or your browser refused its cookie; try again (cookies must be allowed)."}})
		return
	}
	ip := remoteIP(r)
	now := h.clock()
	res, ok := h.logins.reserve(ip, now)
	if !ok {
		h.log.Warn("dashboard: login rate-limited", slog.String("remote", ip))
		w.Header().Set("Retry-After", strconv.Itoa(h.logins.retryAfter()))
		h.renderLogin(w, r, http.StatusTooManyRequests, next, user, []flash{{"error", "Too many failed logins from your address; wait a minute and try again."}})
		return
	}
	users := h.users()
	if users == nil || len(user) > 128 || len(pw) > 1024 || !users.Verify(user, pw) {
		// Only a known user's name is logged: what was typed into the
		// name field may be a password.
		logged := "(unknown)"
		if users != nil && users.Has(user) {
			logged = user
		}
		h.log.Warn("dashboard: login failed", slog.String("user", logged), slog.String("remote", ip))
		h.renderLogin(w, r, http.StatusUnauthorized, next, user, []flash{{"error", "Wrong user name or password."}})
		return
	}
	res.CancelAt(now) // a success costs nothing
	sess := h.sessions.create(user, now)
	h.log.Info("dashboard: logged in", slog.String("user", user), slog.String("remote", ip))
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sess.id, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	clearCookie(w, loginCookie)
	http.Redirect(w, r, localPath(next), http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request, sess *session) {
	h.sessions.remove(sess.id)
	h.log.Info("dashboard: logged out", slog.String("user", sess.user), slog.String("remote", remoteIP(r)))
	clearCookie(w, sessionCookie)
	http.Redirect(w, r, "/login?m=out", http.StatusSeeOther)
}

func clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// localPath returns p when it is a path on this site, "/" otherwise, so a
// login cannot redirect elsewhere.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n") {
		return "/"
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return p
}

// remoteIP is the address failed logins are counted by.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// loginLimiter limits failed logins per remote address.
type loginLimiter struct {
	mu    sync.Mutex
	limit rate.Limit
	burst int
	by    map[string]*rate.Limiter
}

func newLoginLimiter(limit rate.Limit, burst int) *loginLimiter {
	return &loginLimiter{limit: limit, burst: burst, by: map[string]*rate.Limiter{}}
}

// maxLimiters bounds the addresses tracked; full buckets are dropped first.
const maxLimiters = 10_000

// reserve takes one attempt from ip's budget; ok is false when none is
// left. A successful login gives it back with res.CancelAt.
func (l *loginLimiter) reserve(ip string, now time.Time) (res *rate.Reservation, ok bool) {
	l.mu.Lock()
	lim := l.by[ip]
	if lim == nil {
		if len(l.by) >= maxLimiters {
			for k, v := range l.by {
				if v.TokensAt(now) >= float64(l.burst) {
					delete(l.by, k)
				}
			}
			if len(l.by) >= maxLimiters {
				clear(l.by)
			}
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.by[ip] = lim
	}
	l.mu.Unlock()
	res = lim.ReserveN(now, 1)
	if !res.OK() || res.DelayFrom(now) > 0 {
		res.CancelAt(now)
		return nil, false
	}
	return res, true
}

// retryAfter is the number of seconds until one more attempt is allowed.
func (l *loginLimiter) retryAfter() int {
	return int(math.Ceil(1 / float64(l.limit)))
}
