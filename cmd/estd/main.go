// Command estd is the estkit EST server (RFC 7030) with its own CA.
//
//	estd [-data DIR] [-listen ADDR] [-hostname NAME ...] [-manufacturer-ca FILE] [-ca-key-type T]
//	estd user add|list|remove [-data DIR] [NAME]
//
// With no flags it creates ./estd-data on first start (root and issuing CA,
// TLS certificate, SQLite store, a bootstrap user) and serves on
// https://127.0.0.1:8443. SIGHUP reloads the users file and the manufacturer
// trust anchors; SIGINT and SIGTERM shut down after in-flight requests.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	os.Exit(run(ctx, os.Args[1:], env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, hup: hup}))
}
