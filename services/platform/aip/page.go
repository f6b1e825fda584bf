package aip

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/mailplane/mailplane/services/platform/errs"
)

// Page sizes: a request without page_size gets DefaultPageSize items, one
// asking for more than MaxPageSize gets MaxPageSize (AIP-158 coerces rather
// than refuses).
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)

// maxTokenLen bounds the work a token from a stranger can cause; real
// tokens hold a sort key and an id, well under this.
const maxTokenLen = 1024

const tokenVersion = 1

// Page is where a List call starts and how many items it returns.
type Page struct {
	// Size is the number of items to return.
	Size int
	// After holds the sort keys of the last item of the previous page, as
	// given to Next; nil on the first page.
	After []string

	query [8]byte
}

// ParsePage reads a List request's page_size and page_token. query is
// everything else that shapes the list (the method, parent, filter,
// order_by, …): a token is valid only for the query that made it, so
// changing the filter between pages is InvalidArgument rather than a page
// of something else.
//
// Tokens are opaque to clients but not secret. They carry a checksum, not
// an HMAC: a token is no security boundary, because every page runs the same
// access checks and WHERE clause as the first, so a forged token can only
// start the list at another position the caller could read anyway. A key
// would have to be shared by every replica and rotated, and rotating it
// would break every listing in flight, for no protection gained. The
// checksum and the query fingerprint make a mistyped, truncated or reused
// token a clear error instead of a silently wrong page.
func ParsePage(size int32, token string, query ...string) (Page, error) {
	p := Page{query: fingerprint(query)}
	switch {
	case size < 0:
		return Page{}, errs.Field("pageSize", "must not be negative")
	case size == 0:
		p.Size = DefaultPageSize
	case size > MaxPageSize:
		p.Size = MaxPageSize
	default:
		p.Size = int(size)
	}
	if token == "" {
		return p, nil
	}
	after, err := decodeToken(token, p.query)
	if err != nil {
		return Page{}, err
	}
	p.After = after
	return p, nil
}

// Next returns the token of the page that starts after an item with the
// given sort keys.
func (p Page) Next(after ...string) string {
	b := []byte{tokenVersion}
	b = append(b, p.query[:]...)
	b = binary.AppendUvarint(b, uint64(len(after)))
	for _, k := range after {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
	}
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	return base64.RawURLEncoding.EncodeToString(b)
}

// TimeKey spells a time as a sort key for Next: its microseconds since the
// epoch, PostgreSQL's resolution, so the next page compares exactly.
func TimeKey(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 10) }

// Cursor returns what most lists page from, the sort key and id of the
// previous page's last item, given to Next as (key, id.String()) or
// (TimeKey(t), id.String()). The key is a string, or a time.Time when
// isTime; both are nil on the first page, for a keyset condition such as
// ($7::text IS NULL OR (a.local_key, a.id) > ($7, $8)).
func (p Page) Cursor(isTime bool) (key, id any, err error) {
	if p.After == nil {
		return nil, nil, nil
	}
	if len(p.After) != 2 {
		return nil, nil, BadPageToken()
	}
	u, err := uuid.Parse(p.After[1])
	if err != nil {
		return nil, nil, BadPageToken()
	}
	if !isTime {
		return p.After[0], u, nil
	}
	micros, err := strconv.ParseInt(p.After[0], 10, 64)
	if err != nil {
		return nil, nil, BadPageToken()
	}
	return time.UnixMicro(micros), u, nil
}

// Trim cuts items, fetched with a limit of p.Size+1, to p.Size and returns
// the token of the next page, or "" when items held the last one. keys
// returns an item's sort keys, as the next page's After.
func Trim[T any](p Page, items []T, keys func(T) []string) ([]T, string) {
	if len(items) <= p.Size {
		return items, ""
	}
	items = items[:p.Size]
	return items, p.Next(keys(items[len(items)-1])...)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// BadPageToken is the error for a page token that does not hold what its
// list put in it; services return it when the sort keys in Page.After do not
// parse.
func BadPageToken() error { return errs.Field("pageToken", "is not a token from a previous page") }

func errOtherQuery() error {
	return errs.Field("pageToken", "belongs to another query: keep parent, filter and orderBy as they were for the first page")
}

func decodeToken(token string, query [8]byte) ([]string, error) {
	if len(token) > maxTokenLen {
		return nil, BadPageToken()
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) < 1+8+1+4 {
		return nil, BadPageToken()
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum || body[0] != tokenVersion {
		return nil, BadPageToken()
	}
	if !bytes.Equal(body[1:9], query[:]) {
		return nil, errOtherQuery()
	}
	rest := body[9:]
	n, w := binary.Uvarint(rest)
	if w <= 0 || n > uint64(len(rest)) {
		return nil, BadPageToken()
	}
	rest = rest[w:]
	after := make([]string, 0, n)
	for range n {
		l, w := binary.Uvarint(rest)
		if w <= 0 || l > uint64(len(rest)-w) {
			return nil, BadPageToken()
		}
		after = append(after, string(rest[w:w+int(l)]))
		rest = rest[w+int(l):]
	}
	if len(rest) != 0 {
		return nil, BadPageToken()
	}
	return after, nil
}

// fingerprint hashes the query a token is bound to; each part is
// length-prefixed so ("ab", "c") and ("a", "bc") differ.
func fingerprint(query []string) [8]byte {
	h := sha256.New()
	for _, q := range query {
		h.Write(binary.AppendUvarint(nil, uint64(len(q))))
		h.Write([]byte(q))
	}
	var f [8]byte
	copy(f[:], h.Sum(nil))
	return f
}
