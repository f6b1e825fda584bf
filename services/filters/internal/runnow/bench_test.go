package runnow

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mailplane/mailplane/services/filters/internal/rules"
	"github.com/mailplane/mailplane/services/platform/dovecottest"
)

// benchRules are the 5 rules of the Speed section: a move, a move with a
// flag, a copy, a body search and a size test.
var benchRules = []rules.Rule{
	{Name: "invoices", Enabled: true, Match: rules.All,
		Conditions: []rules.Condition{{Field: rules.Subject, Op: rules.Contains, Value: "invoice"}},
		Actions:    []rules.Action{{Kind: rules.Move, Folder: "Finance"}, {Kind: rules.Flag}}},
	{Name: "boss", Enabled: true, Match: rules.All,
		Conditions: []rules.Condition{{Field: rules.From, Op: rules.Is, Value: "boss@work.example"}},
		Actions:    []rules.Action{{Kind: rules.MarkRead}}},
	{Name: "lists", Enabled: true, Match: rules.Any, Conditions: []rules.Condition{
		{Field: rules.Header, Header: "List-Id", Op: rules.Contains, Value: "talk"},
		{Field: rules.ToCc, Op: rules.Matches, Value: "*@lists.example"}},
		Actions: []rules.Action{{Kind: rules.Move, Folder: "Lists"}}},
	{Name: "winners", Enabled: true, Match: rules.All,
		Conditions: []rules.Condition{{Field: rules.Body, Op: rules.Contains, Value: "winner"}},
		Actions:    []rules.Action{{Kind: rules.Copy, Folder: "Suspect"}}},
	{Name: "big", Enabled: true, Match: rules.All,
		Conditions: []rules.Condition{{Field: rules.Size, Op: rules.Over, Value: "20K"}},
		Actions:    []rules.Action{{Kind: rules.Copy, Folder: "Big"}}},
}

// benchMessage is the i-th message of the benchmark folder: one in ten
// of each kind the rules act on, the rest plain, 2 to 30 KB.
func benchMessage(i int) string {
	from, subject, headers := "someone@example.net", fmt.Sprintf("message %d", i), ""
	body := strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n", 30+i%7*60)
	switch i % 10 {
	case 0:
		subject = fmt.Sprintf("Your invoice %d", i)
	case 1:
		from = "boss@work.example"
	case 2:
		headers = "List-Id: Talk <talk.lists.example>\r\n"
	case 3:
		body += "You are a winner!\r\n"
	}
	return "From: " + from + "\r\nTo: alice@example.org\r\nSubject: " + subject + "\r\nMessage-ID: <" + strconv.Itoa(i) +
		"@bench.example>\r\nDate: Mon, 02 Nov 2026 10:00:00 +0000\r\n" + headers + "\r\n" + body
}

// fill writes n messages straight into folder's maildir (Dovecot indexes
// them on the next access): appending 10,000 over IMAP would be the
// benchmark's slowest part.
func fill(b *testing.B, d *dovecottest.Dovecot, user, folder string, n int) {
	b.Helper()
	seed(b, d, user, folder) // creates the folder
	dir := filepath.Join(d.Vmail, user, "Maildir", "."+folder, "cur")
	// The files belong to the mail user, as the folder does.
	owner, err := os.Stat(dir)
	if err != nil {
		b.Fatal(err)
	}
	st := owner.Sys().(*syscall.Stat_t)
	uid, gid := int(st.Uid), int(st.Gid)
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("%d.M%dP1.bench:2,", 1700000000+i, i))
		if err := os.WriteFile(p, []byte(benchMessage(i)), 0o600); err != nil {
			b.Fatal(err)
		}
		os.Chown(p, uid, gid)
	}
}

// peakHeap samples the heap in use until stop is closed and returns its
// largest value.
func peakHeap(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		var peak uint64
		var ms runtime.MemStats
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				out <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// BenchmarkRunNow runs the 5 rules over a folder of MAILPLANE_BENCH_MESSAGES
// messages (default 10,000), next to Pigeonhole's sieve-filter on a copy
// of the same folder in the same Dovecot: sieve-filter's messages/s, then
// run-now's as a dry run and for real, with the Go heap's peak.
//
//	go test -run '^$' -bench RunNow -benchtime 1x ./services/filters/internal/runnow/
func BenchmarkRunNow(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("MAILPLANE_BENCH_MESSAGES")); err == nil && v > 0 {
		n = v
	}
	d := mailDovecot(b)
	for _, f := range []string{"Sieve", "Dry", "Real"} {
		fill(b, d, alice, f, n)
	}
	// Dovecot indexes the new files on each folder's first access: done
	// here for all three, outside the measures.
	c := session(b, d, alice)
	for _, f := range []string{"Sieve", "Dry", "Real"} {
		st, err := c.Select(f, true)
		if err != nil || int(st.Messages) != n {
			b.Fatalf("%s: %v %v", f, st, err)
		}
	}
	c.Logout()
	script, err := rules.Compile(benchRules)
	if err != nil {
		b.Fatal(err)
	}
	sf := filepath.Join(d.Dir, "bench.sieve")
	if err := os.WriteFile(sf, []byte(script), 0o644); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		// sieve-filter -e executes the actions (-W: may change the source
		// folder), as run-now does.
		start := time.Now()
		cmd := exec.Command("sieve-filter", "-c", d.Conf, "-u", alice, "-e", "-W", sf, "Sieve")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("sieve-filter: %v\n%s", err, out)
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "sieve-filter-msg/s")

		for _, f := range []string{"Dry", "Real"} {
			c := session(b, d, alice)
			if os.Getenv("MAILPLANE_BENCH_DEBUG") != "" {
				c.SetDebug(os.Stderr)
			}
			stop := make(chan struct{})
			peak := peakHeap(stop)
			var reports atomic.Int64
			start := time.Now()
			p, err := Run(context.Background(), c, Job{Rules: benchRules, Folder: f, DryRun: f == "Dry"}, nil,
				func(Progress, []Entry) error { reports.Add(1); return nil })
			if err != nil {
				b.Fatal(err)
			}
			el := time.Since(start)
			close(stop)
			if p.Done != int64(n) || p.Failed != 0 {
				b.Fatalf("%s: %+v", f, p)
			}
			b.ReportMetric(float64(n)/el.Seconds(), strings.ToLower(f)+"-msg/s")
			b.ReportMetric(float64(<-peak)/(1<<20), strings.ToLower(f)+"-peak-heap-MiB")
		}
	}
}
