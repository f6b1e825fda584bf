package spf

import (
	"context"
	"net/netip"
	"testing"
)

// An include chain of depth 3 under a record of the usual shape, served
// with TTL 0 so that every question goes to the loopback server.
const benchZone = `
bench.example TXT "v=spf1 mx a:mail.bench.example include:l1.bench.example -all"
bench.example MX 10 mail.bench.example.
mail.bench.example A 192.0.2.10
l1.bench.example TXT "v=spf1 ip4:198.51.100.0/24 include:l2.bench.example ~all"
l2.bench.example TXT "v=spf1 ip6:2001:db8::/32 include:l3.bench.example ~all"
l3.bench.example TXT "v=spf1 ip4:203.0.113.0/24 -all"
`

func BenchmarkCheckHost(b *testing.B) {
	r, _ := serveZone(b, benchZone)
	ip := netip.MustParseAddr("203.0.113.7") // passes at the end of the chain
	ctx := context.Background()
	for b.Loop() {
		if res := CheckHost(ctx, r, ip, "bench.example", "a@bench.example", Options{HELO: "h.example"}); res.Code != Pass {
			b.Fatalf("%v: %s", res.Code, res.Problem)
		}
	}
}

func BenchmarkWalk(b *testing.B) {
	r, _ := serveZone(b, benchZone)
	ctx := context.Background()
	for b.Loop() {
		if tree := Walk(ctx, r, "bench.example"); tree.Lookups != 5 {
			b.Fatalf("lookups %d, want 5", tree.Lookups)
		}
	}
}
