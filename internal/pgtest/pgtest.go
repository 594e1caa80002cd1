// Package pgtest gives tests a real PostgreSQL server and a fresh database
// per test.
//
// By default the server is a throw-away cluster: initdb creates it in a
// temporary directory, and the test binary runs postgres on a free loopback
// port (unix sockets in the same directory), with fsync on, trust
// authentication and small buffers. When the test runs as root, initdb and
// postgres run as the "postgres" system user, since PostgreSQL refuses root.
// With ESTKIT_TEST_POSTGRES_DSN set, tests use that existing server instead;
// its DSN must name a role allowed to create databases (PostgreSQL 13 or
// later, for DROP DATABASE ... WITH (FORCE)).
//
// A test package shares one cluster, since initdb takes a while:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
//	func TestSomething(t *testing.T) {
//		dsn := pgtest.NewDatabase(t) // a new, empty database, dropped at cleanup
//		...
//	}
//
// The cluster starts on first use, so a run that selects no PostgreSQL test
// pays nothing. Without PostgreSQL installed, the tests that need it skip
// loudly, or fail under CI=true (see internal/testenv).
//
// The postmaster is a direct child of the test binary and, on Linux, gets
// SIGQUIT (immediate shutdown) if the test binary dies, so no server
// outlives a panicking or killed test. A directory left behind by such a run is removed
// by the next one.
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/estkit/estkit/internal/testenv"
)

// EnvDSN names the environment variable that points the tests at an existing
// server instead of a throw-away cluster.
const EnvDSN = "ESTKIT_TEST_POSTGRES_DSN"

// component is what testenv.Missing reports when PostgreSQL is not installed.
const component = "PostgreSQL (Debian package postgresql)"

// dirPrefix starts the name of every temporary cluster directory.
const dirPrefix = "estkit-pgtest-"

const (
	startTimeout = 60 * time.Second // initdb plus the server becoming ready
	stopTimeout  = 30 * time.Second // a fast shutdown, before harsher signals
	dbTimeout    = 60 * time.Second // CREATE or DROP DATABASE
)

var errMissing = errors.New("PostgreSQL is not installed")

// Cluster is a running PostgreSQL server.
type Cluster struct {
	dsn    string // superuser DSN of the maintenance database "postgres"
	prefix string // of the databases NewDatabase creates; unique to this Cluster
	seq    atomic.Int64

	// Only for a cluster this package started:
	dir    string        // temporary directory: data/, sockets, postgres.log
	proc   *os.Process   // the postmaster
	exited chan struct{} // closed when the postmaster has exited
	once   sync.Once
}

// DSN returns the URL of the server's maintenance database, connecting as a
// superuser (for an external server, the role of ESTKIT_TEST_POSTGRES_DSN).
func (c *Cluster) DSN() string { return c.dsn }

// NewDatabase creates an empty database with a name no other test uses,
// drops it (disconnecting any remaining sessions) when the test ends, and
// returns its DSN.
func (c *Cluster) NewDatabase(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("%s_%s_%d", c.prefix, nameFragment(tb.Name()), c.seq.Add(1))
	ident := pgx.Identifier{name}.Sanitize()
	if err := c.admin("CREATE DATABASE " + ident + " TEMPLATE template0"); err != nil {
		tb.Fatalf("pgtest: create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		if err := c.admin("DROP DATABASE IF EXISTS " + ident + " WITH (FORCE)"); err != nil {
			tb.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	dsn, err := withDatabase(c.dsn, name)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	return dsn
}

// admin runs one statement on the maintenance database.
func (c *Cluster) admin(stmt string) error {
	ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, stmt)
	return err
}

// nameFragment turns a test name into something readable and safe in a
// database name, for finding leftovers on a shared server.
func nameFragment(testName string) string {
	b := []byte(strings.ToLower(testName))
	for i, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			b[i] = '_'
		}
	}
	return string(b[:min(len(b), 24)])
}

// withDatabase returns dsn with its database replaced by name. dsn is a
// postgres:// URL or a keyword/value string.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse DSN: %w", err)
		}
		u.Path, u.RawPath = "/"+name, ""
		q := u.Query()
		if q.Has("dbname") {
			q.Set("dbname", name)
			u.RawQuery = q.Encode()
		}
		return u.String(), nil
	}
	// A later keyword overrides an earlier one. name needs no quoting.
	return strings.TrimSpace(dsn) + " dbname=" + name, nil
}

// Start starts a cluster (or attaches to the server of
// ESTKIT_TEST_POSTGRES_DSN) for one test and stops it when the test ends.
// Most tests want the shared cluster of NewDatabase instead.
func Start(tb testing.TB) *Cluster {
	tb.Helper()
	c, err := start()
	if errors.Is(err, errMissing) {
		testenv.Missing(tb, component)
	}
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() {
		if err := c.Stop(); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	return c
}

// shared is the cluster of the test package, started on first use.
var shared struct {
	mu      sync.Mutex
	inMain  bool
	started bool
	c       *Cluster
	err     error
}

// Main runs the tests and then stops the shared cluster, if any test started
// it. Call it from TestMain: os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()

	code := m.Run()

	shared.mu.Lock()
	c := shared.c
	shared.c, shared.err = nil, errors.New("the tests are over")
	shared.mu.Unlock()
	if c != nil {
		if err := c.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// Shared returns the test package's cluster, starting it on first use. The
// package's TestMain must call Main, which stops it.
func Shared(tb testing.TB) *Cluster {
	tb.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.inMain {
		tb.Fatal("pgtest: the shared cluster needs func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }")
	}
	if !shared.started {
		shared.started = true
		shared.c, shared.err = start()
	}
	if errors.Is(shared.err, errMissing) {
		testenv.Missing(tb, component)
	}
	if shared.err != nil {
		tb.Fatalf("pgtest: %v", shared.err)
	}
	return shared.c
}

// NewDatabase creates a database on the shared cluster for this test (see
// Cluster.NewDatabase) and returns its DSN.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	return Shared(tb).NewDatabase(tb)
}

// start attaches to the server of EnvDSN or starts a cluster.
func start() (*Cluster, error) {
	var b [4]byte
	rand.Read(b[:])
	prefix := "estkit_" + hex.EncodeToString(b[:])

	if dsn := os.Getenv(EnvDSN); dsn != "" {
		c := &Cluster{dsn: dsn, prefix: prefix}
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvDSN, err)
		}
		conn.Close(ctx)
		return c, nil
	}

	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	cred, err := runAsUser()
	if err != nil {
		return nil, err
	}
	sweep()
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, err
	}
	c := &Cluster{prefix: prefix, dir: dir}
	if err := c.init(bin, cred); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

// findBin returns the directory holding initdb and postgres: the newest
// Debian /usr/lib/postgresql/N/bin, else wherever PATH has initdb.
func findBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(dir string) int {
		n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
		return n
	}
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errMissing
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// init creates the cluster in c.dir and starts the server.
func (c *Cluster) init(bin string, cred runAs) error {
	if err := os.WriteFile(filepath.Join(c.dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return err
	}
	if err := chown(c.dir, cred); err != nil {
		return err
	}
	data := filepath.Join(c.dir, "data")

	// --no-sync only skips initdb's final flush of the new files; the server
	// itself runs with fsync on.
	initdb := c.command(cred, filepath.Join(bin, "initdb"),
		"--pgdata="+data, "--username=postgres", "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync")
	var out bytes.Buffer
	initdb.Stdout, initdb.Stderr = &out, &out
	done, err := startChild(initdb)
	if err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	select {
	case err = <-done:
	case <-time.After(startTimeout):
		initdb.Process.Kill()
		err = fmt.Errorf("timed out after %v", startTimeout)
		<-done
	}
	if err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out.Bytes())
	}

	// The port is free when chosen but may be taken before postgres binds
	// it; then postgres exits and another port is tried.
	var errs []error
	for range 5 {
		err := c.serve(bin, cred, data)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	return errors.Join(errs...)
}

var errPortTaken = errors.New("port taken")

// serve starts postgres on a free port and waits until it accepts
// connections.
func (c *Cluster) serve(bin string, cred runAs, data string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	logPath := filepath.Join(c.dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close() // postgres has its own descriptor
	cmd := c.command(cred, filepath.Join(bin, "postgres"),
		"-D", data,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port="+strconv.Itoa(port),
		"-c", "unix_socket_directories="+c.dir,
		"-c", "fsync=on",
		"-c", "synchronous_commit=on",
		"-c", "full_page_writes=on",
		"-c", "shared_buffers=16MB",
		"-c", "max_connections=200",
		"-c", "huge_pages=off",
		"-c", "logging_collector=off",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	done, err := startChild(cmd)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	c.proc = cmd.Process
	c.exited = make(chan struct{})
	go func() {
		<-done
		close(c.exited)
	}()
	c.dsn = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		// A short timeout per attempt: if the port turns out to be someone
		// else's, whatever listens there may never answer.
		attempt, cancelAttempt := context.WithTimeout(ctx, time.Second)
		conn, err := pgx.Connect(attempt, c.dsn)
		if err == nil {
			// Another test binary's cluster may have got the port first.
			var dir string
			err = conn.QueryRow(attempt, `SELECT current_setting('data_directory')`).Scan(&dir)
			conn.Close(attempt)
			if err == nil && filepath.Clean(dir) != filepath.Clean(data) {
				err = fmt.Errorf("port %d belongs to the cluster in %s", port, dir)
			}
		}
		cancelAttempt()
		if err == nil {
			return nil
		}
		select {
		case <-c.exited:
			log, _ := os.ReadFile(logPath)
			if bytes.Contains(log, []byte("could not bind")) {
				return fmt.Errorf("postgres on port %d: %w", port, errPortTaken)
			}
			return fmt.Errorf("postgres exited before accepting connections:\n%s", log)
		case <-ctx.Done():
			log, _ := os.ReadFile(logPath)
			c.Stop()
			return fmt.Errorf("postgres not ready after %v: %v\n%s", startTimeout, err, log)
		case <-tick.C:
		}
	}
}

// command returns a command that runs as cred in the cluster directory, with
// a minimal environment so that no PG* variable of the caller applies.
func (c *Cluster) command(cred runAs, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = c.dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "TZ=UTC"}
	cmd.SysProcAttr = procAttr(cred)
	return cmd
}

// startChild starts cmd and returns a channel that receives the result of
// Wait. The kernel sends Pdeathsig when the thread that forked the child
// exits, not the process, so the start happens on a goroutine locked to its
// thread that lives until the child has exited.
func startChild(cmd *exec.Cmd) (<-chan error, error) {
	started := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the thread ends with this goroutine, after the child.
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		done <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return done, nil
}

// freePort returns a loopback port that is free now; tests replace it.
var freePort = func() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Stop shuts a started cluster down the way pg_ctl stop -m fast does
// (SIGINT: sessions are disconnected, the server checkpoints and exits),
// escalating to an immediate shutdown and then SIGKILL if it hangs, and
// removes its directory. For an external server it does nothing. Stop is
// safe to call more than once.
func (c *Cluster) Stop() error {
	if c.proc == nil {
		return nil
	}
	var err error
	c.once.Do(func() {
		for _, sig := range stopSignals {
			c.proc.Signal(sig)
			if c.waitExit(stopTimeout) {
				break
			}
			err = errors.Join(err, fmt.Errorf("postgres (pid %d) ignored %v for %v", c.proc.Pid, sig, stopTimeout))
		}
		err = errors.Join(err, os.RemoveAll(c.dir))
	})
	return err
}

// waitExit reports whether the postmaster exits within d.
func (c *Cluster) waitExit(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.exited:
		return true
	case <-t.C:
		return false
	}
}

// sweep removes the cluster directories of test binaries that died without
// stopping their cluster, once neither the binary nor its postgres is alive.
func sweep() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		owner, err := readPid(filepath.Join(dir, "owner.pid"))
		if err != nil {
			continue // being created, or not ours
		}
		if alive(owner) {
			continue
		}
		if pm, err := readPid(filepath.Join(dir, "data", "postmaster.pid")); err == nil && alive(pm) {
			continue
		}
		os.RemoveAll(dir)
	}
}

// readPid reads the process ID on the first line of a file.
func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(first))
}
