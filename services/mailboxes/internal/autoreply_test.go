package mailboxes

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/sieve"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestCheckAutoReply(t *testing.T) {
	now := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	ts := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(now.Add(d)) }
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	for _, tt := range []struct {
		name  string
		in    *mailboxesv1.AutoReply
		want  *AutoReply
		field string
	}{
		{"off, nothing else: the default interval", &mailboxesv1.AutoReply{}, &AutoReply{IntervalDays: 7}, ""},
		{"on with a message", &mailboxesv1.AutoReply{Enabled: true, Subject: " Away ", Message: "Back soon.\r\nAnna", IntervalDays: 3},
			&AutoReply{Enabled: true, Subject: "Away", Message: "Back soon.\nAnna", IntervalDays: 3}, ""},
		{"dates", &mailboxesv1.AutoReply{Enabled: true, Message: "x", StartTime: ts(time.Hour), EndTime: ts(48 * time.Hour)},
			&AutoReply{Enabled: true, Message: "x", StartTime: at(time.Hour), EndTime: at(48 * time.Hour), IntervalDays: 7}, ""},
		{"started in the past", &mailboxesv1.AutoReply{Enabled: true, Message: "x", StartTime: ts(-time.Hour)},
			&AutoReply{Enabled: true, Message: "x", StartTime: at(-time.Hour), IntervalDays: 7}, ""},
		{"off with an ended period", &mailboxesv1.AutoReply{Message: "x", StartTime: ts(-48 * time.Hour), EndTime: ts(-time.Hour)},
			&AutoReply{Message: "x", StartTime: at(-48 * time.Hour), EndTime: at(-time.Hour), IntervalDays: 7}, ""},
		{"30 days", &mailboxesv1.AutoReply{IntervalDays: 30}, &AutoReply{IntervalDays: 30}, ""},
		{"31 days", &mailboxesv1.AutoReply{IntervalDays: 31}, nil, "autoReply.intervalDays"},
		{"negative interval", &mailboxesv1.AutoReply{IntervalDays: -1}, nil, "autoReply.intervalDays"},
		{"on without a message", &mailboxesv1.AutoReply{Enabled: true, Message: " \n "}, nil, "autoReply.message"},
		{"201-character subject", &mailboxesv1.AutoReply{Subject: strings.Repeat("é", 201)}, nil, "autoReply.subject"},
		{"200-character subject", &mailboxesv1.AutoReply{Subject: strings.Repeat("é", 200)}, &AutoReply{Subject: strings.Repeat("é", 200), IntervalDays: 7}, ""},
		{"two-line subject", &mailboxesv1.AutoReply{Subject: "a\nBcc: x@y"}, nil, "autoReply.subject"},
		{"control character in the message", &mailboxesv1.AutoReply{Message: "a\x00b"}, nil, "autoReply.message"},
		{"10001-character message", &mailboxesv1.AutoReply{Message: strings.Repeat("a", 10001)}, nil, "autoReply.message"},
		{"end before start", &mailboxesv1.AutoReply{StartTime: ts(2 * time.Hour), EndTime: ts(time.Hour)}, nil, "autoReply.endTime"},
		{"end at start", &mailboxesv1.AutoReply{StartTime: ts(time.Hour), EndTime: ts(time.Hour)}, nil, "autoReply.endTime"},
		{"on with an ended period", &mailboxesv1.AutoReply{Enabled: true, Message: "x", EndTime: ts(-time.Minute)}, nil, "autoReply.endTime"},
		{"invalid time", &mailboxesv1.AutoReply{StartTime: &timestamppb.Timestamp{Nanos: -1}}, nil, "autoReply.startTime"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := checkAutoReply(tt.in, now)
			if f := fieldOf(err); f != tt.field {
				t.Fatalf("error %v on field %q, want field %q", err, f, tt.field)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

// fieldOf is the field an InvalidArgument error names, "" for nil.
func fieldOf(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := err.(*errs.Error); ok && e.Kind == errs.InvalidArgument && len(e.Fields) > 0 {
		return e.Fields[0].Field
	}
	return "not a field error: " + err.Error()
}

// TestVacationSieve: the auto-reply becomes sieve.Vacation (whose tests
// run the scripts in Pigeonhole), and nothing when it is off.
func TestVacationSieve(t *testing.T) {
	now := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	start, end := now.Add(-time.Hour), now.Add(48*time.Hour)
	for _, tt := range []struct {
		name string
		ar   *AutoReply
		want sieve.Vacation // zero: no script
	}{
		{"nil", nil, sieve.Vacation{}},
		{"off", &AutoReply{Message: "Away", IntervalDays: 7}, sieve.Vacation{}},
		{"ended", &AutoReply{Enabled: true, Message: "Away", EndTime: &now, IntervalDays: 7}, sieve.Vacation{}},
		{"on", &AutoReply{Enabled: true, Subject: "Away", Message: "Back soon.\nAnna", IntervalDays: 3},
			sieve.Vacation{Subject: "Away", Message: "Back soon.\nAnna", Days: 3}},
		{"dates", &AutoReply{Enabled: true, Message: "x", StartTime: &start, EndTime: &end, IntervalDays: 7},
			sieve.Vacation{Message: "x", Start: start, End: end, Days: 7}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want := ""
			if tt.want != (sieve.Vacation{}) {
				var err error
				if want, err = tt.want.Script(now); err != nil {
					t.Fatal(err)
				}
			}
			got, err := vacationSieve(tt.ar, now)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}
