package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"path/filepath"
	"testing"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/testpki"
)

// TestGracefulShutdown: cancelling run's context (what SIGINT and SIGTERM
// do) stops accepting and closes idle connections at once, but an enrollment
// whose body is still arriving gets its certificate, and only then does run
// return 0.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dataDir := filepath.Join(t.TempDir(), "estd-data")
	const password = "shutdown-password"
	writeUsers(t, dataDir, "est", password)
	d := startEstd(t, dataDir)
	roots := x509.NewCertPool()
	roots.AddCert(readPEMCert(t, d.rootFile()))
	deadline, _ := ctx.Deadline()

	// An idle keep-alive connection: estd closes it when shutdown begins,
	// which tells this test that it has begun.
	idle, err := tls.Dial("tcp", d.addr, &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idle.SetDeadline(deadline)
	if _, err := io.WriteString(idle, "GET /.well-known/est/cacerts HTTP/1.1\r\nHost: estd\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	idleR := bufio.NewReader(idle)
	resp, err := http.ReadResponse(idleR, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("GET cacerts on the idle connection: %d, close %v", resp.StatusCode, resp.Close)
	}

	// The slow enrollment: HTTP/1.1, Expect: 100-continue so that the body
	// is sent only once the handler reads it, chunked so that each write
	// reaches the server.
	csr := est.EncodeBase64(testpki.CSR(t, testpki.Key(t, ca.P256), "slow-device", nil, nil))
	body, bodyW := io.Pipe()
	defer bodyW.Close()
	reading := make(chan struct{})
	trace := &httptrace.ClientTrace{Got100Continue: func() { close(reading) }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost,
		"https://"+d.addr+"/.well-known/est/simpleenroll", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/pkcs10")
	req.Header.Set("Expect", "100-continue")
	req.SetBasicAuth("est", password)
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:       &tls.Config{RootCAs: roots},
		ExpectContinueTimeout: time.Minute,
	}}
	defer client.CloseIdleConnections()
	type result struct {
		code int
		body []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := client.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{resp.StatusCode, b, err}
	}()
	select {
	case <-reading: // authenticated; the handler is reading the body
	case r := <-done:
		t.Fatalf("enrollment ended before its body was sent: %d %v %s", r.code, r.err, r.body)
	case <-ctx.Done():
		t.Fatal("no 100 Continue")
	}
	half := len(csr) / 2
	if _, err := bodyW.Write(csr[:half]); err != nil {
		t.Fatal(err)
	}

	d.cancel() // SIGTERM
	if _, err := idleR.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: %v, want EOF when shutdown begins", err)
	}
	if c, err := net.DialTimeout("tcp", d.addr, 10*time.Second); err == nil {
		c.Close()
		t.Error("estd still accepts connections while shutting down")
	}
	select {
	case code := <-d.done:
		d.stopped, d.code = true, code
		t.Fatalf("run returned %d with a request in flight", code)
	default:
	}

	if _, err := bodyW.Write(csr[half:]); err != nil {
		t.Fatal(err)
	}
	bodyW.Close()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		t.Fatal("no answer to the in-flight enrollment")
	}
	if r.err != nil || r.code != 200 {
		t.Fatalf("in-flight enrollment: %d %v %s", r.code, r.err, r.body)
	}
	der, err := est.DecodeBase64(r.body)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := est.ParseCertsOnly(der)
	if err != nil || len(certs) != 1 || certs[0].Subject.CommonName != "slow-device" {
		t.Fatalf("in-flight enrollment answer: %v %v", certs, err)
	}
	if code := d.stop(t); code != 0 {
		t.Errorf("run returned %d after a graceful shutdown, want 0\nstderr:\n%s", code, d.stderr)
	}
}
