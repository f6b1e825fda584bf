package mtasts

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	mdns "github.com/miekg/dns"

	"github.com/mailplane/mailplane/services/dnssecurity/internal/finding"
)

func TestParseSTS(t *testing.T) {
	for _, tc := range []struct {
		txt     string
		want    *STS
		wantErr string
	}{
		{txt: "v=STSv1; id=20160831085700Z;", want: &STS{ID: "20160831085700Z"}}, // RFC 8461 §3.1
		{txt: "v=STSv1;id=a", want: &STS{ID: "a"}},
		{txt: "v=STSv1; id=" + strings.Repeat("9", 32), want: &STS{ID: strings.Repeat("9", 32)}},
		{txt: "v=STSv1; ext.name-1=v_1; id=x", want: &STS{ID: "x", Extensions: []string{"ext.name-1=v_1"}}},
		{txt: "v=STSv1; id=" + strings.Repeat("9", 33), wantErr: "1 to 32 letters and digits"},
		{txt: "v=STSv1; id=2016-08-31", wantErr: "1 to 32 letters and digits"},
		{txt: "v=STSv1; id=", wantErr: "1 to 32"},
		{txt: "v=STSv1", wantErr: "id= is missing"},
		{txt: "v=STSv1; id=a; id=b", wantErr: "id= appears twice"},
		{txt: "v=stsv1; id=a", wantErr: "must start with v=STSv1"},
		{txt: "id=a; v=STSv1", wantErr: "must start with v=STSv1"},
		{txt: "v=STSv1;; id=a", wantErr: "empty field"},
		{txt: "v=STSv1; id", wantErr: `"id" is not a name=value field`},
		{txt: "v=STSv1; id=a; x=", wantErr: "x= has no value"},
		{txt: "v=STSv1; id=a; b@d=c", wantErr: `"b@d" is not a field name`},
	} {
		t.Run(tc.txt, func(t *testing.T) {
			got, err := ParseSTS(tc.txt)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseSTS = %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseSTS (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseTLSRPT(t *testing.T) {
	for _, tc := range []struct {
		txt     string
		want    *TLSRPT
		wantErr string
	}{
		// RFC 8460 §3 examples.
		{txt: "v=TLSRPTv1;rua=mailto:reports@example.com", want: &TLSRPT{RUA: []string{"mailto:reports@example.com"}}},
		{txt: "v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt", want: &TLSRPT{RUA: []string{"https://reporting.example.com/v1/tlsrpt"}}},
		{txt: "v=TLSRPTv1; rua=mailto:a@example.com , https://r.example.net/x;", want: &TLSRPT{RUA: []string{"mailto:a@example.com", "https://r.example.net/x"}}},
		{txt: "v=TLSRPTv1", wantErr: "rua= is missing"},
		{txt: "v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com", wantErr: "rua= appears twice"},
		{txt: "v=TLSRPTv1; rua=http://r.example.com/", wantErr: "mailto: or https: URIs only"},
		{txt: "v=TLSRPTv1; rua=reports@example.com", wantErr: "mailto: or https: URIs only"},
		{txt: "v=TLSRPTv1; rua=mailto:nobody@", wantErr: "not a mail address"},
		{txt: "v=TLSRPTv1; rua=https:///x", wantErr: "names no host"},
		{txt: "v=TLSRPTv1; rua=", wantErr: "not a URI"},
		{txt: "v=tlsrptv1; rua=mailto:a@example.com", wantErr: "must start with v=TLSRPTv1"},
	} {
		t.Run(tc.txt, func(t *testing.T) {
			got, err := ParseTLSRPT(tc.txt)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseTLSRPT = %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseTLSRPT (-want +got):\n%s", diff)
			}
		})
	}
}

func txt(name, value string) string { return fmt.Sprintf("%s 300 IN TXT %q\n", name, value) }

type codeSev struct {
	Code     string
	Severity finding.Severity
}

func TestLint(t *testing.T) {
	zone := txt("_mta-sts.full.example.", "v=STSv1; id=20260101") +
		txt("_smtp._tls.full.example.", "v=TLSRPTv1; rua=mailto:tls@full.example") +
		txt("_mta-sts.stsonly.example.", "v=STSv1; id=1") +
		txt("_smtp._tls.rptonly.example.", "v=TLSRPTv1; rua=https://r.example/") +
		txt("_mta-sts.bad.example.", "v=STSv1; id=not-alnum") +
		txt("_smtp._tls.bad.example.", "v=TLSRPTv1") +
		txt("_mta-sts.two.example.", "v=STSv1; id=1") +
		txt("_mta-sts.two.example.", "v=STSv1; id=2") +
		txt("_mta-sts.two.example.", "something else") +
		txt("_smtp._tls.two.example.", "v=TLSRPTv1; rua=mailto:a@two.example") +
		txt("_smtp._tls.two.example.", "v=TLSRPTv1; rua=mailto:b@two.example") +
		txt("_mta-sts.down.example.", "v=STSv1; id=1")
	r, srv := serveZone(t, zone)
	srv.Fail("_mta-sts.down.example", mdns.RcodeServerFailure)
	srv.Drop("_smtp._tls.down.example")
	for _, tc := range []struct {
		domain string
		want   []codeSev
	}{
		{"full.example", []codeSev{{"mtasts.ok", finding.OK}, {"tlsrpt.ok", finding.OK}}},
		{"none.example", []codeSev{{"mtasts.missing", finding.OK}, {"tlsrpt.missing", finding.OK}}},
		{"stsonly.example", []codeSev{{"mtasts.ok", finding.OK}, {"tlsrpt.missing", finding.Warning}}},
		{"rptonly.example", []codeSev{{"mtasts.missing", finding.OK}, {"tlsrpt.ok", finding.OK}}},
		{"bad.example", []codeSev{{"mtasts.syntax", finding.Error}, {"tlsrpt.syntax", finding.Error}}},
		{"two.example", []codeSev{{"mtasts.multiple", finding.Error}, {"tlsrpt.multiple", finding.Error}}},
		// SERVFAIL for one, no answer at all for the other.
		{"down.example", []codeSev{{"mtasts.dns_failure", finding.Unknown}, {"tlsrpt.dns_failure", finding.Unknown}}},
	} {
		t.Run(tc.domain, func(t *testing.T) {
			fs := Lint(context.Background(), r, tc.domain)
			var got []codeSev
			for _, f := range fs {
				got = append(got, codeSev{f.Code, f.Severity})
				if f.Message == "" {
					t.Errorf("%s has no message", f.Code)
				}
				if f.Severity == finding.Error && (f.Fix == "" || f.Record == "") {
					t.Errorf("%s lacks its fix or record", f.Code)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Lint (-want +got):\n%s\n%+v", diff, fs)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"v=STSv1; id=20160831085700Z;",
		"v=TLSRPTv1;rua=mailto:reports@example.com",
		"v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt, mailto:a@example.com",
		"v=STSv1; x=y; id=1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, txt string) {
		if s, err := ParseSTS(txt); err == nil && (s.ID == "" || len(s.ID) > 32) {
			t.Fatalf("ParseSTS(%q): id %q", txt, s.ID)
		}
		if r, err := ParseTLSRPT(txt); err == nil && len(r.RUA) == 0 {
			t.Fatalf("ParseTLSRPT(%q): no rua", txt)
		}
	})
}
