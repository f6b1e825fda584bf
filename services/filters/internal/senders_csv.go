package filters

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"
	filtersv1 "github.com/mailplane/mailplane/proto/mailplane/filters/v1"
	"github.com/mailplane/mailplane/services/filters/internal/rules"
	"github.com/mailplane/mailplane/services/platform/csvcell"
	"github.com/mailplane/mailplane/services/platform/errs"
)

// sendersCSV writes the lists as CSV: "sender,list", list block or allow.
// A sender such as "@example.com" is defused (csvcell), since the file is
// opened in spreadsheets; parseSendersCSV reads it back as it was.
func sendersCSV(st *Settings) string {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"sender", "list"})
	for _, l := range []struct {
		name    string
		senders []string
	}{{"block", st.Blocked}, {"allow", st.Allowed}} {
		for _, s := range l.senders {
			_ = w.Write([]string{csvcell.Defuse(s), l.name})
		}
	}
	w.Flush()
	return b.String()
}

// parseSendersCSV reads CSV as sendersCSV writes it; a row of one column
// is a blocked sender, a first row "sender,..." is the header. Errors
// name the row ("csv" row N, from 1).
func parseSendersCSV(text string) (block, allow []string, err error) {
	r := csv.NewReader(strings.NewReader(text))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	for n := 1; ; n++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return block, allow, nil
		}
		if err != nil {
			return nil, nil, errs.Field("csv", fmt.Sprintf("row %d: %v", n, err))
		}
		if n == 1 && strings.EqualFold(strings.TrimSpace(rec[0]), "sender") {
			continue
		}
		if len(rec) > 2 {
			return nil, nil, errs.Field("csv", fmt.Sprintf("row %d: want sender,list, got %d columns", n, len(rec)))
		}
		sender := csvcell.Restore(strings.TrimSpace(rec[0]))
		if sender == "" {
			// A blank line never gets here (the reader skips it): a row
			// like ",allow" lost its sender, which the import must say.
			return nil, nil, errs.Field("csv", fmt.Sprintf("row %d: no sender", n))
		}
		// Checked here, so the error names the customer's row, not the
		// place the sender would take in the merged list.
		if err := rules.CheckSender(strings.ToLower(sender)); err != nil {
			return nil, nil, errs.Field("csv", fmt.Sprintf("row %d: %v", n, err))
		}
		list := "block"
		if len(rec) == 2 {
			list = strings.ToLower(strings.TrimSpace(rec[1]))
		}
		switch list {
		case "block", "blocked", "":
			block = append(block, sender)
		case "allow", "allowed":
			allow = append(allow, sender)
		default:
			return nil, nil, errs.Field("csv", fmt.Sprintf("row %d: list %q: want block or allow", n, rec[1]))
		}
	}
}

func (s *Server) ExportSenders(ctx context.Context, req *filtersv1.ExportSendersRequest) (*filtersv1.ExportSendersResponse, error) {
	a, err := parseSettings("name", req.GetName())
	if err != nil {
		return nil, err
	}
	if _, err := s.access(ctx, a); err != nil {
		return nil, err
	}
	st, err := scanSettings(s.pool.QueryRow(ctx, selectSettings, a.addr))
	if err == pgx.ErrNoRows {
		return nil, errs.E(errs.NotFound, "filter settings %s not found", req.GetName())
	}
	if err != nil {
		return nil, fmt.Errorf("read settings: %w", err)
	}
	return &filtersv1.ExportSendersResponse{Csv: sendersCSV(st)}, nil
}

func (s *Server) ImportSenders(ctx context.Context, req *filtersv1.ImportSendersRequest) (*filtersv1.ImportSendersResponse, error) {
	a, err := parseSettings("name", req.GetName())
	if err != nil {
		return nil, err
	}
	block, allow, err := parseSendersCSV(req.GetCsv())
	if err != nil {
		return nil, err
	}
	c, err := s.access(ctx, a)
	if err != nil {
		return nil, err
	}
	// Saved as an update of both lists, with its checks, caps, event
	// and install; added to the current lists under the row's lock.
	st, err := s.saveSettings(ctx, a, c, &filtersv1.FilterSettings{Name: req.GetName(), BlockedSenders: block, AllowedSenders: allow},
		[]string{"blocked_senders", "allowed_senders"}, !req.GetReplace())
	if err != nil {
		return nil, err
	}
	p, err := s.withInstall(ctx, a, st.proto(a))
	if err != nil {
		return nil, err
	}
	return &filtersv1.ImportSendersResponse{FilterSettings: p}, nil
}
