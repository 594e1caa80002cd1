package sqlite

import (
	"context"
	"database/sql"
	"errors"

	sqlitedriver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/estkit/estkit/store/internal/groupcommit"
)

// Group commit: concurrent Puts share transactions (store/internal/
// groupcommit), and with synchronous=FULL each transaction costs one fsync.
//
// Each record is still its own INSERT: a duplicate serial aborts only that
// statement (SQLite's default ABORT conflict resolution keeps the
// transaction and the records before it), so it fails only its own Put.
// Any other error rolls the whole batch back and fails every Put in it;
// nothing of it is then recorded.

// batchWriter commits batches of records (the arguments of insertRecord)
// on the writer connection.
type batchWriter struct {
	db     *sql.DB   // the writer
	insert *sql.Stmt // insertRecord, prepared once on the writer
}

// commit inserts the batch in one transaction and returns each record's
// outcome.
func (w *batchWriter) commit(batch [][]any) []error {
	// The transaction is every caller's, so no one caller's context
	// governs it; busy_timeout bounds the wait for the lock.
	ctx := context.Background()
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return groupcommit.All(len(batch), err)
	}
	stmt := tx.StmtContext(ctx, w.insert)
	errs := make([]error, len(batch))
	for i, args := range batch {
		_, err := stmt.ExecContext(ctx, args...)
		if err != nil && !isConstraint(err) {
			tx.Rollback()
			return groupcommit.All(len(batch), err)
		}
		errs[i] = err // nil, or a constraint that refused this record alone
	}
	if err := tx.Commit(); err != nil {
		return groupcommit.All(len(batch), err)
	}
	return errs
}

// isConstraint reports whether err is SQLite refusing one statement for a
// constraint (a duplicate serial, a CHECK): the statement is undone and the
// transaction goes on.
func isConstraint(err error) bool {
	var e *sqlitedriver.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
}
