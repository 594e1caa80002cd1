package config

import (
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit/server"
)

func TestLimits(t *testing.T) {
	c, err := Decode(strings.NewReader(`
limits:
  auth_failures_per_ip: {off: true}
  auth_failures_per_user: {burst: 5, every: 1m}
  max_connections: 100
  max_connections_per_ip: -1
  max_handshakes: 10
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := server.AuthLimits{PerIP: server.RateLimit{Off: true}, PerUser: server.RateLimit{Burst: 5, Every: time.Minute}}
	if got := c.Limits.Auth(); got != want {
		t.Errorf("Auth() = %+v, want %+v", got, want)
	}
	if c.Limits.MaxConnections != 100 || c.Limits.MaxHandshakes != 10 || c.Limits.MaxConnectionsPerIP != -1 {
		t.Errorf("caps %+v", c.Limits)
	}
	if (Default().Limits != Limits{}) {
		t.Error("the default limits are not the zero value (the server's defaults)")
	}

	c, err = Decode(strings.NewReader(`
limits:
  auth_failures_per_ip: {burst: -1, every: 1ms}
  max_connections: -5
  max_connections_per_ip: -2
  max_handshakes: 100000
`))
	if err != nil {
		t.Fatal(err)
	}
	msg := c.Validate().Error()
	for _, want := range []string{"limits.auth_failures_per_ip.burst", "limits.auth_failures_per_ip.every", "limits.max_connections:", "limits.max_connections_per_ip", "limits.max_handshakes"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Validate does not name %s:\n%s", want, msg)
		}
	}
	if _, err := Decode(strings.NewReader("limits:\n  max_conections: 5\n")); err == nil {
		t.Error("a misspelt key was accepted")
	}
}
