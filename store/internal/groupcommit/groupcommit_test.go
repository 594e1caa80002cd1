package groupcommit

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
)

// gate is a commit function that records its batches and, while held,
// blocks before committing one.
type gate struct {
	mu      sync.Mutex
	batches [][]int
	hold    chan struct{} // closed: commit freely
	entered chan struct{} // receives once per batch, before it blocks
	outcome func(item int) error
}

func newGate() *gate {
	return &gate{hold: make(chan struct{}), entered: make(chan struct{}, 64)}
}

func (g *gate) commit(items []int) []error {
	g.entered <- struct{}{}
	<-g.hold
	g.mu.Lock()
	g.batches = append(g.batches, append([]int(nil), items...))
	g.mu.Unlock()
	errs := make([]error, len(items))
	if g.outcome != nil {
		for i, it := range items {
			errs[i] = g.outcome(it)
		}
	}
	return errs
}

func (g *gate) release() { close(g.hold) }

func putAsync(ctx context.Context, c *Committer[int], item int) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- c.Put(ctx, item) }()
	return ch
}

func waitQueued(t *testing.T, c *Committer[int], n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.Queued() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d Puts queued, want %d", c.Queued(), n)
		}
		runtime.Gosched()
	}
}

// start returns a Committer whose first batch (item 0) is blocked in the
// gate, so that later Puts queue.
func start(t *testing.T, g *gate) (*Committer[int], <-chan error) {
	t.Helper()
	c := New(g.commit)
	t.Cleanup(c.Close)
	first := putAsync(t.Context(), c, 0)
	<-g.entered
	return c, first
}

// Puts that arrive while a batch is being committed all go into the next
// one, in order, and each gets its own outcome.
func TestBatches(t *testing.T) {
	g := newGate()
	g.outcome = func(item int) error {
		if item%3 == 0 && item > 0 {
			return errors.New("refused")
		}
		return nil
	}
	c, first := start(t, g)
	var results []<-chan error
	for i := 1; i <= 9; i++ {
		results = append(results, putAsync(t.Context(), c, i))
		waitQueued(t, c, i)
	}
	g.release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i, ch := range results {
		err := <-ch
		if want := (i+1)%3 == 0; want != (err != nil) {
			t.Errorf("Put %d: %v, want refused %v", i+1, err, want)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.batches) != 2 || len(g.batches[1]) != 9 {
		t.Fatalf("batches %v, want [0] then 1..9", g.batches)
	}
	for i, it := range g.batches[1] {
		if it != i+1 {
			t.Fatalf("second batch %v: not in arrival order", g.batches[1])
		}
	}
	if c.Taken() != 10 || c.Commits() != 2 {
		t.Errorf("taken %d, commits %d; want 10, 2", c.Taken(), c.Commits())
	}
}

// A Put whose context ends while it waits returns the context's error and
// never reaches the commit function.
func TestCanceledWhileQueued(t *testing.T) {
	g := newGate()
	c, first := start(t, g)
	ctx, cancel := context.WithCancel(t.Context())
	queued := putAsync(ctx, c, 1)
	waitQueued(t, c, 1)
	cancel()
	if err := <-queued; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled Put: %v, want context.Canceled", err)
	}
	g.release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := c.Put(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, b := range g.batches {
		for _, it := range b {
			if it == 1 {
				t.Errorf("batches %v: the canceled Put was committed", g.batches)
			}
		}
	}
}

// A commit function that answers the wrong number of outcomes fails the
// whole batch instead of answering Puts at random.
func TestWrongOutcomeCount(t *testing.T) {
	c := New(func(items []int) []error { return nil })
	defer c.Close()
	if err := c.Put(t.Context(), 1); err == nil {
		t.Fatal("Put succeeded with no outcome from the commit function")
	}
}

// Puts after Close fail at once; Puts still queued when it closes fail
// instead of hanging; Close may be called twice.
func TestClose(t *testing.T) {
	g := newGate()
	c, first := start(t, g)
	queued := putAsync(t.Context(), c, 1)
	waitQueued(t, c, 1)
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	g.release()
	if err := <-first; err != nil {
		t.Fatalf("the Put in flight: %v", err)
	}
	if err := <-queued; err != nil && !errors.Is(err, ErrClosed) {
		t.Fatalf("queued Put: %v, want nil or ErrClosed", err)
	}
	<-closed
	if err := c.Put(t.Context(), 2); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v, want ErrClosed", err)
	}
	c.Close()
}

// gatherCommitter is a Committer that is not running, for gather alone:
// yield calls onYield with the number of yields so far; now is a fake
// clock that onYield may move.
func gatherCommitter(onYield func(c *Committer[int], n int, clock *time.Time)) *Committer[int] {
	clock := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	c := newCommitter(func([]int) []error { return nil })
	c.now = func() time.Time { return clock }
	n := 0
	c.yield = func() { n++; onYield(c, n, &clock) }
	return c
}

func TestGather(t *testing.T) {
	first := []*request[int]{{}}
	t.Run("lone Put commits at once", func(t *testing.T) {
		yields := 0
		c := gatherCommitter(func(_ *Committer[int], n int, _ *time.Time) { yields = n })
		if got := c.gather(first); len(got) != 1 || yields != 1 {
			t.Errorf("batch of %d after %d yields, want 1 after 1", len(got), yields)
		}
	})
	t.Run("gathers while Puts arrive", func(t *testing.T) {
		yields := 0
		c := gatherCommitter(func(c *Committer[int], n int, _ *time.Time) {
			yields = n
			if n <= 3 { // three rounds bring two Puts each, the fourth none
				c.queue <- &request[int]{}
				c.queue <- &request[int]{}
			}
		})
		if got := c.gather(first); len(got) != 7 || yields != 4 {
			t.Errorf("batch of %d after %d yields, want 7 after 4", len(got), yields)
		}
	})
	t.Run("stops at GatherMax", func(t *testing.T) {
		yields := 0
		c := gatherCommitter(func(c *Committer[int], n int, clock *time.Time) {
			yields = n
			c.queue <- &request[int]{} // Puts never stop arriving
			*clock = clock.Add(GatherMax * 2 / 5)
		})
		// 0.4, 0.8: go on; 1.2 GatherMax: stop, with that round's Put.
		if got := c.gather(first); len(got) != 4 || yields != 3 {
			t.Errorf("batch of %d after %d yields, want 4 after 3", len(got), yields)
		}
	})
	t.Run("stops at MaxBatch", func(t *testing.T) {
		c := gatherCommitter(func(c *Committer[int], _ int, _ *time.Time) {
			for range 100 {
				select {
				case c.queue <- &request[int]{}:
				default:
				}
			}
		})
		if got := c.gather(first); len(got) != MaxBatch {
			t.Errorf("batch of %d, want MaxBatch %d", len(got), MaxBatch)
		}
		if c.Queued() == 0 {
			t.Error("no Put left waiting: the test did not offer more than MaxBatch")
		}
	})
}
