package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/estkit/estkit/internal/pgtest"
	"github.com/estkit/estkit/store"
	"github.com/estkit/estkit/store/storetest"
)

// One throw-away cluster serves the whole package; each test gets its own
// database.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func openDSN(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// openNew opens a store on a new database and closes it when the test ends.
func openNew(t *testing.T) *Store {
	t.Helper()
	s := openDSN(t, pgtest.NewDatabase(t))
	t.Cleanup(func() { s.Close() })
	return s
}

// adminConn connects to dsn directly, bypassing the store.
func adminConn(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openDSN(t, pgtest.NewDatabase(t))
	})
}

func TestDurable(t *testing.T) {
	// RunDurable's directory stands for the database: one for the whole run.
	dsn := pgtest.NewDatabase(t)
	storetest.RunDurable(t, func(t *testing.T, dir string) store.Store {
		return openDSN(t, dsn)
	})
}

func TestSchemaVersion(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	for range 2 { // creating, then reopening: migrations apply once
		s := openDSN(t, dsn)
		v, err := s.SchemaVersion(t.Context())
		if err != nil || v != LatestSchemaVersion() {
			t.Errorf("SchemaVersion = %d, %v; want %d", v, err, LatestSchemaVersion())
		}
		var rows int
		if err := s.pool.QueryRow(t.Context(), `SELECT count(*) FROM schema_version`).Scan(&rows); err != nil || rows != LatestSchemaVersion() {
			t.Errorf("schema_version has %d rows (%v), want %d", rows, err, LatestSchemaVersion())
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSchemaTooNew(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	s := openDSN(t, dsn)
	newer := LatestSchemaVersion() + 1
	if _, err := s.pool.Exec(t.Context(), `INSERT INTO schema_version (version) VALUES ($1)`, newer); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err := Open(t.Context(), dsn)
	if err == nil {
		s.Close()
		t.Fatal("Open of a database with a newer schema succeeded")
	}
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open: got %v, want ErrSchemaTooNew", err)
	}
	t.Log(err)
	if v, err := Check(t.Context(), dsn); !errors.Is(err, ErrSchemaTooNew) || v != newer {
		t.Errorf("Check = %d, %v; want %d, ErrSchemaTooNew", v, err, newer)
	}
	if from, to, err := Migrate(t.Context(), dsn); !errors.Is(err, ErrSchemaTooNew) || from != newer || to != newer {
		t.Errorf("Migrate = %d, %d, %v; want %d, %d, ErrSchemaTooNew", from, to, err, newer, newer)
	}
}

func TestCheckAndMigrate(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := t.Context()
	latest := LatestSchemaVersion()
	if latest < 2 {
		t.Fatalf("LatestSchemaVersion = %d", latest)
	}
	if v, err := Check(ctx, dsn); err != nil || v != 0 {
		t.Fatalf("Check of an empty database = %d, %v; want 0, nil", v, err)
	}
	// Check changed nothing.
	conn := adminConn(t, dsn)
	var tables int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("after Check: %d tables, %v; want none", tables, err)
	}

	// An older estd left version 1.
	if _, err := conn.Exec(ctx, `CREATE TABLE schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, migrations[0].SQL); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO schema_version (version) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO certificates (serial, subject, not_before, not_after, key_algorithm,
		profile, requester, auth_method, issued_at, der) VALUES ('1001', 'CN=old', now(), now() + interval '1 day', 'ECDSA-P256', '', 'alice', 'basic', now(), '\x3000')`); err != nil {
		t.Fatal(err)
	}
	if v, err := Check(ctx, dsn); err != nil || v != 1 {
		t.Fatalf("Check = %d, %v; want 1, nil", v, err)
	}
	if from, to, err := Migrate(ctx, dsn); err != nil || from != 1 || to != latest {
		t.Fatalf("Migrate = %d, %d, %v; want 1, %d, nil", from, to, err, latest)
	}
	if from, to, err := Migrate(ctx, dsn); err != nil || from != latest || to != latest {
		t.Fatalf("second Migrate = %d, %d, %v; want %d, %d, nil", from, to, err, latest, latest)
	}
	if v, err := Check(ctx, dsn); err != nil || v != latest {
		t.Fatalf("Check = %d, %v; want %d, nil", v, err, latest)
	}
	// A certificate recorded at version 1 reads, and is superseded, as a
	// new one is.
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ok, err := s.Supersede(ctx, big.NewInt(0x1001), big.NewInt(0x2002), time.Now()); !ok || err != nil {
		t.Fatalf("Supersede of a migrated record = %v, %v", ok, err)
	}
	if rec, err := s.BySerial(ctx, big.NewInt(0x1001)); err != nil || rec.Subject != "CN=old" || rec.SupersededBy == nil || rec.SupersededBy.Int64() != 0x2002 {
		t.Fatalf("migrated record = %+v, %v", rec, err)
	}
}

// TestConcurrentOpen opens a fresh database from many goroutines at once,
// as nodes starting together do: every Open succeeds and each migration is
// applied once, by one transaction.
func TestConcurrentOpen(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	const nodes = 8
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  [nodes]error
	)
	for i := range nodes {
		wg.Go(func() {
			<-start
			s, err := Open(t.Context(), dsn)
			if err == nil {
				err = s.Put(t.Context(), testRecord(int64(i+1)))
				s.Close()
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: %v", i, err)
		}
	}
	conn := adminConn(t, dsn)
	rows, err := conn.Query(t.Context(), `SELECT version, applied_at FROM schema_version ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	var (
		versions []int
		applied  []time.Time
	)
	for rows.Next() {
		var v int
		var at time.Time
		if err := rows.Scan(&v, &at); err != nil {
			t.Fatal(err)
		}
		versions, applied = append(versions, v), append(applied, at)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := make([]int, LatestSchemaVersion())
	for i := range want {
		want[i] = i + 1
	}
	if !slices.Equal(versions, want) {
		t.Errorf("schema_version = %v, want %v", versions, want)
	}
	for _, at := range applied {
		if !at.Equal(applied[0]) { // now() is the transaction's start
			t.Errorf("migrations applied by more than one transaction: %v", applied)
			break
		}
	}
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM certificates`).Scan(&n); err != nil || n != nodes {
		t.Errorf("%d certificates (%v), want %d", n, err, nodes)
	}
}

// TestTwoNodes runs two Stores, each with its own pool, on one database, the
// way two estd nodes do: concurrent Puts from both all land once, a serial
// contested between them goes to exactly one, and each sees the other's
// revocations and approval decisions.
func TestTwoNodes(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := t.Context()
	nodes := [2]*Store{openDSN(t, dsn), openDSN(t, dsn)}
	for _, s := range nodes {
		t.Cleanup(func() { s.Close() })
	}

	const perNode, workers = 300, 8
	var (
		wg     sync.WaitGroup
		start  = make(chan struct{})
		mu     sync.Mutex
		put    []*big.Int
		wins   = map[string]int{}
		serial = func(node, i int) *big.Int { return big.NewInt(int64(1_000_000*(node+1) + i)) }
	)
	for node, s := range nodes {
		for w := range workers {
			wg.Go(func() {
				<-start
				for i := w; i < perNode; i += workers {
					r := testRecord(0)
					r.Serial = serial(node, i)
					r.Requester = fmt.Sprintf("node-%d", node)
					if err := s.Put(ctx, r); err != nil {
						t.Errorf("node %d: Put(%v): %v", node, r.Serial, err)
						continue
					}
					// Every tenth serial is also put on the other node at
					// once; exactly one of the two may win.
					if i%10 == 0 {
						c := testRecord(0)
						c.Serial = big.NewInt(int64(5_000_000 + i))
						err := s.Put(ctx, c)
						mu.Lock()
						if err == nil {
							wins[c.Serial.String()]++
						} else if !errors.Is(err, store.ErrDuplicate) {
							t.Errorf("node %d: contested Put(%v): %v", node, c.Serial, err)
						}
						mu.Unlock()
					}
					mu.Lock()
					put = append(put, r.Serial)
					mu.Unlock()
				}
			})
		}
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for s, n := range wins {
		if n != 1 {
			t.Errorf("contested serial %s recorded by %d nodes", s, n)
		}
	}
	if len(wins) != perNode/10 {
		t.Errorf("%d contested serials recorded, want %d", len(wins), perNode/10)
	}

	// Both nodes list the same, complete ledger.
	for node, s := range nodes {
		seen := map[string]int{}
		var after string
		for {
			recs, next, err := s.List(ctx, store.ListOptions{After: after, Limit: 97})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				seen[r.Serial.String()]++
			}
			if next == "" {
				break
			}
			after = next
		}
		if want := len(put) + len(wins); len(seen) != want {
			t.Errorf("node %d lists %d serials, want %d", node, len(seen), want)
		}
		for _, sn := range put {
			if seen[sn.String()] != 1 {
				t.Errorf("node %d lists serial %v %d times", node, sn, seen[sn.String()])
			}
		}
	}

	// A revocation on node 0 is seen by node 1, and node 1 cannot override it.
	target := serial(1, 7)
	at := time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := nodes[0].Revoke(ctx, target, 1, at); err != nil {
		t.Fatal(err)
	}
	if err := nodes[1].Revoke(ctx, target, 4, at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err := nodes[1].BySerial(ctx, target)
	if err != nil || !got.Revoked || got.RevocationReason != 1 || !got.RevokedAt.Equal(at) {
		t.Errorf("node 1 sees %+v, %v; want the revocation node 0 made first", got, err)
	}

	// Concurrent revocations of one certificate from both nodes: one wins
	// whole, its time and reason together.
	contested := serial(0, 11)
	var rwg sync.WaitGroup
	for i := range 10 {
		rwg.Go(func() {
			if err := nodes[i%2].Revoke(ctx, contested, i, at.Add(time.Duration(i)*time.Minute)); err != nil {
				t.Errorf("Revoke: %v", err)
			}
		})
	}
	rwg.Wait()
	got, err = nodes[0].BySerial(ctx, contested)
	if err != nil || !got.Revoked || !got.RevokedAt.Equal(at.Add(time.Duration(got.RevocationReason)*time.Minute)) {
		t.Errorf("after concurrent revocations: %+v, %v; want the time and reason of one of them", got, err)
	}

	// An approval decided concurrently on both nodes is decided once.
	if _, err := nodes[0].AddRequest(ctx, &store.Request{ID: "r1", Label: "l", Operation: "simpleenroll", CreatedAt: at}, store.PendingLimits{}); err != nil {
		t.Fatal(err)
	}
	var decided [2]error
	var dwg sync.WaitGroup
	for i, s := range nodes {
		dwg.Go(func() { decided[i] = s.Decide(ctx, "r1", store.RequestApproved, fmt.Sprint("op", i), "", at) })
	}
	dwg.Wait()
	if (decided[0] == nil) == (decided[1] == nil) {
		t.Errorf("Decide on both nodes: %v and %v; want exactly one to succeed", decided[0], decided[1])
	}
}

// TestSynchronousCommit: a database whose default is synchronous_commit=off
// still gets durable Puts.
func TestSynchronousCommit(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	conn := adminConn(t, dsn)
	if _, err := conn.Exec(t.Context(), `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = off', current_database()); END $$`); err != nil {
		t.Fatal(err)
	}
	probe := adminConn(t, dsn) // a new session gets the new default
	var sc string
	if err := probe.QueryRow(t.Context(), `SHOW synchronous_commit`).Scan(&sc); err != nil || sc != "off" {
		t.Fatalf("database default synchronous_commit = %q, %v; want off", sc, err)
	}

	s := openDSN(t, dsn)
	defer s.Close()
	// Hold several connections so more than one session is checked.
	for range 3 {
		c, err := s.pool.Acquire(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
		if err := c.QueryRow(t.Context(), `SHOW synchronous_commit`).Scan(&sc); err != nil || sc != "on" {
			t.Errorf("store session synchronous_commit = %q, %v; want on", sc, err)
		}
	}
}

// TestLeastPrivilege: once migrated, a node can run with a role that may
// read and write the tables but create nothing.
func TestLeastPrivilege(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := t.Context()
	if _, _, err := Migrate(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	role := cfg.Database + "_node"
	ident := pgx.Identifier{role}.Sanitize()
	conn := adminConn(t, dsn)
	password := rand.Text()
	if _, err := conn.Exec(ctx, `CREATE ROLE `+ident+` LOGIN PASSWORD '`+password+`'`); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" {
			t.Skipf("cannot create a role on this server: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// After the store is closed and before the database is dropped.
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(context.Background())
		for _, q := range []string{`DROP OWNED BY ` + ident, `DROP ROLE ` + ident} {
			if _, err := conn.Exec(context.Background(), q); err != nil {
				t.Errorf("%s: %v", q, err)
			}
		}
	})
	for _, q := range []string{
		`REVOKE CREATE ON SCHEMA public FROM PUBLIC`,
		`GRANT SELECT ON schema_version TO ` + ident,
		`GRANT SELECT, INSERT, UPDATE ON certificates, requests TO ` + ident,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s := openDSN(t, withUser(t, dsn, role, password))
	t.Cleanup(func() { s.Close() })
	var user string
	if err := s.pool.QueryRow(ctx, `SELECT current_user`).Scan(&user); err != nil || user != role {
		t.Fatalf("current_user = %q, %v; want %q", user, err, role)
	}
	r := testRecord(1)
	if err := s.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, r.Serial, 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddRequest(ctx, &store.Request{ID: "x", CreatedAt: time.Now()}, store.PendingLimits{PerLabel: 10, PerRequester: 10}); err != nil {
		t.Fatal(err)
	}
	// The role really cannot create: the test would prove nothing otherwise.
	if _, err := s.pool.Exec(ctx, `CREATE TABLE t (x int)`); err == nil {
		t.Error("the restricted role can create tables")
	}
}

// withUser returns dsn with another user and password.
func withUser(t *testing.T, dsn, user, password string) string {
	t.Helper()
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return dsn + " user=" + user + " password=" + password // both need no quoting
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, password)
	q := u.Query()
	q.Del("user")
	q.Del("password")
	u.RawQuery = q.Encode()
	return u.String()
}

func TestMicrosecondTimes(t *testing.T) {
	s := openNew(t)
	r := testRecord(1)
	r.NotBefore = time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC)
	r.NotAfter = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	r.IssuedAt = time.Date(2025, 1, 2, 3, 4, 5, 999999999, time.FixedZone("X", -7*3600))
	if err := s.Put(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	at := time.Date(1950, 6, 7, 8, 9, 10, 1500, time.UTC) // before the Unix epoch
	if err := s.Revoke(t.Context(), r.Serial, 1, at); err != nil {
		t.Fatal(err)
	}
	got, err := s.BySerial(t.Context(), r.Serial)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		got, exp time.Time
	}{
		{"NotBefore", got.NotBefore, r.NotBefore},
		{"NotAfter", got.NotAfter, r.NotAfter},
		{"IssuedAt", got.IssuedAt, r.IssuedAt},
		{"RevokedAt", got.RevokedAt, at},
	} {
		want := c.exp.UTC().Truncate(time.Microsecond)
		if !c.got.Equal(want) || c.got.Location() != time.UTC {
			t.Errorf("%s = %v, want %v in UTC", c.name, c.got, want)
		}
	}
}

func TestStoredForm(t *testing.T) {
	s := openNew(t)
	r := testRecord(1)
	r.Serial = new(big.Int).SetBytes([]byte{0x00, 0x0A, 0xBC, 0xDE, 0xF0})
	if err := s.Put(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	var (
		serial    string
		sans      []string
		revokedAt *time.Time
	)
	err := s.pool.QueryRow(t.Context(), `SELECT serial, sans, revoked_at FROM certificates`).Scan(&serial, &sans, &revokedAt)
	if err != nil {
		t.Fatal(err)
	}
	if serial != "abcdef0" {
		t.Errorf("serial stored as %q, want %q", serial, "abcdef0")
	}
	if want := []string{"dns:a.example.com", "ip:192.0.2.1"}; !slices.Equal(sans, want) {
		t.Errorf("sans stored as %q, want %q", sans, want)
	}
	if revokedAt != nil {
		t.Errorf("revoked_at of an unrevoked certificate is %v, want NULL", revokedAt)
	}
	// The schema refuses a serial in any other form.
	for _, bad := range []string{"0abc", "ABC", "", "xyz"} {
		if _, err := s.pool.Exec(t.Context(), `UPDATE certificates SET serial = $1`, bad); err == nil {
			t.Errorf("serial %q accepted", bad)
		}
	}
}

func TestPutRejects(t *testing.T) {
	s := openNew(t)
	farFuture := testRecord(1)
	farFuture.NotAfter = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	for name, r := range map[string]*store.Record{
		"nil record":      nil,
		"nil serial":      {},
		"zero serial":     {Serial: new(big.Int)},
		"negative serial": {Serial: big.NewInt(-5)},
		"year 10000":      farFuture,
	} {
		if err := s.Put(t.Context(), r); err == nil || errors.Is(err, store.ErrDuplicate) {
			t.Errorf("Put(%s) = %v, want a validation error", name, err)
		}
	}
	if recs, _, err := s.List(t.Context(), store.ListOptions{}); err != nil || len(recs) != 0 {
		t.Errorf("List after rejected Puts = %d records, %v; want none", len(recs), err)
	}
	for _, serial := range []*big.Int{nil, new(big.Int), big.NewInt(-5)} {
		if _, err := s.BySerial(t.Context(), serial); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("BySerial(%v) = %v, want ErrNotFound", serial, err)
		}
		if err := s.Revoke(t.Context(), serial, 1, time.Now()); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Revoke(%v) = %v, want ErrNotFound", serial, err)
		}
	}
}

func TestInvalidCursor(t *testing.T) {
	s := openNew(t)
	for _, c := range []string{"x", "-1", "1.5", "99999999999999999999"} {
		_, _, err := s.List(t.Context(), store.ListOptions{After: c})
		if err == nil || !strings.Contains(err.Error(), "cursor") {
			t.Errorf("List(After %q) = %v, want an invalid cursor error", c, err)
		}
		_, _, err = s.Requests(t.Context(), "", store.ListOptions{After: c})
		if err == nil || !strings.Contains(err.Error(), "cursor") {
			t.Errorf("Requests(After %q) = %v, want an invalid cursor error", c, err)
		}
	}
}

func TestDuplicateIsConstraint(t *testing.T) {
	s := openNew(t)
	ctx := t.Context()
	if err := s.Put(ctx, testRecord(1)); err != nil {
		t.Fatal(err)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO certificates
		(serial, subject, not_before, not_after, key_algorithm, profile, requester, auth_method, issued_at, der)
		SELECT serial, subject, not_before, not_after, key_algorithm, profile, requester, auth_method, issued_at, der
		FROM certificates`)
	if !isDuplicateSerial(err) {
		t.Errorf("duplicate insert error %v is not recognised as a duplicate serial", err)
	}
	// Another unique key is not the serial.
	_, err = s.pool.Exec(ctx, `INSERT INTO requests (id, label, operation, requester, auth_method, subject, key_algorithm, csr, created_at, status)
		VALUES ('a', '', '', '', '', '', '', '', now(), 'pending'), ('a', '', '', '', '', '', '', '', now(), 'pending')`)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != uniqueViolation {
		t.Fatalf("duplicate request ID: %v, want a unique violation", err)
	}
	if isDuplicateSerial(err) {
		t.Error("a duplicate request ID is taken for a duplicate serial")
	}
	if isDuplicateSerial(errors.New("duplicate key value violates unique constraint")) {
		t.Error("a plain error is taken for a duplicate serial")
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := t.Context()
	if _, err := Open(ctx, ""); err == nil {
		t.Error("Open with an empty DSN succeeded")
	}
	if _, err := Open(ctx, "postgres://u:hunter2@127.0.0.1:bad/db"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Open with a malformed DSN: %v; want an error without the password", err)
	}
	// Port 1 on loopback: nothing listens.
	if _, err := Open(ctx, "postgres://u:hunter2@127.0.0.1:1/db?connect_timeout=5"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Open of an unreachable server: %v; want an error without the password", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Open(canceled, pgtest.NewDatabase(t)); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a canceled context: %v, want context.Canceled", err)
	}
}

func TestPoolSettings(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	withParams := dsn + " pool_max_conns=3 application_name=node-a"
	if u, err := url.Parse(dsn); err == nil && strings.HasPrefix(u.Scheme, "postgres") {
		q := u.Query()
		q.Set("pool_max_conns", "3")
		q.Set("application_name", "node-a")
		u.RawQuery = q.Encode()
		withParams = u.String()
	}
	s := openDSN(t, withParams)
	defer s.Close()
	if got := s.pool.Config().MaxConns; got != 3 {
		t.Errorf("MaxConns = %d, want 3", got)
	}
	var app string
	if err := s.pool.QueryRow(t.Context(), `SELECT current_setting('application_name')`).Scan(&app); err != nil || app != "node-a" {
		t.Errorf("application_name = %q, %v; want node-a", app, err)
	}
	s2 := openDSN(t, dsn)
	defer s2.Close()
	if err := s2.pool.QueryRow(t.Context(), `SELECT current_setting('application_name')`).Scan(&app); err != nil || app != "estd" {
		t.Errorf("default application_name = %q, %v; want estd", app, err)
	}
}

func testRecord(serial int64) *store.Record {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	return &store.Record{
		Serial:       big.NewInt(serial),
		Subject:      "CN=test",
		SANs:         []string{"dns:a.example.com", "ip:192.0.2.1"},
		NotBefore:    t0,
		NotAfter:     t0.AddDate(1, 0, 0),
		KeyAlgorithm: "ECDSA-P256",
		Requester:    "alice",
		AuthMethod:   "basic",
		IssuedAt:     t0,
		DER:          []byte{0x30, 0x03, 0x02, 0x01, 0x01},
	}
}

// TestPendingCapIsolation: the pending-request cap holds whatever isolation
// level the database gives transactions by default. Two AddRequests queue
// on the label's lock (held here) under REPEATABLE READ, where a snapshot
// taken before the lock was granted would miss the first one's insert.
func TestPendingCapIsolation(t *testing.T) {
	for _, level := range []string{"repeatable read", "serializable"} {
		t.Run(strings.ReplaceAll(level, " ", "-"), func(t *testing.T) {
			dsn := pgtest.NewDatabase(t)
			u, err := url.Parse(dsn)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			q.Set("default_transaction_isolation", level)
			u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
			s := openDSN(t, u.String())
			defer s.Close()
			admin := adminConn(t, dsn)
			if _, err := admin.Exec(t.Context(), `SELECT pg_advisory_lock($1, hashtext($2))`, pendingLocks, "held"); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i := range 2 {
				wg.Go(func() {
					_, errs[i] = s.AddRequest(t.Context(), &store.Request{ID: fmt.Sprintf("r%d", i), Label: "held", Requester: "d",
						Operation: "simpleenroll", CSR: []byte{1}, CreatedAt: time.Now()}, store.PendingLimits{PerLabel: 1})
				})
			}
			time.Sleep(300 * time.Millisecond) // both wait for the lock
			if _, err := admin.Exec(t.Context(), `SELECT pg_advisory_unlock($1, hashtext($2))`, pendingLocks, "held"); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			pending, _, err := s.Requests(t.Context(), store.RequestPending, store.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			refused := 0
			for _, err := range errs {
				switch {
				case errors.Is(err, store.ErrTooManyPending):
					refused++
				case err != nil:
					t.Errorf("AddRequest: %v", err)
				}
			}
			if len(pending) != 1 || refused != 1 {
				t.Fatalf("%d pending, %d refused with max_pending 1; want 1 and 1", len(pending), refused)
			}
		})
	}
}

// TestWithdrawWaitsForSupersede: a Withdraw of a renewal whose Supersede is
// still running on another connection (its answer lost) waits for it, and
// then keeps the renewal: the old certificate and its successor are never
// both revoked.
func TestWithdrawWaitsForSupersede(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	s := openDSN(t, dsn)
	defer s.Close()
	ctx := t.Context()
	old, renewed := testRecord(0x100), testRecord(0x200)
	for _, r := range []*store.Record{old, renewed} {
		if err := s.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	inflight := adminConn(t, dsn)
	tx, err := inflight.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, supersede, nullTime(at), store.ReasonSuperseded, serialKey(renewed.Serial), serialKey(old.Serial)); err != nil {
		t.Fatal(err)
	}
	done := make(chan bool, 1)
	go func() {
		superseded, err := s.Withdraw(ctx, renewed.Serial, old.Serial, at)
		if err != nil {
			t.Error(err)
		}
		done <- superseded
	}()
	select {
	case <-done:
		t.Fatal("Withdraw did not wait for the Supersede in flight")
	case <-time.After(300 * time.Millisecond):
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if superseded := <-done; !superseded {
		t.Error("Withdraw after the Supersede committed reported it had not")
	}
	if n, _ := s.BySerial(ctx, renewed.Serial); n.Revoked {
		t.Error("the recorded successor was withdrawn")
	}
}
