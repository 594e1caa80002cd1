package dashboard

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/estkit/estkit/internal/admin"
	"github.com/estkit/estkit/store"
)

// page is what every template gets.
type page struct {
	Title string
	Nav   string // the menu entry to highlight
	User  string // "" on the login page
	CSRF  string
	Flash []flash
	Data  any
}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"serial": func(n *big.Int) string {
		if n == nil {
			return ""
		}
		return n.Text(16)
	},
	"reason": admin.ReasonName,
	// subject shows an empty subject (a certificate named only by its SANs) as such.
	"subject": func(s string) string {
		if s == "" {
			return "(empty subject)"
		}
		return s
	},
	"join": strings.Join,
}

// pageNames are the templates in templates/, each rendered in layout.html.
var pageNames = []string{"login", "error", "overview", "search", "certificate", "requests", "request"}

func parsePages() (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboard: template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// render writes a page; a template error is a bug, logged and answered 500.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	var b bytes.Buffer
	if err := h.pages[name].Execute(&b, p); err != nil {
		h.log.Error("dashboard: rendering "+name, slog.String("err", err.Error()))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// show renders a page of a session, taking its flash messages.
func (h *Handler) show(w http.ResponseWriter, r *http.Request, sess *session, name, title, nav string, data any) {
	h.render(w, r, http.StatusOK, name, &page{Title: title, Nav: nav, User: sess.user, CSRF: sess.csrf, Flash: h.sessions.takeFlash(sess), Data: data})
}

// errorPage answers status with a message; sess may be nil.
func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, sess *session, status int, msg string) {
	p := &page{Title: http.StatusText(status), Data: msg}
	if sess != nil {
		p.User, p.CSRF = sess.user, sess.csrf
	}
	h.render(w, r, status, "error", p)
}

// storeFailed answers a store error that is not the client's fault.
func (h *Handler) storeFailed(w http.ResponseWriter, r *http.Request, sess *session, err error) {
	h.log.Error("dashboard: store", slog.String("path", r.URL.Path), slog.String("err", err.Error()))
	h.errorPage(w, r, sess, http.StatusServiceUnavailable, "The certificate store did not answer; see estd's log.")
}

// ---- overview

type overviewData struct {
	Last24h, Last30d int
	PerHour          string // average over the last 24 hours
	Pending          int
	Approvals        bool // the store keeps requests
	Hourly, Daily    *chart
	Recent           []*store.Record
	Now              time.Time
	CAs              []caRow
}

// caRow is a CA certificate on the overview.
type caRow struct {
	CA
	// Soon: an issuing or root CA that expires within caWarning, or has
	// expired.
	Soon bool
}

// caWarning is how early the overview flags a CA certificate's expiry:
// time enough to roll an issuing CA over before it cuts issued
// certificates' validity short.
const caWarning = 365 * 24 * time.Hour

func (h *Handler) overview(w http.ResponseWriter, r *http.Request, sess *session) {
	ctx := r.Context()
	hourly, err := h.svc.Issuance(ctx, time.Hour, 24)
	if err != nil {
		h.storeFailed(w, r, sess, err)
		return
	}
	daily, err := h.svc.Issuance(ctx, 24*time.Hour, 30)
	if err != nil {
		h.storeFailed(w, r, sess, err)
		return
	}
	recent, err := h.svc.Search(ctx, "", 15)
	if err != nil {
		h.storeFailed(w, r, sess, err)
		return
	}
	d := overviewData{
		Hourly: newChart("hourly", "Certificates issued per hour, last 24 hours", hourly, "15:04", "Jan 2 15:04"),
		Daily:  newChart("daily", "Certificates issued per day, last 30 days", daily, "Jan 2", "Mon Jan 2"),
		Recent: recent,
		Now:    h.clock(),
	}
	for _, c := range h.cas {
		// A retired CA has less than a year left right after a timely
		// rollover, by design; its end needs nothing done.
		soon := c.Role != "retired" && d.Now.Add(caWarning).After(c.Cert.NotAfter)
		d.CAs = append(d.CAs, caRow{CA: c, Soon: soon})
	}
	d.Last24h, d.Last30d = d.Hourly.Total, d.Daily.Total
	d.PerHour = strconv.FormatFloat(float64(d.Last24h)/24, 'f', 1, 64)
	pending, err := h.svc.Requests(ctx, store.RequestPending, 1000)
	switch {
	case errors.Is(err, admin.ErrNoApprovals):
	case err != nil:
		h.storeFailed(w, r, sess, err)
		return
	default:
		d.Approvals, d.Pending = true, len(pending)
	}
	h.show(w, r, sess, "overview", "Overview", "overview", d)
}

// ---- search

type searchData struct {
	Query   string
	Results []*store.Record
	Limit   int
	More    bool
}

const searchLimit = 100

func (h *Handler) search(w http.ResponseWriter, r *http.Request, sess *session) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if len(q) > 200 {
		q = q[:200]
	}
	recs, err := h.svc.Search(r.Context(), q, searchLimit+1)
	if err != nil {
		h.storeFailed(w, r, sess, err)
		return
	}
	d := searchData{Query: q, Results: recs, Limit: searchLimit}
	if len(recs) > searchLimit {
		d.Results, d.More = recs[:searchLimit], true
	}
	h.show(w, r, sess, "search", "Certificates", "certs", d)
}

// ---- one certificate

type certificateData struct {
	Rec       *store.Record
	Status    string
	Info      *certInfo
	DecodeErr string
	Reasons   []string
}

// record finds the certificate of the {serial} path value, answering the
// request itself when it cannot.
func (h *Handler) record(w http.ResponseWriter, r *http.Request, sess *session) *store.Record {
	s := r.PathValue("serial")
	rec, err := h.svc.Certificate(r.Context(), s)
	switch {
	case err == nil:
		return rec
	case errors.Is(err, store.ErrNotFound):
		h.errorPage(w, r, sess, http.StatusNotFound, "No certificate has the serial number "+s+".")
	case isBadSerial(err):
		h.errorPage(w, r, sess, http.StatusBadRequest, fmt.Sprintf("%q is not a serial number in hex.", s))
	default:
		h.storeFailed(w, r, sess, err)
	}
	return nil
}

func isBadSerial(err error) bool {
	return err != nil && strings.Contains(err.Error(), "is not a serial number")
}

func status(rec *store.Record, now time.Time) string {
	switch {
	case rec.Revoked:
		return "revoked"
	case now.After(rec.NotAfter):
		return "expired"
	case now.Before(rec.NotBefore):
		return "not yet valid"
	}
	return "valid"
}

func (h *Handler) certificate(w http.ResponseWriter, r *http.Request, sess *session) {
	rec := h.record(w, r, sess)
	if rec == nil {
		return
	}
	d := certificateData{Rec: rec, Status: status(rec, h.clock()), Reasons: admin.ReasonNames()}
	info, err := decodeCert(rec.DER)
	if err != nil {
		d.DecodeErr = err.Error()
	}
	d.Info = info
	h.show(w, r, sess, "certificate", "Certificate "+rec.Serial.Text(16), "certs", d)
}

func (h *Handler) certificatePEM(w http.ResponseWriter, r *http.Request, sess *session) {
	rec := h.record(w, r, sess)
	if rec == nil {
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="`+rec.Serial.Text(16)+`.pem"`)
	w.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rec.DER}))
}

func (h *Handler) revoke(w http.ResponseWriter, r *http.Request, sess *session) {
	s := r.PathValue("serial")
	back := "/certs/" + url.PathEscape(s)
	reason := r.PostForm.Get("reason")
	err := h.svc.Revoke(r.Context(), s, reason, sess.user)
	switch {
	case err == nil:
		h.sessions.addFlash(sess, "ok", fmt.Sprintf("Revoked %s (%s): CRLs and OCSP answers list it as revoked from now on.", s, reason))
	case isBadSerial(err):
		back = "/certs"
		h.sessions.addFlash(sess, "error", fmt.Sprintf("%q is not a serial number in hex.", s))
	case errors.Is(err, store.ErrNotFound):
		back = "/certs"
		h.sessions.addFlash(sess, "error", "No certificate has the serial number "+s+".")
	case errors.Is(err, store.ErrConflict):
		h.sessions.addFlash(sess, "error", "This certificate was revoked already.")
	case strings.Contains(err.Error(), "unknown reason"):
		h.sessions.addFlash(sess, "error", "Choose a revocation reason from the list.")
	default:
		h.actionFailed(r, sess, "revoke", err)
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

func (h *Handler) actionFailed(r *http.Request, sess *session, what string, err error) {
	h.log.Error("dashboard: "+what, slog.String("path", r.URL.Path), slog.String("by", sess.user), slog.String("err", err.Error()))
	h.sessions.addFlash(sess, "error", "Could not "+what+": the certificate store did not answer; see estd's log.")
}

// ---- requests

type requestsData struct {
	Status   string
	Statuses []string
	Requests []*store.Request
}

var requestStatuses = []string{"pending", "approved", "rejected", "issued", "all"}

func (h *Handler) requests(w http.ResponseWriter, r *http.Request, sess *session) {
	st := r.URL.Query().Get("status")
	if st == "" {
		st = "pending"
	}
	want := store.RequestStatus(st)
	switch st {
	case "all":
		want = ""
	case "pending", "approved", "rejected", "issued":
	default:
		h.errorPage(w, r, sess, http.StatusBadRequest, fmt.Sprintf("%q is not a request status (want one of %s).", st, strings.Join(requestStatuses, ", ")))
		return
	}
	reqs, err := h.svc.Requests(r.Context(), want, 1000)
	if errors.Is(err, admin.ErrNoApprovals) {
		h.errorPage(w, r, sess, http.StatusNotFound, "This store keeps no requests, so no label can wait for approval.")
		return
	}
	if err != nil {
		h.storeFailed(w, r, sess, err)
		return
	}
	h.show(w, r, sess, "requests", "Requests", "requests", requestsData{Status: st, Statuses: requestStatuses, Requests: reqs})
}

type requestData struct {
	Req       *store.Request
	CSR       *csrInfo
	DecodeErr string
}

func (h *Handler) request(w http.ResponseWriter, r *http.Request, sess *session) {
	id := r.PathValue("id")
	req, err := h.svc.Request(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, admin.ErrNoApprovals):
		h.errorPage(w, r, sess, http.StatusNotFound, "There is no request "+id+".")
		return
	case err != nil:
		h.storeFailed(w, r, sess, err)
		return
	}
	d := requestData{Req: req}
	if d.CSR, err = decodeCSR(req.CSR); err != nil {
		d.DecodeErr = err.Error()
	}
	h.show(w, r, sess, "request", "Request "+id, "requests", d)
}

func (h *Handler) approve(w http.ResponseWriter, r *http.Request, sess *session) {
	id := r.PathValue("id")
	err := h.svc.Approve(r.Context(), id, sess.user)
	if err == nil {
		h.sessions.addFlash(sess, "ok", "Approved request "+id+" ("+h.requestSubject(r.Context(), id)+"): the requester's next retry gets the certificate.")
	} else {
		h.decisionFailed(r, sess, id, "approve", err)
	}
	http.Redirect(w, r, backTo(r, "/requests"), http.StatusSeeOther)
}

func (h *Handler) reject(w http.ResponseWriter, r *http.Request, sess *session) {
	id := r.PathValue("id")
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if reason == "" {
		h.sessions.addFlash(sess, "error", "Give a reason to reject request "+id+": the requester sees it.")
		http.Redirect(w, r, backTo(r, "/requests"), http.StatusSeeOther)
		return
	}
	err := h.svc.Reject(r.Context(), id, sess.user, reason)
	if err == nil {
		h.sessions.addFlash(sess, "ok", "Rejected request "+id+" ("+h.requestSubject(r.Context(), id)+"): the requester's next retry is refused with your reason.")
	} else {
		h.decisionFailed(r, sess, id, "reject", err)
	}
	http.Redirect(w, r, backTo(r, "/requests"), http.StatusSeeOther)
}

func (h *Handler) requestSubject(ctx context.Context, id string) string {
	if req, err := h.svc.Request(ctx, id); err == nil {
		return req.Subject
	}
	return "?"
}

func (h *Handler) decisionFailed(r *http.Request, sess *session, id, verb string, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		h.sessions.addFlash(sess, "error", "There is no request "+id+".")
	case errors.Is(err, store.ErrConflict):
		msg := "Request " + id + " is no longer pending"
		if req, err := h.svc.Request(r.Context(), id); err == nil {
			msg += " (" + string(req.Status) + " by " + req.DecidedBy + ")"
		}
		h.sessions.addFlash(sess, "error", msg+".")
	case errors.Is(err, admin.ErrNoApprovals):
		h.sessions.addFlash(sess, "error", "This store keeps no requests.")
	default:
		h.actionFailed(r, sess, verb+" the request", err)
	}
}

// backTo returns the form's "back" field when it is a path on this site.
func backTo(r *http.Request, def string) string {
	if b := r.PostForm.Get("back"); b != "" {
		if p := localPath(b); p != "/" || b == "/" {
			return p
		}
	}
	return def
}
