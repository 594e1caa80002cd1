package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	sqlitedriver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Group commit. With synchronous=FULL every commit waits for an fsync of the
// WAL, and one transaction per Put makes the disk, not the CPU, the limit
// of how many certificates estd can issue. Concurrent Puts therefore share
// transactions: one goroutine, the committer, takes every Put waiting for
// it, inserts them all in one transaction, commits once, and then answers
// each. While a commit is in flight the next Puts queue up, and before it
// commits the committer lets the goroutines ready to run reach their Puts
// (gather), so batches grow with the load and a lone Put waits for nobody.
//
// Each record is still its own INSERT: a duplicate serial aborts only that
// statement (SQLite's default ABORT conflict resolution keeps the
// transaction and the records before it), so it fails only its own Put.
// Any other error rolls the whole batch back and fails every Put in it;
// nothing of it is then recorded.

const (
	// maxBatch bounds the records one transaction carries.
	maxBatch = 256
	// gatherMax bounds how long the committer keeps gathering Puts for one
	// transaction while more keep arriving (see gather).
	gatherMax = time.Millisecond
)

// errClosed is returned by a Put on a closed store.
var errClosed = errors.New("store/sqlite: store is closed")

// Put states: waiting for the committer, taken into a transaction, or
// abandoned by its caller before that.
const (
	putWaiting int32 = iota
	putTaken
	putAbandoned
)

// putRequest is one Put handed to the committer.
type putRequest struct {
	args  []any
	state atomic.Int32
	done  chan error // receives the outcome once; buffered
}

// committer runs the group commit of one Store.
type committer struct {
	db     *sql.DB   // the writer
	insert *sql.Stmt // insertRecord, prepared once on the writer
	// puts holds the Puts waiting for the next transaction.
	puts    chan *putRequest
	closing chan struct{}
	exited  chan struct{}
	once    sync.Once
	// taken counts the Puts taken into transactions and commits the
	// transactions committed, for tests and benchmarks.
	taken, commits atomic.Int64
	// yield and now are runtime.Gosched and time.Now, but for tests.
	yield func()
	now   func() time.Time
}

func newCommitter(ctx context.Context, db *sql.DB) (*committer, error) {
	insert, err := db.PrepareContext(ctx, insertRecord)
	if err != nil {
		return nil, err
	}
	c := &committer{
		db:      db,
		insert:  insert,
		puts:    make(chan *putRequest, maxBatch),
		closing: make(chan struct{}),
		exited:  make(chan struct{}),
		yield:   runtime.Gosched,
		now:     time.Now,
	}
	go c.run()
	return c, nil
}

// put inserts one record (the arguments of insertRecord) and returns once
// the transaction that carries it has committed, or failed. An error from
// ctx means the record was not inserted.
func (c *committer) put(ctx context.Context, args []any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &putRequest{args: args, done: make(chan error, 1)}
	select {
	case c.puts <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closing:
		return errClosed
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(putWaiting, putAbandoned) {
			return ctx.Err()
		}
	case <-c.exited:
		if r.state.CompareAndSwap(putWaiting, putAbandoned) {
			return errClosed
		}
	}
	// Already in a transaction: its outcome is the answer.
	return <-r.done
}

// run takes Puts until the store closes: the first that arrives, every
// other already waiting and those gathered after them, up to maxBatch, make
// one transaction. Puts left
// waiting when the store closes fail (their callers see exited).
func (c *committer) run() {
	defer close(c.exited)
	batch := make([]*putRequest, 0, maxBatch)
	for {
		select {
		case r := <-c.puts:
			batch = append(batch[:0], r)
		case <-c.closing:
			return
		}
		c.commit(c.gather(c.drain(batch)))
	}
}

// drain adds the Puts already waiting to batch, up to maxBatch.
func (c *committer) drain(batch []*putRequest) []*putRequest {
	for len(batch) < maxBatch {
		select {
		case r := <-c.puts:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// gather lets the goroutines that are ready to run go first, as long as
// each round brings more Puts and for at most gatherMax, and adds their Puts
// to batch. Under load the enrollments computing at the same moment then
// share one commit: each commit's fsync costs the same CPU whatever it
// carries (on a virtual machine mostly the exit to the hypervisor), so
// records per commit decide the CPU per record. A lone Put waits for
// nothing: its first round brings nothing and it commits at once.
func (c *committer) gather(batch []*putRequest) []*putRequest {
	deadline := c.now().Add(gatherMax)
	for len(batch) < maxBatch {
		n := len(batch)
		c.yield()
		if batch = c.drain(batch); len(batch) == n || !c.now().Before(deadline) {
			return batch
		}
	}
	return batch
}

// commit inserts the batch in one transaction and answers every Put in it.
func (c *committer) commit(batch []*putRequest) {
	live := batch[:0]
	for _, r := range batch {
		if r.state.CompareAndSwap(putWaiting, putTaken) {
			live = append(live, r)
			c.taken.Add(1)
		}
	}
	if len(live) == 0 {
		return
	}
	failAll := func(err error) {
		for _, r := range live {
			r.done <- err
		}
	}
	// The transaction is every caller's, so no one caller's context
	// governs it; busy_timeout bounds the wait for the lock.
	ctx := context.Background()
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		failAll(err)
		return
	}
	stmt := tx.StmtContext(ctx, c.insert)
	errs := make([]error, len(live))
	for i, r := range live {
		_, err := stmt.ExecContext(ctx, r.args...)
		if err != nil && !isConstraint(err) {
			tx.Rollback()
			failAll(err)
			return
		}
		errs[i] = err // nil, or a constraint that refused this record alone
	}
	if err := tx.Commit(); err != nil {
		failAll(err)
		return
	}
	c.commits.Add(1)
	for i, r := range live {
		r.done <- errs[i]
	}
}

// close stops the committer after the batch in flight; Puts not yet taken
// into a transaction fail with errClosed.
func (c *committer) close() error {
	c.once.Do(func() { close(c.closing) })
	<-c.exited
	return c.insert.Close()
}

// isConstraint reports whether err is SQLite refusing one statement for a
// constraint (a duplicate serial, a CHECK): the statement is undone and the
// transaction goes on.
func isConstraint(err error) bool {
	var e *sqlitedriver.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
}
