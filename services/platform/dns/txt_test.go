package dns

import (
	"context"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// TestTXTRoundTrip: a value with quotes, backslashes, semicolons, non-ASCII
// and more than 255 bytes, written with TXTStrings, is served and read back
// by TXTValue (and Resolver.TXT) as it was, over the wire.
func TestTXTRoundTrip(t *testing.T) {
	s, err := ListenLocal("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	values := []string{
		"v=spf1 -all",
		`exp=say "no" \ then; café`,
		strings.Repeat("a", 255) + `"` + strings.Repeat("é", 100),
		"",
	}
	r, err := NewResolver(s.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range values {
		name := mdns.Fqdn(string(rune('a'+i)) + ".txt.test")
		parts := TXTStrings(v)
		for _, p := range parts {
			if n := len(TXTValue(&mdns.TXT{Txt: []string{p}})); n > 255 {
				t.Errorf("%q: a string of %d bytes, want at most 255", v, n)
			}
		}
		if err := s.SetRecords(name, mdns.TypeTXT, &mdns.TXT{Hdr: mdns.RR_Header{Name: name, Rrtype: mdns.TypeTXT, Class: mdns.ClassINET}, Txt: parts}); err != nil {
			t.Fatal(err)
		}
		got, err := r.TXT(context.Background(), name)
		if err != nil || len(got) != 1 || got[0] != v {
			t.Errorf("%q: read back %q, %v", v, got, err)
		}
	}
}
