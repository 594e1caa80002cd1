package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPasswordSources(t *testing.T) {
	envWith := func(vars map[string]string, prompt func(string) (string, error)) *env {
		return &env{getenv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, prompt: prompt}
	}
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte("from-file\r\nsecond line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	prompted := func(msg string) (string, error) {
		if !strings.Contains(msg, "alice") {
			t.Errorf("prompt %q does not name the user", msg)
		}
		return "typed", nil
	}
	cases := []struct {
		name string
		e    *env
		file string
		want string
	}{
		{"file wins", envWith(map[string]string{"EST_PASSWORD": "from-env"}, prompted), file, "from-file"},
		{"environment", envWith(map[string]string{"EST_PASSWORD": "from-env"}, prompted), "", "from-env"},
		{"prompt", envWith(nil, prompted), "", "typed"},
		{"empty environment falls through", envWith(map[string]string{"EST_PASSWORD": ""}, prompted), "", "typed"},
	}
	for _, c := range cases {
		got, err := password(c.e, "alice", c.file)
		if err != nil || got != c.want {
			t.Errorf("%s: %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	if _, err := password(envWith(nil, nil), "alice", ""); err == nil || !strings.Contains(err.Error(), "EST_PASSWORD") {
		t.Errorf("no source: %v", err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	if _, err := password(envWith(nil, nil), "alice", empty); err == nil {
		t.Error("an empty password file was accepted")
	}
}
