package sqlite

import (
	"database/sql"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// openVersion creates a database at path migrated to version v only.
func openVersion(t *testing.T, path string, v int) *sql.DB {
	t.Helper()
	if err := createFile(path); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	if err := migrateTo(t.Context(), db, v); err != nil {
		db.Close()
		t.Fatal(err)
	}
	return db
}

// TestMigrate0003 moves a ledger written at schema version 2 to version 3:
// every record, its seq and its revocation survive, seq goes on growing
// from the largest, the constraints still hold, and neither AUTOINCREMENT
// nor the subject index is left.
func TestMigrate0003(t *testing.T) {
	path := filepath.Join(t.TempDir(), "estd.db")
	db := openVersion(t, path, 2)
	const n = 300
	for i := 1; i <= n; i++ {
		issued := time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC).Format(timeLayout)
		if _, err := db.Exec(`INSERT INTO certificates (serial, subject, sans, not_before, not_after,
			key_algorithm, profile, requester, auth_method, issued_at, der) VALUES (?, ?, '[]', ?, ?, 'ECDSA-P256', '', 'alice', 'basic', ?, X'3000')`,
			fmt.Sprintf("%x", 0x1000+i), fmt.Sprintf("CN=device-%d", i%7), issued, issued, issued); err != nil {
			t.Fatal(err)
		}
	}
	// A gap in seq (a row removed by hand), and a revoked certificate.
	if _, err := db.Exec(`DELETE FROM certificates WHERE serial = ?`, fmt.Sprintf("%x", 0x1000+10)); err != nil {
		t.Fatal(err)
	}
	revokedAt := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	if _, err := db.Exec(`UPDATE certificates SET revoked = 1, revoked_at = ?, revocation_reason = 1 WHERE serial = ?`,
		revokedAt.Format(timeLayout), fmt.Sprintf("%x", 0x1000+20)); err != nil {
		t.Fatal(err)
	}
	before := seqs(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s := openAt(t, path)
	defer s.Close()
	if v, err := s.SchemaVersion(t.Context()); err != nil || v < 3 {
		t.Fatalf("SchemaVersion = %d, %v; want at least 3", v, err)
	}
	if after := seqs(t, s.r); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("seq by serial changed:\nbefore %v\nafter  %v", before, after)
	}
	// The table is 0001's, column for column and constraint for
	// constraint, without AUTOINCREMENT, and with the columns later
	// migrations added.
	v1 := openVersion(t, filepath.Join(t.TempDir(), "v1.db"), 1)
	want := strings.Replace(tableBody(t, v1), " AUTOINCREMENT", "", 1)
	v1.Close()
	got := tableBody(t, s.r)
	for _, added := range []string{" , superseded_by TEXT"} { // 0005
		if !strings.Contains(got, added) {
			t.Errorf("certificates after the migration lacks %q", added)
		}
		got = strings.Replace(got, added, "", 1)
	}
	if got != want {
		t.Errorf("certificates after the migration:\n%s\nwant:\n%s", got, want)
	}
	// The rebuilt table's WAL is checkpointed and truncated.
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.Size() != 0 {
		t.Errorf("WAL after the migration: %v, %v; want empty", fi.Size(), err)
	}
	var indexes []string
	rows, err := s.r.Query(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'certificates' AND sql IS NOT NULL ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		indexes = append(indexes, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(indexes, ","); got != "certificates_issued_at,certificates_revoked" {
		t.Errorf("indexes on certificates = %q, want certificates_issued_at,certificates_revoked", got)
	}

	rec, err := s.BySerial(t.Context(), big.NewInt(0x1000+20))
	if err != nil || !rec.Revoked || !rec.RevokedAt.Equal(revokedAt) || rec.RevocationReason != 1 {
		t.Errorf("revoked record after migration = %+v, %v", rec, err)
	}
	revoked, err := s.Revoked(t.Context(), time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || len(revoked) != 1 || revoked[0].Serial.Int64() != 0x1000+20 {
		t.Errorf("Revoked() = %v, %v; want the one revoked certificate", revoked, err)
	}
	bySubject, err := s.BySubject(t.Context(), "CN=device-3")
	if err != nil || len(bySubject) != n/7 {
		t.Errorf("BySubject = %d records, %v; want %d", len(bySubject), err, n/7)
	}

	// New certificates go after the largest seq; the constraints still hold.
	r := testRecord(0x9999)
	if err := s.Put(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	var seq int64
	if err := s.r.QueryRow(`SELECT seq FROM certificates WHERE serial = '9999'`).Scan(&seq); err != nil || seq != n+1 {
		t.Errorf("seq of the first new certificate = %d, %v; want %d", seq, err, n+1)
	}
	if err := s.Put(t.Context(), testRecord(0x1000+1)); err == nil {
		t.Error("a duplicate serial was recorded after the migration")
	}
	// A certificate recorded before schema 5 is superseded like a new one.
	if ok, err := s.Supersede(t.Context(), big.NewInt(0x1000+2), r.Serial, revokedAt); !ok || err != nil {
		t.Errorf("Supersede of a migrated record = %v, %v", ok, err)
	}
	if rec, err := s.BySerial(t.Context(), big.NewInt(0x1000+2)); err != nil || rec.SupersededBy == nil || rec.SupersededBy.Cmp(r.Serial) != 0 {
		t.Errorf("migrated record after Supersede = %+v, %v", rec, err)
	}
	for what, values := range map[string]string{
		"the serial CHECK": `'00ff', 'CN=x', '[]', '', '', '', '', '', '', '', X''`,
		"the sans CHECK":   `'ff', 'CN=x', '{}', '', '', '', '', '', '', '', X''`,
		"STRICT":           `'fe', 'CN=x', '[]', '', '', '', '', '', '', '', 'text, not a blob'`,
	} {
		if _, err := s.w.Exec(`INSERT INTO certificates (serial, subject, sans, not_before, not_after, key_algorithm,
			profile, requester, auth_method, issued_at, der) VALUES (` + values + `)`); err == nil {
			t.Errorf("%s no longer holds after the migration", what)
		}
	}
}

// tableBody is what db's CREATE TABLE certificates says between its outer
// parentheses, spaces collapsed.
func tableBody(t *testing.T, db *sql.DB) string {
	t.Helper()
	var ddl string
	if err := db.QueryRow(`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'certificates'`).Scan(&ddl); err != nil {
		t.Fatal(err)
	}
	open, end := strings.Index(ddl, "("), strings.LastIndex(ddl, ")")
	if open < 0 || end < open {
		t.Fatalf("unexpected DDL %q", ddl)
	}
	return strings.Join(strings.Fields(ddl[open+1:end]), " ") + " " + strings.Join(strings.Fields(ddl[end+1:]), " ")
}

// seqs maps every serial of db's certificates to its seq.
func seqs(t *testing.T, db *sql.DB) map[string]int64 {
	t.Helper()
	rows, err := db.Query(`SELECT serial, seq FROM certificates`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[string]int64{}
	for rows.Next() {
		var serial string
		var seq int64
		if err := rows.Scan(&serial, &seq); err != nil {
			t.Fatal(err)
		}
		m[serial] = seq
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}
