package dmarc

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, txt string
		want      *Record
	}{
		{"RFC 7489 B.2.1", "v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com",
			&Record{P: None, RUA: []string{"mailto:dmarc-feedback@example.com"}}},
		{"RFC 7489 B.2.3, size suffix", "v=DMARC1; p=quarantine; rua=mailto:dmarc-feedback@example.com,mailto:tld-test@thirdparty.example.net!10m",
			&Record{P: Quarantine, RUA: []string{"mailto:dmarc-feedback@example.com", "mailto:tld-test@thirdparty.example.net"}}},
		{"RFC 9989 tags", "v=DMARC1; p=reject; sp=quarantine; np=reject; psd=n; t=y; adkim=s; aspf=r; fo=d:s; ruf=mailto:f@example.com",
			&Record{P: Reject, SP: Quarantine, NP: Reject, PSD: "n", T: "y", ADKIM: "s", ASPF: "r", FO: "d:s", RUF: []string{"mailto:f@example.com"}}},
		{"PSD record", "v=DMARC1; psd=y; p=reject", &Record{P: Reject, PSD: "y"}},
		{"spaces, case, trailing ;", "v = DMARC1 ;P=Reject ; rua = mailto:a@example.com , mailto:b@example.com ;",
			&Record{P: Reject, RUA: []string{"mailto:a@example.com", "mailto:b@example.com"}}},
		{"removed and unknown tags are warnings", "v=DMARC1; p=none; pct=50; rf=afrf; ri=3600; x=1", &Record{P: None}},
		{"no p", "v=DMARC1; rua=mailto:a@example.com", &Record{RUA: []string{"mailto:a@example.com"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.txt)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreFields(Record{}, "Tags")); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseTags(t *testing.T) {
	got, err := Parse("v=DMARC1; p=none; x=y; pct=100")
	if err != nil {
		t.Fatal(err)
	}
	want := []Tag{{"v", "DMARC1"}, {"p", "none"}, {"x", "y"}, {"pct", "100"}}
	if diff := cmp.Diff(want, got.Tags); diff != "" {
		t.Errorf("Tags (-want +got):\n%s", diff)
	}
}

// problem is a TagError as a table writes it.
type problem struct {
	Tag     string
	Warning bool
	Has     string // a part of the message
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		txt  string
		want []problem
	}{
		{"v=DMARC1; p=reject; rua=mailto:d@example.com", nil},
		{"v=DMARC1; p=none; rua=mailto:d@example.com!10m", nil},
		{"v=DMARC1; p=none; fo=1:d:s", nil},
		{"v=DMARC1; p=none; rua=https://reports.example.com/dmarc", nil},
		{"p=none; v=DMARC1", []problem{{"v", false, "must start with v=DMARC1"}}},
		{"v=dmarc1; p=none", []problem{{"v", false, "must start with v=DMARC1"}}},
		{"v=DMARC2; p=none", []problem{{"v", false, "must start with v=DMARC1"}}},
		{"", []problem{{"v", false, "must start with v=DMARC1"}}},
		{"v=DMARC1; p=block", []problem{{"p", false, `"block" is not a policy`}}},
		{"v=DMARC1; p=none; sp=maybe; np=", []problem{{"sp", false, `"maybe"`}, {"np", false, "empty"}}},
		{"v=DMARC1; p=none; psd=x; t=maybe", []problem{{"psd", false, "not y, n or u"}, {"t", false, "not y or n"}}},
		{"v=DMARC1; p=none; adkim=relaxed; aspf=x", []problem{{"adkim", false, "r (relaxed) or s (strict)"}, {"aspf", false, `"x"`}}},
		{"v=DMARC1; p=none; fo=0:1", []problem{{"fo", false, "exclude each other"}}},
		{"v=DMARC1; p=none; fo=2", []problem{{"fo", false, `"2" is not a failure option`}}},
		{"v=DMARC1; p=none; fo=d:d", []problem{{"fo", false, "twice"}}},
		{"v=DMARC1; p=none; rua=dmarc@example.com", []problem{{"rua", false, "not a URI"}}},
		{"v=DMARC1; p=none; rua=mailto:not-an-address", []problem{{"rua", false, "not a valid mail address"}}},
		{"v=DMARC1; p=none; ruf=mailto:a@example.com,,mailto:b@example.com", []problem{{"ruf", false, "empty address"}}},
		{"v=DMARC1; p=none; pct=25", []problem{{"pct", true, "removed by RFC 9989"}}},
		{"v=DMARC1; p=none; rf=afrf; ri=86400", []problem{{"rf", true, "removed by RFC 9989"}, {"ri", true, "removed by RFC 9989"}}},
		{"v=DMARC1; p=none; bimi=1", []problem{{"bimi", true, "unknown tag"}}},
		{"v=DMARC1; rua=mailto:a@example.com; p=none", []problem{{"p", true, "right after v=DMARC1"}}},
		{"v=DMARC1; rua=mailto:a@example.com", []problem{{"p", true, "p= is missing"}}},
		{"v=DMARC1; p=none; p=reject", []problem{{"p", false, "appears twice"}}},
		{"v=DMARC1; p=none; v=DMARC1", []problem{{"v", false, "appears twice"}}},
		{"v=DMARC1; p=none; reject", []problem{{"", false, `"reject" is not a tag=value pair`}}},
		{"v=DMARC1; p=none; a1=b", []problem{{"", false, `"a1" is not a tag name`}}},
		{"v=DMARC1; p=none; rua=mailto:é@example.com", []problem{{"rua", false, "not a printable ASCII"}}},
	} {
		t.Run(tc.txt, func(t *testing.T) {
			var got []problem
			for _, err := range Validate(tc.txt) {
				var te *TagError
				if !errors.As(err, &te) {
					t.Fatalf("%v is no *TagError", err)
				}
				got = append(got, problem{te.Tag, te.Warning, te.Msg})
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b problem) bool {
				has := func(x, y problem) bool { return strings.Contains(y.Has, x.Has) }
				return a.Tag == b.Tag && a.Warning == b.Warning && (has(a, b) || has(b, a))
			})); diff != "" {
				t.Errorf("Validate (-want +got):\n%s", diff)
			}
			_, err := Parse(tc.txt)
			wantErr := false
			for _, p := range tc.want {
				wantErr = wantErr || !p.Warning
			}
			if (err != nil) != wantErr {
				t.Errorf("Parse error = %v, want an error: %v", err, wantErr)
			}
		})
	}
}

func TestMailtoDomain(t *testing.T) {
	for uri, want := range map[string]string{
		"mailto:a@Example.COM":         "example.com",
		"mailto:a%40b@example.net?x=1": "example.net",
		"https://example.com/reports":  "",
		"mailto:nobody":                "",
		"mailto:reports@example.org.":  "example.org",
	} {
		if got := MailtoDomain(uri); got != want {
			t.Errorf("MailtoDomain(%q) = %q, want %q", uri, got, want)
		}
	}
}

func TestBuild(t *testing.T) {
	for _, tc := range []struct {
		p    Policy
		want string
	}{
		{Policy{}, "v=DMARC1; p=none"},
		{Recommend("dmarc@example.com"), "v=DMARC1; p=none; rua=mailto:dmarc@example.com"},
		{Policy{P: Reject, SP: Quarantine, NP: Reject, ADKIM: "s", ASPF: "s", Testing: true,
			RUA: []string{"mailto:a@example.com", "b@example.com"}, RUF: []string{"f@example.com"}, FO: "1"},
			"v=DMARC1; p=reject; sp=quarantine; np=reject; adkim=s; aspf=s; t=y; rua=mailto:a@example.com,mailto:b@example.com; ruf=mailto:f@example.com; fo=1"},
		{Policy{P: Quarantine, ADKIM: "r", FO: "1"}, "v=DMARC1; p=quarantine"},
		{Policy{P: None, RUA: []string{"a!b@example.com"}}, "v=DMARC1; p=none; rua=mailto:a%21b@example.com"},
	} {
		got := Build(tc.p)
		if got != tc.want {
			t.Errorf("Build(%+v) =\n %q, want\n %q", tc.p, got, tc.want)
		}
		// What the wizard writes, every receiver takes without a remark.
		if errs := Validate(got); len(errs) != 0 {
			t.Errorf("Validate(Build(%+v)) = %v", tc.p, errs)
		}
		if !strings.HasPrefix(got, "v=DMARC1; p=") || strings.Contains(got, "pct=") {
			t.Errorf("Build = %q: not v then p, or pct", got)
		}
	}
}

// The path of simple mode: none, quarantine, reject, and there it stays.
func TestNext(t *testing.T) {
	p := Recommend("dmarc@example.com")
	var path []Action
	for range 4 {
		next, why := Next(p)
		if why == "" {
			t.Errorf("Next(%s) explains nothing", p.P)
		}
		if diff := cmp.Diff(p.RUA, next.RUA); diff != "" {
			t.Errorf("Next changed the report addresses (-want +got):\n%s", diff)
		}
		path = append(path, next.P)
		p = next
	}
	if diff := cmp.Diff([]Action{Quarantine, Reject, Reject, Reject}, path); diff != "" {
		t.Errorf("path (-want +got):\n%s", diff)
	}
	next, _ := Next(Policy{P: Reject, Testing: true})
	if next.P != Reject || next.Testing {
		t.Errorf("Next(reject, t=y) = %+v, want reject without t=y", next)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com",
		"v=DMARC1; p=quarantine; rua=mailto:a@example.com,mailto:b@example.net!10m; pct=25",
		"v=DMARC1; p=reject; sp=none; np=reject; psd=u; t=n; adkim=s; aspf=r; fo=0:d; ruf=mailto:f@example.com",
		"v=DMARC1;;p=none;",
		"v = DMARC1 ; p = reject",
		"v=DMARC1; rua=mailto:%41@example.com?subject=x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, txt string) {
		rec, err := Parse(txt)
		errs := Validate(txt)
		if err != nil {
			if len(errs) == 0 {
				t.Fatalf("Parse(%q) failed (%v) but Validate found nothing", txt, err)
			}
			return
		}
		// A record read and written again is accepted, with the same
		// policy.
		out := Build(fromRecord(rec))
		back, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Build(Parse(%q))) = %v; built %q", txt, err, out)
		}
		if back.P != rec.P && !(rec.P == "" && back.P == None) {
			t.Fatalf("policy %q became %q through %q", rec.P, back.P, out)
		}
	})
}
