package estd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/internal/admin"
	"github.com/estkit/estkit/internal/dashboard"
	"github.com/estkit/estkit/server"
)

// ServeAdmin serves the admin dashboard over TLS on ln until ctx is done,
// with the EST server's certificate but without asking for client
// certificates. Admins log in with the users of AdminUsersFile, which must
// name at least one; changes to that file apply at the next request.
func (d *Daemon) ServeAdmin(ctx context.Context, ln net.Listener) error {
	users, err := newAdminUsers(filepath.Join(d.opts.DataDir, AdminUsersFile), d.opts.Logger)
	if err != nil {
		return err
	}
	h, err := dashboard.New(dashboard.Options{
		Admin:  admin.New(d.Store, d.opts.Clock, d.opts.Logger),
		Users:  users.get,
		Clock:  d.opts.Clock,
		Logger: d.opts.Logger,
		CAs:    d.dashboardCAs(),
	})
	if err != nil {
		return err
	}
	cfg := d.TLSConfig().Clone()
	cfg.ClientAuth = tls.NoClientCert
	srv := server.HTTPServer(h, cfg, d.opts.Timeouts)
	srv.ErrorLog = slog.NewLogLogger(d.opts.Logger.Handler(), slog.LevelDebug)
	// The same caps as the EST listener, smaller: a few admins use it. Its
	// metrics are its own (estd_admin_*); its failed handshakes are not
	// counted with the EST listener's.
	tln := newTLSListener(ln, srv, adminLimits, nil, newAdminListenerMetrics(d.Registry), d.opts.Logger)
	return serve(ctx, srv, func() error { return srv.Serve(tln) })
}

// adminLimits caps the admin dashboard's listener: open connections and
// TLS handshakes in progress.
var adminLimits = Limits{MaxConnections: 128, MaxHandshakes: 16}

// adminUsers is the admin users file, read again when it changes on disk.
type adminUsers struct {
	path string
	log  *slog.Logger

	mu      sync.Mutex
	users   *auth.Users
	modTime time.Time
	size    int64
}

// newAdminUsers loads path, which must name at least one user.
func newAdminUsers(path string, log *slog.Logger) (*adminUsers, error) {
	a := &adminUsers{path: path, log: log}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no admin users: %s does not exist; add one with 'estd user add -admin -data %s NAME'", path, filepath.Dir(path))
	}
	if err != nil {
		return nil, err
	}
	u, err := auth.LoadUsers(path)
	if err != nil {
		return nil, fmt.Errorf("admin users: %s: %w", path, err)
	}
	if len(u.Names()) == 0 {
		return nil, fmt.Errorf("no admin users: %s names none; add one with 'estd user add -admin -data %s NAME'", path, filepath.Dir(path))
	}
	a.users, a.modTime, a.size = u, fi.ModTime(), fi.Size()
	return a, nil
}

// get returns the current users: the file is read again when its size or
// modification time changed. A file that fails to load keeps the previous
// users (logged); a removed file leaves nobody.
func (a *adminUsers) get() *auth.Users {
	a.mu.Lock()
	defer a.mu.Unlock()
	fi, err := os.Stat(a.path)
	if errors.Is(err, fs.ErrNotExist) {
		if a.size >= 0 {
			a.log.Warn("admin users file removed: nobody can log in to the dashboard", slog.String("file", a.path))
		}
		a.users, a.modTime, a.size = auth.NewUsers(), time.Time{}, -1
		return a.users
	}
	if err != nil || (fi.ModTime().Equal(a.modTime) && fi.Size() == a.size) {
		return a.users
	}
	u, err := auth.LoadUsers(a.path)
	if err != nil {
		a.log.Error("admin users file did not load; keeping the previous users", slog.String("file", a.path), slog.String("err", err.Error()))
	} else {
		a.users = u
		a.log.Info("reloaded the admin users", slog.String("file", a.path))
	}
	a.modTime, a.size = fi.ModTime(), fi.Size()
	return a.users
}

// dashboardCAs are the CA certificates the dashboard's overview shows.
func (d *Daemon) dashboardCAs() []dashboard.CA {
	cas := []dashboard.CA{{Role: "issuing", Cert: d.CA.Cert}}
	for _, r := range d.Retired {
		cas = append(cas, dashboard.CA{Role: "retired", Cert: r.Cert})
	}
	return append(cas, dashboard.CA{Role: "root", Cert: d.Root})
}
