package dns

import (
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

// FuzzParseZones: any text is loaded or refused with an error, never a
// panic; a zone loaded has its SOA at its origin and only names below it,
// and answers a question about each of them.
func FuzzParseZones(f *testing.F) {
	f.Add(exampleZone)
	f.Add("a.test. 60 IN SOA ns. h. 1 1 1 1 1\n*.a.test. 60 IN TXT \"w\"\nb.a.test. 60 IN CNAME b.a.test.\n")
	f.Add("$ORIGIN a.test.\n@ 60 IN SOA ns h 1 1 1 1 1\n$ORIGIN b.test.\n@ 60 IN SOA ns h 1 1 1 1 1\nx 60 IN A 192.0.2.1\n")
	f.Add(". 60 IN SOA ns. h. 1 1 1 1 1\nx. 60 IN TXT \"root\"\n")
	f.Add("a.test. 60 IN SOA ns. h. 1 1 1 1 1\n$INCLUDE /etc/passwd\n")
	f.Fuzz(func(t *testing.T, text string) {
		zones, err := parseZones(text)
		if err != nil {
			return
		}
		s := &LocalServer{zones: zones, loose: newZone(""), fail: map[string]int{}}
		for origin, z := range zones {
			if z.soa() == nil {
				t.Fatalf("zone %s without SOA", origin)
			}
			for name := range z.names {
				if !mdns.IsSubDomain(origin, name) || name != strings.ToLower(name) {
					t.Fatalf("zone %s holds %s", origin, name)
				}
				req := new(mdns.Msg)
				req.SetQuestion(name, mdns.TypeANY)
				if m, _ := s.answer(req); m == nil {
					t.Fatalf("no answer for %s", name)
				}
				req.SetQuestion("x."+name, mdns.TypeTXT)
				s.answer(req)
			}
		}
	})
}
