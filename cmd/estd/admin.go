package main

import (
	"context"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/estkit/estkit/internal/admin"
	"github.com/estkit/estkit/internal/estd"
	"github.com/estkit/estkit/store"
)

const adminUsage = `usage: estd admin SUBCOMMAND [-data DIR | -config FILE | -store DSN] [flags] [ARG]

  list [-pending] [-search TEXT] [-n N]     issued certificates (newest first), or pending requests
  show SERIAL|REQUEST                       one certificate (with its PEM) or request
  approve [-by NAME] REQUEST                approve a pending request
  reject [-by NAME] -reason TEXT REQUEST    reject a pending request
  revoke [-by NAME] [-reason R] SERIAL      revoke a certificate (R: keyCompromise, superseded, ...)
`

// adminCmd runs `estd admin ...` against the store of the data directory (or
// of the configuration), which may be in use by a running estd.
func adminCmd(ctx context.Context, args []string, e env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" {
		fmt.Fprint(e.stderr, adminUsage)
		return 2
	}
	verb := args[0]
	fs := flag.NewFlagSet("estd admin "+verb, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { fmt.Fprint(e.stderr, adminUsage) }
	where := storeFlags(fs)
	pending := fs.Bool("pending", false, "list: pending requests instead of certificates")
	search := fs.String("search", "", "list: only certificates whose serial, subject or requester contains `TEXT`")
	limit := fs.Int("n", 50, "list: at most `N` rows")
	by := fs.String("by", operator(), "approve, reject, revoke: the operator's `name`, for the audit log")
	reason := fs.String("reason", "", "reject: the reason the requester sees; revoke: "+strings.Join(admin.ReasonNames(), ", ")+" (default unspecified)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	want := map[string]int{"list": 0, "show": 1, "approve": 1, "reject": 1, "revoke": 1}
	n, known := want[verb]
	if !known || fs.NArg() != n {
		fmt.Fprint(e.stderr, adminUsage)
		return 2
	}
	o, err := where()
	if err != nil {
		fmt.Fprintf(e.stderr, "estd admin: %v\n", err)
		return 2
	}
	st, err := estd.OpenStore(ctx, o)
	if err != nil {
		fmt.Fprintf(e.stderr, "estd admin: %v\n", err)
		return 1
	}
	defer st.Close()
	svc := admin.New(st, nil, nil)
	switch verb {
	case "list":
		err = adminList(ctx, e.stdout, svc, *pending, *search, *limit)
	case "show":
		err = adminShow(ctx, e.stdout, svc, fs.Arg(0))
	case "approve":
		err = svc.Approve(ctx, fs.Arg(0), *by)
	case "reject":
		if *reason == "" {
			fmt.Fprintln(e.stderr, "estd admin reject: -reason is required: the requester sees it")
			return 2
		}
		err = svc.Reject(ctx, fs.Arg(0), *by, *reason)
	case "revoke":
		if *reason == "" {
			*reason = "unspecified"
		}
		err = svc.Revoke(ctx, fs.Arg(0), *reason, *by)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "estd admin %s: %v\n", verb, err)
		if errors.Is(err, store.ErrNotFound) {
			return 3
		}
		return 1
	}
	if verb != "list" && verb != "show" {
		fmt.Fprintf(e.stderr, "estd admin: %s %s\n", map[string]string{"approve": "approved", "reject": "rejected", "revoke": "revoked"}[verb], fs.Arg(0))
	}
	return 0
}

func operator() string {
	if u := os.Getenv("SUDO_USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

func adminList(ctx context.Context, w io.Writer, svc *admin.Service, pending bool, search string, limit int) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	if pending {
		reqs, err := svc.Requests(ctx, store.RequestPending, limit)
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "REQUEST\tCREATED\tLABEL\tOPERATION\tSUBJECT\tREQUESTER\tAUTH")
		for _, r := range reqs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.CreatedAt.Format(time.RFC3339), orDash(r.Label), r.Operation, r.Subject, r.Requester, r.AuthMethod)
		}
		return nil
	}
	recs, err := svc.Search(ctx, search, limit)
	if err != nil {
		return err
	}
	fmt.Fprintln(tw, "SERIAL\tISSUED\tNOT AFTER\tLABEL\tSUBJECT\tREQUESTER\tSTATUS")
	for _, r := range recs {
		status := "valid"
		if r.Revoked {
			status = "revoked (" + admin.ReasonName(r.RevocationReason) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Serial.Text(16), r.IssuedAt.Format(time.RFC3339), r.NotAfter.Format(time.RFC3339), orDash(r.Profile), r.Subject, r.Requester, status)
	}
	return nil
}

func adminShow(ctx context.Context, w io.Writer, svc *admin.Service, arg string) error {
	if rec, err := svc.Certificate(ctx, arg); err == nil {
		fmt.Fprintf(w, "serial:      %s\nsubject:     %s\nSANs:        %s\nkey:         %s\nlabel:       %s\nvalidity:    %s to %s\nissued:      %s to %s (%s)\n",
			rec.Serial.Text(16), rec.Subject, strings.Join(rec.SANs, ", "), rec.KeyAlgorithm, orDash(rec.Profile),
			rec.NotBefore.Format(time.RFC3339), rec.NotAfter.Format(time.RFC3339), rec.IssuedAt.Format(time.RFC3339), rec.Requester, rec.AuthMethod)
		if rec.Revoked {
			fmt.Fprintf(w, "revoked:     %s (%s)\n", rec.RevokedAt.Format(time.RFC3339), admin.ReasonName(rec.RevocationReason))
		}
		if rec.SupersededBy != nil {
			fmt.Fprintf(w, "renewed as:  %s\n", rec.SupersededBy.Text(16))
		}
		return pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: rec.DER})
	} else if !errors.Is(err, store.ErrNotFound) && !strings.Contains(err.Error(), "not a serial number") {
		return err
	}
	r, err := svc.Request(ctx, arg)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "request:     %s\nstatus:      %s\nlabel:       %s\noperation:   %s\nsubject:     %s\nSANs:        %s\nkey:         %s\nrequester:   %s (%s)\ncreated:     %s\n",
		r.ID, r.Status, orDash(r.Label), r.Operation, r.Subject, strings.Join(r.SANs, ", "), r.KeyAlgorithm, r.Requester, r.AuthMethod, r.CreatedAt.Format(time.RFC3339))
	if !r.DecidedAt.IsZero() {
		fmt.Fprintf(w, "decided:     %s by %s %s\n", r.DecidedAt.Format(time.RFC3339), r.DecidedBy, r.Reason)
	}
	if r.Serial != nil {
		fmt.Fprintf(w, "certificate: %s\n", r.Serial.Text(16))
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
