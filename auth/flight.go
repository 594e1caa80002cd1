package auth

import (
	"sync"
	"sync/atomic"
)

// flights makes concurrent verifications of one credential share a single
// bcrypt comparison. A burst of requests with the same user name and
// password (a fleet whose devices share a bootstrap credential coming back
// after an outage, a client opening many connections at once) would
// otherwise each pay a bcrypt, a quarter of a second of CPU at cost 12,
// before the first success is remembered. Guessing is not made cheaper:
// only identical guesses share the comparison, and failures are still not
// remembered after it.
type flights struct {
	mu sync.Mutex
	m  map[[32]byte]*flight
}

// flight is one comparison under way.
type flight struct {
	done    chan struct{}
	ok      bool
	waiters atomic.Int32 // calls waiting for it, for tests
}

// do runs check for tag unless a check for tag is under way, in which case
// it waits for that one and returns its answer.
func (fs *flights) do(tag [32]byte, check func() bool) bool {
	fs.mu.Lock()
	if f, ok := fs.m[tag]; ok {
		fs.mu.Unlock()
		f.waiters.Add(1)
		<-f.done
		return f.ok
	}
	if fs.m == nil {
		fs.m = map[[32]byte]*flight{}
	}
	f := &flight{done: make(chan struct{})}
	fs.m[tag] = f
	fs.mu.Unlock()
	defer func() {
		fs.mu.Lock()
		delete(fs.m, tag)
		fs.mu.Unlock()
		close(f.done)
	}()
	f.ok = check()
	return f.ok
}
