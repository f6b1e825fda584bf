package lists

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"github.com/mailplane/mailplane/services/platform/csvcell"
	"github.com/mailplane/mailplane/services/platform/pg"
	"google.golang.org/grpc"
)

// Export limits.
const (
	// exportChunk is the size a chunk of the file reaches before it is
	// sent: large enough that 100,000 members are ~200 messages, small
	// enough that memory stays flat whatever the list's size.
	exportChunk = 64 << 10
	// exportTimeout bounds one export: its query holds a connection
	// while a slow client reads.
	exportTimeout = 5 * time.Minute
)

// ExportContentType is the type of the exported file.
const ExportContentType = "text/csv; charset=utf-8"

// exportHeader names the file's columns.
var exportHeader = []string{"email", "display_name", "create_time", "delivery", "delivery_disabled_time",
	"bounce_score", "first_bounce_time", "last_bounce_time", "last_bounce_diagnostic"}

// ExportMembers streams a list's members as CSV, by email_key, in chunks
// of about exportChunk bytes. The rows come from one query read as they
// arrive (pgx does not buffer a result), so the file is one consistent
// snapshot and memory does not grow with the list.
func (s *Server) ExportMembers(req *listsv1.ExportMembersRequest, stream grpc.ServerStreamingServer[listsv1.ExportMembersResponse]) error {
	ctx := stream.Context()
	ids, err := parseList("parent", req.GetParent())
	if err != nil {
		return err
	}
	c, err := s.roles.Manage(ctx, ids.org)
	if err != nil {
		return err
	}
	if _, err := findList(ctx, s.pool, ids); err != nil {
		return err
	}
	// Who took a copy of the members' addresses is the organization's to
	// know (GDPR): recorded before the first byte leaves.
	if err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		return audit(ctx, tx, ids.org, c, "lists.member.export", req.GetParent(), nil)
	}); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, exportTimeout)
	defer cancel()
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write(exportHeader)
	first := true
	flush := func() error {
		w.Flush()
		if err := w.Error(); err != nil {
			return fmt.Errorf("export members: %w", err)
		}
		resp := &listsv1.ExportMembersResponse{Data: buf.Bytes()}
		if first {
			resp.ContentType, first = ExportContentType, false
		}
		if err := stream.Send(resp); err != nil {
			return fmt.Errorf("export members: send: %w", err)
		}
		buf.Reset()
		return nil
	}
	rows, err := s.pool.Query(ctx, memberColumns+` WHERE list_id = $1 ORDER BY email_key`, ids.list)
	if err != nil {
		return fmt.Errorf("export members: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			return fmt.Errorf("export members: %w", err)
		}
		w.Write(m.csv())
		if buf.Len() >= exportChunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("export members: %w", err)
	}
	return flush()
}

// csv is m as a row of the exported file.
func (m *member) csv() []string {
	delivery := "enabled"
	if listsv1.Delivery(m.delivery) == listsv1.Delivery_DELIVERY_DISABLED_BY_BOUNCES {
		delivery = "disabled_by_bounces"
	}
	return []string{csvcell.Defuse(m.email), csvcell.Defuse(m.display), m.createTime.UTC().Format(time.RFC3339), delivery, csvTime(m.disabledTime),
		fmt.Sprint(m.score), csvTime(m.first), csvTime(m.last), csvcell.Defuse(m.diagnostic)}
}

func csvTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
