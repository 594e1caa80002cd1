package conformance_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"log"
	"os"

	"github.com/estkit/estkit/conformance"
)

// Check a server with a manufacturer certificate it trusts and a Basic
// user, print the table, keep a JUnit report for CI, and fail the job when a
// check fails.
func ExampleRun() {
	device, err := tls.LoadX509KeyPair("device.pem", "device.key")
	if err != nil {
		log.Fatal(err)
	}
	data, err := os.ReadFile("root.pem")
	if err != nil {
		log.Fatal(err)
	}
	block, _ := pem.Decode(data)
	root, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		log.Fatal(err)
	}
	rep, err := conformance.Run(context.Background(), conformance.Config{
		Server:       "est.example.com:8443",
		ClientLabel:  conformance.DefaultClientLabel,
		ServerLabel:  conformance.DefaultServerLabel,
		TrustAnchors: []*x509.Certificate{root},
		Manufacturer: &device,
		Username:     "est",
		Password:     os.Getenv("EST_PASSWORD"),
	})
	if err != nil {
		log.Fatal(err)
	}
	rep.WriteText(os.Stdout) // ends with "N passed, N failed, N skipped"
	f, err := os.Create("est-check.xml")
	if err != nil {
		log.Fatal(err)
	}
	if err := rep.WriteJUnit(f); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
	if rep.Failed() {
		os.Exit(1)
	}
}
