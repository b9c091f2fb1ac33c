package writer

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hookbridge/hookbridge/sdk"
)

// Permanent reports whether a failed write can never succeed for this
// record, so that it is dead-lettered instead of retried: the server
// rejected the record's data.
//
//   - class 22, data exception: invalid input for the column's type (a key
//     that is not UTF-8 in a text column, JSON jsonb cannot hold such as
//     \u0000, a value too long for varchar(n));
//   - class 23, integrity constraint violation: NOT NULL, CHECK, FOREIGN
//     KEY, or a unique constraint other than the one ON CONFLICT names;
//   - class 54, program limit exceeded: for a statement that writes one
//     row, the record's size or shape (a key too large for its index,
//     JSON nested too deep for the server's stack);
//   - class 44, WITH CHECK OPTION violation: PG_TABLE is a view that does
//     not keep the row (its WHERE refuses the record's data).
//
// A NOT NULL violation on a column the plugin does not write is the
// table's, not the record's: see notWritten in Handle.
//
// Everything else is retryable: no connection, a timeout, the server
// shutting down or out of resources (classes 08, 53, 57, 58), a
// serialization failure or deadlock (40001, 40P01), a lock not available
// (55P03), a read-only transaction after a failover (25006), and schema
// problems (class 42: a table or column that is missing, privileges),
// which are the database's state rather than the record's: retrying keeps
// the record, and the bridge's breaker pauses the route until the table is
// fixed instead of dead-lettering everything.
func Permanent(err error) bool {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return false
	}
	return strings.HasPrefix(pg.Code, "22") || strings.HasPrefix(pg.Code, "23") || strings.HasPrefix(pg.Code, "44") ||
		strings.HasPrefix(pg.Code, "54")
}

// classify marks err permanent for the bridge when Permanent says so.
func classify(err error) error {
	if Permanent(err) {
		return sdk.Permanent(err)
	}
	return err
}

// SchemaError is a table that does not fit the configuration: a column's
// type differs from the one the configuration writes, or a column the
// plugin does not write needs a value.
type SchemaError struct {
	Msg string
}

func (e *SchemaError) Error() string { return e.Msg }

// IsSchemaError reports whether err says the table does not fit the
// configuration: a *SchemaError, or a server error of class 42 (an unknown
// table or column, no unique constraint matching ON CONFLICT, a missing
// privilege) or 3F (an unknown schema). The plugin refuses to start on one.
func IsSchemaError(err error) bool {
	var se *SchemaError
	if errors.As(err, &se) {
		return true
	}
	return isSchemaCode(err)
}

// isSchemaCode reports a server error of class 42 or 3F.
func isSchemaCode(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (strings.HasPrefix(pg.Code, "42") || strings.HasPrefix(pg.Code, "3F"))
}
