package pgtest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func query[T any](t *testing.T, conn *pgx.Conn, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := conn.QueryRow(t.Context(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

func TestNewDatabase(t *testing.T) {
	c := Shared(t)
	admin := connect(t, c.DSN())
	var names [2]string
	t.Run("db", func(t *testing.T) {
		for i := range names {
			conn := connect(t, NewDatabase(t))
			names[i] = query[string](t, conn, `SELECT current_database()`)
			if _, err := conn.Exec(t.Context(), `CREATE TABLE t (x int)`); err != nil {
				t.Fatal(err)
			}
		}
		if names[0] == names[1] {
			t.Fatalf("two databases named %s", names[0])
		}
	})
	// The subtest's cleanup dropped both, even with sessions still open.
	for _, name := range names {
		if n := query[int](t, admin, `SELECT count(*) FROM pg_database WHERE datname = $1`, name); n != 0 {
			t.Errorf("database %s still exists after its test", name)
		}
	}
}

func TestDurableSettings(t *testing.T) {
	if os.Getenv(EnvDSN) != "" {
		t.Skip("an external server has its own settings")
	}
	conn := connect(t, NewDatabase(t))
	for setting, want := range map[string]string{
		"fsync":              "on",
		"synchronous_commit": "on",
		"full_page_writes":   "on",
		"listen_addresses":   "127.0.0.1",
		"server_encoding":    "UTF8",
	} {
		if got := query[string](t, conn, `SELECT current_setting($1)`, setting); got != want {
			t.Errorf("%s = %s, want %s", setting, got, want)
		}
	}
}

func TestWithDatabase(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"postgres://u:p@h:5/postgres?sslmode=disable", "postgres://u:p@h:5/x?sslmode=disable"},
		{"postgresql://h/", "postgresql://h/x"},
		{"postgres://h/a?dbname=a", "postgres://h/x?dbname=x"},
		{"host=h user=u dbname=postgres ", "host=h user=u dbname=postgres dbname=x"},
	} {
		got, err := withDatabase(c.in, "x")
		if err != nil || got != c.want {
			t.Errorf("withDatabase(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	// A later keyword wins, as the test relies on.
	cfg, err := pgx.ParseConfig("host=h dbname=postgres dbname=x")
	if err != nil || cfg.Database != "x" {
		t.Errorf("ParseConfig: database %q, %v; want x", cfg.Database, err)
	}
}

// TestNoOrphanOnKill kills a test binary that has a cluster running and
// checks that its postgres goes too, and that the next start removes the
// directory it left.
func TestNoOrphanOnKill(t *testing.T) {
	if os.Getenv("PGTEST_HELPER") == "1" {
		c := Start(t)
		fmt.Printf("cluster %d %s\n", c.proc.Pid, c.dir)
		select {} // until killed
	}
	if runtime.GOOS != "linux" {
		t.Skip("only Linux has a parent-death signal")
	}
	if os.Getenv(EnvDSN) != "" {
		t.Skip("no cluster to orphan with an external server")
	}
	Shared(t) // skips or fails here if PostgreSQL is missing

	cmd := exec.Command(os.Args[0], "-test.run=^TestNoOrphanOnKill$", "-test.v")
	cmd.Env = append(os.Environ(), "PGTEST_HELPER=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var (
		pid int
		dir string
	)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "cluster %d %s", &pid, &dir); err == nil {
			break
		}
	}
	if pid == 0 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("the helper did not report its cluster")
	}
	if !strings.HasPrefix(filepath.Base(dir), dirPrefix) {
		t.Fatalf("cluster directory %s", dir)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	// postgres is not our child, so there is no exit to wait for: poll.
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("postgres (pid %d) outlived the killed test binary by 30s", pid)
		}
		<-tick.C
	}
	if _, err := os.Stat(filepath.Join(dir, "owner.pid")); err != nil {
		t.Fatalf("the killed binary's directory: %v", err)
	}
	sweep()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("sweep left %s: %v", dir, err)
	}
}

// TestPortTaken starts a cluster on ports that are taken, first by another
// cluster that would accept it, then by a listener that never answers: it
// must end up on a port of its own.
func TestPortTaken(t *testing.T) {
	if os.Getenv(EnvDSN) != "" {
		t.Skip("no cluster to start with an external server")
	}
	other, err := url.Parse(Shared(t).DSN()) // skips or fails here if PostgreSQL is missing
	if err != nil {
		t.Fatal(err)
	}
	otherPort, _ := strconv.Atoi(other.Port())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	silentPort := l.Addr().(*net.TCPAddr).Port

	real := freePort
	var calls int
	freePort = func() (int, error) {
		calls++
		switch calls {
		case 1:
			return otherPort, nil
		case 2:
			return silentPort, nil
		}
		return real()
	}
	defer func() { freePort = real }()

	c := Start(t)
	if calls != 3 {
		t.Errorf("%d port choices, want 3", calls)
	}
	conn := connect(t, c.DSN())
	if dir := query[string](t, conn, `SELECT current_setting('data_directory')`); !strings.HasPrefix(dir, c.dir) {
		t.Errorf("connected to the cluster in %s, want the one in %s", dir, c.dir)
	}
}

func TestReadPid(t *testing.T) {
	p := filepath.Join(t.TempDir(), "postmaster.pid")
	os.WriteFile(p, []byte(strconv.Itoa(os.Getpid())+"\n/data\n123\n"), 0o600)
	if pid, err := readPid(p); err != nil || pid != os.Getpid() || !alive(pid) {
		t.Errorf("readPid = %d, %v", pid, err)
	}
}
