package imports

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	importsv1 "github.com/mailplane/mailplane/proto/mailplane/imports/v1"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/pg"
)

// maxBulkRows is how many imports one CSV starts.
const maxBulkRows = 25

// bulkColumns are a bulk CSV's columns, in order; the first line names
// them (the template's header).
var bulkColumns = []string{"source", "login", "password", "destination", "security", "port", "certificate_sha256"}

// bulkTemplate is the file GetImportTemplate returns, with CRLF line
// ends as RFC 4180 has them.
const bulkTemplate = "source,login,password,destination,security,port,certificate_sha256\r\n" +
	"imap.example.net,anna@example.net,app-password,anna@example.com,tls,993,\r\n"

// bulkChecks is how many rows' logins are checked at once.
const bulkChecks = 4

// GetImportTemplate returns the CSV template of a bulk import.
func (s *Server) GetImportTemplate(ctx context.Context, req *importsv1.GetImportTemplateRequest) (*importsv1.GetImportTemplateResponse, error) {
	org, err := parseOrg("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	if _, _, err := s.roles.Access(ctx, org); err != nil {
		return nil, err
	}
	return &importsv1.GetImportTemplateResponse{Csv: bulkTemplate}, nil
}

// bulkRow is a CSV row read: its line and the source it says.
type bulkRow struct {
	line int
	src  *importsv1.Source
	dest string
}

// lineField names a CSV cell the way errors do: "csv line 3, column password".
func lineField(line int, col string) string {
	return fmt.Sprintf("csv line %d, column %s", line, col)
}

// parseBulk reads a bulk CSV: the header, then 1 to maxBulkRows rows.
// Every bad cell is named by its line and column, in v; err is a file
// that cannot be read on.
func parseBulk(text string) (rows []bulkRow, v []errs.FieldViolation, err error) {
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(text, "\ufeff")))
	r.FieldsPerRecord = -1
	head, err := r.Read()
	if err != nil {
		return nil, nil, errs.Field("csv", "the first line must name the columns: "+strings.Join(bulkColumns, ","))
	}
	cols := map[string]int{}
	for i, h := range head {
		h = strings.ToLower(strings.TrimSpace(h))
		if !isColumn(h) {
			return nil, nil, errs.Field(lineField(1, h), "unknown column; the columns are "+strings.Join(bulkColumns, ","))
		}
		if _, dup := cols[h]; dup {
			return nil, nil, errs.Field(lineField(1, h), "named twice")
		}
		cols[h] = i
	}
	for _, c := range []string{"source", "password", "destination"} {
		if _, ok := cols[c]; !ok {
			return nil, nil, errs.Field(lineField(1, c), "the column is required")
		}
	}
	for {
		line, _ := r.FieldPos(0)
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, nil, errs.Field(fmt.Sprintf("csv line %d", pe.Line), "not CSV: "+pe.Err.Error())
		}
		if err != nil {
			return nil, nil, errs.Field("csv", err.Error())
		}
		line, _ = r.FieldPos(0)
		if len(rows) == maxBulkRows {
			return nil, nil, errs.Field(fmt.Sprintf("csv line %d", line), fmt.Sprintf("at most %d rows: split the file", maxBulkRows))
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line
		}
		cell := func(c string) string {
			i, ok := cols[c]
			if !ok || i >= len(rec) {
				return ""
			}
			return strings.TrimSpace(rec[i])
		}
		row := bulkRow{line: line, dest: cell("destination"), src: &importsv1.Source{Login: cell("login"), Password: cell("password")}}
		if i, ok := cols["password"]; ok && i < len(rec) {
			row.src.Password = rec[i] // a password may start or end with a space
		}
		bad := func(c, d string) { v = append(v, errs.FieldViolation{Field: lineField(line, c), Description: d}) }
		for _, c := range bulkColumns {
			if strings.ContainsFunc(cell(c), func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				bad(c, "must not hold control characters")
			}
		}
		src := cell("source")
		switch {
		case src == "":
			bad("source", "is required: a server's host, or an address hosted here")
		case strings.Contains(src, "@"):
			row.src.HostedEmail = src
		default:
			row.src.Host = src
		}
		switch strings.ToLower(cell("security")) {
		case "":
		case "tls", "ssl", "imaps":
			row.src.Security = importsv1.Security_SECURITY_TLS
		case "starttls":
			row.src.Security = importsv1.Security_SECURITY_STARTTLS
		default:
			bad("security", "must be tls or starttls")
		}
		if p := cell("port"); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				bad("port", "must be 1 to 65535")
			} else {
				row.src.Port = int32(n)
			}
		}
		row.src.CertificateSha256 = cell("certificate_sha256")
		if row.dest == "" {
			bad("destination", "is required: the email of an address of the organization")
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return nil, nil, errs.Field("csv", "no row: add one import per line under the header")
	}
	return rows, v, nil
}

func isColumn(h string) bool {
	for _, c := range bulkColumns {
		if c == h {
			return true
		}
	}
	return false
}

// csvColumn maps a Source field to its CSV column.
var csvColumn = map[string]string{
	"hostedEmail": "source", "host": "source", "port": "port", "security": "security",
	"login": "login", "password": "password", "certificateSha256": "certificate_sha256",
}

// asCells renames the field violations of a row's source
// ("row.password") to its CSV cells ("csv line 3, column password").
func asCells(err error, line int) error {
	var e *errs.Error
	if !errors.As(err, &e) || len(e.Fields) == 0 {
		return err
	}
	out := *e
	out.Fields = nil
	for _, f := range e.Fields {
		name := f.Field[strings.LastIndexByte(f.Field, '.')+1:]
		col, ok := csvColumn[name]
		if !ok {
			col = "source"
		}
		out.Fields = append(out.Fields, errs.FieldViolation{Field: lineField(line, col), Description: f.Description})
	}
	return withKind(errs.Fields(out.Fields...), e.Kind)
}

// CreateBulkImport checks every row of a CSV, then starts a parent job
// with one job per row.
func (s *Server) CreateBulkImport(ctx context.Context, req *importsv1.CreateBulkImportRequest) (*importsv1.CreateBulkImportResponse, error) {
	org, err := parseOrg("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	c, role, err := s.roles.Access(ctx, org)
	if err != nil {
		return nil, err
	}
	rows, v, err := parseBulk(req.GetCsv())
	if err != nil {
		return nil, err
	}
	// First what needs no server: every row's fields and destination.
	type checked struct {
		srcs []source
		pws  []string
		dest *address
	}
	cs := make([]checked, len(rows))
	addErr := func(err error) error {
		var e *errs.Error
		if errors.As(err, &e) && len(e.Fields) > 0 {
			v = append(v, e.Fields...)
			return nil
		}
		return err
	}
	for i, row := range rows {
		srcs, pws, err := checkSources("row", []*importsv1.Source{row.src})
		if err != nil {
			if err := addErr(asCells(err, row.line)); err != nil {
				return nil, err
			}
			continue
		}
		dest, err := s.destination(ctx, c, role, org, "", row.dest, true)
		switch {
		case errs.Is(err, errs.NotFound):
			v = append(v, errs.FieldViolation{Field: lineField(row.line, "destination"), Description: "no address " + row.dest + " in the organization"})
			continue
		case errs.Is(err, errs.PermissionDenied):
			return nil, errs.E(errs.PermissionDenied, "csv line %d, column destination: you cannot import into %s", row.line, row.dest)
		case err != nil:
			return nil, err
		}
		cs[i] = checked{srcs, pws, dest}
	}
	if len(v) > 0 {
		return nil, errs.Fields(v...)
	}
	// Then each row's login, a few at a time.
	plans := make([]*plan, len(rows))
	errc := make([]error, len(rows))
	sem := make(chan struct{}, bulkChecks)
	var wg sync.WaitGroup
	for i := range rows {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			plans[i], errc[i] = s.prepare(ctx, cs[i].srcs, cs[i].pws, cs[i].dest, []string{"row"})
		}()
	}
	wg.Wait()
	kind := errs.InvalidArgument
	for i, err := range errc {
		if err == nil {
			continue
		}
		if errs.Is(err, errs.FailedPrecondition) {
			kind = errs.FailedPrecondition
		}
		if err := addErr(asCells(err, rows[i].line)); err != nil {
			return nil, err
		}
	}
	if len(v) > 0 {
		return nil, withKind(errs.Fields(v...), kind)
	}
	who := s.whoami(ctx, c)
	id := uuid.Must(uuid.NewV7())
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.reserve(ctx, tx, org, len(plans)); err != nil {
			return err
		}
		if err := s.insertParent(ctx, tx, id, org, c, who); err != nil {
			return err
		}
		for i, p := range plans {
			if err := s.insert(ctx, tx, uuid.Must(uuid.NewV7()), org, &id, i, c, who, p); err != nil {
				return err
			}
		}
		return s.created(ctx, tx, org, id, c)
	})
	if err != nil {
		return nil, err
	}
	j, err := s.getJob(ctx, org, id)
	if err != nil {
		return nil, err
	}
	return &importsv1.CreateBulkImportResponse{ImportJob: j.proto()}, nil
}

// insertParent stores a bulk import's parent job in tx: it copies
// nothing itself; its state follows its rows'.
func (s *Server) insertParent(ctx context.Context, tx pgx.Tx, id, org uuid.UUID, c access.Caller, who person) error {
	var user *uuid.UUID
	if !c.IsToken() {
		user = &c.UserID
	}
	_, err := tx.Exec(ctx, `
INSERT INTO jobs (id, organization_id, bulk, state, creator, creator_user_id, creator_email, language)
VALUES ($1, $2, true, 'running', $3, $4, $5, $6)`, id, org, c.Name(), user, who.email, who.language)
	if err != nil {
		return fmt.Errorf("insert bulk import: %w", err)
	}
	return nil
}

// withKind sets e's kind: field errors are InvalidArgument unless a
// server did not answer (FailedPrecondition: the same file may pass later).
func withKind(e *errs.Error, k errs.Kind) *errs.Error {
	e.Kind = k
	return e
}
