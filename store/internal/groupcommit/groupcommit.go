// Package groupcommit lets concurrent writes share one durable commit.
//
// With a durable commit (SQLite's synchronous=FULL, PostgreSQL's
// synchronous_commit=on) every commit waits for an fsync, and one
// transaction per write makes the disk, not the CPU, the limit of how many
// certificates a store records. A Committer therefore runs one goroutine
// that takes every write waiting for it, hands them all to the store's
// commit function as one batch (one transaction, one fsync) and then
// answers each. While a batch is being committed the next writes queue up,
// and before it commits the committer lets the goroutines ready to run
// reach their writes (see gather), so batches grow with the load and a lone
// write waits for nobody.
//
// The commit function decides each write's outcome: a batch may record
// some writes and refuse others (a duplicate serial fails only its own
// write), or fail all of them.
package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// MaxBatch bounds the writes one batch carries.
	MaxBatch = 256
	// GatherMax bounds how long the committer keeps gathering writes for
	// one batch while more keep arriving (see gather).
	GatherMax = time.Millisecond
)

// ErrClosed is returned by a Put on a closed Committer, or one still
// waiting when it closed.
var ErrClosed = errors.New("store is closed")

// Write states: waiting for the committer, taken into a batch, or abandoned
// by its caller before that.
const (
	waiting int32 = iota
	taken
	abandoned
)

// request is one Put handed to the committer.
type request[T any] struct {
	item  T
	state atomic.Int32
	done  chan error // receives the outcome once; buffered
}

// Committer groups concurrent Puts into batches for one commit function.
type Committer[T any] struct {
	commit  func(items []T) []error
	queue   chan *request[T]
	closing chan struct{}
	exited  chan struct{}
	once    sync.Once
	// taken counts the writes taken into batches and commits the calls of
	// commit, for tests and benchmarks.
	taken, commits atomic.Int64
	// yield and now are runtime.Gosched and time.Now, but for tests.
	yield func()
	now   func() time.Time
}

// New starts a Committer. commit records a batch, typically in one
// transaction, and returns one outcome per item, in order: nil when the
// item is durably recorded. It is only ever called from one goroutine.
func New[T any](commit func(items []T) []error) *Committer[T] {
	c := newCommitter(commit)
	go c.run()
	return c
}

func newCommitter[T any](commit func(items []T) []error) *Committer[T] {
	return &Committer[T]{
		commit:  commit,
		queue:   make(chan *request[T], MaxBatch),
		closing: make(chan struct{}),
		exited:  make(chan struct{}),
		yield:   runtime.Gosched,
		now:     time.Now,
	}
}

// Put hands item to the committer and returns once the batch that carries
// it has been committed, with item's outcome. An error from ctx means item
// was not recorded: a Put whose context ends while it waits is skipped; once
// its batch has begun, the batch's outcome is the answer.
func (c *Committer[T]) Put(ctx context.Context, item T) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-c.closing: // before the queue, which may still have room
		return ErrClosed
	default:
	}
	r := &request[T]{item: item, done: make(chan error, 1)}
	select {
	case c.queue <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closing:
		return ErrClosed
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(waiting, abandoned) {
			return ctx.Err()
		}
	case <-c.exited:
		if r.state.CompareAndSwap(waiting, abandoned) {
			return ErrClosed
		}
	}
	// Already in a batch: its outcome is the answer.
	return <-r.done
}

// Close stops the committer after the batch in flight; Puts not yet taken
// into a batch fail with ErrClosed. It may be called more than once.
func (c *Committer[T]) Close() {
	c.once.Do(func() { close(c.closing) })
	<-c.exited
}

// Queued is the number of Puts waiting for the next batch.
func (c *Committer[T]) Queued() int { return len(c.queue) }

// Taken is the number of Puts taken into batches so far.
func (c *Committer[T]) Taken() int64 { return c.taken.Load() }

// Commits is the number of batches committed (or attempted) so far.
func (c *Committer[T]) Commits() int64 { return c.commits.Load() }

// run takes Puts until the Committer closes: the first that arrives, every
// other already waiting and those gathered after them, up to MaxBatch, make
// one batch. Puts left waiting when it closes fail (their callers see
// exited).
func (c *Committer[T]) run() {
	defer close(c.exited)
	batch := make([]*request[T], 0, MaxBatch)
	for {
		select {
		case r := <-c.queue:
			batch = append(batch[:0], r)
		case <-c.closing:
			return
		}
		c.commitBatch(c.gather(c.drain(batch)))
	}
}

// drain adds the Puts already waiting to batch, up to MaxBatch.
func (c *Committer[T]) drain(batch []*request[T]) []*request[T] {
	for len(batch) < MaxBatch {
		select {
		case r := <-c.queue:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// gather lets the goroutines that are ready to run go first, as long as
// each round brings more Puts and for at most GatherMax, and adds their Puts
// to batch. Under load the enrollments computing at the same moment then
// share one commit: each commit's fsync costs about the same CPU whatever it
// carries (on a virtual machine mostly the exit to the hypervisor), so
// writes per commit decide the CPU per write. A lone Put waits for nothing:
// its first round brings nothing and it commits at once.
func (c *Committer[T]) gather(batch []*request[T]) []*request[T] {
	deadline := c.now().Add(GatherMax)
	for len(batch) < MaxBatch {
		n := len(batch)
		c.yield()
		if batch = c.drain(batch); len(batch) == n || !c.now().Before(deadline) {
			return batch
		}
	}
	return batch
}

// commitBatch commits the Puts of batch that are still wanted and answers
// each.
func (c *Committer[T]) commitBatch(batch []*request[T]) {
	live := batch[:0]
	for _, r := range batch {
		if r.state.CompareAndSwap(waiting, taken) {
			live = append(live, r)
			c.taken.Add(1)
		}
	}
	if len(live) == 0 {
		return
	}
	items := make([]T, len(live))
	for i, r := range live {
		items[i] = r.item
	}
	c.commits.Add(1)
	errs := c.commit(items)
	if len(errs) != len(items) {
		err := fmt.Errorf("groupcommit: %d outcomes for %d writes", len(errs), len(items))
		for _, r := range live {
			r.done <- err
		}
		return
	}
	for i, r := range live {
		r.done <- errs[i]
	}
}

// All returns n copies of err: the outcome of a batch that failed as a
// whole.
func All(n int, err error) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}
