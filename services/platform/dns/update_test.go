package dns

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	mdns "github.com/miekg/dns"
)

var (
	testSecret  = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	otherSecret = base64.StdEncoding.EncodeToString([]byte("fedcba9876543210fedcba9876543210"))
)

// updatable is a LocalServer serving exampleZone and taking updates signed
// with key "mailplane." and testSecret.
func updatable(t *testing.T, algorithm string) *LocalServer {
	t.Helper()
	s := newServer(t)
	if err := s.SetZone(exampleZone); err != nil {
		t.Fatal(err)
	}
	if err := s.AllowUpdates("mailplane", algorithm, testSecret); err != nil {
		t.Fatal(err)
	}
	return s
}

// txts returns name's TXT records at addr as their strings, each record's
// joined with "|".
func txts(t *testing.T, r *Resolver, addr, name string) []string {
	t.Helper()
	rrs, err := r.Ask(context.Background(), addr, name, mdns.TypeTXT)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, rr := range rrs {
		out = append(out, strings.Join(rr.(*mdns.TXT).Txt, "|"))
	}
	slices.Sort(out)
	return out
}

func TestUpdaterReplaceTXT(t *testing.T) {
	for _, alg := range []string{"", "hmac-sha256", "HMAC-SHA512.", "hmac-sha384", "hmac-sha224", "hmac-sha1"} {
		t.Run("algorithm "+alg, func(t *testing.T) {
			s := updatable(t, alg)
			u := &Updater{Server: s.Addr(), Zone: "example.com", KeyName: "mailplane", Algorithm: alg, Secret: testSecret}
			r := newResolver(t, s.Addr())
			ctx := context.Background()
			before, _ := s.Serial("example.com")

			long := []string{strings.Repeat("a", 255), "b"}
			if err := u.ReplaceTXT(ctx, "example.com.", 300, []string{"v=spf1 -all"}, long); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{strings.Repeat("a", 255) + "|b", "v=spf1 -all"}, txts(t, r, s.Addr(), "example.com")); diff != "" {
				t.Errorf("apex TXT (-want +got):\n%s", diff)
			}
			if err := u.ReplaceTXT(ctx, "sel._domainkey.example.com", 60, []string{"v=DKIM1; p=new"}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"v=DKIM1; p=new"}, txts(t, r, s.Addr(), "sel._domainkey.example.com")); diff != "" {
				t.Errorf("DKIM TXT (-want +got):\n%s", diff)
			}
			if rrs := s.Records("sel._domainkey.example.com", mdns.TypeTXT); len(rrs) != 1 || rrs[0].Header().Ttl != 60 {
				t.Errorf("DKIM TXT held: %v", rrs)
			}
			if err := u.DeleteTXT(ctx, "sel._domainkey.example.com"); err != nil {
				t.Fatal(err)
			}
			if got := txts(t, r, s.Addr(), "sel._domainkey.example.com"); len(got) != 0 {
				t.Errorf("DKIM TXT after DeleteTXT: %q", got)
			}
			if after, _ := s.Serial("example.com"); after != before+3 {
				t.Errorf("serial %d after 3 updates from %d", after, before)
			}
			// Other records at the name are left alone.
			if rrs, err := r.Ask(ctx, s.Addr(), "example.com", mdns.TypeMX); err != nil || len(rrs) != 1 {
				t.Errorf("apex MX after updates of TXT: %v, %v", rrs, err)
			}
		})
	}
}

// Refusals become UpdateErrors naming what went wrong; bad settings are
// errors before anything is sent.
func TestUpdaterErrors(t *testing.T) {
	s := updatable(t, "hmac-sha256")
	closed := newServer(t) // takes no updates
	unsigned := handlerServer(t, "tcp", func(w mdns.ResponseWriter, req *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(req)
		w.WriteMsg(m)
	})
	good := Updater{Server: s.Addr(), Zone: "example.com", KeyName: "mailplane", Secret: testSecret, Timeout: 5 * time.Second}
	for _, tc := range []struct {
		name      string
		change    func(u *Updater)
		record    string
		rcode     int
		tsigError uint16
		want      string
	}{
		{"wrong key name", func(u *Updater) { u.KeyName = "other" }, "example.com", mdns.RcodeNotAuth, mdns.RcodeBadKey, "does not accept our TSIG key"},
		{"wrong algorithm", func(u *Updater) { u.Algorithm = "hmac-sha512" }, "example.com", mdns.RcodeNotAuth, mdns.RcodeBadKey, "does not accept our TSIG key"},
		{"wrong secret", func(u *Updater) { u.Secret = otherSecret }, "example.com", mdns.RcodeNotAuth, mdns.RcodeBadSig, "signature is wrong"},
		{"zone not served", func(u *Updater) { u.Zone = "other.test" }, "other.test", mdns.RcodeNotAuth, 0, "refused our TSIG key"},
		{"no updates taken", func(u *Updater) { u.Server = closed.Addr() }, "example.com", mdns.RcodeRefused, 0, "refused the update"},
		{"answer unsigned", func(u *Updater) { u.Server = unsigned }, "example.com", 0, 0, "not signed with our TSIG key"},
		{"name outside the zone", nil, "example.org", 0, 0, "not in zone example.com."},
		{"bad name", nil, "a..example.com", 0, 0, "is not a domain name"},
		{"bad algorithm", func(u *Updater) { u.Algorithm = "hmac-md5" }, "example.com", 0, 0, `TSIG algorithm "hmac-md5"`},
		{"bad secret", func(u *Updater) { u.Secret = "not base64!" }, "example.com", 0, 0, "not base64"},
		{"no key name", func(u *Updater) { u.KeyName = "" }, "example.com", 0, 0, "no TSIG key name"},
		{"no server", func(u *Updater) { u.Server = "" }, "example.com", 0, 0, "no server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := good
			if tc.change != nil {
				tc.change(&u)
			}
			err := u.ReplaceTXT(context.Background(), tc.record, 300, []string{"v=spf1 -all"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			var ue *UpdateError
			if got := errors.As(err, &ue); got != (tc.rcode != 0) {
				t.Fatalf("UpdateError: %v, want one: %v", got, tc.rcode != 0)
			}
			if ue != nil && (ue.Rcode != tc.rcode || ue.TSIGError != tc.tsigError) {
				t.Errorf("rcode %s, TSIG error %s; want %s, %s", mdns.RcodeToString[ue.Rcode], mdns.RcodeToString[int(ue.TSIGError)],
					mdns.RcodeToString[tc.rcode], mdns.RcodeToString[int(tc.tsigError)])
			}
		})
	}
	if got := s.Records("example.com", mdns.TypeTXT); len(got) != 1 || got[0].(*mdns.TXT).Txt[0] != "v=spf1 mx -all" {
		t.Errorf("the zone changed: %v", got)
	}

	u := good
	for _, v := range [][]string{{strings.Repeat("x", 256)}, {}} {
		if err := u.ReplaceTXT(context.Background(), "example.com", 300, v); err == nil {
			t.Errorf("value %q: no error", v)
		}
	}
}

// The server side of updates: RFC 2136's four kinds of change and its
// prerequisites, applied all or none, signed or refused.
func TestLocalServerUpdates(t *testing.T) {
	rr := func(s string) mdns.RR {
		t.Helper()
		r, err := mdns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	s := updatable(t, "hmac-sha256")
	for _, tc := range []struct {
		name   string
		build  func(m *mdns.Msg)
		secret string // "" unsigned
		rcode  int
		name2  string // whose records of type2 to check after
		type2  uint16
		want   []string
	}{
		{"add", func(m *mdns.Msg) { m.Insert([]mdns.RR{rr("new.example.com. 60 IN A 192.0.2.9")}) }, testSecret, mdns.RcodeSuccess,
			"new.example.com.", mdns.TypeA, []string{"new.example.com.\t60\tIN\tA\t192.0.2.9"}},
		{"add twice is once", func(m *mdns.Msg) {
			m.Insert([]mdns.RR{rr("mx.example.com. 300 IN A 192.0.2.2"), rr("mx.example.com. 300 IN A 192.0.2.3")})
		}, testSecret, mdns.RcodeSuccess,
			"mx.example.com.", mdns.TypeA, []string{"mx.example.com.\t300\tIN\tA\t192.0.2.2", "mx.example.com.\t300\tIN\tA\t192.0.2.3"}},
		{"delete one", func(m *mdns.Msg) { m.Remove([]mdns.RR{rr("mx.example.com. 300 IN A 192.0.2.2")}) }, testSecret, mdns.RcodeSuccess,
			"mx.example.com.", mdns.TypeA, []string{"mx.example.com.\t300\tIN\tA\t192.0.2.3"}},
		{"delete RRset", func(m *mdns.Msg) { m.RemoveRRset([]mdns.RR{rr("example.com. 0 IN TXT \"\"")}) }, testSecret, mdns.RcodeSuccess,
			"example.com.", mdns.TypeTXT, nil},
		{"delete name", func(m *mdns.Msg) { m.RemoveName([]mdns.RR{rr("ns1.example.com. 0 IN A 0.0.0.0")}) }, testSecret, mdns.RcodeSuccess,
			"ns1.example.com.", mdns.TypeA, nil},
		{"the apex keeps its SOA and NS", func(m *mdns.Msg) { m.RemoveName([]mdns.RR{rr("example.com. 0 IN A 0.0.0.0")}) }, testSecret, mdns.RcodeSuccess,
			"example.com.", mdns.TypeNS, []string{"example.com.\t300\tIN\tNS\tns1.example.com."}},
		{"CNAME and other data do not mix", func(m *mdns.Msg) {
			m.Insert([]mdns.RR{rr("www.example.com. 60 IN TXT \"x\""), rr("z.example.com. 60 IN TXT \"z\"")}) // z: a change
		}, testSecret, mdns.RcodeSuccess,
			"www.example.com.", mdns.TypeTXT, nil},
		{"all or none", func(m *mdns.Msg) {
			m.Insert([]mdns.RR{rr("x.example.com. 60 IN TXT \"x\""), rr("x.example.org. 60 IN TXT \"x\"")})
		}, testSecret, mdns.RcodeNotZone,
			"x.example.com.", mdns.TypeTXT, nil},
		{"prerequisite: name in use", func(m *mdns.Msg) {
			m.NameUsed([]mdns.RR{rr("nothing.example.com. 0 IN A 0.0.0.0")})
			m.Insert([]mdns.RR{rr("y.example.com. 60 IN TXT \"y\"")})
		}, testSecret, mdns.RcodeNameError, "y.example.com.", mdns.TypeTXT, nil},
		{"prerequisite: RRset absent", func(m *mdns.Msg) {
			m.RRsetNotUsed([]mdns.RR{rr("sel._domainkey.example.com. 0 IN TXT \"\"")})
			m.Insert([]mdns.RR{rr("y.example.com. 60 IN TXT \"y\"")})
		}, testSecret, mdns.RcodeYXRrset, "y.example.com.", mdns.TypeTXT, nil},
		{"prerequisite: value held (compare and swap)", func(m *mdns.Msg) {
			old := `sel._domainkey.example.com. 300 IN TXT "v=DKIM1; k=rsa; p=" "MIIB"`
			m.Used([]mdns.RR{rr(old)})
			m.Remove([]mdns.RR{rr(old)})
			m.Insert([]mdns.RR{rr(`sel._domainkey.example.com. 300 IN TXT "v=DKIM1; p=swapped"`)})
		}, testSecret, mdns.RcodeSuccess, "sel._domainkey.example.com.", mdns.TypeTXT,
			[]string{"sel._domainkey.example.com.\t300\tIN\tTXT\t\"v=DKIM1; p=swapped\""}},
		{"prerequisite: value changed", func(m *mdns.Msg) {
			m.Used([]mdns.RR{rr(`sel._domainkey.example.com. 300 IN TXT "v=DKIM1; k=rsa; p=" "MIIB"`)})
			m.Insert([]mdns.RR{rr(`sel._domainkey.example.com. 300 IN TXT "v=DKIM1; p=lost"`)})
		}, testSecret, mdns.RcodeNXRrset, "sel._domainkey.example.com.", mdns.TypeTXT,
			[]string{"sel._domainkey.example.com.\t300\tIN\tTXT\t\"v=DKIM1; p=swapped\""}},
		{"unsigned", func(m *mdns.Msg) { m.Insert([]mdns.RR{rr("u.example.com. 60 IN TXT \"u\"")}) }, "", mdns.RcodeNotAuth,
			"u.example.com.", mdns.TypeTXT, nil},
		{"wrongly signed", func(m *mdns.Msg) { m.Insert([]mdns.RR{rr("u.example.com. 60 IN TXT \"u\"")}) }, otherSecret, mdns.RcodeNotAuth,
			"u.example.com.", mdns.TypeTXT, nil},
	} {
		// In order: each case sees the zone the ones before it left.
		t.Run(tc.name, func(t *testing.T) {
			before, _ := s.Serial("example.com")
			m := new(mdns.Msg)
			m.SetUpdate("example.com.")
			tc.build(m)
			c := &mdns.Client{Net: "tcp", Timeout: 5 * time.Second}
			if tc.secret != "" {
				m.SetTsig("mailplane.", mdns.HmacSHA256, 300, time.Now().Unix())
				c.TsigSecret = map[string]string{"mailplane.": tc.secret}
			}
			in, _, err := c.Exchange(m, s.Addr())
			if tc.secret == testSecret && err != nil {
				t.Fatal(err) // includes an answer whose signature does not verify
			}
			if in == nil {
				t.Fatalf("no answer: %v", err)
			}
			if in.Rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", mdns.RcodeToString[in.Rcode], mdns.RcodeToString[tc.rcode])
			}
			var got []string
			for _, rr := range s.Records(tc.name2, tc.type2) {
				got = append(got, rr.String())
			}
			slices.Sort(got)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s %s after (-want +got):\n%s", tc.name2, mdns.TypeToString[tc.type2], diff)
			}
			after, _ := s.Serial("example.com")
			if changed := tc.rcode == mdns.RcodeSuccess; changed != (after == before+1) {
				t.Errorf("serial %d -> %d; changed: %v", before, after, changed)
			}
		})
	}
}
