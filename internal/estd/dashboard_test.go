package estd

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/estkit/estkit/auth"
)

// TestAdminConnectionCap: the dashboard's listener is capped like the EST
// listener: over the cap a connection is closed at once, and once a slot
// frees the dashboard answers again.
func TestAdminConnectionCap(t *testing.T) {
	saved := adminLimits
	adminLimits = Limits{MaxConnections: 2, MaxHandshakes: 2}
	t.Cleanup(func() { adminLimits = saved })

	d := startDaemon(t, Limits{})
	admins := auth.NewUsers()
	if err := admins.Set("admin", "admin-password-1"); err != nil {
		t.Fatal(err)
	}
	if err := admins.Save(filepath.Join(d.opts.DataDir, AdminUsersFile)); err != nil {
		t.Fatal(err)
	}
	addr := serveOn(t, "ServeAdmin", d.ServeAdmin)

	// Two connections that never send a ClientHello hold both slots.
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	// A third is closed at once (a handshake timeout would take seconds).
	// The two may still be on their way through accept, so try until one
	// is refused.
	eventually(t, "a connection over the cap closed at once", func() bool {
		extra, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer extra.Close()
		extra.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, err = extra.Read(make([]byte, 1))
		return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
	})

	if n := d.metric(t, `estd_admin_connections_refused_total{reason="max_connections"}`); n < 1 {
		t.Errorf("refused admin connections counted %v, want at least 1", n)
	}
	if n := d.metric(t, `estd_connections_refused_total{reason="max_connections"}`); n != 0 {
		t.Errorf("the EST listener's counter counted %v admin refusals, want 0", n)
	}
	for _, c := range held {
		c.Close()
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: d.roots()}}}
	eventually(t, "the dashboard answering once the slots free", func() bool {
		resp, err := c.Get("https://" + addr + "/login")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}
