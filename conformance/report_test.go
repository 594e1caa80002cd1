package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit/conformance"
)

func sampleReport() *conformance.Report {
	return &conformance.Report{
		Server:      "est.example.net:8443",
		ClientLabel: "tls-client",
		ServerLabel: "",
		Started:     time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Duration:    1500 * time.Millisecond,
		Results: []conformance.Result{
			{ID: "cacerts.chain", Group: conformance.GroupCACerts, Name: "chain", Status: conformance.Pass, Reason: "2 CA certificates", Duration: time.Second},
			{ID: "enroll.basic", Group: conformance.GroupEnroll, Name: "basic", Status: conformance.Skip, Reason: "needs -user"},
			{ID: "auth.none", Group: conformance.GroupAuth, Name: "no credentials", Ref: "RFC 7030 3.2.3", Status: conformance.Fail, Reason: `got 200 & <"issued">`},
			{ID: "auth.rogue", Group: conformance.GroupAuth, Name: "rogue", Status: conformance.Pass, Reason: "403"},
		},
	}
}

func TestWriteText(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		`EST conformance check of est.example.net:8443 (client label "tls-client", server label "" (default CA)) in 1.5s`,
		"\nNormal operation / CA certificates\n  PASS  cacerts.chain  chain\n                       2 CA certificates\n",
		"\nIncorrect operation / Authentication\n  FAIL  auth.none      no credentials\n",
		"  SKIP  enroll.basic   basic\n                       needs -user\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if !strings.HasSuffix(out, "\n\n2 passed, 1 failed, 1 skipped\n") {
		t.Errorf("the summary is not the last line, on its own:\n%s", out)
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Server, Summary         string
		ServerLabel             string `json:"server_label"`
		Passed, Failed, Skipped int
		Duration                float64 `json:"duration_seconds"`
		Results                 []map[string]any
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Server != "est.example.net:8443" || got.Passed != 2 || got.Failed != 1 || got.Skipped != 1 || got.Summary != "2 passed, 1 failed, 1 skipped" || got.Duration != 1.5 || len(got.Results) != 4 {
		t.Fatalf("%+v", got)
	}
	if r := got.Results[2]; r["id"] != "auth.none" || r["status"] != "FAIL" || r["ref"] != "RFC 7030 3.2.3" || r["reason"] != `got 200 & <"issued">` {
		t.Errorf("result %v", r)
	}
}

func TestWriteJUnit(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().WriteJUnit(&b); err != nil {
		t.Fatal(err)
	}
	type tc struct {
		Name    string `xml:"name,attr"`
		Failure *struct {
			Message string `xml:"message,attr"`
		} `xml:"failure"`
		Skipped *struct {
			Message string `xml:"message,attr"`
		} `xml:"skipped"`
		Out string `xml:"system-out"`
	}
	var got struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Skipped  int `xml:"skipped,attr"`
		Suites   []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Cases    []tc   `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("invalid XML: %v\n%s", err, b.String())
	}
	if got.Tests != 4 || got.Failures != 1 || got.Skipped != 1 || len(got.Suites) != 3 {
		t.Fatalf("%+v", got)
	}
	auth := got.Suites[2]
	if auth.Name != conformance.GroupAuth || auth.Tests != 2 || auth.Failures != 1 {
		t.Fatalf("suite %+v", auth)
	}
	if c := auth.Cases[0]; c.Name != "auth.none: no credentials" || c.Failure == nil || c.Failure.Message != `got 200 & <"issued">` {
		t.Errorf("case %+v", c)
	}
	if c := got.Suites[1].Cases[0]; c.Skipped == nil || c.Skipped.Message != "needs -user" {
		t.Errorf("case %+v", c)
	}
	if c := got.Suites[0].Cases[0]; c.Out != "2 CA certificates" {
		t.Errorf("case %+v", c)
	}
}

func TestChecksAreData(t *testing.T) {
	id := regexp.MustCompile(`^[a-z0-9]+(\.[a-z0-9-]+)+$`)
	seen := map[string]bool{}
	for _, c := range conformance.Checks() {
		if !id.MatchString(c.ID) || seen[c.ID] || c.Name == "" || c.Ref == "" ||
			!(strings.HasPrefix(c.Group, "Normal operation / ") || strings.HasPrefix(c.Group, "Incorrect operation / ")) {
			t.Errorf("check %+v", c)
		}
		seen[c.ID] = true
	}
	// The 2×2×2 enrollment matrix.
	for _, alg := range []string{"rsa", "ecdsa"} {
		for _, profile := range []string{"client", "server"} {
			for _, how := range []string{"manufacturer", "issued"} {
				if !seen["enroll."+alg+"."+profile+"."+how] {
					t.Errorf("matrix cell %s/%s/%s missing", alg, profile, how)
				}
			}
		}
	}
}

func TestRunRefusesUnusableConfig(t *testing.T) {
	for _, cfg := range []conformance.Config{
		{},
		{Server: "http://est.example.net"},
		{Server: "est.example.net", ClientLabel: "a/b"},
	} {
		if _, err := conformance.Run(context.Background(), cfg); err == nil {
			t.Errorf("Run(%+v) succeeded", cfg)
		}
	}
}

// TestMissingInputsSkip: with only a server, the checks that need inputs
// are SKIP and name the flag; a stopped run SKIPs what it did not run.
func TestMissingInputsSkip(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep, err := conformance.Run(ctx, conformance.Config{Server: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.Counts(); c.Skipped != len(conformance.Checks()) {
		t.Fatalf("%s after cancellation, want all skipped", c)
	}
	// The checks that need nothing but the server are left out: they would
	// FAIL against the closed port.
	needNothing := map[string]bool{"cacerts.chain": true, "format.cacerts": true, "format.csrattrs": true, "auth.none": true}
	rep, err = conformance.Run(context.Background(), conformance.Config{
		Server: "127.0.0.1:1",
		Filter: func(c conformance.Check) bool { return !needNothing[c.ID] && c.Group != conformance.GroupTLS },
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.Status != conformance.Skip || !strings.Contains(r.Reason, "pass -") {
			t.Errorf("%s: %s %s, want SKIP naming a flag", r.ID, r.Status, r.Reason)
		}
	}
}
