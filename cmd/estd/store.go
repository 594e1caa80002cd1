package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/estd"
)

// storeFlags are how `estd migrate` and `estd admin` find the store: the
// configuration file, or -data / -store.
func storeFlags(fs *flag.FlagSet) func() (estd.StoreOptions, error) {
	data := fs.String("data", "estd-data", "data `directory`")
	configFile := fs.String("config", "", "YAML configuration `file`")
	dsn := fs.String("store", "", "PostgreSQL `DSN`")
	return func() (estd.StoreOptions, error) {
		o := estd.StoreOptions{DataDir: *data, DSN: *dsn}
		if *configFile != "" {
			c, err := loadConfig(*configFile)
			if err != nil {
				return o, err
			}
			if o.DataDir == "estd-data" {
				o.DataDir = c.Data
			}
			if o.DSN == "" {
				o.DSN = c.Store.Postgres()
			}
		}
		return o, nil
	}
}

// migrateCmd brings the store's schema to the latest version: what an
// operator runs once before starting nodes whose database role may not
// change the schema.
func migrateCmd(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("estd migrate", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	where := storeFlags(fs)
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return 2
	}
	o, err := where()
	if err != nil {
		fmt.Fprintf(e.stderr, "estd migrate: %v\n", err)
		return 2
	}
	o.Migrating = func(from, to int) {
		fmt.Fprintf(e.stdout, "estd migrate: migrating the schema from version %d to %d: %s\n", from, to, estd.MigrationNote(from, to))
	}
	from, to, err := estd.MigrateStore(ctx, o)
	if err != nil {
		fmt.Fprintf(e.stderr, "estd migrate: %v\n", err)
		return 1
	}
	if from == to {
		fmt.Fprintf(e.stdout, "estd migrate: schema at version %d, nothing to do\n", to)
	} else {
		fmt.Fprintf(e.stdout, "estd migrate: schema migrated from version %d to %d\n", from, to)
	}
	return 0
}

// caInitCmd creates the CA before a first start: with -hsm its keys are
// made inside a PKCS#11 token and never leave it.
func caInitCmd(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("estd ca init", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	data := fs.String("data", "estd-data", "data `directory`")
	hsm := fs.String("hsm", "", "PKCS#11 `URI` with object=NAME (pin-source=file:... for the PIN)")
	keyType := fs.String("key-type", "p256", "CA key `type`: p256, p384, rsa2048, rsa3072, rsa4096")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return 2
	}
	kt, err := ca.ParseKeyType(*keyType)
	if err != nil || kt == ca.Ed25519 {
		fmt.Fprintf(e.stderr, "estd ca init: -key-type: want p256, p384, rsa2048, rsa3072 or rsa4096\n")
		return 2
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, nil))
	if err := estd.InitCA(ctx, *data, estd.InitOptions{HSM: *hsm, KeyType: kt, Logger: logger}); err != nil {
		fmt.Fprintf(e.stderr, "estd ca init: %v\n", err)
		return 1
	}
	where := "key files in " + *data
	if *hsm != "" {
		where = "keys in the PKCS#11 token, never exported"
	}
	fmt.Fprintf(e.stdout, "estd ca init: created a root and an issuing CA in %s (%s)\n", *data, where)
	return 0
}

// caRolloverCmd replaces the issuing CA with a new one, with a new key,
// signed by the root; the one it replaces is retired (estd keeps it for
// the certificates it issued until they expire).
func caRolloverCmd(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("estd ca rollover", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	data := fs.String("data", "estd-data", "data `directory`")
	rootKey := fs.String("root-key", "", "the root CA key: a key `file` or PKCS#11 URI (default: root-ca.key in the data directory)")
	hsm := fs.String("hsm", "", "PKCS#11 `URI` with object=NAME for the new issuing key (default: a key file in the data directory)")
	keyType := fs.String("key-type", "", "key `type` of the new issuing CA: p256, p384, rsa2048, rsa3072, rsa4096 (default: the current one's)")
	passFile := fs.String("ca-key-passphrase-file", "", "`file` with the passphrase of an encrypted issuing key file, and of the root key's unless -root-key-passphrase-file (default: ESTD_CA_KEY_PASSPHRASE)")
	rootPassFile := fs.String("root-key-passphrase-file", "", "`file` with the passphrase of an encrypted root key file, when it differs (default: ESTD_ROOT_KEY_PASSPHRASE, else the issuing key's)")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return 2
	}
	var kt ca.KeyType
	if *keyType != "" {
		var err error
		if kt, err = ca.ParseKeyType(*keyType); err != nil || kt == ca.Ed25519 {
			fmt.Fprintf(e.stderr, "estd ca rollover: -key-type: want p256, p384, rsa2048, rsa3072 or rsa4096\n")
			return 2
		}
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, nil))
	r, err := estd.RolloverCA(ctx, *data, estd.RolloverOptions{RootKey: *rootKey, HSM: *hsm, KeyType: kt,
		Key: estd.KeyOptions{PassphraseFile: *passFile}, RootPassphraseFile: *rootPassFile, Logger: logger})
	if err != nil {
		fmt.Fprintf(e.stderr, "estd ca rollover: %v\n", err)
		return 1
	}
	fmt.Fprintf(e.stdout, "estd ca rollover: new issuing CA %q (serial %s, until %s); %q retired to %s.\n"+
		"Restart estd to use it (on every node, with a copy of the data directory's CA files). Certificates the retired CA\n"+
		"issued stay valid and renew as before; the new CA's CRL is at /crl/%x (crl_url with /%x appended to its path).\n",
		r.Issuing.Subject.CommonName, r.Issuing.SerialNumber.Text(16), r.Issuing.NotAfter.Format(time.DateOnly),
		r.Retired.Subject.CommonName, r.RetiredAs, r.Issuing.SubjectKeyId, r.Issuing.SubjectKeyId)
	return 0
}

// backupCmd writes a gzipped tar of the data directory's CA, users and keys
// and of a consistent copy of the SQLite database, while estd serves.
func backupCmd(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("estd backup", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	where := storeFlags(fs)
	out := fs.String("out", "", "the backup `file` to create (.tar.gz, mode 0600)")
	noKeys := fs.Bool("no-keys", false, "leave private keys and serverkeygen keys out")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 || *out == "" {
		fmt.Fprintf(e.stderr, "usage: estd backup -out FILE [-config FILE | -data DIR] [-no-keys]\n")
		return 2
	}
	o, err := where()
	if err != nil {
		fmt.Fprintf(e.stderr, "estd backup: %v\n", err)
		return 2
	}
	if _, err := os.Stat(*out); err == nil {
		fmt.Fprintf(e.stderr, "estd backup: %s exists\n", *out)
		return 1
	}
	// Written beside the archive (the database's copy too: it can be as
	// large as the database) under a name of its own, and linked to its
	// name once complete: an archive that exists is whole, one killed
	// half-way blocks no later run, and an archive that appeared meanwhile
	// is not replaced.
	dir := filepath.Dir(*out)
	f, err := os.CreateTemp(dir, "."+filepath.Base(*out)+".partial-*")
	if err != nil {
		fmt.Fprintf(e.stderr, "estd backup: %v\n", err)
		return 1
	}
	partial := f.Name()
	defer os.Remove(partial)
	sum, err := estd.Backup(ctx, f, estd.BackupOptions{Store: o, NoKeys: *noKeys, TempDir: dir})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = publish(partial, *out)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "estd backup: %v\n", err)
		return 1
	}
	if err := syncDir(dir); err != nil {
		fmt.Fprintf(e.stderr, "estd backup: warning: the archive is whole, but syncing its directory failed: %v\n", err)
	}
	fmt.Fprintf(e.stdout, "estd backup: wrote %s: %s\n", *out, strings.Join(sum.Files, ", "))
	if slices.Contains(sum.Files, estd.RootKeyFile) {
		fmt.Fprintf(e.stdout, "estd backup: the backup holds the root CA key (%s): keep it offline, as the key should be\n", estd.RootKeyFile)
	}
	if sum.PINsDropped {
		fmt.Fprintf(e.stdout, "estd backup: key references are kept without their PIN (pin-value): add pin-source=file:... to them after a restore\n")
	}
	var needed []string
	for _, k := range sum.KeysLeftOut {
		if k != estd.RootKeyFile { // kept offline anyway; estd never uses it while it serves
			needed = append(needed, k)
		}
	}
	if len(needed) > 0 {
		fmt.Fprintf(e.stdout, "estd backup: left out (-no-keys), and needed by a restore: %s\n", strings.Join(needed, ", "))
	}
	if !sum.IssuingKey && !slices.Contains(needed, estd.IssuingKeyFile) {
		fmt.Fprintf(e.stdout, "estd backup: the issuing CA's key is not in the backup (ca_key elsewhere): keep it safe apart, a restore needs it\n")
	}
	if sum.Database {
		fmt.Fprintf(e.stdout, "estd backup: restore with: mkdir DIR && tar -xzf %s -C DIR && estd -data DIR\n", *out)
	} else {
		fmt.Fprintf(e.stdout, "estd backup: the database is PostgreSQL and not in the backup: back it up with pg_dump. Restore it with pg_restore, then: mkdir DIR && tar -xzf %s -C DIR && estd -data DIR -store DSN (or -config)\n", *out)
	}
	return 0
}

// publish gives the complete archive at partial its name out, never
// replacing a file there: by a hard link where the file system has them,
// else by a rename after checking that out does not exist.
func publish(partial, out string) error {
	err := os.Link(partial, out)
	if err == nil || errors.Is(err, fs.ErrExist) {
		return err
	}
	if _, err := os.Lstat(out); err == nil {
		return fmt.Errorf("%s exists", out)
	}
	return os.Rename(partial, out)
}

// syncDir makes a new name in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
