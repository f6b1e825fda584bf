package dns_test

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

	"github.com/mailplane/mailplane/services/platform/dns"
	"github.com/mailplane/mailplane/services/platform/knottest"
)

const knotZone = `$ORIGIN example.test.
$TTL 300
@      SOA ns1.example.test. hostmaster.example.test. 1 3600 900 604800 300
@      NS  ns1.example.test.
ns1    A   127.0.0.1
@      MX  10 mx.example.test.
@      TXT "v=spf1 mx -all"
`

// TestUpdaterKnot: the Updater against a real Knot DNS, read back with Ask
// as the security diagnostic follows a change.
func TestUpdaterKnot(t *testing.T) {
	k := knottest.Start(t, knotZone)
	u := &dns.Updater{Server: k.Addr, Zone: k.Zone, KeyName: k.KeyName, Algorithm: k.Algorithm, Secret: k.Secret, Timeout: 5 * time.Second}
	r, err := dns.NewResolver(k.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	read := func(name string) []string {
		t.Helper()
		rrs, err := r.Ask(ctx, k.Addr, name, mdns.TypeTXT)
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

	key := []string{"v=DKIM1; k=rsa; p=" + strings.Repeat("A", 230), strings.Repeat("B", 100)}
	for _, tc := range []struct {
		name   string
		values [][]string
		want   []string
	}{
		{"example.test.", [][]string{{"v=spf1 mx ~all"}}, []string{"v=spf1 mx ~all"}},
		{"sel._domainkey.example.test.", [][]string{key}, []string{strings.Join(key, "|")}},
		{"sel._domainkey.example.test.", [][]string{{"v=DKIM1; p=one"}, {"v=DKIM1; p=two"}}, []string{"v=DKIM1; p=one", "v=DKIM1; p=two"}},
		{"sel._domainkey.example.test.", nil, nil},
	} {
		if err := u.ReplaceTXT(ctx, tc.name, 300, tc.values...); err != nil {
			t.Fatalf("ReplaceTXT(%s, %q): %v", tc.name, tc.values, err)
		}
		if diff := cmp.Diff(tc.want, read(tc.name)); diff != "" {
			t.Errorf("%s TXT after ReplaceTXT(%q) (-want +got):\n%s", tc.name, tc.values, diff)
		}
	}
	if rrs, err := r.Ask(ctx, k.Addr, k.Zone, mdns.TypeMX); err != nil || len(rrs) != 1 {
		t.Errorf("the apex MX after TXT updates: %v, %v", rrs, err)
	}

	wrong := base64.StdEncoding.EncodeToString(make([]byte, 32))
	for _, tc := range []struct {
		name      string
		change    func(u *dns.Updater)
		owner     string // in the zone; "": its apex
		tsigError uint16
	}{
		{"wrong secret", func(u *dns.Updater) { u.Secret = wrong }, "", mdns.RcodeBadSig},
		{"unknown key", func(u *dns.Updater) { u.KeyName = "other-key." }, "", mdns.RcodeBadKey},
		// Knot answers BADKEY for a key its ACL does not let change a name.
		{"no ACL for the name", func(u *dns.Updater) {}, "www.", mdns.RcodeBadKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := *u
			tc.change(&bad)
			name := tc.owner + k.Zone
			err := bad.ReplaceTXT(ctx, name, 300, []string{"refused"})
			var ue *dns.UpdateError
			if !errors.As(err, &ue) || ue.Rcode != mdns.RcodeNotAuth || ue.TSIGError != tc.tsigError {
				t.Fatalf("error %v, want NOTAUTH with TSIG error %s", err, mdns.RcodeToString[int(tc.tsigError)])
			}
			t.Log(err)
			if got := read(name); slices.Contains(got, "refused") {
				t.Errorf("%s TXT changed: %q", name, got)
			}
		})
	}

	// Unsigned: Knot refuses it too.
	m := new(mdns.Msg)
	m.SetUpdate(k.Zone)
	txt, _ := mdns.NewRR(k.Zone + ` 300 IN TXT "unsigned"`)
	m.Insert([]mdns.RR{txt})
	in, _, err := (&mdns.Client{Net: "tcp", Timeout: 5 * time.Second}).Exchange(m, k.Addr)
	if err != nil || in.Rcode != mdns.RcodeNotAuth {
		t.Errorf("an unsigned update: %v, %v; want NOTAUTH", in, err)
	}
	if got := read(k.Zone); !slices.Equal(got, []string{"v=spf1 mx ~all"}) {
		t.Errorf("apex TXT after refused updates: %q", got)
	}
}
