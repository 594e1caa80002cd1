package pgtest

import "syscall"

// setPdeathsig asks for an immediate shutdown of the child (SIGQUIT) when
// the test binary dies without stopping it.
func setPdeathsig(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGQUIT }
