//go:build unix

package pgtest

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// runAs is whom initdb and postgres run as; nil for the current user.
type runAs = *syscall.Credential

// runAsUser returns nil, or the "postgres" system user when running as root:
// PostgreSQL refuses to run as root.
func runAsUser() (runAs, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL must run as the postgres system user: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("user postgres: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

func chown(dir string, cred runAs) error {
	if cred == nil {
		return nil
	}
	return os.Chown(dir, int(cred.Uid), int(cred.Gid))
}

func procAttr(cred runAs) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Credential: cred}
	setPdeathsig(a)
	return a
}

// stopSignals: fast shutdown (what pg_ctl stop -m fast sends), then
// immediate shutdown, then SIGKILL.
var stopSignals = []os.Signal{syscall.SIGINT, syscall.SIGQUIT, syscall.SIGKILL}

// alive reports whether a process with that ID exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
