package conformance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"runtime/debug"
	"strings"
	"time"
	"unicode"
)

// Status is the outcome of one check.
type Status string

// The outcomes of a check.
const (
	Pass Status = "PASS"
	Fail Status = "FAIL"
	// Skip means the check could not run: an input it needs was not given,
	// or the server does not offer an optional operation.
	Skip Status = "SKIP"
)

// Groups of checks, in the order a Report lists them.
const (
	GroupCACerts     = "Normal operation / CA certificates"
	GroupEnroll      = "Normal operation / Enrollment"
	GroupReenroll    = "Normal operation / Reenrollment"
	GroupFormats     = "Normal operation / Response formats"
	GroupAuth        = "Incorrect operation / Authentication"
	GroupTLS         = "Incorrect operation / TLS"
	GroupBadReenroll = "Incorrect operation / Reenrollment"
	GroupMalformed   = "Incorrect operation / Malformed requests"
)

const (
	maxReason          = 300                  // bytes of a Result's reason
	defaultDomain      = "example.net"        // Config.Domain when ""
	userAgent          = "estkit-conformance" // sent with every request
	maxBody            = 1 << 20              // bytes of an answer read
	healthProbeTimeout = 15 * time.Second
)

// The labels of the TLS client and TLS server profiles when none are given
// (the names estd uses). The label "" is the server's unlabeled default CA.
const (
	DefaultClientLabel = "tls-client"
	DefaultServerLabel = "tls-server"
)

// DefaultTimeout bounds one check when Config.Timeout is 0.
const DefaultTimeout = 60 * time.Second

// Check is one conformance check.
type Check struct {
	// ID is stable and short, for -run and CI history: "enroll.rsa.server.issued".
	ID string
	// Group is one of the Group constants: "Normal operation / ..." or
	// "Incorrect operation / ...".
	Group string
	// Name says what is checked, in one line.
	Name string
	// Ref cites what the check enforces: "RFC 7030 4.2.3".
	Ref string

	run func(ctx context.Context, s *session) outcome
}

// Result is what one check found.
type Result struct {
	ID, Group, Name, Ref string // of the Check
	Status               Status
	// Reason is one line: what was seen, or what input a SKIP needs.
	Reason   string
	Duration time.Duration
}

// Config says which server to check and with what.
type Config struct {
	// Server is the EST server: "host:port" or an https URL, as for
	// client.Client.Server.
	Server string
	// ClientLabel and ServerLabel are the CA labels whose profiles issue TLS
	// client and TLS server certificates (RFC 7030 3.2.2); "" is the
	// server's unlabeled default CA. They are used as given: start from
	// DefaultClientLabel and DefaultServerLabel.
	ClientLabel, ServerLabel string
	// TrustAnchors are the roots the server's CA chain must end in. They
	// also authenticate the server's TLS certificate (RFC 7030 3.6.1). With
	// none, the system roots authenticate the server and the root /cacerts
	// returns is not compared (cacerts.anchor is SKIP).
	TrustAnchors []*x509.Certificate
	// Manufacturer is a client certificate, with its key and chain, issued
	// by a manufacturer CA the server trusts for enrollment (RFC 7030 3.3.2).
	Manufacturer *tls.Certificate
	// Rogue is a certificate that looks like a manufacturer's (same subject,
	// same issuer name) but comes from a CA the server does not trust.
	Rogue *tls.Certificate
	// Expired is an expired certificate from the manufacturer CA.
	Expired *tls.Certificate
	// Username and Password are HTTP Basic credentials the server accepts
	// for enrollment (RFC 7030 3.2.3); "" for none.
	Username, Password string
	// Domain is the DNS domain under which the checks name the TLS server
	// certificates they request; "" means "example.net".
	Domain string
	// Timeout bounds each check; 0 means DefaultTimeout.
	Timeout time.Duration
	// Filter selects the checks to run; nil runs every check. Checks not
	// selected are left out of the Report.
	Filter func(Check) bool
	// Progress, when set, is called after each check with its result.
	Progress func(Result)
}

// Checks returns every check, in the order Run runs them.
func Checks() []Check {
	out := make([]Check, len(allChecks))
	copy(out, allChecks)
	return out
}

// Run runs the checks cfg selects against cfg.Server, one after the other,
// and returns the report. It fails only on a configuration it cannot use (no
// server); everything the server does is a Result. When ctx ends, the check
// under way and those not yet run are reported as SKIP.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	s, err := newSession(cfg)
	if err != nil {
		return nil, err
	}
	defer s.close()
	rep := &Report{
		Server:      cfg.Server,
		ClientLabel: cfg.ClientLabel,
		ServerLabel: cfg.ServerLabel,
		Started:     time.Now(),
	}
	for _, c := range allChecks {
		if cfg.Filter != nil && !cfg.Filter(c) {
			continue
		}
		r := s.run(ctx, c)
		rep.Results = append(rep.Results, r)
		if cfg.Progress != nil {
			cfg.Progress(r)
		}
	}
	rep.Duration = time.Since(rep.Started)
	return rep, nil
}

// run runs one check with its own deadline, turning a panic into a FAIL.
func (s *session) run(ctx context.Context, c Check) (r Result) {
	r = Result{ID: c.ID, Group: c.Group, Name: c.Name, Ref: c.Ref}
	if err := ctx.Err(); err != nil {
		r.Status, r.Reason = Skip, "not run: "+err.Error()
		return r
	}
	timeout := s.cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			r.Status = Fail
			r.Reason = oneLine(fmt.Sprintf("internal error in the check: %v %s", p, firstFrame(debug.Stack())))
		}
		r.Duration = time.Since(start)
	}()
	o := c.run(cctx, s)
	r.Status, r.Reason = o.status, oneLine(o.reason)
	switch {
	case o.status != Fail || cctx.Err() == nil:
	case ctx.Err() != nil: // the whole run was stopped, not this check
		r.Status, r.Reason = Skip, oneLine("interrupted: "+o.reason)
	default:
		r.Reason = oneLine(fmt.Sprintf("timed out after %v: %s", timeout, o.reason))
	}
	return r
}

// outcome is what a check function returns.
type outcome struct {
	status Status
	reason string
}

func pass(format string, args ...any) outcome {
	return outcome{Pass, fmt.Sprintf(format, args...)}
}

func fail(format string, args ...any) outcome {
	return outcome{Fail, fmt.Sprintf(format, args...)}
}

func skip(format string, args ...any) outcome {
	return outcome{Skip, fmt.Sprintf(format, args...)}
}

// oneLine makes s a single printable line of at most maxReason bytes.
func oneLine(s string) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' || r == '\t' }), " ")
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	if len(s) > maxReason {
		cut := maxReason - 3
		for cut > 0 && s[cut]&0xc0 == 0x80 { // not inside a UTF-8 sequence
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

// firstFrame returns the first frame of a stack trace inside this package,
// for the reason of a panicking check.
func firstFrame(stack []byte) string {
	lines := strings.Split(string(stack), "\n")
	for i, l := range lines {
		if strings.Contains(l, "/conformance.") && !strings.Contains(l, "(*session).run") && i+1 < len(lines) {
			return "at " + strings.TrimSpace(lines[i+1])
		}
	}
	return ""
}
