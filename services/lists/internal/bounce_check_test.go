package lists

import (
	"strings"
	"testing"
	"time"

	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
)

func TestParseBounceSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   *listsv1.BounceSettings
		want bounceSettings
		bad  []string
	}{
		{"nil: defaults", nil, defaultBounceSettings, nil},
		{"zeros: defaults", &listsv1.BounceSettings{}, defaultBounceSettings, nil},
		{"set", &listsv1.BounceSettings{ScoreThreshold: 2, InfoStaleDays: 30, Warnings: 1, WarningIntervalDays: 90}, bounceSettings{2, 30, 1, 90}, nil},
		{"too high", &listsv1.BounceSettings{ScoreThreshold: 101, InfoStaleDays: 366, Warnings: 11, WarningIntervalDays: 91}, defaultBounceSettings,
			[]string{"list.bounceSettings.scoreThreshold", "list.bounceSettings.infoStaleDays", "list.bounceSettings.warnings", "list.bounceSettings.warningIntervalDays"}},
		{"negative", &listsv1.BounceSettings{ScoreThreshold: -1, Warnings: 3}, bounceSettings{5, 7, 3, 7}, []string{"list.bounceSettings.scoreThreshold"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, v := parseBounceSettings(tc.in, "list.bounceSettings.")
			if got != tc.want {
				t.Errorf("settings %+v, want %+v", got, tc.want)
			}
			var fields []string
			for _, f := range v {
				fields = append(fields, f.Field)
			}
			if strings.Join(fields, " ") != strings.Join(tc.bad, " ") {
				t.Errorf("violations %v, want %v", fields, tc.bad)
			}
		})
	}
}

// TestBounceScore: one count a UTC day, a stale score starts again,
// delivery is disabled once, at the threshold.
func TestBounceScore(t *testing.T) {
	b := bounceSettings{threshold: 3, staleDays: 7, warnings: 3, intervalDays: 7}
	mon := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	at := func(days int, hour int) time.Time {
		return mon.AddDate(0, 0, days).Add(time.Duration(hour-9) * time.Hour)
	}
	type step struct {
		at                time.Time
		score             int32
		counted, disabled bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"once a day", []step{{at(0, 9), 1, true, false}, {at(0, 23), 1, false, false}, {at(1, 0), 2, true, false}, {at(1, 12), 2, false, false}}},
		{"threshold", []step{{at(0, 9), 1, true, false}, {at(1, 9), 2, true, false}, {at(3, 9), 3, true, true}, {at(4, 9), 4, true, false}}},
		{"stale starts again", []step{{at(0, 9), 1, true, false}, {at(1, 9), 2, true, false}, {at(9, 9), 1, true, false}, {at(10, 9), 2, true, false}}},
		{"seven days is not stale", []step{{at(0, 9), 1, true, false}, {at(7, 9), 2, true, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var st bounceState
			for i, s := range tc.steps {
				next, counted, disable := b.score(st, s.at)
				if next.score != s.score || counted != s.counted || disable != s.disabled {
					t.Fatalf("bounce %d at %s: score %d counted %v disable %v, want %d %v %v", i, s.at, next.score, counted, disable, s.score, s.counted, s.disabled)
				}
				if !next.last.Equal(s.at) {
					t.Errorf("bounce %d: last %v, want %v", i, next.last, s.at)
				}
				st = next
			}
		})
	}
	// first is the score's first bounce, reset with it.
	var st bounceState
	st, _, _ = b.score(st, at(0, 9))
	st, _, _ = b.score(st, at(1, 9))
	if !st.first.Equal(at(0, 9)) {
		t.Errorf("first %v, want %v", st.first, at(0, 9))
	}
	st, _, _ = b.score(st, at(20, 9))
	if !st.first.Equal(at(20, 9)) {
		t.Errorf("first after a stale score %v, want %v", st.first, at(20, 9))
	}
}

// TestSweepStep: the first warning at once, the next ones and then
// removal an interval after the previous warning.
func TestSweepStep(t *testing.T) {
	b := bounceSettings{threshold: 5, staleDays: 7, warnings: 2, intervalDays: 7}
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	ago := func(days float64) *time.Time {
		t := now.Add(-time.Duration(days * float64(day)))
		return &t
	}
	for _, tc := range []struct {
		name string
		sent int32
		last *time.Time
		want sweepStep
	}{
		{"just disabled", 0, nil, sweepWarn},
		{"warned yesterday", 1, ago(1), sweepWait},
		{"warned a week ago", 1, ago(7), sweepWarn},
		{"last warning six days ago", 2, ago(6.9), sweepWait},
		{"last warning a week ago", 2, ago(7), sweepRemove},
	} {
		if got := b.step(tc.sent, tc.last, now); got != tc.want {
			t.Errorf("%s: step %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"550 5.1.1\r\n  user unknown\x00": "550 5.1.1 user unknown",
		strings.Repeat("é", 300):          strings.Repeat("é", 250),
	} {
		if got := clean(in, maxDiagnostic); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}
