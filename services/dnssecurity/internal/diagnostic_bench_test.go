package dnssecurity

import (
	"context"
	"crypto"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dnssecurityv1 "github.com/mailplane/mailplane/proto/mailplane/dnssecurity/v1"
	"github.com/mailplane/mailplane/services/dnssecurity/internal/dkim"
	"github.com/mailplane/mailplane/services/platform/dns"
	mdns "github.com/miekg/dns"
	"golang.org/x/sync/errgroup"
)

// benchDomain is the zone-file text of a domain as issue 11's "Speed"
// asks: an SPF record of the usual shape (mx, a, our include) with an
// include chain of depth 3 of the domain's own, our DKIM key at selector
// sel, DMARC, MTA-STS and TLS reporting; every area OK. With serve's TTL
// of 0, every question of every diagnostic reaches the server.
func benchDomain(domain, dkimTXT string) string {
	return strings.NewReplacer("{d}", domain, "{key}", strings.Join(dkim.Strings(dkimTXT), `" "`)).Replace(`
{d}. MX 10 mx1.mailplane.test.
{d}. TXT "v=spf1 mx a:mail.{d} include:l1.{d} include:_spf.mailplane.test -all"
{d}. TXT "site-verification=abc123"
mail.{d}. A 198.51.100.10
l1.{d}. TXT "v=spf1 ip4:198.51.100.0/24 include:l2.{d} ~all"
l2.{d}. TXT "v=spf1 ip6:2001:db8::/32 include:l3.{d} ~all"
l3.{d}. TXT "v=spf1 ip4:203.0.113.0/24 -all"
sel._domainkey.{d}. TXT "{key}"
_dmarc.{d}. TXT "v=DMARC1; p=reject; rua=mailto:dmarc@{d}"
_mta-sts.{d}. TXT "v=STSv1; id=20260101T000000"
_smtp._tls.{d}. TXT "v=TLSRPTv1; rua=mailto:tls@{d}"
`)
}

// benchKey is a DKIM key we hold, as the diagnostic reads it, and its
// record. RSA 2048, the default: its record takes two TXT strings.
func benchKey(b testing.TB) (map[string]crypto.PublicKey, string) {
	b.Helper()
	k, err := dkim.Generate(dkim.RSA)
	if err != nil {
		b.Fatal(err)
	}
	txt, err := dkim.TXT(k.Public())
	if err != nil {
		b.Fatal(err)
	}
	return map[string]crypto.PublicKey{"sel": k.Public()}, txt
}

// reportPercentiles reports the 50th and 99th percentiles of ds in ms.
func reportPercentiles(b *testing.B, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	at := func(p float64) float64 {
		return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

// BenchmarkDiagnostic: one full diagnostic of a domain against a loopback
// server, with nothing cached (a new resolver each time, TTL 0): directly
// (rtt=0), and through a forwarder holding each question 20 ms
// (rtt=20ms), where the time is that of the diagnostic's longest chain of
// questions asked one after the other.
func BenchmarkDiagnostic(b *testing.B) {
	held, txt := benchKey(b)
	zone := benchDomain("bench.test", txt)
	_, s := serve(b, zone, 2*time.Second)
	ctx := context.Background()
	for _, rtt := range []time.Duration{0, 20 * time.Millisecond} {
		b.Run(fmt.Sprintf("rtt=%v", rtt), func(b *testing.B) {
			addr := s.Addr()
			if rtt > 0 {
				addr = delayed(b, addr, rtt)
			}
			before := questions(s, zone)
			var ds []time.Duration
			b.ReportAllocs()
			for b.Loop() {
				r, err := dns.NewResolver(addr, 2*time.Second)
				if err != nil {
					b.Fatal(err)
				}
				srv := &Server{dns: r, ours: testOurs}
				start := time.Now()
				d := srv.check(ctx, "bench.test", held, nil)
				ds = append(ds, time.Since(start))
				if d.GetStatus() != dnssecurityv1.SecurityStatus_SECURITY_STATUS_OK {
					b.Fatalf("diagnostic %v: %v", d.GetStatus(), d.GetAreas())
				}
			}
			reportPercentiles(b, ds)
			b.ReportMetric(float64(questions(s, zone)-before)/float64(b.N), "questions/op")
		})
	}
}

// questions is how many questions s received about the names of zone,
// and _dmarc.test: the DMARC tree walk looks for a record above the
// domain's own.
func questions(s *dns.LocalServer, zone string) int {
	n := s.Questions("_dmarc.test")
	seen := map[string]bool{}
	for _, line := range strings.Split(zone+ourRecords, "\n") {
		if owner, _, ok := strings.Cut(line, " "); ok && !seen[owner] {
			seen[owner] = true
			n += s.Questions(owner)
		}
	}
	return n
}

// BenchmarkDiagnosticBatch: 1,000 distinct domains diagnosed 50 at once
// through one resolver, as the daily run does, against the loopback
// server directly (rtt=0) and through a forwarder that holds each question
// 20 ms, as a resolver some way off would (rtt=20ms). Besides domains/s it
// reports the diagnostics' latency under that load, the peak heap in use
// (sampled every 5 ms) less what was in use before (the loopback server's
// 11,000 records), and the process's CPU time over wall time: the
// benchmark shares the process with the DNS server, so near the number of
// CPUs means CPU-bound, well under it bound by round trips.
func BenchmarkDiagnosticBatch(b *testing.B) {
	const domains = 1000
	held, txt := benchKey(b)
	var zone strings.Builder
	names := make([]string, domains)
	for i := range names {
		names[i] = fmt.Sprintf("d%04d.test", i)
		zone.WriteString(benchDomain(names[i], txt))
	}
	_, s := serve(b, zone.String(), 5*time.Second)
	for _, rtt := range []time.Duration{0, 20 * time.Millisecond} {
		b.Run(fmt.Sprintf("rtt=%v", rtt), func(b *testing.B) {
			addr := s.Addr()
			if rtt > 0 {
				addr = delayed(b, addr, rtt)
			}
			r, err := dns.NewResolver(addr, 5*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			batch(b, &Server{dns: r, ours: testOurs}, names, held)
		})
	}
}

// batch diagnoses names 50 at once and reports as BenchmarkDiagnosticBatch
// says.
func batch(b *testing.B, srv *Server, names []string, held map[string]crypto.PublicKey) {
	const parallel = 50
	ctx := context.Background()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	peak := base
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}()

	var (
		mu sync.Mutex
		ds []time.Duration
	)
	cpu0 := cpuTime(b)
	for b.Loop() {
		var g errgroup.Group
		g.SetLimit(parallel)
		for _, name := range names {
			g.Go(func() error {
				start := time.Now()
				d := srv.check(ctx, name, held, nil)
				took := time.Since(start)
				mu.Lock()
				ds = append(ds, took)
				mu.Unlock()
				if d.GetStatus() != dnssecurityv1.SecurityStatus_SECURITY_STATUS_OK {
					return fmt.Errorf("%s: %v: %v", name, d.GetStatus(), d.GetAreas())
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
	}
	cpu := cpuTime(b) - cpu0
	close(stop)
	<-sampled
	wall := b.Elapsed()
	n := float64(len(names) * b.N)
	b.ReportMetric(n/wall.Seconds(), "domains/s")
	b.ReportMetric(float64(peak-base)/(1<<20), "peak-heap-MB")
	b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cpu/wall")
	b.ReportMetric(float64(cpu.Microseconds())/1000/n, "cpu-ms/domain")
	reportPercentiles(b, ds)
}

// delayed starts a UDP forwarder to upstream that holds each question d
// before passing it on, and returns its address.
func delayed(b *testing.B, upstream string, d time.Duration) string {
	b.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	c := &mdns.Client{Timeout: 5 * time.Second}
	srv := &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(func(w mdns.ResponseWriter, req *mdns.Msg) {
		time.Sleep(d)
		in, _, err := c.Exchange(req, upstream)
		if err != nil {
			return // the resolver times out, and the benchmark fails
		}
		w.WriteMsg(in) //nolint:errcheck // as above
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe() //nolint:errcheck // ends with Shutdown
	<-started
	b.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
