package pg

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"
)

// Unreachable reports whether err says the database could not be reached or
// dropped the connection, rather than refused what was asked of it: no
// connection could be made, the server is shutting down or restarting
// (57P01-57P03), it has no connection to spare (53300), or a connection
// failed (class 08). The request may well succeed again in a moment.
func Unreachable(err error) bool {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || errors.Is(err, puddle.ErrClosedPool) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "57P01", "57P02", "57P03", "53300":
			return true
		}
		return strings.HasPrefix(pe.Code, "08")
	}
	return false
}

// BadText reports whether PostgreSQL refused text of the request: a NUL
// character (22P05, "unsupported Unicode escape sequence" / "character with
// value 0x00") or bytes that are not UTF-8 (22021). Request validation
// refuses both first; this is the backstop for a field it missed.
func BadText(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "22021" || pe.Code == "22P05")
}
