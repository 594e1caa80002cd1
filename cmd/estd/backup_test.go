package main

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/estkit/estkit/internal/estd"
)

// TestBackupRestore: `estd backup` while estd serves and enrolls writes a
// 0600 archive; extracted into an empty directory it starts an estd with
// the same CA, users and records: a certificate issued before the backup
// renews there. -no-keys leaves every private key out.
func TestBackupRestore(t *testing.T) {
	requireTools(t, "curl", "openssl")
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	writeUsers(t, dir, "dev", "dev-password-1")
	d := startEstd(t, dir)
	auth := []string{"-K", curlConfig(t, tmp, "dev", "dev-password-1")}
	key := genKey(t, tmp, "before", "p256")
	cert := d.enroll(t, tmp, "before", "simpleenroll", makeCSR(t, tmp, "before", key, "/CN=before-backup", ""), 200, auth...)

	// Enrollments go on while the backup is taken.
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 5 {
			name := "during" + string(rune('a'+i))
			k := genKey(t, tmp, name, "p256")
			d.enroll(t, tmp, name, "simpleenroll", makeCSR(t, tmp, name, k, "/CN="+name, ""), 200, auth...)
		}
	})
	archive := filepath.Join(tmp, "backup.tar.gz")
	code, out, errs := runCmd(t, "backup", "-data", dir, "-out", archive)
	wg.Wait()
	if code != 0 || !strings.Contains(out, "restore with") || !strings.Contains(out, "root CA key") {
		t.Fatalf("estd backup: %d\n%s%s", code, out, errs)
	}
	if fi, err := os.Stat(archive); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("archive: %v, %v; want mode 0600", fi, err)
	}
	if code, _, errs := runCmd(t, "backup", "-data", dir, "-out", archive); code != 1 || !strings.Contains(errs, "exists") {
		t.Errorf("a second backup over the first: %d %s", code, errs)
	}
	d.stop(t)

	restored := filepath.Join(tmp, "restored")
	names := extract(t, archive, restored)
	for _, want := range []string{estd.RootCertFile, estd.IssuingCertFile, estd.IssuingKeyFile, estd.UsersFile, estd.DBFile} {
		if !names[want] {
			t.Errorf("the backup lacks %s (has %v)", want, names)
		}
	}
	r := startEstd(t, restored)
	if a, b := readPEMCert(t, r.rootFile()), readPEMCert(t, d.rootFile()); !a.Equal(b) {
		t.Fatal("the restored estd has another root")
	}
	r.enroll(t, tmp, "renewed", "simplereenroll", makeCSR(t, tmp, "renewed", key, "/CN=before-backup", ""), 200, "--cert", cert, "--key", key)
	r.enroll(t, tmp, "after", "simpleenroll", makeCSR(t, tmp, "after", key, "/CN=after-restore", ""), 200, "-K", curlConfig(t, tmp, "dev", "dev-password-1"))

	// Without keys.
	bare := filepath.Join(tmp, "bare.tar.gz")
	if code, out, errs := runCmd(t, "backup", "-data", restored, "-out", bare, "-no-keys"); code != 0 || !strings.Contains(out, "needed by a restore: issuing-ca.key\n") {
		t.Fatalf("estd backup -no-keys: %d\n%s%s", code, out, errs)
	}
	for name := range extract(t, bare, filepath.Join(tmp, "bare")) {
		if strings.HasSuffix(name, ".key") || name == estd.KEKsFile {
			t.Errorf("-no-keys kept %s", name)
		}
	}
}

// extract unpacks a gzipped tar into dir and returns the names it held.
func extract(t *testing.T, archive, dir string) map[string]bool {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	names := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			os.MkdirAll(path, 0o700)
			continue
		}
		os.MkdirAll(filepath.Dir(path), 0o700)
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, os.FileMode(h.Mode)); err != nil {
			t.Fatal(err)
		}
		names[h.Name] = true
	}
	return names
}
