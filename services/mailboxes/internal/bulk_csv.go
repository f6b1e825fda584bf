package mailboxes

// The CSV file of a bulk job: its columns, its reading and the checks of
// its rows that need no database. The format and the whole flow are
// described in bulk_jobs.go.

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mailplane/mailplane/services/platform/csvcell"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/validate"
)

const (
	// maxBulkRows bounds a file; a bigger one is split.
	maxBulkRows = 100_000
	// maxBulkCell bounds a field of a file, in bytes: 50 destinations of
	// 254 bytes fit; a row is at most numBulkColumns times as long.
	maxBulkCell = 16 << 10
	// maxBulkKeys bounds the local parts (names and aliases) a file claims.
	maxBulkKeys = 200_000
	// maxBulkErrors is how many problems an answer lists; it counts all.
	maxBulkErrors = 100
	// maxQuotaMB keeps quota_mb * 2^20 far from overflowing.
	maxQuotaMB = 1 << 24
	// maxBulkEmails bounds the distinct user emails a file names: each is
	// looked up among the organization's members as the file is uploaded.
	maxBulkEmails = 10_000
)

// The columns of a file, by name in its first line, in any order. Only
// local_part is required.
const (
	colLocalPart = iota
	colKind
	colAliases
	colRedirects
	colQuota
	colUsers
	numBulkColumns
)

var bulkColumns = [numBulkColumns]string{"local_part", "kind", "aliases", "redirect_destinations", "quota_mb", "users"}

// bulkIgnored are columns a file may have that are not read: those the
// error file (ExportBulkJobErrors) adds, so that it can be corrected and
// uploaded as it is.
var bulkIgnored = []string{"line", "error"}

// bulkTemplate is the file GetBulkTemplate returns: the header and an
// example row, with CRLF line ends as RFC 4180 has them. The example has
// no users: an email there must be a member's.
const bulkTemplate = "local_part,kind,aliases,redirect_destinations,quota_mb,users\r\n" +
	"anna.smith,mailbox,anna asmith,,2048,\r\n"

// bulkKinds are the kinds a file may create, indexed by keyUse.kind. A
// catch-all is one per mail service and is created on its own.
var bulkKinds = [...]string{"mailbox", "no_reply", "redirect"}

var utf8BOM = []byte("\xef\xbb\xbf")

// bulkErrors collects what is wrong with a file: the first maxBulkErrors
// problems, and how many there are.
type bulkErrors struct {
	list  []bulkError
	total int
}

type bulkError struct {
	line int
	v    errs.FieldViolation
}

// add records a problem on line (0: the file as a whole) in column col
// (empty: the whole line).
func (b *bulkErrors) add(line int, col, format string, args ...any) {
	b.total++
	if len(b.list) >= maxBulkErrors {
		return
	}
	field := "csv"
	if line > 0 {
		field = "line " + strconv.Itoa(line)
		if col != "" {
			field += ", column " + col
		}
	}
	b.list = append(b.list, bulkError{line, errs.FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)}})
}

// err is an InvalidArgument error listing the problems in line order, or nil.
func (b *bulkErrors) err() error {
	if b.total == 0 {
		return nil
	}
	slices.SortStableFunc(b.list, func(x, y bulkError) int { return x.line - y.line })
	vs := make([]errs.FieldViolation, len(b.list))
	for i, e := range b.list {
		vs[i] = e.v
	}
	e := errs.Fields(vs...)
	if b.total > 1 {
		e.Message = fmt.Sprintf("%s: %s (and %d more problems in the file", vs[0].Field, vs[0].Description, b.total-1)
		if b.total > len(vs) {
			e.Message += fmt.Sprintf("; the first %d are listed", len(vs))
		}
		e.Message += ")"
	}
	return e
}

// bulkRow is one data row, checked. What failed a check is left empty.
type bulkRow struct {
	line      int // of the local_part field
	aliasLine int // of the aliases field
	localPart string
	key       string
	kind      uint8 // index in bulkKinds
	aliases   []string
	redirects []string
	quota     int64
	users     []string // login emails, lower-cased
}

// bulkReader reads the data rows of a file.
type bulkReader struct {
	r    *csv.Reader
	cols [numBulkColumns]int // the column's index in a record; -1: absent
	rows int
	done bool
	// header is the first line's fields, as written.
	header []string
	// rec is the last row read, its fields as written; the next read
	// reuses it.
	rec []string
}

// newBulkReader reads the header of data; nil when the file cannot be read
// (the reasons are in be).
func newBulkReader(data []byte, be *bulkErrors) *bulkReader {
	data = bytes.TrimPrefix(data, utf8BOM)
	if len(bytes.TrimSpace(data)) == 0 {
		be.add(0, "", "is empty; download the template, fill it in and upload it")
		return nil
	}
	if !utf8.Valid(data) {
		i := 0
		for i < len(data) {
			r, n := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			i += n
		}
		be.add(1+bytes.Count(data[:i], []byte("\n")), "", "is not UTF-8 text; save the file as \"CSV UTF-8\"")
		return nil
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.ReuseRecord = true
	// FieldsPerRecord 0: every record as wide as the header. LazyQuotes
	// false: RFC 4180 quoting only.
	r.FieldsPerRecord = 0
	r.LazyQuotes = false
	// Spreadsheets in locales with a decimal comma save CSV with semicolons.
	first, _, _ := bytes.Cut(data, []byte("\n"))
	if !bytes.ContainsRune(first, ',') && bytes.ContainsRune(first, ';') {
		r.Comma = ';'
	}
	header, err := r.Read()
	if err != nil {
		be.add(1, "", "cannot be read: %v", csvReason(err))
		return nil
	}
	b := &bulkReader{r: r, header: slices.Clone(header)}
	for i := range b.cols {
		b.cols[i] = -1
	}
	ok := true
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		c := slices.Index(bulkColumns[:], name)
		switch {
		case c < 0 && slices.Contains(bulkIgnored, name):
			// From the error file: read past.
		case c < 0:
			be.add(1, h, "is not a column of the template; the columns are %s", strings.Join(bulkColumns[:], ", "))
			ok = false
		case b.cols[c] >= 0:
			be.add(1, h, "appears twice")
			ok = false
		default:
			b.cols[c] = i
		}
	}
	if ok && b.cols[colLocalPart] < 0 {
		be.add(1, "", "the first line must name the columns, local_part at least: %s", strings.Join(bulkColumns[:], ","))
		ok = false
	}
	if !ok {
		return nil
	}
	return b
}

// csvReason says what encoding/csv found wrong, for a person.
func csvReason(err error) string {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return err.Error()
	}
	switch {
	case errors.Is(pe.Err, csv.ErrBareQuote):
		return fmt.Sprintf("a \" in an unquoted field (character %d); quote the field and double the \" inside", pe.Column)
	case errors.Is(pe.Err, csv.ErrQuote):
		return fmt.Sprintf("a quoted field is not closed, or has text after its closing \" (character %d)", pe.Column)
	}
	return pe.Err.Error()
}

// next reads the next row. ok is false at the end of the file and at a
// problem that stops the reading; valid is false when the row has a
// problem (recorded in be).
func (b *bulkReader) next(be *bulkErrors) (row bulkRow, valid, ok bool) {
	for !b.done {
		rec, err := b.r.Read()
		if err == io.EOF {
			b.done = true
			break
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount) {
			b.rows++
			be.add(pe.StartLine, "", "has %d fields; the first line has %d", len(rec), b.r.FieldsPerRecord)
			return bulkRow{line: pe.StartLine}, false, true
		}
		if err != nil {
			line := 0
			if errors.As(err, &pe) {
				line = pe.Line
			}
			be.add(line, "", "%s; the rest of the file was not read", csvReason(err))
			b.done = true
			break
		}
		// A spreadsheet saves rows it once had as empty fields.
		if !slices.ContainsFunc(rec, func(f string) bool { return strings.TrimSpace(f) != "" }) {
			continue
		}
		if b.rows++; b.rows > maxBulkRows {
			be.add(0, "", "has more than %d rows; split it into several files", maxBulkRows)
			b.done = true
			break
		}
		b.rec = rec
		row, valid = b.check(rec, be)
		return row, valid, true
	}
	return bulkRow{}, false, false
}

// check applies the rules of CreateAddress to a record.
func (b *bulkReader) check(rec []string, be *bulkErrors) (bulkRow, bool) {
	get := func(c int) (string, int) {
		i := b.cols[c]
		if i < 0 {
			return "", 0
		}
		line, _ := b.r.FieldPos(i)
		// The error file defuses cells a spreadsheet would run
		// (csvcell); uploaded again, they read as the customer wrote them.
		return strings.TrimSpace(csvcell.Restore(rec[i])), line
	}
	n := be.total
	bad := func(line, c int, format string, args ...any) { be.add(line, bulkColumns[c], format, args...) }
	for c, i := range b.cols {
		if i >= 0 && len(rec[i]) > maxBulkCell {
			line, _ := b.r.FieldPos(i)
			bad(line, c, "is %d bytes long; at most %d", len(rec[i]), maxBulkCell)
			return bulkRow{line: line}, false
		}
	}

	var row bulkRow
	lp, line := get(colLocalPart)
	row.line = line
	kind, kindLine := get(colKind)
	kindOK := true
	switch strings.ReplaceAll(strings.ToLower(kind), "-", "_") {
	case "", "mailbox":
		row.kind = 0
	case "no_reply", "noreply":
		row.kind = 1
	case "redirect":
		row.kind = 2
	case "catch_all":
		bad(kindLine, colKind, "a catch-all address is created on its own, not from a file")
		kindOK = false
	default:
		bad(kindLine, colKind, "must be mailbox, no_reply or redirect (empty: mailbox)")
		kindOK = false
	}
	key := localKey(lp)
	switch err := checkLocalPart(lp); {
	case err != nil:
		bad(line, colLocalPart, "%s", err)
	case forbidden[key]:
		bad(line, colLocalPart, "%q belongs to the mail system itself", key)
	default:
		row.localPart, row.key = lp, key
		if kindOK && mustReceive[key] && bulkKinds[row.kind] == "no_reply" {
			bad(kindLine, colKind, "%q must receive mail (RFC 2142); it cannot be no-reply", key)
		}
	}

	aliases, aliasLine := get(colAliases)
	row.aliasLine = aliasLine
	list := splitList(aliases)
	if len(list) > maxAliases {
		bad(aliasLine, colAliases, "has %d aliases; at most %d", len(list), maxAliases)
		list = nil
	}
	seen := make(map[string]bool, len(list))
	for _, al := range list {
		ak := localKey(al)
		switch err := checkLocalPart(al); {
		case err != nil:
			bad(aliasLine, colAliases, "alias %q %s", al, err)
		case ak == "*":
			bad(aliasLine, colAliases, "* cannot be an alias")
		case forbidden[ak]:
			bad(aliasLine, colAliases, "alias %q belongs to the mail system itself", ak)
		case ak == key:
			bad(aliasLine, colAliases, "alias %q is the local part itself", al)
		case !seen[ak]:
			seen[ak] = true
			row.aliases = append(row.aliases, ak)
		}
	}

	dests, destLine := get(colRedirects)
	if kindOK {
		list := splitList(dests)
		redirects, err := checkRedirects(bulkKinds[row.kind], list)
		if err != nil {
			bad(destLine, colRedirects, "%s", redirectProblem(err, list))
		}
		row.redirects = redirects
	}

	if q, qLine := get(colQuota); q != "" {
		mb, err := strconv.ParseInt(q, 10, 64)
		switch {
		case err != nil || mb < 0:
			bad(qLine, colQuota, "must be a whole number of megabytes (MiB); 0 or empty: the default")
		case mb > maxQuotaMB:
			bad(qLine, colQuota, "must be at most %d", maxQuotaMB)
		default:
			row.quota = mb << 20
		}
	}
	if us, uLine := get(colUsers); us != "" {
		list := strings.FieldsFunc(us, func(r rune) bool { return r == ';' || r == ',' || unicode.IsSpace(r) })
		switch {
		case len(list) > maxAddressUsers:
			bad(uLine, colUsers, "has %d users; at most %d", len(list), maxAddressUsers)
		case kindOK && bulkKinds[row.kind] != "mailbox":
			bad(uLine, colUsers, "a %s address has no users", strings.ReplaceAll(bulkKinds[row.kind], "_", "-"))
		default:
			for _, u := range list {
				u = strings.ToLower(u)
				if err := validate.Email(u); err != nil {
					bad(uLine, colUsers, "%q %s", u, err)
					continue
				}
				if !slices.Contains(row.users, u) {
					row.users = append(row.users, u)
				}
			}
		}
	}
	return row, be.total == n
}

// splitList splits a list field: values separated by spaces or commas.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
}

var indexSuffix = regexp.MustCompile(`\[(\d+)\]$`)

// redirectProblem turns an error of checkRedirects, which names request
// fields, into what the CSV cell holds wrong.
func redirectProblem(err error, list []string) string {
	var e *errs.Error
	if !errors.As(err, &e) || len(e.Fields) == 0 {
		return err.Error()
	}
	f := e.Fields[0]
	if m := indexSuffix.FindStringSubmatch(f.Field); m != nil {
		if i, _ := strconv.Atoi(m[1]); i < len(list) {
			return fmt.Sprintf("%q %s", list[i], f.Description)
		}
	}
	return f.Description
}

// bulkFile is what the first reading keeps of a file: its row count and the
// local parts it claims, not its rows.
type bulkFile struct {
	rows    int
	skipped int // rows whose address exists already
	keys    map[string]keyUse
	header  []string
	// emails are the users the file names, to look up among the
	// organization's members.
	emails map[string]bool
}

// keyUse is where a file claims a local part.
type keyUse struct {
	row   int32 // ordinal of the row
	line  int32
	kind  uint8 // of the row, index in bulkKinds
	alias bool
	skip  bool // the row's address exists already (set on its own key)
}

// checkBulk reads data once and reports every problem it can find without
// the database.
func checkBulk(data []byte) (*bulkFile, *bulkErrors) {
	be := &bulkErrors{}
	f := &bulkFile{keys: map[string]keyUse{}, emails: map[string]bool{}}
	br := newBulkReader(data, be)
	if br == nil {
		return f, be
	}
	f.header = br.header
	claim := func(key string, u keyUse) {
		if prev, ok := f.keys[key]; ok {
			col := bulkColumns[colLocalPart]
			if u.alias {
				col = bulkColumns[colAliases]
			}
			be.add(int(u.line), col, "%q is already on line %d", key, prev.line)
			return
		}
		if len(f.keys) >= maxBulkKeys {
			if len(f.keys) == maxBulkKeys {
				be.add(int(u.line), "", "the file claims more than %d local parts (names and aliases); split it into several files", maxBulkKeys)
				f.keys[""] = keyUse{} // reported once
			}
			return
		}
		// The key may share memory with the whole line; keep only itself.
		f.keys[strings.Clone(key)] = u
	}
	for {
		row, _, ok := br.next(be)
		if !ok {
			break
		}
		n := int32(br.rows)
		if row.key != "" {
			claim(row.key, keyUse{row: n, line: int32(row.line), kind: row.kind})
		}
		for _, al := range row.aliases {
			claim(al, keyUse{row: n, line: int32(row.aliasLine), alias: true})
		}
		for _, u := range row.users {
			if !f.emails[u] && len(f.emails) >= maxBulkEmails {
				be.add(row.line, bulkColumns[colUsers], "the file names more than %d users; split it into several files", maxBulkEmails)
				br.done = true
				break
			}
			f.emails[strings.Clone(u)] = true
		}
	}
	f.rows = br.rows
	if f.rows == 0 && be.total == 0 {
		be.add(0, "", "has no rows below the first line")
	}
	return f, be
}
