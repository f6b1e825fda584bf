package mailboxes

// Bulk creation of addresses from a CSV file.
//
// The file (RFC 4180, UTF-8 with or without a BOM) starts with a line naming
// its columns, in any order: local_part (required); kind, mailbox, no_reply
// or redirect (empty: mailbox); aliases and redirect_destinations, separated
// by spaces or commas; quota_mb, in MiB (empty or 0: the default). A file
// whose first line has semicolons and no comma is read with semicolons, as
// spreadsheets in decimal-comma locales save CSV. Rows of empty fields are
// skipped. Users are not set from a file: checking each one is a member would
// cost a call to accounts per row; access is given once the addresses exist.
//
// CreateBulkJob reads the file twice and never holds it as rows. The first
// reading checks every row with the rules of CreateAddress and keeps only the
// local parts the file claims (its own keys and its aliases, to find
// duplicates in the file and, in one query, those already taken on the mail
// service). When every row is valid, a job starts at once in a goroutine and
// the second reading creates the addresses in batches of bulkBatchRows rows,
// each batch one transaction of three COPYs (addresses, local_parts, outbox)
// and the job's progress. Memory beyond the upload itself (a unary gRPC
// message) grows with the number of distinct local parts, a few dozen bytes
// each, and one batch.
//
// Every address created gets its mailboxes.address.created event, as from
// CreateAddress, so that consumers need no second path; the events are
// copied into the outbox with the rows, which costs little. The audit log
// gets one record per run, mailboxes.address.bulkCreate, with the counts.
//
// Uploading a file again is safe: a row whose local part is already an
// address of the same kind counts as done and is left as it is, and the same
// file (same SHA-256) finds its job instead of starting another. A job that
// failed is run again by uploading the file again: what was created is
// skipped, the rest is created. A running job keeps its file in its row, so
// one whose process stopped (its heartbeat is over a minute old) is resumed
// the same way by the service's background work (RunBackground), with no
// upload, at most maxBulkResumes times; the file is dropped when the job
// ends.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/idempotency"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	// bulkBatchRows is how many rows one transaction creates; the job's
	// progress moves by as many.
	bulkBatchRows = 1000
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
	// maxBulkResumes is how many times a job is resumed after its process
	// stopped, without an upload.
	maxBulkResumes = 5
	// bulkJobTimeout bounds a job's run.
	bulkJobTimeout = 10 * time.Minute
	// A running job whose heartbeat (update_time, written with every batch)
	// is older than a minute counts as abandoned: staleJob in SQL.
	staleJob = `state = 'running' AND update_time < now() - interval '1 minute'`
)

// The columns of a file, by name in its first line, in any order. Only
// local_part is required.
const (
	colLocalPart = iota
	colKind
	colAliases
	colRedirects
	colQuota
	numBulkColumns
)

var bulkColumns = [numBulkColumns]string{"local_part", "kind", "aliases", "redirect_destinations", "quota_mb"}

// bulkTemplate is the file GetBulkTemplate returns: the header and an
// example row, with CRLF line ends as RFC 4180 has them.
const bulkTemplate = "local_part,kind,aliases,redirect_destinations,quota_mb\r\n" +
	"anna.smith,mailbox,anna asmith,,2048\r\n"

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
}

// bulkReader reads the data rows of a file.
type bulkReader struct {
	r    *csv.Reader
	cols [numBulkColumns]int // the column's index in a record; -1: absent
	rows int
	done bool
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
	b := &bulkReader{r: r}
	for i := range b.cols {
		b.cols[i] = -1
	}
	ok := true
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		c := slices.Index(bulkColumns[:], name)
		switch {
		case name == "users":
			be.add(1, h, "users are not set from a file; give people access to the addresses once they exist")
			ok = false
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
		return strings.TrimSpace(rec[i]), line
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
	f := &bulkFile{keys: map[string]keyUse{}}
	br := newBulkReader(data, be)
	if br == nil {
		return f, be
	}
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
	}
	f.rows = br.rows
	if f.rows == 0 && be.total == 0 {
		be.add(0, "", "has no rows below the first line")
	}
	return f, be
}

// checkBulkFile reads data once and checks it against mail service ms:
// every problem comes back as one InvalidArgument error.
func checkBulkFile(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, ms uuid.UUID, data []byte) (*bulkFile, error) {
	f, be := checkBulk(data)
	if err := checkTaken(ctx, q, ms, f, be); err != nil {
		return nil, err
	}
	return f, be.err()
}

const selectTaken = `
SELECT l.local_key, l.is_alias, COALESCE(l.holder, ''), COALESCE(a.kind, '')
FROM local_parts l LEFT JOIN addresses a ON a.id = l.address_id
WHERE l.mail_service_id = $1 AND l.local_key = ANY($2)`

// checkTaken finds the local parts of f already taken on mail service ms,
// in one query: a row whose address exists with the same kind is skipped;
// any other collision is a problem.
func checkTaken(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, ms uuid.UUID, f *bulkFile, be *bulkErrors) error {
	if len(f.keys) == 0 {
		return nil
	}
	keys := make([]string, 0, len(f.keys))
	for k := range f.keys {
		keys = append(keys, k)
	}
	type taken struct {
		key, holder, kind string
		alias             bool
	}
	rows, _ := q.Query(ctx, selectTaken, ms, keys)
	held, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (taken, error) {
		var t taken
		err := r.Scan(&t.key, &t.alias, &t.holder, &t.kind)
		return t, err
	})
	if err != nil {
		return fmt.Errorf("find taken local parts: %w", err)
	}
	skipped := map[int32]bool{}
	for _, t := range held {
		u := f.keys[t.key]
		if !u.alias && !t.alias && t.holder == "" && t.kind == bulkKinds[u.kind] {
			u.skip = true
			f.keys[t.key] = u
			skipped[u.row] = true
		}
	}
	f.skipped = len(skipped)
	for _, t := range held {
		u := f.keys[t.key]
		if u.skip || skipped[u.row] {
			continue
		}
		col := bulkColumns[colLocalPart]
		if u.alias {
			col = bulkColumns[colAliases]
		}
		switch {
		case t.holder != "":
			be.add(int(u.line), col, "%q is reserved by the %s service", t.key, t.holder)
		case t.alias:
			be.add(int(u.line), col, "%q is already an alias of another address", t.key)
		case u.alias:
			be.add(int(u.line), col, "%q is already an address of this mail service", t.key)
		default:
			be.add(int(u.line), bulkColumns[colKind], "%q is already an address of kind %s", t.key, t.kind)
		}
	}
	return nil
}

// GetBulkTemplate returns the CSV template.
func (s *Server) GetBulkTemplate(ctx context.Context, req *mailboxesv1.GetBulkTemplateRequest) (*mailboxesv1.GetBulkTemplateResponse, error) {
	ids, err := parseName("parent", req.GetParent(), "organizations", "mailServices")
	if err != nil {
		return nil, err
	}
	if _, _, err := s.access(ctx, ids[0]); err != nil {
		return nil, err
	}
	if _, err := activeMailService(ctx, s.pool, ids[0], ids[1]); err != nil {
		return nil, err
	}
	return &mailboxesv1.GetBulkTemplateResponse{Csv: bulkTemplate}, nil
}

// bulkJob is a row of bulk_jobs.
type bulkJob struct {
	ID            uuid.UUID
	MailServiceID uuid.UUID
	State         string
	TotalRows     int32
	DoneRows      int32
	Error         string
	Attempt       int32
	CreateTime    time.Time
	EndTime       *time.Time
	// Stale: running, and not heard of for a minute.
	Stale bool
}

const (
	bulkJobColumns = `id, mail_service_id, state, total_rows, done_rows, error, attempt, create_time, end_time,
       (` + staleJob + `) AS stale`

	selectBulkJobByContent = `SELECT ` + bulkJobColumns + ` FROM bulk_jobs WHERE mail_service_id = $1 AND content_sha256 = $2`

	selectBulkJob = `SELECT ` + bulkJobColumns + ` FROM bulk_jobs j
WHERE j.id = $1 AND j.mail_service_id = $2
  AND EXISTS (SELECT 1 FROM mail_services m WHERE m.id = j.mail_service_id AND m.organization_id = $3 AND m.delete_time IS NULL)`

	insertBulkJob = `
INSERT INTO bulk_jobs (id, mail_service_id, content_sha256, state, total_rows, csv, actor) VALUES ($1, $2, $3, 'running', $4, $5, $6)
ON CONFLICT (mail_service_id, content_sha256) DO NOTHING
RETURNING ` + bulkJobColumns

	// restartBulkJob takes over a failed or abandoned job.
	restartBulkJob = `
UPDATE bulk_jobs SET state = 'running', total_rows = $2, done_rows = 0, error = '', end_time = NULL,
       attempt = attempt + 1, resumes = 0, update_time = now(), csv = $3, actor = $4
WHERE id = $1 AND (state = 'failed' OR (` + staleJob + `))
RETURNING ` + bulkJobColumns

	// resumeBulkJob takes over the longest abandoned job that kept its
	// file, with what its run needs.
	resumeBulkJob = `
UPDATE bulk_jobs SET done_rows = 0, attempt = attempt + 1, resumes = resumes + 1, update_time = now()
WHERE id = (SELECT id FROM bulk_jobs WHERE ` + staleJob + ` AND csv IS NOT NULL
            ORDER BY update_time LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING ` + bulkJobColumns + `, csv, actor, resumes`

	bulkProgress = `UPDATE bulk_jobs SET done_rows = $3, update_time = now() WHERE id = $1 AND attempt = $2`

	bulkSucceeded = `
UPDATE bulk_jobs SET state = 'succeeded', done_rows = total_rows, update_time = now(), end_time = now(), csv = NULL
WHERE id = $1 AND attempt = $2`

	bulkFailed = `
UPDATE bulk_jobs SET state = 'failed', error = $3, update_time = now(), end_time = now(), csv = NULL
WHERE id = $1 AND attempt = $2 AND state = 'running'`
)

func collectBulkJob(rows pgx.Rows) (*bulkJob, error) {
	j, err := pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByPos[bulkJob])
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return j, err
}

func bulkJobName(org uuid.UUID, j *bulkJob) string {
	return mailServiceName(org, j.MailServiceID) + "/bulkJobs/" + j.ID.String()
}

var bulkStates = map[string]mailboxesv1.BulkJobState{
	"running":   mailboxesv1.BulkJobState_BULK_JOB_STATE_RUNNING,
	"succeeded": mailboxesv1.BulkJobState_BULK_JOB_STATE_SUCCEEDED,
	"failed":    mailboxesv1.BulkJobState_BULK_JOB_STATE_FAILED,
}

func bulkJobProto(org uuid.UUID, j *bulkJob) *mailboxesv1.BulkJob {
	p := &mailboxesv1.BulkJob{
		Name: bulkJobName(org, j), State: bulkStates[j.State], TotalRows: j.TotalRows, DoneRows: j.DoneRows,
		Error: j.Error, CreateTime: timestamppb.New(j.CreateTime),
	}
	if j.EndTime != nil {
		p.EndTime = timestamppb.New(*j.EndTime)
	}
	return p
}

// Default caps on an organization's bulk jobs.
const (
	DefaultBulkJobsRunning    = 2
	DefaultBulkUploadsPerHour = 20
)

// SetBulkLimits caps an organization's running bulk jobs and its uploads
// starting one per hour; 0 keeps the default.
func (s *Server) SetBulkLimits(running, perHour int) {
	if running > 0 {
		s.bulkRunning = running
	}
	if perHour > 0 {
		s.bulkPerHour = perHour
	}
}

const (
	// countRunningBulkJobs counts org $1's running jobs but $2.
	countRunningBulkJobs = `
SELECT count(*) FROM bulk_jobs j JOIN mail_services m ON m.id = j.mail_service_id
WHERE m.organization_id = $1 AND j.state = 'running' AND j.id <> $2`

	// countBulkUploads counts org $1's uploads of the last hour and says
	// when the oldest of them stops counting.
	countBulkUploads = `
SELECT count(*), COALESCE(EXTRACT(EPOCH FROM min(create_time) + interval '1 hour' - now()), 0)::float8 FROM bulk_uploads
WHERE organization_id = $1 AND create_time > now() - interval '1 hour'`

	recordBulkUpload = `
WITH old AS (DELETE FROM bulk_uploads WHERE organization_id = $1 AND create_time <= now() - interval '1 hour')
INSERT INTO bulk_uploads (organization_id) VALUES ($1)`
)

// checkBulkQuota refuses a job of org over its caps; except is the job
// being restarted, which does not count as running.
func (s *Server) checkBulkQuota(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, org, except uuid.UUID) error {
	var running int
	if err := q.QueryRow(ctx, countRunningBulkJobs, org, except).Scan(&running); err != nil {
		return fmt.Errorf("count running bulk jobs: %w", err)
	}
	if running >= s.bulkRunning {
		e := errs.E(errs.ResourceExhausted, "the organization already has %d bulk jobs running; wait for one to end", running).WithReason("BULK_JOBS_RUNNING")
		e.RetryAfter = 30 * time.Second
		return e
	}
	var uploads int
	var wait float64 // seconds
	if err := q.QueryRow(ctx, countBulkUploads, org).Scan(&uploads, &wait); err != nil {
		return fmt.Errorf("count bulk uploads: %w", err)
	}
	if uploads >= s.bulkPerHour {
		e := errs.E(errs.ResourceExhausted, "the organization made %d bulk uploads in the last hour, the most it may", uploads).WithReason("BULK_UPLOADS_PER_HOUR")
		e.RetryAfter = max(time.Duration(wait)*time.Second, time.Second)
		return e
	}
	return nil
}

// CreateBulkJob checks a CSV file and starts creating its addresses.
func (s *Server) CreateBulkJob(ctx context.Context, req *mailboxesv1.CreateBulkJobRequest) (*mailboxesv1.CreateBulkJobResponse, error) {
	ids, err := parseName("parent", req.GetParent(), "organizations", "mailServices")
	if err != nil {
		return nil, err
	}
	org, msID := ids[0], ids[1]
	c, err := s.manage(ctx, org)
	if err != nil {
		return nil, err
	}
	idem, done, err := s.idempotencyKey(ctx, req, c, "CreateBulkJob")
	if err != nil || done != "" {
		return s.createdBulkJob(ctx, done, err)
	}
	m, err := activeMailService(ctx, s.pool, org, msID)
	if err != nil {
		return nil, err
	}
	data := req.GetCsv()
	sum := sha256.Sum256(data)
	rows, _ := s.pool.Query(ctx, selectBulkJobByContent, msID, sum[:])
	prev, err := collectBulkJob(rows)
	if err != nil {
		return nil, fmt.Errorf("find bulk job: %w", err)
	}
	if prev != nil && (prev.State == "succeeded" || prev.State == "running" && !prev.Stale) {
		return &mailboxesv1.CreateBulkJobResponse{Job: bulkJobProto(org, prev)}, nil
	}

	// The caps are checked before the file, which costs more, and again
	// under the organization's lock as the job starts.
	except := uuid.Nil
	if prev != nil {
		except = prev.ID
	}
	if err := s.checkBulkQuota(ctx, s.pool, org, except); err != nil {
		return nil, err
	}
	f, err := checkBulkFile(ctx, s.pool, msID, data)
	if err != nil {
		return nil, err
	}

	id := uuid.Must(uuid.NewV7())
	if prev != nil {
		id = prev.ID
	}
	var job *bulkJob
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := idem.Insert(ctx, tx, mailServiceName(org, msID)+"/bulkJobs/"+id.String()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('mailboxes.bulk_uploads/' || $1::text, 0))", org); err != nil {
			return fmt.Errorf("lock the organization's bulk jobs: %w", err)
		}
		if err := s.checkBulkQuota(ctx, tx, org, except); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, recordBulkUpload, org); err != nil {
			return fmt.Errorf("record bulk upload: %w", err)
		}
		var rows pgx.Rows
		if prev == nil {
			rows, _ = tx.Query(ctx, insertBulkJob, id, msID, sum[:], f.rows, data, c.Name())
		} else {
			rows, _ = tx.Query(ctx, restartBulkJob, prev.ID, f.rows, data, c.Name())
		}
		var err error
		if job, err = collectBulkJob(rows); err != nil {
			return err
		}
		if job == nil {
			return errBulkJobTaken
		}
		return audit(ctx, tx, organizationName(org), c, "mailboxes.address.bulkCreate", bulkJobName(org, job), map[string]string{
			"rows": strconv.Itoa(f.rows), "toCreate": strconv.Itoa(f.rows - f.skipped), "existing": strconv.Itoa(f.skipped),
			"sha256": hex.EncodeToString(sum[:]), "attempt": strconv.Itoa(int(job.Attempt)),
		})
	})
	if errors.Is(err, errBulkJobTaken) {
		job, err = nil, nil
	}
	if err != nil {
		if errs.Is(err, errs.ResourceExhausted) {
			return nil, err
		}
		if idempotency.IsRace(err) {
			done, err := s.raced(ctx, idem, err)
			return s.createdBulkJob(ctx, done, err)
		}
		return nil, fmt.Errorf("start bulk job: %w", err)
	}
	if job == nil {
		// Another upload of the same file started or restarted it first.
		rows, _ := s.pool.Query(ctx, selectBulkJobByContent, msID, sum[:])
		if job, err = collectBulkJob(rows); err != nil {
			return nil, fmt.Errorf("find bulk job: %w", err)
		}
		if job == nil {
			return nil, errs.E(errs.Conflict, "the mail service's jobs changed meanwhile; upload the file again")
		}
		return &mailboxesv1.CreateBulkJobResponse{Job: bulkJobProto(org, job)}, nil
	}

	// The job outlives the request: detached from its cancellation, it
	// keeps its values (trace, caller's address) for the events.
	run := bulkRun{s: s, job: job, org: org, domain: m.Domain, actor: c.Name(), data: data, file: f}
	go run.run(context.WithoutCancel(ctx))
	return &mailboxesv1.CreateBulkJobResponse{Job: bulkJobProto(org, job)}, nil
}

// errBulkJobTaken undoes the start of a job that another upload of the
// same file started or restarted first.
var errBulkJobTaken = errors.New("bulk job started by another upload")

// createdBulkJob answers an upload again with the job name it started,
// read afresh, or err.
func (s *Server) createdBulkJob(ctx context.Context, name string, err error) (*mailboxesv1.CreateBulkJobResponse, error) {
	if err != nil {
		return nil, err
	}
	got, err := s.GetBulkJob(ctx, &mailboxesv1.GetBulkJobRequest{Name: name})
	if err != nil {
		return nil, err
	}
	return &mailboxesv1.CreateBulkJobResponse{Job: got.GetJob()}, nil
}

// GetBulkJob returns a job and its progress.
func (s *Server) GetBulkJob(ctx context.Context, req *mailboxesv1.GetBulkJobRequest) (*mailboxesv1.GetBulkJobResponse, error) {
	ids, err := parseName("name", req.GetName(), "organizations", "mailServices", "bulkJobs")
	if err != nil {
		return nil, err
	}
	if _, err := s.manage(ctx, ids[0]); err != nil {
		return nil, err
	}
	rows, _ := s.pool.Query(ctx, selectBulkJob, ids[2], ids[1], ids[0])
	job, err := collectBulkJob(rows)
	if err != nil {
		return nil, fmt.Errorf("get bulk job: %w", err)
	}
	if job == nil {
		return nil, errs.E(errs.NotFound, "bulk job not found")
	}
	return &mailboxesv1.GetBulkJobResponse{Job: bulkJobProto(ids[0], job)}, nil
}

// ResumeBulkJobs finishes the jobs whose process stopped half way (running,
// no heartbeat for a minute), one after the other, from the file each kept,
// and reports how many it took over. What the first run created is found
// and skipped, as when the file is uploaded again.
func (s *Server) ResumeBulkJobs(ctx context.Context) (int, error) {
	for n := 0; ; n++ {
		j := &bulkJob{}
		var data []byte
		var actor string
		var resumes int
		err := s.pool.QueryRow(ctx, resumeBulkJob).Scan(&j.ID, &j.MailServiceID, &j.State, &j.TotalRows, &j.DoneRows,
			&j.Error, &j.Attempt, &j.CreateTime, &j.EndTime, &j.Stale, &data, &actor, &resumes)
		if errors.Is(err, pgx.ErrNoRows) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("resume bulk job: %w", err)
		}
		s.resumeBulkJob(ctx, j, data, actor, resumes)
	}
}

// resumeBulkJob runs job again from its file; a job that can no longer be
// done (its mail service deleted, a name taken meanwhile) fails with the
// reason.
func (s *Server) resumeBulkJob(ctx context.Context, job *bulkJob, data []byte, actor string, resumes int) {
	var org uuid.UUID
	var domain string
	var deleted bool
	err := s.pool.QueryRow(ctx, "SELECT organization_id, domain, delete_time IS NOT NULL FROM mail_services WHERE id = $1", job.MailServiceID).
		Scan(&org, &domain, &deleted)
	if err != nil {
		s.log.ErrorContext(ctx, "resume bulk job: mail service", "bulkJob", job.ID, "error", err)
		return
	}
	run := bulkRun{s: s, job: job, org: org, domain: domain, actor: actor, data: data}
	f, err := checkBulkFile(ctx, s.pool, job.MailServiceID, data)
	if err != nil && errs.KindOf(err) != errs.InvalidArgument {
		s.log.ErrorContext(ctx, "resume bulk job", "bulkJob", job.ID, "error", err)
		return
	}
	switch {
	case resumes > maxBulkResumes:
		// A file that stops its process every time must not do so forever.
		run.fail(ctx, fmt.Sprintf("stopped %d times without finishing; upload the file again to retry", maxBulkResumes))
	case deleted:
		run.fail(ctx, "its mail service was deleted")
	case err != nil:
		run.fail(ctx, "could not be resumed: "+err.Error())
	default:
		run.file = f
		// Each run is audited, as the upload that started the first was;
		// the actor is whoever uploaded the file.
		name := bulkJobName(org, job)
		err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
			return outbox.Write(ctx, tx, "mailboxes.audit.recorded", auditRecord(ctx, organizationName(org), actor, "mailboxes.address.bulkCreate", name, map[string]string{
				"rows": strconv.Itoa(f.rows), "toCreate": strconv.Itoa(f.rows - f.skipped), "existing": strconv.Itoa(f.skipped),
				"attempt": strconv.Itoa(int(job.Attempt)), "resumed": "true",
			}))
		})
		if err != nil {
			s.log.ErrorContext(ctx, "resume bulk job: audit", "bulkJob", name, "error", err)
			return
		}
		s.log.InfoContext(ctx, "bulk job resumed", "bulkJob", name, "attempt", job.Attempt)
		run.run(ctx)
	}
}

// bulkRun is one run of a job: the second reading of its file.
type bulkRun struct {
	s      *Server
	job    *bulkJob
	org    uuid.UUID
	domain string
	actor  string
	data   []byte
	file   *bulkFile
}

// errSuperseded stops a run whose job another run took over.
var errSuperseded = errors.New("bulk job taken over by another run")

func (r *bulkRun) run(parent context.Context) {
	log := r.s.log.With("bulkJob", bulkJobName(r.org, r.job), "attempt", r.job.Attempt)
	ctx, cancel := context.WithTimeout(parent, bulkJobTimeout)
	defer cancel()
	start := time.Now()
	created, err := r.create(ctx)
	if err == nil {
		log.InfoContext(ctx, "bulk job succeeded", "rows", r.file.rows, "created", created, "duration", time.Since(start))
		return
	}
	if errors.Is(err, errSuperseded) {
		log.WarnContext(ctx, "bulk job run superseded", "created", created)
		return
	}
	if parent.Err() != nil {
		// The process is stopping: the job stays running, its file kept,
		// and is resumed once its heartbeat is a minute old.
		log.InfoContext(ctx, "bulk job interrupted; it will be resumed", "created", created)
		return
	}
	msg := "stopped by an internal error; upload the file again to create the rest"
	var e *errs.Error
	if errors.As(err, &e) {
		msg = e.Message
	} else {
		log.ErrorContext(ctx, "bulk job failed", "created", created, "error", err)
	}
	r.fail(ctx, msg)
}

// fail ends the run's job as failed, for the reason msg, even when ctx ran
// out.
func (r *bulkRun) fail(ctx context.Context, msg string) {
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer fcancel()
	if _, err := r.s.pool.Exec(fctx, bulkFailed, r.job.ID, r.job.Attempt, msg); err != nil {
		r.s.log.ErrorContext(ctx, "mark bulk job failed", "bulkJob", r.job.ID, "error", err)
	}
}

// create makes the file's addresses, a batch per transaction, and reports
// how many.
func (r *bulkRun) create(ctx context.Context) (int, error) {
	be := &bulkErrors{}
	br := newBulkReader(r.data, be)
	if br == nil {
		return 0, fmt.Errorf("read the file again: %w", be.err())
	}
	headers, err := eventHeaders(ctx, &mailboxesv1.AddressChanged{})
	if err != nil {
		return 0, err
	}
	b := bulkBatch{run: r, headers: headers}
	created := 0
	for {
		row, valid, ok := br.next(be)
		if !ok {
			break
		}
		if !valid {
			return created, fmt.Errorf("line %d read differently the second time: %w", row.line, be.err())
		}
		if !r.file.keys[row.key].skip {
			if err := b.add(row); err != nil {
				return created, err
			}
		}
		if br.rows%bulkBatchRows == 0 {
			n, err := b.flush(ctx, br.rows, false)
			created += n
			if err != nil {
				return created, err
			}
		}
	}
	if be.total > 0 {
		return created, fmt.Errorf("read the file again: %w", be.err())
	}
	n, err := b.flush(ctx, br.rows, true)
	return created + n, err
}

// bulkBatch is the rows of one transaction, ready for COPY.
type bulkBatch struct {
	run        *bulkRun
	headers    []byte
	addresses  [][]any
	localParts [][]any
	events     [][]any
	// first and last line of the batch, to name where a conflict is.
	first, last int
}

func (b *bulkBatch) add(row bulkRow) error {
	r := b.run
	id := uuid.Must(uuid.NewV7())
	now := time.Now()
	redirects := row.redirects
	if redirects == nil {
		redirects = []string{}
	}
	kind := bulkKinds[row.kind]
	uid, ms := id, r.job.MailServiceID
	b.addresses = append(b.addresses, []any{uid, ms, row.localPart, row.key, kind, redirects, row.quota, now, now})
	b.localParts = append(b.localParts, []any{ms, row.key, uid, false})
	for _, al := range row.aliases {
		b.localParts = append(b.localParts, []any{ms, al, uid, true})
	}
	aliases := slices.Clone(row.aliases)
	slices.Sort(aliases)
	ts := timestamppb.New(now)
	payload, err := proto.Marshal(&mailboxesv1.AddressChanged{Actor: r.actor, Login: localKey(row.localPart) + "@" + r.domain, Address: &mailboxesv1.Address{
		Name: addressName(r.org, r.job.MailServiceID, id), LocalPart: row.localPart, Email: row.localPart + "@" + r.domain,
		Kind: kindProtos[kind], RedirectDestinations: row.redirects, Aliases: aliases, QuotaBytes: row.quota,
		CreateTime: ts, UpdateTime: ts,
	}})
	if err != nil {
		return fmt.Errorf("address event: %w", err)
	}
	b.events = append(b.events, []any{uuid.Must(uuid.NewV7()), "mailboxes.address.created", payload, b.headers})
	if b.first == 0 {
		b.first = row.line
	}
	b.last = row.line
	return nil
}

var (
	addressCopyColumns   = []string{"id", "mail_service_id", "local_part", "local_key", "kind", "redirects", "quota_bytes", "create_time", "update_time"}
	localPartCopyColumns = []string{"mail_service_id", "local_key", "address_id", "is_alias"}
	outboxCopyColumns    = []string{"id", "subject", "payload", "headers"}
	conflictKey          = regexp.MustCompile(`=\([^,]*, (.*)\) already exists`)
)

// flush creates the batch's addresses and records the job's progress, done
// rows, in one transaction; the last also marks the job succeeded. It
// returns how many addresses it created.
func (b *bulkBatch) flush(ctx context.Context, done int, last bool) (int, error) {
	r := b.run
	n := len(b.addresses)
	err := pg.InTx(ctx, r.s.pool, func(tx pgx.Tx) error {
		if n > 0 {
			for _, c := range []struct {
				table string
				cols  []string
				rows  [][]any
			}{
				{"addresses", addressCopyColumns, b.addresses},
				{"local_parts", localPartCopyColumns, b.localParts},
				// outbox.Write, for many events at once.
				{"outbox", outboxCopyColumns, b.events},
			} {
				if _, err := tx.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
					return b.conflict(err)
				}
			}
		}
		q, args := bulkProgress, []any{r.job.ID, r.job.Attempt, done}
		if last {
			q, args = bulkSucceeded, args[:2]
		}
		tag, err := tx.Exec(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("record bulk job progress: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return errSuperseded
		}
		return nil
	})
	b.addresses, b.localParts, b.events = b.addresses[:0], b.localParts[:0], b.events[:0]
	b.first, b.last = 0, 0
	if err != nil {
		return 0, err
	}
	return n, nil
}

// conflict explains a unique violation: a local part checked free was taken
// while the job ran.
func (b *bulkBatch) conflict(err error) error {
	var pe *pgconn.PgError
	if !pg.IsUniqueViolation(err, "") || !errors.As(err, &pe) {
		return fmt.Errorf("copy: %w", err)
	}
	if m := conflictKey.FindStringSubmatch(pe.Detail); m != nil {
		if u, ok := b.run.file.keys[m[1]]; ok {
			return errs.E(errs.Conflict, "line %d: %q was taken while the job ran; upload the file again to create the rest", u.line, m[1])
		}
	}
	return errs.E(errs.Conflict, "a local part on lines %d to %d was taken while the job ran; upload the file again to create the rest", b.first, b.last)
}

// eventHeaders are the outbox headers outbox.Write gives an event like msg
// written in ctx.
func eventHeaders(ctx context.Context, msg proto.Message) ([]byte, error) {
	h := propagation.MapCarrier{outbox.TypeHeader: string(msg.ProtoReflect().Descriptor().FullName())}
	otel.GetTextMapPropagator().Inject(ctx, h)
	return json.Marshal(h)
}
