package filters

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	filtersv1 "github.com/mailplane/mailplane/proto/mailplane/filters/v1"
	"github.com/mailplane/mailplane/services/filters/filtersevents"
	"github.com/mailplane/mailplane/services/filters/filtersreport"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
	"golang.org/x/net/netutil"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// DefaultReportsPerHour caps the spam reports recorded for one address
// in an hour: a customer selecting a whole folder and moving it to Spam
// reports each message, and more than this is not worth learning from.
const DefaultReportsPerHour = 500

// reportRetention is how long a report is kept (the event is what
// learners consume; the table serves the cap and a look back).
const reportRetention = 30 * 24 * time.Hour

// maxReportConns caps the report connections served at once: Dovecot
// runs one program per message moved, each with one connection.
const maxReportConns = 256

const (
	selectReportAddress = `
SELECT id, organization_id, mail_service_id FROM addresses WHERE login = $1 ORDER BY create_time DESC LIMIT 1`
	// lockReports makes the reports of one address take turns, so that
	// the cap holds under concurrent moves.
	lockReports  = `SELECT pg_advisory_xact_lock(hashtextextended('filters.spam_reports/' || $1::text, 0))`
	countReports = `SELECT count(*) FROM spam_reports WHERE address_id = $1 AND create_time > now() - interval '1 hour'`
	insertReport = `
INSERT INTO spam_reports (id, address_id, spam, message_id, from_header, subject, sha256, size_bytes, spam_headers)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING create_time`
	pruneReports = `DELETE FROM spam_reports WHERE create_time < now() - $1::interval`
)

// SetReportsPerHour caps an address's spam reports per hour; n <= 0
// keeps DefaultReportsPerHour.
func (s *Server) SetReportsPerHour(n int) {
	if n > 0 {
		s.reportsPerHour = n
	}
}

// RecordSpamReport records rep and its SpamReported event: NotFound for
// an address the service does not know, ResourceExhausted past the
// address's hourly cap, InvalidArgument naming a bad field.
func (s *Server) RecordSpamReport(ctx context.Context, rep filtersreport.Report) error {
	if err := rep.Check(); err != nil {
		var fe *filtersreport.FieldError
		if errors.As(err, &fe) {
			return errs.Field(fe.Field, fe.Description)
		}
		return err
	}
	login := strings.ToLower(rep.Login)
	return pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var a addressIDs
		err := tx.QueryRow(ctx, selectReportAddress, login).Scan(&a.addr, &a.org, &a.ms)
		if errors.Is(err, pgx.ErrNoRows) {
			return errs.E(errs.NotFound, "address %s not found", login)
		}
		if err != nil {
			return fmt.Errorf("find address %s: %w", login, err)
		}
		if _, err := tx.Exec(ctx, lockReports, a.addr); err != nil {
			return fmt.Errorf("lock reports: %w", err)
		}
		var n int
		if err := tx.QueryRow(ctx, countReports, a.addr).Scan(&n); err != nil {
			return fmt.Errorf("count reports: %w", err)
		}
		if n >= s.reportsPerHour {
			return errs.E(errs.ResourceExhausted, "%s has reported %d messages in the last hour, the most recorded", login, n)
		}
		headers, err := json.Marshal(rep.SpamHeaders)
		if err != nil {
			return err
		}
		id := uuid.Must(uuid.NewV7())
		var at time.Time
		if err := tx.QueryRow(ctx, insertReport, id, a.addr, rep.Verdict == filtersreport.Spam, rep.MessageID, rep.From,
			rep.Subject, rep.SHA256, rep.Size, headers).Scan(&at); err != nil {
			return fmt.Errorf("record report: %w", err)
		}
		ev := &filtersv1.SpamReported{
			Id: id.String(), Address: a.name(), Login: login, Verdict: filtersv1.SpamVerdict_SPAM_VERDICT_HAM,
			MessageId: rep.MessageID, From: rep.From, Subject: rep.Subject, Sha256: rep.SHA256, SizeBytes: rep.Size,
			ReportTime: timestamppb.New(at),
		}
		if rep.Verdict == filtersreport.Spam {
			ev.Verdict = filtersv1.SpamVerdict_SPAM_VERDICT_SPAM
		}
		for _, h := range rep.SpamHeaders {
			ev.SpamHeaders = append(ev.SpamHeaders, &filtersv1.SpamHeader{Name: h.Name, Value: h.Value})
		}
		return outbox.Write(ctx, tx, filtersevents.SpamReportRecorded, ev)
	})
}

// PruneSpamReports deletes the reports older than 30 days and says how
// many (periodic work).
func (s *Server) PruneSpamReports(ctx context.Context) (int, error) {
	tag, err := s.pool.Exec(ctx, pruneReports, reportRetention.String())
	if err != nil {
		return 0, fmt.Errorf("prune spam reports: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// ServeReports takes the mail servers' spam reports (filtersreport.Path,
// HTTP) on ln until ctx is done. The port has no authentication: only
// the mail servers may reach it (the NetworkPolicy of
// deploy/kubernetes/base/filters.yaml).
func (s *Server) ServeReports(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+filtersreport.Path, s.handleReport)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	defer stop()
	err := srv.Serve(netutil.LimitListener(ln, maxReportConns))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func (s *Server) handleReport(w http.ResponseWriter, r *http.Request) {
	var rep filtersreport.Report
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, filtersreport.MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		http.Error(w, "body: want a report as JSON of at most 64 KiB: "+err.Error(), http.StatusBadRequest)
		return
	}
	err := s.RecordSpamReport(r.Context(), rep)
	if err == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	code := http.StatusInternalServerError
	switch errs.KindOf(err) {
	case errs.InvalidArgument:
		code = http.StatusBadRequest
		var e *errs.Error
		if errors.As(err, &e) && len(e.Fields) > 0 {
			err = fmt.Errorf("%s: %s", e.Fields[0].Field, e.Fields[0].Description)
		}
	case errs.NotFound:
		code = http.StatusNotFound
	case errs.ResourceExhausted:
		code = http.StatusTooManyRequests
	default:
		s.log.ErrorContext(r.Context(), "spam report not recorded", "login", rep.Login, "error", err)
		http.Error(w, "internal error", code)
		return
	}
	http.Error(w, err.Error(), code)
}
