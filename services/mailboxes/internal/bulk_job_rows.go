package mailboxes

// The rows of a bulk job: what became of each row of its file
// (bulk_job_rows, written by the run with each batch), and the error file
// of the rows that failed.

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/csvcell"
	"github.com/mailplane/mailplane/services/platform/errs"
	"google.golang.org/grpc"
)

const (
	// selectBulkJobRows is a page of job $1's rows after ordinal $3, of
	// outcome $4 (NULL: any); $2 rows.
	selectBulkJobRows = `SELECT ordinal, line, local_part, outcome, error FROM bulk_job_rows
WHERE job_id = $1 AND ordinal > $3 AND ($4::text IS NULL OR outcome = $4)
ORDER BY ordinal LIMIT $2`

	// selectBulkJobErrors is the next rows of the error file.
	selectBulkJobErrors = `SELECT ordinal, line, error, COALESCE(record, '{}') FROM bulk_job_rows
WHERE job_id = $1 AND outcome = 'failed' AND ordinal > $2 ORDER BY ordinal LIMIT $3`
)

// ErrorsContentType is the type of the error file.
const ErrorsContentType = "text/csv; charset=utf-8"

// Row outcomes as stored and as answered.
var bulkOutcomes = map[string]mailboxesv1.BulkJobRowOutcome{
	"created":        mailboxesv1.BulkJobRowOutcome_BULK_JOB_ROW_OUTCOME_CREATED,
	"already_exists": mailboxesv1.BulkJobRowOutcome_BULK_JOB_ROW_OUTCOME_ALREADY_EXISTS,
	"failed":         mailboxesv1.BulkJobRowOutcome_BULK_JOB_ROW_OUTCOME_FAILED,
}

// parseOutcome reads ListBulkJobRows's filter: the outcome to list, or ""
// for every row.
func parseOutcome(filter string) (string, error) {
	f, err := aip.ParseFilter(filter, map[string]aip.Match{"outcome": aip.Equal})
	if err != nil {
		return "", err
	}
	t, ok := f.Get("outcome")
	if !ok {
		return "", nil
	}
	v := strings.TrimPrefix(strings.ToUpper(t.Value), "BULK_JOB_ROW_OUTCOME_")
	if o := strings.ToLower(v); bulkOutcomes[o] != 0 {
		return o, nil
	}
	return "", errs.Field("filter", fmt.Sprintf("outcome %q is not one of CREATED, ALREADY_EXISTS, FAILED", t.Value))
}

// ListBulkJobRows lists what became of a job's rows, in file order.
func (s *Server) ListBulkJobRows(ctx context.Context, req *mailboxesv1.ListBulkJobRowsRequest) (*mailboxesv1.ListBulkJobRowsResponse, error) {
	ids, err := parseName("parent", req.GetParent(), "organizations", "mailServices", "bulkJobs")
	if err != nil {
		return nil, err
	}
	outcome, err := parseOutcome(req.GetFilter())
	if err != nil {
		return nil, err
	}
	page, err := aip.ParsePage(req.GetPageSize(), req.GetPageToken(), "ListBulkJobRows", req.GetParent(), outcome)
	if err != nil {
		return nil, err
	}
	after := 0
	if page.After != nil {
		if len(page.After) != 1 {
			return nil, aip.BadPageToken()
		}
		if after, err = strconv.Atoi(page.After[0]); err != nil || after < 0 {
			return nil, aip.BadPageToken()
		}
	}
	if _, err := s.manage(ctx, ids[0]); err != nil {
		return nil, err
	}
	job, err := s.bulkJob(ctx, ids)
	if err != nil {
		return nil, err
	}
	var o any
	if outcome != "" {
		o = outcome
	}
	rows, _ := s.pool.Query(ctx, selectBulkJobRows, job.ID, page.Size+1, after, o)
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*mailboxesv1.BulkJobRow, error) {
		var p mailboxesv1.BulkJobRow
		var outcome string
		err := r.Scan(&p.Row, &p.Line, &p.LocalPart, &outcome, &p.Error)
		p.Outcome = bulkOutcomes[outcome]
		return &p, err
	})
	if err != nil {
		return nil, fmt.Errorf("list bulk job rows: %w", err)
	}
	resp := &mailboxesv1.ListBulkJobRowsResponse{}
	resp.Rows, resp.NextPageToken = aip.Trim(page, list, func(r *mailboxesv1.BulkJobRow) []string {
		return []string{strconv.Itoa(int(r.Row))}
	})
	return resp, nil
}

const (
	// errorsChunk is the size of a chunk of the error file.
	errorsChunk = 64 << 10
	// errorsPage is how many rows one query of the error file reads.
	errorsPage = 1000
)

// ExportBulkJobErrors streams the failed rows of a job as a CSV file: the
// uploaded file's columns, then line and error.
func (s *Server) ExportBulkJobErrors(req *mailboxesv1.ExportBulkJobErrorsRequest, stream grpc.ServerStreamingServer[mailboxesv1.ExportBulkJobErrorsResponse]) error {
	ctx := stream.Context()
	ids, err := parseName("name", req.GetName(), "organizations", "mailServices", "bulkJobs")
	if err != nil {
		return err
	}
	if _, err := s.manage(ctx, ids[0]); err != nil {
		return err
	}
	job, err := s.bulkJob(ctx, ids)
	if err != nil {
		return err
	}
	var header []string
	if err := s.pool.QueryRow(ctx, "SELECT header FROM bulk_jobs WHERE id = $1", job.ID).Scan(&header); err != nil {
		return fmt.Errorf("export bulk job errors: %w", err)
	}
	// The file's own line and error columns (a corrected error file
	// uploaded again) are left out: the new ones say where and why.
	var keep []int
	out := []string{}
	for i, h := range header {
		if n := strings.ToLower(strings.TrimSpace(h)); n == "line" || n == "error" {
			continue
		}
		keep, out = append(keep, i), append(out, h)
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.UseCRLF = true
	_ = w.Write(append(out, "line", "error"))
	first := true
	flush := func() error {
		w.Flush()
		if err := w.Error(); err != nil {
			return fmt.Errorf("export bulk job errors: %w", err)
		}
		resp := &mailboxesv1.ExportBulkJobErrorsResponse{Data: buf.Bytes()}
		if first {
			resp.ContentType, first = ErrorsContentType, false
		}
		if err := stream.Send(resp); err != nil {
			return fmt.Errorf("export bulk job errors: send: %w", err)
		}
		buf.Reset()
		return nil
	}
	// Pages by ordinal rather than one long query: a slow client holds no
	// connection or snapshot for the whole file.
	for after := 0; ; {
		rows, _ := s.pool.Query(ctx, selectBulkJobErrors, job.ID, after, errorsPage)
		n := 0
		var ordinal, line int
		var reason string
		var rec []string
		_, err := pgx.ForEachRow(rows, []any{&ordinal, &line, &reason, &rec}, func() error {
			n, after = n+1, ordinal
			fields := make([]string, 0, len(keep)+2)
			for _, i := range keep {
				f := ""
				if i < len(rec) {
					f = rec[i]
				}
				fields = append(fields, csvcell.Defuse(f))
			}
			return w.Write(append(fields, strconv.Itoa(line), reason))
		})
		if err != nil {
			return fmt.Errorf("export bulk job errors: %w", err)
		}
		if buf.Len() >= errorsChunk || n < errorsPage {
			if err := flush(); err != nil {
				return err
			}
		}
		if n < errorsPage {
			return nil
		}
	}
}
