package lists_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"github.com/mailplane/mailplane/services/lists"
	"google.golang.org/grpc"
)

// The benchmarks of the lists service beside GNU Mailman's
// (docs/benchmarks.md, "Lists"; scripts/bench-lists.sh runs them). They
// only run with MAILPLANE_LISTS_BENCH=1, and send into the SMTP sink
// services/cmd/smtpsink, the one Mailman's run sends into:
//
//	MAILPLANE_LISTS_BENCH_SINK       its SMTP address, 127.0.0.1:8025
//	MAILPLANE_LISTS_BENCH_SINK_HTTP  its counts, 127.0.0.1:8026
//	MAILPLANE_LISTS_BENCH_SUBSCRIBE  members to subscribe, 5000
//	MAILPLANE_LISTS_BENCH_FANOUT     list sizes to post to, "1000 3000 10000"
//	MAILPLANE_LISTS_BENCH_PROFILE    a directory for CPU profiles, none
func benchEnv(t *testing.T, name, def string) string {
	t.Helper()
	if os.Getenv("MAILPLANE_LISTS_BENCH") == "" {
		t.Skip("set MAILPLANE_LISTS_BENCH=1 to measure (docs/benchmarks.md)")
	}
	if v := os.Getenv("MAILPLANE_LISTS_BENCH_" + name); v != "" {
		return v
	}
	return def
}

// profile writes a CPU profile of what runs until the returned function is
// called, when MAILPLANE_LISTS_BENCH_PROFILE names a directory.
func profile(t *testing.T, name string) func() {
	t.Helper()
	dir := benchEnv(t, "PROFILE", "")
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, name+".pprof"))
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	}
}

// cpuTime is this process's user and system CPU time.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestBenchSubscribe subscribes members to an empty list through the API
// (MemberService.CreateMember over gRPC on loopback, as a moderator adds
// them), first with one caller, as Mailman's benchmark calls its REST API,
// then with eight into a second list, and logs members/s for each 1,000:
// whether the rate holds as the list grows.
func TestBenchSubscribe(t *testing.T) {
	n, err := strconv.Atoi(benchEnv(t, "SUBSCRIBE", "5000"))
	if err != nil {
		t.Fatal(err)
	}
	e := start(t)
	for _, callers := range []int{1, 8} {
		created, err := e.lists.CreateList(e.admin, &listsv1.CreateListRequest{Parent: e.ms, List: &listsv1.List{LocalPart: fmt.Sprintf("sub%d", callers)}})
		if err != nil {
			t.Fatal(err)
		}
		list := created.GetList().GetName()
		stop := profile(t, fmt.Sprintf("subscribe-%d", callers))
		t.Logf("subscribe %d members, %d caller(s), into %s", n, callers, created.GetList().GetAddress())
		t.Logf("%-12s %10s %14s", "members", "members/s", "CPU per member")
		var next atomic.Int64
		slice := min(1000, n)
		for from := 0; from < n; from += slice {
			to := min(from+slice, n)
			started, cpu0 := time.Now(), cpuTime(t)
			var wg sync.WaitGroup
			errc := make(chan error, callers)
			for range callers {
				wg.Go(func() {
					for i := next.Add(1) - 1; i < int64(to); i = next.Add(1) - 1 {
						_, err := e.members.CreateMember(e.admin, &listsv1.CreateMemberRequest{Parent: list, Member: &listsv1.Member{Email: fmt.Sprintf("m%05d@example.net", i)}, Silent: true})
						if err != nil {
							errc <- fmt.Errorf("member %d: %w", i, err)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errc)
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			next.Store(int64(to))
			took := time.Since(started)
			t.Logf("%5d-%-6d %10.0f %14s", from, to, float64(to-from)/took.Seconds(), ((cpuTime(t) - cpu0) / time.Duration(to-from)).Round(time.Microsecond))
		}
		stop()
	}
}

// TestBenchSubscribeBatch subscribes members to an empty list as an
// import does, MemberService.BatchCreateMembers over gRPC on loopback, one
// caller, batches of 100 and then of 1,000 members into a list each, and
// logs members/s for each 1,000: whether the rate holds as the list grows.
func TestBenchSubscribeBatch(t *testing.T) {
	n, err := strconv.Atoi(benchEnv(t, "SUBSCRIBE", "5000"))
	if err != nil {
		t.Fatal(err)
	}
	e := start(t)
	for _, size := range []int{100, 1000} {
		created, err := e.lists.CreateList(e.admin, &listsv1.CreateListRequest{Parent: e.ms, List: &listsv1.List{LocalPart: fmt.Sprintf("batch%d", size)}})
		if err != nil {
			t.Fatal(err)
		}
		list := created.GetList().GetName()
		stop := profile(t, fmt.Sprintf("subscribe-batch-%d", size))
		t.Logf("subscribe %d members, batches of %d, one caller, into %s", n, size, created.GetList().GetAddress())
		t.Logf("%-12s %10s %14s", "members", "members/s", "CPU per member")
		slice := max(min(1000, n), size)
		for from := 0; from < n; from += slice {
			to := min(from+slice, n)
			started, cpu0 := time.Now(), cpuTime(t)
			for i := from; i < to; i += size {
				req := &listsv1.BatchCreateMembersRequest{Parent: list}
				for j := i; j < min(i+size, to); j++ {
					req.Requests = append(req.Requests, &listsv1.CreateMemberRequest{Parent: list, Member: &listsv1.Member{Email: fmt.Sprintf("m%05d@example.net", j)}, Silent: true})
				}
				if _, err := e.members.BatchCreateMembers(e.admin, req); err != nil {
					t.Fatalf("members %d-%d: %v", i, i+len(req.Requests), err)
				}
			}
			took := time.Since(started)
			t.Logf("%5d-%-6d %10.0f %14s", from, to, float64(to-from)/took.Seconds(), ((cpuTime(t) - cpu0) / time.Duration(to-from)).Round(time.Microsecond))
		}
		stop()
		l, err := e.lists.GetList(e.admin, &listsv1.GetListRequest{Name: list})
		if err != nil || l.GetList().GetMemberCount() != int32(n) {
			t.Errorf("member count %d (%v), want %d", l.GetList().GetMemberCount(), err, n)
		}
	}
}

// TestBenchSink measures the sink alone: what the fan-out would reach if
// nothing but the SMTP transactions cost anything. Copies of the size the
// lists service sends, one transaction each (MAIL, RCPT, DATA) with a
// VERP return path and a footer, over one connection as the distribution
// job uses, then over four.
func TestBenchSink(t *testing.T) {
	sink := benchEnv(t, "SINK", "127.0.0.1:8025")
	counts := benchEnv(t, "SINK_HTTP", "127.0.0.1:8026")
	const n = 3000
	body := strings.Repeat("Some text of a post.\r\n", 40)
	for _, conns := range []int{1, 4} {
		resetSink(t, counts)
		started := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		for range conns {
			wg.Go(func() {
				c, err := smtp.Dial(sink)
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				for i := next.Add(1) - 1; i < n; i = next.Add(1) - 1 {
					rcpt := fmt.Sprintf("f%05d@example.net", i)
					msg := fmt.Sprintf("From: boss@elsewhere.example\r\nTo: %s\r\nSubject: sink\r\n\r\n%sYou are subscribed as %s.\r\n", rcpt, body, rcpt)
					if err := c.SendMail("fan-bounces+"+strings.Replace(rcpt, "@", "=", 1)+"@example.test", []string{rcpt}, strings.NewReader(msg)); err != nil {
						t.Error(err)
						return
					}
				}
				c.Quit()
			})
		}
		wg.Wait()
		took := time.Since(started)
		c := readSink(t, counts)
		if c.Messages != n || c.Personalized != n || c.VERP != n {
			t.Errorf("sink counted %+v, want %d personalized copies with VERP", c, n)
		}
		t.Logf("sink alone: %d copies of %d bytes over %d connection(s): %.2f s, %.0f copies/s", n, c.Bytes/int64(n), conns, took.Seconds(), n/took.Seconds())
	}
}

// sinkCounts is what services/cmd/smtpsink counted since its last reset.
type sinkCounts struct {
	Messages, Recipients, Personalized, VERP int
	Bytes                                    int64
	Last                                     float64 // Unix seconds of the last message
}

func readSink(t *testing.T, addr string) sinkCounts {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c sinkCounts
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

func resetSink(t *testing.T, addr string) {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/reset", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// procStatus returns fields of /proc/self/status in KiB.
func procStatus(t *testing.T, keys ...string) []int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int, len(keys))
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		for i, want := range keys {
			if k == want {
				out[i], _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			}
		}
	}
	return out
}

// benchPost is the post of the benchmark, the one Mailman's gets: plain
// text, about 600 bytes.
const benchPost = `From: Boss <boss@elsewhere.example>
To: %[1]s
Subject: Benchmark post
Message-ID: <bench-%[2]d@elsewhere.example>
Date: Sun, 6 Dec 2026 05:00:00 +0000
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Who comes on Friday?
`

// startBench is startMail without its list, and with an https edge URL,
// as in production: each copy carries its own one-click unsubscribe URL
// (RFC 8058), a token sealed per member.
func startBench(t *testing.T, relay lists.Relay) *mailEnv {
	t.Helper()
	e := start(t)
	svc, err := lists.Register(grpc.NewServer(), e.pool, lists.Config{AccountsAddr: e.srv.Addr, MailboxesAddr: e.srv.Addr,
		LMTPAddr: "127.0.0.1:0", EdgeURL: "https://edge.example/", Relay: relay}, e.srv.Log)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.RunForTest(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return &mailEnv{env: e, lmtp: svc.LMTPAddr(), svc: svc}
}

// TestBenchFanOut posts once to lists of growing size (members added
// through the API beforehand, not measured) and times the distribution
// from the end of LMTP DATA to the last copy the sink counted: one
// personalized copy per member (footer naming them, VERP return path), one
// SMTP transaction each, as Mailman's personalize=individual. The process
// (test client, gRPC server, the lists replica) has its peak RSS reset just
// before the post; the heap is sampled every millisecond.
func TestBenchFanOut(t *testing.T) {
	sink := benchEnv(t, "SINK", "127.0.0.1:8025")
	counts := benchEnv(t, "SINK_HTTP", "127.0.0.1:8026")
	var sizes []int
	for _, f := range strings.Fields(benchEnv(t, "FANOUT", "1000 3000 10000")) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, n)
	}
	readSink(t, counts) // is it there?
	e := startBench(t, lists.Relay{Addr: sink, Insecure: true})
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/allocs:bytes"}}
	read := func() (objects, allocs uint64) {
		metrics.Read(samples)
		return samples[0].Value.Uint64(), samples[1].Value.Uint64()
	}
	body := strings.Repeat("Some text of a post.\n", 20)
	t.Logf("%7s %8s %12s %12s %6s %16s %14s %10s %12s", "members", "seconds", "recipients/s", "personalized", "verp",
		"RSS MiB: before", "peak", "peak heap", "CPU/copy")
	for i, n := range sizes {
		created, err := e.lists.CreateList(e.admin, &listsv1.CreateListRequest{Parent: e.ms, List: &listsv1.List{
			LocalPart: fmt.Sprintf("fan%d", n), FooterText: "You are subscribed as ${member}.",
			Moderators: []*listsv1.Moderator{{Email: "boss@elsewhere.example"}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		list := created.GetList()
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for j := next.Add(1) - 1; j < int64(n); j = next.Add(1) - 1 {
					if _, err := e.members.CreateMember(e.admin, &listsv1.CreateMemberRequest{Parent: list.GetName(), Member: &listsv1.Member{Email: fmt.Sprintf("f%05d@example.net", j)}, Silent: true}); err != nil {
						t.Errorf("member %d: %v", j, err)
						return
					}
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}

		resetSink(t, counts)
		runtime.GC()
		if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
			t.Fatal(err) // resets VmHWM
		}
		before := procStatus(t, "VmRSS")[0]
		objects0, allocs0 := read()
		var peakObjects uint64
		done := make(chan struct{})
		var sampler sync.WaitGroup
		sampler.Go(func() {
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for {
				o, _ := read()
				peakObjects = max(peakObjects, o)
				select {
				case <-done:
					return
				case <-tick.C:
				}
			}
		})
		stop := profile(t, fmt.Sprintf("fanout-%d", n))
		cpu0 := cpuTime(t)
		if got := e.deliver("boss@elsewhere.example", []string{list.GetAddress()}, fmt.Sprintf(benchPost, list.GetAddress(), i)+body); got[list.GetAddress()].code != 250 {
			t.Fatalf("post: %v", got)
		}
		posted := time.Now()
		var c sinkCounts
		for deadline := posted.Add(10 * time.Minute); ; time.Sleep(5 * time.Millisecond) {
			if c = readSink(t, counts); c.Messages >= n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d copies after 10 minutes", c.Messages, n)
			}
		}
		cpu := cpuTime(t) - cpu0
		stop()
		close(done)
		sampler.Wait()
		_, allocs := read()
		took := time.Unix(0, int64(c.Last*1e9)).Sub(posted)
		mib := func(kib int) string { return fmt.Sprintf("%.1f", float64(kib)/1024) }
		peak := procStatus(t, "VmHWM")[0]
		t.Logf("%7d %8.2f %12.0f %12d %6d %16s %14s %10s %12s", n, took.Seconds(), float64(n)/took.Seconds(), c.Personalized, c.VERP,
			mib(before), mib(peak), fmt.Sprintf("+%.1f MB", float64(peakObjects-min(peakObjects, objects0))/1e6),
			(cpu / time.Duration(n)).Round(time.Microsecond))
		t.Logf("        allocated %.0f MB (%.1f KB per copy), %d bytes per copy received", float64(allocs-allocs0)/1e6,
			float64(allocs-allocs0)/float64(n)/1e3, c.Bytes/int64(max(c.Messages, 1)))
		if c.Messages != n || c.Personalized != n || c.VERP != n {
			t.Errorf("sink counted %+v, want %d personalized copies with VERP", c, n)
		}
	}
	// The distribution ends with the post marked done, after the last copy.
	e.waitPosts(len(sizes))
}
