//go:build !unix

package pgtest

import (
	"os"
	"syscall"
)

// runAs is unused: the throw-away cluster needs a Unix system.
type runAs = struct{}

func runAsUser() (runAs, error) { return runAs{}, errMissing }

func chown(string, runAs) error { return nil }

func procAttr(runAs) *syscall.SysProcAttr { return nil }

var stopSignals = []os.Signal{os.Kill}

func alive(int) bool { return true }
