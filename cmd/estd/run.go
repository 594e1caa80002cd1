package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/config"
	"github.com/estkit/estkit/internal/estd"
)

// env is what run talks to, so tests can drive it in process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	hup            <-chan os.Signal
	// ready, if set, receives the listening address once estd serves.
	ready chan<- net.Addr
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func run(ctx context.Context, args []string, e env) int {
	if len(args) > 0 && args[0] == "user" {
		return userCmd(args[1:], e)
	}
	fs := flag.NewFlagSet("estd", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	def := config.Default()
	configFile := fs.String("config", "", "YAML configuration `file` (flags given win over it)")
	validate := fs.Bool("validate", false, "check the configuration and exit")
	data := fs.String("data", def.Data, "data `directory`: CA, TLS certificate, users, database")
	listen := fs.String("listen", def.Listen, "`address` to serve EST on")
	var hostnames listFlag
	fs.Var(&hostnames, "hostname", "extra DNS `name` or IP address for the TLS certificate (repeatable)")
	mfr := fs.String("manufacturer-ca", "", "PEM `file` of manufacturer trust anchors for device certificates")
	keyType := fs.String("ca-key-type", def.CAKeyType, "key `type` of a new CA: p256, p384, rsa2048, rsa3072, rsa4096")
	logFormat := fs.String("log-format", def.LogFormat, "log `format`: text or json")
	maxBody := fs.Int64("max-body", def.MaxBody, "largest request body in `bytes`")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: estd [flags]\n       estd user add|list|remove [-data DIR] [NAME]\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "estd: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg := def
	if *configFile != "" {
		var err error
		if cfg, err = config.Load(*configFile); err != nil {
			fmt.Fprintf(e.stderr, "estd: %v\n", err)
			return 2
		}
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "data":
			cfg.Data = *data
		case "listen":
			cfg.Listen = *listen
		case "hostname":
			cfg.Hostnames = hostnames
		case "manufacturer-ca":
			cfg.ManufacturerCA = *mfr
		case "ca-key-type":
			cfg.CAKeyType = *keyType
		case "log-format":
			cfg.LogFormat = *logFormat
		case "max-body":
			cfg.MaxBody = *maxBody
		}
	})
	if err := cfg.Validate(); err != nil {
		msg := err.Error()
		// Name the flag where a flag set the value.
		fs.Visit(func(f *flag.Flag) {
			key := strings.ReplaceAll(f.Name, "-", "_")
			if f.Name == "hostname" {
				key = "hostnames"
			}
			msg = strings.ReplaceAll(msg, key+":", "-"+f.Name+":")
		})
		fmt.Fprintf(e.stderr, "estd: invalid configuration:\n%s\n", msg)
		return 2
	}
	if *validate {
		fmt.Fprintln(e.stdout, "estd: configuration OK")
		return 0
	}
	kt, _ := ca.ParseKeyType(cfg.CAKeyType)
	profiles, _ := cfg.CAProfiles()
	tlsPolicy, _ := cfg.TLS.Policy()
	var h slog.Handler = slog.NewTextHandler(e.stderr, nil)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(e.stderr, nil)
	}
	logger := slog.New(h)

	d, err := estd.Open(ctx, estd.Options{
		DataDir:        cfg.Data,
		Hostnames:      cfg.Hostnames,
		ManufacturerCA: cfg.ManufacturerCA,
		CAKeyType:      kt,
		Profiles:       profiles,
		MaxBody:        cfg.MaxBody,
		TLS:            tlsPolicy,
		Logger:         logger,
	})
	if err != nil {
		fmt.Fprintf(e.stderr, "estd: %v\n", err)
		return 1
	}
	defer d.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		fmt.Fprintf(e.stderr, "estd: %v\n", err)
		return 1
	}
	banner(e.stdout, d, cfg.Data, ln.Addr().String())
	if e.ready != nil {
		e.ready <- ln.Addr()
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-e.hup:
				if err := d.Reload(); err != nil {
					logger.Error("reload failed; keeping the previous users and anchors", "err", err.Error())
				} else {
					logger.Info("reloaded users and manufacturer anchors")
				}
			}
		}
	}()
	if err := d.Serve(ctx, ln); err != nil {
		fmt.Fprintf(e.stderr, "estd: %v\n", err)
		return 1
	}
	logger.Info("stopped")
	return 0
}

// banner prints what a newcomer needs: where estd serves, the root
// fingerprint, the bootstrap password (once) and an enrollment example.
func banner(w io.Writer, d *estd.Daemon, dir, addr string) {
	root := filepath.Join(dir, estd.RootCertFile)
	if d.Created {
		fmt.Fprintf(w, "estd: created a new CA in %s\n", dir)
	}
	fmt.Fprintf(w, "estd: serving EST on https://%s/.well-known/est/\n", addr)
	fmt.Fprintf(w, "estd: root CA %s\n", d.Root.Subject)
	fmt.Fprintf(w, "estd: root CA SHA-256 fingerprint %s\n", est.Fingerprint(d.Root))
	if d.BootstrapPassword != "" {
		fmt.Fprintf(w, "estd: bootstrap user %q, password %s\n", estd.BootstrapUser, d.BootstrapPassword)
		fmt.Fprintf(w, "estd: this password is shown once and stored only as a hash; change it with 'estd user add %s'\n", estd.BootstrapUser)
	}
	fmt.Fprintf(w, `
Enroll a certificate with openssl and curl (curl asks for the password):

  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout device.key \
    -subj /CN=device-1 -outform DER | base64 > device.csr
  curl --cacert %s -u %s -H 'Content-Type: application/pkcs10' --data-binary @device.csr \
    https://%s/.well-known/est/simpleenroll | base64 -d | openssl pkcs7 -inform DER -print_certs -out device.pem

`, root, estd.BootstrapUser, addr)
}

// userCmd manages the users file: add (password from standard input, one
// line), list, remove.
func userCmd(args []string, e env) int {
	usage := func() int {
		fmt.Fprintf(e.stderr, "usage: estd user add|list|remove [-data DIR] [NAME]\n")
		return 2
	}
	if len(args) == 0 {
		return usage()
	}
	verb := args[0]
	fs := flag.NewFlagSet("estd user "+verb, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	data := fs.String("data", "estd-data", "data `directory`")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	path := filepath.Join(*data, estd.UsersFile)
	users, err := auth.LoadUsers(path)
	if errors.Is(err, os.ErrNotExist) && verb == "add" {
		if err := os.MkdirAll(*data, 0o700); err != nil {
			fmt.Fprintf(e.stderr, "estd: %v\n", err)
			return 1
		}
		users, err = auth.NewUsers(), nil
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "estd: %v\n", err)
		return 1
	}
	switch verb {
	case "list":
		if fs.NArg() != 0 {
			return usage()
		}
		for _, n := range users.Names() {
			fmt.Fprintln(e.stdout, n)
		}
		return 0
	case "add":
		if fs.NArg() != 1 {
			return usage()
		}
		line, err := bufio.NewReader(e.stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			fmt.Fprintf(e.stderr, "estd: reading the password from standard input: %v\n", err)
			return 1
		}
		pw := strings.TrimRight(line, "\r\n")
		if len(pw) < 8 {
			fmt.Fprintf(e.stderr, "estd: the password must have at least 8 characters\n")
			return 1
		}
		if err := users.Set(fs.Arg(0), pw); err != nil {
			fmt.Fprintf(e.stderr, "estd: %v\n", err)
			return 1
		}
	case "remove":
		if fs.NArg() != 1 {
			return usage()
		}
		if !users.Remove(fs.Arg(0)) {
			fmt.Fprintf(e.stderr, "estd: no user %q\n", fs.Arg(0))
			return 1
		}
	default:
		return usage()
	}
	if err := users.Save(path); err != nil {
		fmt.Fprintf(e.stderr, "estd: %v\n", err)
		return 1
	}
	fmt.Fprintf(e.stderr, "estd: %s user %q; send SIGHUP to a running estd to reload\n", map[string]string{"add": "saved", "remove": "removed"}[verb], fs.Arg(0))
	return 0
}
