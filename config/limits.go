package config

import (
	"fmt"
	"time"

	"github.com/estkit/estkit/server"
)

// Limits is the limits: section: what one estd takes on before it refuses.
// Zero (or missing) keys keep the defaults.
type Limits struct {
	// AuthFailuresPerIP and AuthFailuresPerUser are token buckets of failed
	// authentications per client address (IPv6 by /64) and per HTTP Basic
	// user name (defaults: burst 10, one more every 6s). While a bucket is
	// empty, enrollments from that address or for that user get 429.
	AuthFailuresPerIP   RateLimit `yaml:"auth_failures_per_ip"`
	AuthFailuresPerUser RateLimit `yaml:"auth_failures_per_user"`
	// MaxConnections caps open connections to the EST listener (default
	// 4096); MaxHandshakes caps TLS handshakes in progress (default 256).
	MaxConnections int `yaml:"max_connections"`
	MaxHandshakes  int `yaml:"max_handshakes"`
	// MaxConnectionsPerIP caps the open connections of one client address,
	// IPv6 by /64 (default 1024, a quarter of max_connections); -1 switches it off, as behind a TCP proxy
	// that hides client addresses.
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
}

// RateLimit is one token bucket of the limits: section.
type RateLimit struct {
	Burst int      `yaml:"burst"`
	Every Duration `yaml:"every"`
	// Off disables the limit: behind a TCP proxy every client has the
	// proxy's address, and a per-address limit would be a global one.
	Off bool `yaml:"off"`
}

// Auth returns the failed-authentication limits as server.AuthLimits.
func (l Limits) Auth() server.AuthLimits {
	conv := func(r RateLimit) server.RateLimit {
		return server.RateLimit{Burst: r.Burst, Every: time.Duration(r.Every), Off: r.Off}
	}
	return server.AuthLimits{PerIP: conv(l.AuthFailuresPerIP), PerUser: conv(l.AuthFailuresPerUser)}
}

// check returns the problems of l.
func (l Limits) check() []error {
	var errs []error
	for _, b := range []struct {
		key string
		r   RateLimit
	}{{"auth_failures_per_ip", l.AuthFailuresPerIP}, {"auth_failures_per_user", l.AuthFailuresPerUser}} {
		key, r := b.key, b.r
		if r.Burst < 0 || r.Burst > 1000 {
			errs = append(errs, fmt.Errorf("limits.%s.burst: %d is outside 1..1000 (0 keeps the default)", key, r.Burst))
		}
		if e := time.Duration(r.Every); e != 0 && (e < 10*time.Millisecond || e > 24*time.Hour) {
			errs = append(errs, fmt.Errorf("limits.%s.every: %v is outside 10ms..24h", key, e))
		}
	}
	if l.MaxConnections < 0 || l.MaxConnections > 1<<20 {
		errs = append(errs, fmt.Errorf("limits.max_connections: %d is outside 1..1048576 (0 keeps the default)", l.MaxConnections))
	}
	if l.MaxConnectionsPerIP < -1 || l.MaxConnectionsPerIP > 1<<20 {
		errs = append(errs, fmt.Errorf("limits.max_connections_per_ip: %d is outside 1..1048576 (0 keeps the default, -1 switches it off)", l.MaxConnectionsPerIP))
	}
	if l.MaxHandshakes < 0 || l.MaxHandshakes > 1<<16 {
		errs = append(errs, fmt.Errorf("limits.max_handshakes: %d is outside 1..65536 (0 keeps the default)", l.MaxHandshakes))
	}
	return errs
}
