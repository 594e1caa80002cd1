// Package syncbuf is a bytes.Buffer that several goroutines may write to at
// once, for tests that collect what a server logs while it serves.
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer collects writes under a lock; its zero value is empty and ready.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
