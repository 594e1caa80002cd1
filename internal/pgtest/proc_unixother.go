//go:build unix && !linux

package pgtest

import "syscall"

// setPdeathsig does nothing: only Linux has a parent-death signal. A server
// left by a test binary that died is not stopped.
func setPdeathsig(*syscall.SysProcAttr) {}
