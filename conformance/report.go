package conformance

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
)

// Report is the outcome of a Run.
type Report struct {
	// Server is Config.Server; the labels are those of the Config.
	Server                   string
	ClientLabel, ServerLabel string
	Started                  time.Time
	Duration                 time.Duration
	// Results are in the order the checks ran.
	Results []Result
}

// Counts are how many checks passed, failed and were skipped.
type Counts struct {
	Passed, Failed, Skipped int
}

// String is the summary line: "N passed, N failed, N skipped".
func (c Counts) String() string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", c.Passed, c.Failed, c.Skipped)
}

// Counts counts the results by status.
func (r *Report) Counts() Counts {
	var c Counts
	for _, res := range r.Results {
		switch res.Status {
		case Pass:
			c.Passed++
		case Fail:
			c.Failed++
		default:
			c.Skipped++
		}
	}
	return c
}

// Failed reports whether any check failed.
func (r *Report) Failed() bool { return r.Counts().Failed > 0 }

// groups returns the results grouped, groups in order of first appearance.
func (r *Report) groups() (names []string, by map[string][]Result) {
	by = map[string][]Result{}
	for _, res := range r.Results {
		if _, ok := by[res.Group]; !ok {
			names = append(names, res.Group)
		}
		by[res.Group] = append(by[res.Group], res)
	}
	return names, by
}

func showLabel(l string) string {
	if l == "" {
		return `"" (default CA)`
	}
	return fmt.Sprintf("%q", l)
}

// WriteText writes the report as a table grouped by Group: one line per
// check (status, ID, name), its reason indented below, and the summary
// line "N passed, N failed, N skipped" last, on its own line.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "EST conformance check of %s (client label %s, server label %s) in %s\n",
		r.Server, showLabel(r.ClientLabel), showLabel(r.ServerLabel), r.Duration.Round(100*time.Millisecond))
	width := 0
	for _, res := range r.Results {
		width = max(width, len(res.ID))
	}
	indent := strings.Repeat(" ", 2+4+2+width+2)
	names, by := r.groups()
	for _, g := range names {
		fmt.Fprintf(&b, "\n%s\n", g)
		for _, res := range by[g] {
			fmt.Fprintf(&b, "  %-4s  %-*s  %s\n", res.Status, width, res.ID, res.Name)
			if res.Reason != "" {
				fmt.Fprintf(&b, "%s%s\n", indent, res.Reason)
			}
		}
	}
	fmt.Fprintf(&b, "\n%s\n", r.Counts())
	_, err := io.WriteString(w, b.String())
	return err
}

type jsonResult struct {
	ID       string  `json:"id"`
	Group    string  `json:"group"`
	Name     string  `json:"name"`
	Ref      string  `json:"ref,omitempty"`
	Status   Status  `json:"status"`
	Reason   string  `json:"reason"`
	Duration float64 `json:"duration_seconds"`
}

type jsonReport struct {
	Server      string       `json:"server"`
	ClientLabel string       `json:"client_label"`
	ServerLabel string       `json:"server_label"`
	Started     time.Time    `json:"started"`
	Duration    float64      `json:"duration_seconds"`
	Passed      int          `json:"passed"`
	Failed      int          `json:"failed"`
	Skipped     int          `json:"skipped"`
	Summary     string       `json:"summary"`
	Results     []jsonResult `json:"results"`
}

// WriteJSON writes the report as one JSON object: the server and labels,
// the counts ("passed", "failed", "skipped"), the summary line, and
// "results", one object per check with "id", "group", "name", "ref",
// "status" (PASS, FAIL or SKIP), "reason" and "duration_seconds".
func (r *Report) WriteJSON(w io.Writer) error {
	c := r.Counts()
	out := jsonReport{
		Server: r.Server, ClientLabel: r.ClientLabel, ServerLabel: r.ServerLabel,
		Started: r.Started.UTC(), Duration: r.Duration.Seconds(),
		Passed: c.Passed, Failed: c.Failed, Skipped: c.Skipped, Summary: c.String(),
		Results: make([]jsonResult, 0, len(r.Results)),
	}
	for _, res := range r.Results {
		out.Results = append(out.Results, jsonResult{res.ID, res.Group, res.Name, res.Ref, res.Status, res.Reason, res.Duration.Seconds()})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// JUnit XML, in the form CI systems read (Jenkins, GitLab, GitHub actions).
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	ClassName string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// WriteJUnit writes the report as JUnit XML: one testsuite per group, one
// testcase per check named "ID: name", a failure or skipped element with
// the reason, and the reason of a pass as system-out.
func (r *Report) WriteJUnit(w io.Writer) error {
	c := r.Counts()
	out := junitSuites{Name: "est check " + r.Server, Tests: len(r.Results), Failures: c.Failed, Skipped: c.Skipped, Time: seconds(r.Duration)}
	names, by := r.groups()
	props := []junitProperty{
		{"server", r.Server},
		{"client_label", r.ClientLabel},
		{"server_label", r.ServerLabel},
	}
	for _, g := range names {
		s := junitSuite{Name: g, Timestamp: r.Started.UTC().Format("2006-01-02T15:04:05"), Properties: props}
		var total time.Duration
		for _, res := range by[g] {
			tc := junitCase{ClassName: "est-check." + strings.ReplaceAll(g, " ", ""), Name: res.ID + ": " + res.Name, Time: seconds(res.Duration)}
			switch res.Status {
			case Fail:
				tc.Failure = &junitMessage{Message: res.Reason, Type: "FAIL", Text: res.Ref}
				s.Failures++
			case Skip:
				tc.Skipped = &junitMessage{Message: res.Reason}
				s.Skipped++
			default:
				tc.SystemOut = res.Reason
			}
			s.Tests++
			total += res.Duration
			s.Cases = append(s.Cases, tc)
		}
		s.Time = seconds(total)
		out.Suites = append(out.Suites, s)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
