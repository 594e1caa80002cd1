package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit/store"
	"github.com/estkit/estkit/store/storetest"
)

func openAt(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return s
}

// openTemp opens a new database in a temporary directory and closes it when
// the test ends.
func openTemp(t *testing.T) *Store {
	t.Helper()
	s := openAt(t, filepath.Join(t.TempDir(), "estd.db"))
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openAt(t, filepath.Join(t.TempDir(), "estd.db"))
	})
}

func TestDurable(t *testing.T) {
	storetest.RunDurable(t, func(t *testing.T, dir string) store.Store {
		return openAt(t, filepath.Join(dir, "estd.db"))
	})
}

func TestSchemaVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "estd.db")
	for range 2 { // creating, then reopening: migrations apply once
		s := openAt(t, path)
		v, err := s.SchemaVersion(t.Context())
		if err != nil || v != len(migrations) {
			t.Errorf("SchemaVersion = %d, %v; want %d", v, err, len(migrations))
		}
		var rows int
		if err := s.r.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM schema_version`).Scan(&rows); err != nil || rows != len(migrations) {
			t.Errorf("schema_version has %d rows (%v), want %d", rows, err, len(migrations))
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSchemaTooNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "estd.db")
	s := openAt(t, path)
	newer := len(migrations) + 1
	if _, err := s.w.ExecContext(t.Context(), `INSERT INTO schema_version (version, applied_at) VALUES (?, ?)`, newer, "2999-01-01T00:00:00.000000000Z"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(t.Context(), path)
	if err == nil {
		s.Close()
		t.Fatal("Open of a database with a newer schema succeeded")
	}
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open: got %v, want ErrSchemaTooNew", err)
	}
	t.Log(err)
}

func TestAwkwardPath(t *testing.T) {
	// Characters that mean something in a URI or a DSN must reach the file
	// system as they are.
	path := filepath.Join(t.TempDir(), "a b?c=d#e%20f&_pragma=x", "estd.db")
	s := openAt(t, path)
	if err := s.Put(t.Context(), testRecord(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, path)
	defer s.Close()
	if _, err := s.BySerial(t.Context(), big.NewInt(1)); err != nil {
		t.Errorf("BySerial after reopening: %v", err)
	}
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "estd")
	path := filepath.Join(dir, "estd.db")
	s := openAt(t, path)
	t.Cleanup(func() { s.Close() })
	if err := s.Put(t.Context(), testRecord(1)); err != nil {
		t.Fatal(err)
	}

	checkMode := func(name string, want fs.FileMode) {
		t.Helper()
		fi, err := os.Stat(name)
		if err != nil {
			t.Error(err)
			return
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", name, got, want)
		}
	}
	checkMode(dir, 0o700)
	checkMode(path, 0o600)
	// While the store is open in WAL mode these exist, with the database's mode.
	checkMode(path+"-wal", 0o600)
	checkMode(path+"-shm", 0o600)
}

func TestPragmas(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	check := func(pool string, conn *sql.Conn, pragma, want string) {
		t.Helper()
		var got string
		if err := conn.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Errorf("%s: PRAGMA %s: %v", pool, pragma, err)
		} else if got != want {
			t.Errorf("%s: PRAGMA %s = %s, want %s", pool, pragma, got, want)
		}
	}
	common := func(pool string, conn *sql.Conn) {
		t.Helper()
		check(pool, conn, "journal_mode", "wal")
		check(pool, conn, "synchronous", "2") // FULL
		check(pool, conn, "foreign_keys", "1")
		check(pool, conn, "busy_timeout", "5000")
	}

	w, err := s.w.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	common("writer", w)
	check("writer", w, "query_only", "0")
	w.Close()

	// Hold two reader connections at once so that both are distinct.
	for i := range 2 {
		r, err := s.r.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		pool := fmt.Sprintf("reader %d", i)
		common(pool, r)
		check(pool, r, "query_only", "1")
	}
}

func TestNanosecondTimes(t *testing.T) {
	s := openTemp(t)
	r := testRecord(1)
	r.NotBefore = time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC)
	r.NotAfter = time.Date(2026, 1, 2, 3, 4, 5, 1, time.UTC)
	r.IssuedAt = time.Date(2025, 1, 2, 3, 4, 5, 999999999, time.FixedZone("X", -7*3600))
	if err := s.Put(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 6, 7, 8, 9, 10, 11, time.UTC)
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
		if !c.got.Equal(c.exp) || c.got.Location() != time.UTC {
			t.Errorf("%s = %v, want %v in UTC", c.name, c.got, c.exp.UTC())
		}
	}
}

func TestStoredForm(t *testing.T) {
	s := openTemp(t)
	r := testRecord(1)
	r.Serial = new(big.Int).SetBytes([]byte{0x00, 0x0A, 0xBC, 0xDE, 0xF0})
	if err := s.Put(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	var serial, sans, notBefore string
	var revokedAt sql.NullString
	err := s.r.QueryRowContext(t.Context(), `SELECT serial, sans, not_before, revoked_at FROM certificates`).
		Scan(&serial, &sans, &notBefore, &revokedAt)
	if err != nil {
		t.Fatal(err)
	}
	if serial != "abcdef0" {
		t.Errorf("serial stored as %q, want %q", serial, "abcdef0")
	}
	if want := `["dns:a.example.com","ip:192.0.2.1"]`; sans != want {
		t.Errorf("sans stored as %s, want %s", sans, want)
	}
	if want := "2025-01-02T03:04:05.000000000Z"; notBefore != want {
		t.Errorf("not_before stored as %q, want %q", notBefore, want)
	}
	if revokedAt.Valid {
		t.Errorf("revoked_at of an unrevoked certificate is %q, want NULL", revokedAt.String)
	}
}

func TestPutRejects(t *testing.T) {
	s := openTemp(t)
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
	s := openTemp(t)
	for _, c := range []string{"x", "-1", "1.5", "99999999999999999999"} {
		_, _, err := s.List(t.Context(), store.ListOptions{After: c})
		if err == nil || !strings.Contains(err.Error(), "cursor") {
			t.Errorf("List(After %q) = %v, want an invalid cursor error", c, err)
		}
	}
}

func TestDuplicateIsConstraintCode(t *testing.T) {
	s := openTemp(t)
	r := testRecord(1)
	if err := s.Put(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	_, err := s.w.ExecContext(t.Context(), `INSERT INTO certificates
		(serial, subject, sans, not_before, not_after, key_algorithm, profile, requester, auth_method, issued_at, der)
		SELECT serial, subject, sans, not_before, not_after, key_algorithm, profile, requester, auth_method, issued_at, der
		FROM certificates`)
	if !isUniqueViolation(err) {
		t.Errorf("duplicate insert error %v is not recognised as a unique violation", err)
	}
	if isUniqueViolation(errors.New("UNIQUE constraint failed: certificates.serial")) {
		t.Error("a plain error mentioning UNIQUE is taken for a unique violation")
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

// TestLookupsApartFromReads: point lookups have connections of their own,
// so long reads holding every reader do not stall them, and a lookup
// waiting for a slot gives up when its context ends.
func TestLookupsApartFromReads(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "estd.db"))
	defer s.Close()
	ctx := t.Context()
	r := testRecord(7)
	if err := s.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	// Hold every reader connection, as long scans would.
	var held []*sql.Conn
	for range s.r.Stats().MaxOpenConnections {
		c, err := s.r.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if st, err := s.Status(short, r.Serial, r.DER); err != nil || !st.SameDER {
		t.Fatalf("Status with every reader held: %+v, %v", st, err)
	}
	if _, err := s.BySerial(short, r.Serial); err != nil {
		t.Fatalf("BySerial with every reader held: %v", err)
	}

	// Every lookup slot taken: a lookup waits only as long as its context.
	for range cap(s.lookupSlots) {
		s.lookupSlots <- struct{}{}
	}
	defer func() {
		for range cap(s.lookupSlots) {
			<-s.lookupSlots
		}
	}()
	brief, cancel2 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel2()
	start := time.Now()
	if _, err := s.Status(brief, r.Serial, r.DER); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Status with no free slot: %v, want the context's deadline", err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("Status with no free slot returned after %v", waited)
	}
}

// TestCountIssuedUsesIndex: counting by issuance time reads the index, not
// the table (the dashboard counts a month of a fleet's certificates).
func TestCountIssuedUsesIndex(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "estd.db"))
	defer s.Close()
	rows, err := s.r.Query(`EXPLAIN QUERY PLAN SELECT COUNT(*) FROM certificates WHERE issued_at >= ? AND issued_at < ?`, "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if got := strings.Join(plan, "; "); !strings.Contains(got, "COVERING INDEX certificates_issued_at") {
		t.Errorf("query plan %q does not use certificates_issued_at alone", got)
	}
}

// TestBackup: Backup writes a database that opens on its own and holds
// every record committed before it, while Puts go on; it refuses to
// overwrite a file.
func TestBackup(t *testing.T) {
	ctx := t.Context()
	s := openAt(t, filepath.Join(t.TempDir(), "estd.db"))
	defer s.Close()
	for i := range 50 {
		if err := s.Put(ctx, testRecord(int64(0x100+i))); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() { // writers go on during the backup
		defer close(done)
		for i := range 200 {
			s.Put(ctx, testRecord(int64(0x1000+i)))
		}
	}()
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := s.Backup(ctx, path); err != nil {
		t.Fatal(err)
	}
	<-done
	if err := s.Backup(ctx, path); err == nil {
		t.Error("Backup overwrote an existing file")
	}
	c := openAt(t, path)
	defer c.Close()
	for i := range 50 {
		if _, err := c.BySerial(ctx, big.NewInt(int64(0x100+i))); err != nil {
			t.Fatalf("record %d not in the backup: %v", i, err)
		}
	}
	if v, err := c.SchemaVersion(ctx); err != nil || v != len(migrations) {
		t.Errorf("backup schema version %d, %v", v, err)
	}
}

// TestBackupRelativePath: a database given by a relative path is the one
// copied (not the same path taken from the root).
func TestBackupRelativePath(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	t.Chdir(dir)
	s := openAt(t, filepath.Join(dir, "rel.db"))
	if err := s.Put(ctx, testRecord(0x42)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := Backup(ctx, "rel.db", "copy.db"); err != nil {
		t.Fatal(err)
	}
	c := openAt(t, filepath.Join(dir, "copy.db"))
	defer c.Close()
	if _, err := c.BySerial(ctx, big.NewInt(0x42)); err != nil {
		t.Fatalf("the copy lacks the record: %v", err)
	}
}
