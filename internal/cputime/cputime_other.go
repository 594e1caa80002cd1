//go:build !unix

package cputime

import "time"

// Process returns 0: CPU time is read only on Unix systems.
func Process() time.Duration { return 0 }
