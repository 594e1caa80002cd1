package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/estkit/estkit/store"
	"github.com/estkit/estkit/store/internal/groupcommit"
)

// Group commit: concurrent Puts share transactions (store/internal/
// groupcommit). A batch goes to the server as one pipeline of INSERTs
// ending in one Sync, which the server runs as one implicit transaction:
// one round trip and one WAL flush for the whole batch, where one
// transaction per Put costs a flush each (PostgreSQL's own grouping of
// concurrent commits only helps as far as the pool has connections).
//
// A duplicate serial must fail only its own Put, so the INSERTs skip a
// conflicting serial (ON CONFLICT DO NOTHING) and a Put whose INSERT
// affected no row is a duplicate. Any other statement error aborts the
// implicit transaction, and the batch is then retried one record at a
// time, so that a bad record fails alone.

// insertRecordBatched is insertRecord for a batch.
const insertRecordBatched = insertRecord + ` ON CONFLICT (serial) DO NOTHING`

// batchTimeout bounds one batch's round trips (a var for tests);
// cancelTimeout bounds the cancel request its watchdog sends.
var batchTimeout = 30 * time.Second

const cancelTimeout = 5 * time.Second

// errDuplicate is the outcome of a Put whose serial is already recorded,
// or repeats one earlier in its batch.
var errDuplicate = store.ErrDuplicate

// putItem is one Put for the committer: its serial key and insertRecord's
// arguments.
type putItem struct {
	serial string
	args   []any
}

// commitBatch records batch and returns each Put's outcome.
func (s *Store) commitBatch(batch []putItem) []error {
	// The batch belongs to every Put in it, so no one caller's context
	// governs its statements. They get none at all: pgx watches a context
	// that can end with a goroutine and connection deadlines for every
	// statement, which cost more than the INSERT (~80 us a Put, measured).
	// A watchdog bounds the batch instead, once (see watch). Taking the
	// connection is bounded by a context: pgxpool may dial or ping first.
	actx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	conn, err := s.pool.Acquire(actx)
	cancel()
	if err != nil {
		return groupcommit.All(len(batch), err)
	}
	defer conn.Release()
	defer watch(conn)()
	ctx := context.Background()
	if len(batch) == 1 {
		// Alone: one statement, which the server commits by itself.
		return []error{insertOne(ctx, conn, batch[0])}
	}
	errs := make([]error, len(batch))
	var b pgx.Batch
	var sent []int // indexes of batch queued in b
	seen := make(map[string]bool, len(batch))
	for i, it := range batch {
		if seen[it.serial] {
			errs[i] = errDuplicate // the earlier Put of this serial wins
			continue
		}
		seen[it.serial] = true
		b.Queue(insertRecordBatched, it.args...)
		sent = append(sent, i)
	}
	br := conn.SendBatch(ctx, &b)
	var failed error
	for _, i := range sent {
		tag, err := br.Exec()
		if err != nil {
			failed = err
			break
		}
		if tag.RowsAffected() == 0 {
			errs[i] = errDuplicate
		}
	}
	if err := br.Close(); failed == nil {
		failed = err
	}
	if failed == nil {
		return errs
	}
	var pgErr *pgconn.PgError
	if !errors.As(failed, &pgErr) || pgErr.Code == queryCanceled {
		// Not the server refusing a record: the connection failed or the
		// watchdog canceled the batch. Every Put of it fails; the server
		// has rolled it back unless the cancel request was lost, in which
		// case a record may remain of a certificate nobody received.
		return groupcommit.All(len(batch), failed)
	}
	// A statement was refused and the transaction rolled back: find the
	// record that caused it by trying each alone.
	for _, i := range sent {
		errs[i] = insertOne(ctx, conn, batch[i])
	}
	return errs
}

// queryCanceled is the SQLSTATE of a statement canceled by a cancel
// request.
const queryCanceled = "57014"

// watch starts the watchdog of a batch on conn and returns the function
// that stops it. Past batchTimeout it asks the server to cancel what the
// connection is running (a cancel request, as pgx sends for a context that
// ends), so that the batch rolls back rather than commit after its Puts
// failed, and then sets the connection's deadline, so that a server that
// does not answer at all fails the round trip. A connection whose watchdog
// fired is closed, never reused.
func watch(conn *pgxpool.Conn) (stop func()) {
	pc := conn.Conn().PgConn()
	nc := pc.Conn()
	fired := make(chan struct{})
	t := time.AfterFunc(batchTimeout, func() {
		defer close(fired)
		ctx, cancel := context.WithTimeout(context.Background(), cancelTimeout)
		defer cancel()
		pc.CancelRequest(ctx)
		nc.SetDeadline(time.Now())
	})
	return func() {
		if !t.Stop() {
			<-fired
			pc.Close(context.Background())
		}
	}
}

// insertOne records it in a transaction of its own.
func insertOne(ctx context.Context, conn *pgxpool.Conn, it putItem) error {
	_, err := conn.Exec(ctx, insertRecord, it.args...)
	if isDuplicateSerial(err) {
		return errDuplicate
	}
	return err
}
