// Command est is an EST (RFC 7030) client for people and scripts: it bootstraps
// trust in a server, fetches CA certificates and CSR attributes, makes keys and
// CSRs, enrolls, renews, and asks the server to generate a key.
//
// Run `est help` for the subcommands and `est help SUBCOMMAND` for one.
//
// Exit codes:
//
//	0  success
//	1  failure: network, TLS, server error (5xx), malformed response, local I/O
//	2  usage: unknown subcommand, bad or missing flags
//	3  authentication refused by the server (401 or 403)
//	4  request refused by the server (any other 4xx)
//	5  trust not established: no -anchor, and the root fingerprint was not
//	   confirmed with -fingerprint (or accepted with -insecure)
//	6  est check: at least one conformance check failed
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{
		stdin:  os.Stdin,
		stdout: os.Stdout,
		stderr: os.Stderr,
		getenv: os.LookupEnv,
		prompt: terminalPrompt(os.Stderr),
	}
	os.Exit(run(ctx, os.Args[1:], e))
}

// env is what a run talks to, so tests can drive it in process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) (string, bool)
	// prompt asks for a password on a terminal; nil when there is none.
	prompt func(msg string) (string, error)
	// sleep waits between polls; nil means a real timer (tests replace it).
	sleep func(ctx context.Context, d time.Duration) error
	// now is the clock for messages; nil means time.Now.
	now func() time.Time
}
