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
	"slices"
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
	if len(args) > 0 && args[0] == "admin" {
		return adminCmd(ctx, args[1:], e)
	}
	if len(args) > 0 && args[0] == "migrate" {
		return migrateCmd(ctx, args[1:], e)
	}
	if len(args) > 0 && args[0] == "backup" {
		return backupCmd(ctx, args[1:], e)
	}
	if len(args) > 1 && args[0] == "ca" && args[1] == "init" {
		return caInitCmd(ctx, args[2:], e)
	}
	if len(args) > 1 && args[0] == "ca" && args[1] == "rollover" {
		return caRolloverCmd(ctx, args[2:], e)
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
	mfrCRL := fs.String("manufacturer-crl", "", "`file` of the manufacturers' CRLs (PEM, or one DER CRL); devices they list are refused")
	keyType := fs.String("ca-key-type", def.CAKeyType, "key `type` of a new CA: p256, p384, rsa2048, rsa3072, rsa4096")
	logFormat := fs.String("log-format", def.LogFormat, "log `format`: text or json")
	maxBody := fs.Int64("max-body", def.MaxBody, "largest request body in `bytes`")
	pkiListen := fs.String("pki-listen", "", "`address` for plain HTTP serving the CRL (/crl) and OCSP (/ocsp)")
	metricsListen := fs.String("metrics-listen", "", "`address` for plain HTTP serving /metrics, /healthz and /readyz")
	adminListen := fs.String("admin-listen", "", "`address` for the admin web dashboard over HTTPS (users: estd user add -admin)")
	crlURL := fs.String("crl-url", "", "CRL `URL` to write into issued certificates")
	ocspURL := fs.String("ocsp-url", "", "OCSP `URL` to write into issued certificates")
	storeDSN := fs.String("store", "", "PostgreSQL `DSN` (postgres://USER@HOST/DB; password in PGPASSWORD); default SQLite in -data")
	caKey := fs.String("ca-key", "", "issuing CA key: a key `file` or a PKCS#11 URI (default: in -data)")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: estd [flags]\n       estd user add|list|remove [-data DIR] [NAME]\n       estd admin list|show|approve|reject|revoke [-data DIR] ...\n       estd migrate [-config FILE | -data DIR | -store DSN]\n       estd backup -out FILE [-config FILE | -data DIR] [-no-keys]\n       estd ca init [-data DIR] [-hsm PKCS11-URI] [-key-type T]\n       estd ca rollover [-data DIR] [-root-key FILE|PKCS11-URI] [-hsm PKCS11-URI] [-key-type T]\n\nflags:\n")
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
	// resolve reads the configuration file (again, on SIGHUP), lets the flags
	// given win, and validates the result, naming flags in errors.
	resolve := func() (*config.Config, error) {
		cfg := config.Default()
		if *configFile != "" {
			var err error
			if cfg, err = loadConfig(*configFile); err != nil {
				return nil, err
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
			case "manufacturer-crl":
				cfg.ManufacturerCRL = *mfrCRL
			case "ca-key-type":
				cfg.CAKeyType = *keyType
			case "log-format":
				cfg.LogFormat = *logFormat
			case "max-body":
				cfg.MaxBody = *maxBody
			case "pki-listen":
				cfg.PKIListen = *pkiListen
			case "metrics-listen":
				cfg.MetricsListen = *metricsListen
			case "admin-listen":
				cfg.AdminListen = *adminListen
			case "crl-url":
				cfg.CRLURL = *crlURL
			case "ocsp-url":
				cfg.OCSPURL = *ocspURL
			case "store":
				cfg.Store = config.Store{Driver: "postgres", DSN: *storeDSN}
			case "ca-key":
				cfg.CAKey = *caKey
			}
		})
		if err := cfg.Validate(); err != nil {
			msg := err.Error()
			fs.Visit(func(f *flag.Flag) {
				key := strings.ReplaceAll(f.Name, "-", "_")
				if f.Name == "hostname" {
					key = "hostnames"
				}
				msg = strings.ReplaceAll(msg, key+":", "-"+f.Name+":")
			})
			return nil, fmt.Errorf("invalid configuration:\n%s", msg)
		}
		return cfg, nil
	}
	cfg, err := resolve()
	if err != nil {
		fmt.Fprintf(e.stderr, "estd: %v\n", err)
		return 2
	}
	if *validate {
		what, err := estd.CheckStore(ctx, estd.StoreOptions{DataDir: cfg.Data, DSN: cfg.Store.Postgres()})
		if err != nil {
			fmt.Fprintf(e.stderr, "estd: store: %v\n", err)
			return 1
		}
		fmt.Fprintf(e.stdout, "estd: configuration OK; store: %s\n", what)
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
		DataDir:         cfg.Data,
		Hostnames:       cfg.Hostnames,
		ManufacturerCA:  cfg.ManufacturerCA,
		ManufacturerCRL: cfg.ManufacturerCRL,
		CAKeyType:       kt,
		Profiles:        profiles,
		MaxBody:         cfg.MaxBody,
		TLS:             tlsPolicy,
		CRLURL:          cfg.CRLURL,
		OCSPURL:         cfg.OCSPURL,
		StoreDSN:        cfg.Store.Postgres(),
		Timeouts:        cfg.Timeouts.Server(),
		Limits: estd.Limits{MaxConnections: cfg.Limits.MaxConnections, MaxConnectionsPerIP: cfg.Limits.MaxConnectionsPerIP,
			MaxHandshakes: cfg.Limits.MaxHandshakes, Auth: cfg.Limits.Auth()},
		Key:    estd.KeyOptions{Ref: cfg.CAKey, PassphraseFile: cfg.CAKeyPassphraseFile},
		Logger: logger,
	})
	if err != nil {
		fmt.Fprintf(e.stderr, "estd: %v\n", err)
		return 1
	}
	defer d.Close()

	// Listeners: EST always, the PKI and metrics ones when configured.
	type service struct {
		name  string
		addr  string
		serve func(context.Context, net.Listener) error
		ln    net.Listener
	}
	services := []*service{{name: "EST", addr: cfg.Listen, serve: d.Serve}}
	if cfg.PKIListen != "" {
		services = append(services, &service{name: "CRL and OCSP", addr: cfg.PKIListen, serve: d.ServePKI})
	}
	if cfg.MetricsListen != "" {
		services = append(services, &service{name: "metrics", addr: cfg.MetricsListen, serve: d.ServeMetrics})
	}
	if cfg.AdminListen != "" {
		services = append(services, &service{name: "admin dashboard", addr: cfg.AdminListen, serve: d.ServeAdmin})
	}
	for _, sv := range services {
		if sv.ln, err = net.Listen("tcp", sv.addr); err != nil {
			fmt.Fprintf(e.stderr, "estd: %s: %v\n", sv.name, err)
			if d.BootstrapPassword != "" {
				// The users file exists now: the next start shows no password.
				fmt.Fprintf(e.stdout, "estd: created bootstrap user %q with password %s before this failure; it is shown once\n", estd.BootstrapUser, d.BootstrapPassword)
			}
			for _, o := range services {
				if o.ln != nil {
					o.ln.Close()
				}
			}
			return 1
		}
	}
	banner(e.stdout, d, cfg.Data, services[0].ln.Addr().String())
	for _, sv := range services[1:] {
		scheme := "http"
		if sv.name == "admin dashboard" {
			scheme = "https"
		}
		fmt.Fprintf(e.stdout, "estd: serving %s on %s://%s/\n", sv.name, scheme, sv.ln.Addr())
	}
	if e.ready != nil {
		e.ready <- services[0].ln.Addr()
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-e.hup:
				reload(d, resolve, cfg, logger)
			}
		}
	}()
	serveCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(services))
	for _, sv := range services {
		go func() {
			err := sv.serve(serveCtx, sv.ln)
			if err != nil {
				err = fmt.Errorf("%s: %w", sv.name, err)
			}
			cancel() // one stops, all stop
			errc <- err
		}()
	}
	code := 0
	for range services {
		if err := <-errc; err != nil {
			fmt.Fprintf(e.stderr, "estd: %v\n", err)
			code = 1
		}
	}
	logger.Info("stopped")
	return code
}

// reload applies a SIGHUP: the configuration is read again; users,
// manufacturer anchors and CRLs, and profiles change, all or nothing. What needs a
// restart (listeners, data directory, TLS) is reported, not applied.
func reload(d *estd.Daemon, resolve func() (*config.Config, error), running *config.Config, logger *slog.Logger) {
	cfg, err := resolve()
	if err != nil {
		logger.Error("reload failed; keeping the previous configuration", "err", err.Error())
		return
	}
	var profiles []*ca.Profile
	if profiles, err = cfg.CAProfiles(); err == nil {
		err = d.Reload(cfg.ManufacturerCA, cfg.ManufacturerCRL, profiles)
	}
	if err != nil {
		logger.Error("reload failed; keeping the previous configuration", "err", err.Error())
		return
	}
	if cfg.Listen != running.Listen || cfg.Data != running.Data || cfg.PKIListen != running.PKIListen ||
		cfg.MetricsListen != running.MetricsListen || cfg.AdminListen != running.AdminListen || cfg.Store != running.Store ||
		cfg.Timeouts != running.Timeouts || cfg.Limits != running.Limits || !slices.Equal(cfg.Hostnames, running.Hostnames) || cfg.TLS.MinVersion != running.TLS.MinVersion {
		logger.Warn("reload: listeners, data directory, store, host names, timeouts, limits and TLS settings change only on restart")
	}
	logger.Info("reloaded users, manufacturer anchors and CRLs, and profiles")
}

// banner prints what a newcomer needs: where estd serves, the root
// fingerprint, the bootstrap password (once) and an enrollment example.
func banner(w io.Writer, d *estd.Daemon, dir, addr string) {
	root := filepath.Join(dir, estd.RootCertFile)
	if d.Created {
		fmt.Fprintf(w, "estd: created a new CA in %s\n", dir)
		fmt.Fprintf(w, "estd: estd never uses the root CA key %s while it serves; keep it offline (it is needed only to make a new issuing CA: estd ca rollover -root-key)\n", filepath.Join(dir, estd.RootKeyFile))
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
		fmt.Fprintf(e.stderr, "usage: estd user add|list|remove [-data DIR] [-admin] [NAME]\n")
		return 2
	}
	if len(args) == 0 {
		return usage()
	}
	verb := args[0]
	fs := flag.NewFlagSet("estd user "+verb, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	data := fs.String("data", "estd-data", "data `directory`")
	adminUsers := fs.Bool("admin", false, "manage the admin dashboard's users (file "+estd.AdminUsersFile+") instead of EST users")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	path := filepath.Join(*data, estd.UsersFile)
	if *adminUsers {
		path = filepath.Join(*data, estd.AdminUsersFile)
	}
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
	if *adminUsers {
		fmt.Fprintf(e.stderr, "estd: %s admin user %q; a running dashboard applies it at once\n", map[string]string{"add": "saved", "remove": "removed"}[verb], fs.Arg(0))
		return 0
	}
	fmt.Fprintf(e.stderr, "estd: %s user %q; send SIGHUP to a running estd to reload\n", map[string]string{"add": "saved", "remove": "removed"}[verb], fs.Arg(0))
	return 0
}

func loadConfig(path string) (*config.Config, error) { return config.Load(path) }
