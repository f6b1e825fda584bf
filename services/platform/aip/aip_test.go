package aip

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/mailplane/mailplane/services/platform/errs"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/structpb"
)

// field returns the field an InvalidArgument error names, or "".
func field(err error) string {
	var e *errs.Error
	if errors.As(err, &e) && e.Kind == errs.InvalidArgument && len(e.Fields) > 0 {
		return e.Fields[0].Field
	}
	return ""
}

func TestParsePageSize(t *testing.T) {
	for _, tt := range []struct {
		in   int32
		want int
		err  string
	}{
		{0, DefaultPageSize, ""},
		{1, 1, ""},
		{MaxPageSize, MaxPageSize, ""},
		{MaxPageSize + 1, MaxPageSize, ""},
		{-1, 0, "pageSize"},
	} {
		p, err := ParsePage(tt.in, "")
		if field(err) != tt.err || p.Size != tt.want {
			t.Errorf("ParsePage(%d) = %d, %v; want %d, field %q", tt.in, p.Size, err, tt.want, tt.err)
		}
	}
}

func TestPageToken(t *testing.T) {
	query := []string{"ListAddresses", "organizations/o/mailServices/m", `local_part = "a*"`, "local_part"}
	first, err := ParsePage(2, "", query...)
	if err != nil || first.After != nil {
		t.Fatalf("first page %v, %v", first, err)
	}
	keys := []string{"sales", "", "ünïcode/\x00"}
	token := first.Next(keys...)
	if strings.Contains(token, "sales") || strings.ContainsAny(token, "+/=") {
		t.Errorf("token %q is not opaque base64url", token)
	}
	next, err := ParsePage(5, token, query...)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(keys, next.After); diff != "" || next.Size != 5 {
		t.Errorf("after (-want +got):\n%s size %d", diff, next.Size)
	}

	flipped := []byte(token)
	flipped[len(flipped)/2] ^= 1
	other := append(query[:2:2], `local_part = "b*"`, "local_part")
	for name, tt := range map[string]struct {
		token string
		query []string
		want  string
	}{
		"not base64":   {"!!!", query, "is not a token"},
		"too short":    {"AQ", query, "is not a token"},
		"raw key":      {"sales", query, "is not a token"},
		"flipped bit":  {string(flipped), query, "is not a token"},
		"truncated":    {token[:len(token)-2], query, "is not a token"},
		"too long":     {strings.Repeat("A", 2000), query, "is not a token"},
		"other filter": {token, other, "another query"},
		"no query":     {token, nil, "another query"},
		"split parts":  {token, []string{"ListAddresses", "organizations/o/mailServices/m" + `local_part = "a*"`, "local_part"}, "another query"},
	} {
		_, err := ParsePage(0, tt.token, tt.query...)
		if field(err) != "pageToken" || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want pageToken %q", name, err, tt.want)
		}
	}
}

func TestTrim(t *testing.T) {
	p, _ := ParsePage(2, "", "q")
	keys := func(s string) []string { return []string{s} }
	if items, next := Trim(p, []string{"a", "b"}, keys); len(items) != 2 || next != "" {
		t.Errorf("last page: %v %q", items, next)
	}
	items, next := Trim(p, []string{"a", "b", "c"}, keys)
	if len(items) != 2 || next == "" {
		t.Fatalf("full page: %v %q", items, next)
	}
	if p2, err := ParsePage(2, next, "q"); err != nil || cmp.Diff([]string{"b"}, p2.After) != "" {
		t.Errorf("next page after %v, %v", p2.After, err)
	}
}

func TestUpdatePaths(t *testing.T) {
	// A Struct stands in for a resource: its one field, "fields", is a map.
	set := &structpb.Struct{Fields: map[string]*structpb.Value{"a": structpb.NewNullValue()}}
	unset := &structpb.Struct{}
	mask := func(paths ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }
	for _, tt := range []struct {
		name      string
		mask      *fieldmaskpb.FieldMask
		res       *structpb.Struct
		updatable []string
		want      []string
		err       string
	}{
		{"absent mask, field set", nil, set, []string{"fields"}, []string{"fields"}, ""},
		{"empty mask, field set", mask(), set, []string{"fields"}, []string{"fields"}, ""},
		{"absent mask, nothing set", nil, unset, []string{"fields"}, nil, "names no field"},
		{"absent mask, nil resource", nil, nil, []string{"fields"}, nil, "names no field"},
		{"absent mask ignores what is not updatable", nil, set, []string{"other"}, nil, "names no field"},
		{"star", mask("*"), unset, []string{"fields", "other"}, []string{"fields", "other"}, ""},
		{"named, unset", mask("fields"), unset, []string{"fields"}, []string{"fields"}, ""},
		{"JSON form, in updatable order, once", mask("displayName", "fields", "display_name"), unset, []string{"fields", "display_name"}, []string{"fields", "display_name"}, ""},
		{"not updatable", mask("create_time"), set, []string{"fields", "display_name"}, nil, `"create_time" cannot be updated; updatable: fields, displayName`},
		{"star among others", mask("*", "fields"), set, []string{"fields"}, nil, `"*" cannot be updated`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := UpdatePaths(tt.mask, tt.res, tt.updatable...)
			if tt.err != "" {
				if field(err) != "updateMask" || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("error %v, want updateMask %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("paths (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseName(t *testing.T) {
	const pattern = "organizations/{organization}/mailServices/{mail_service}/reservations/{local_part}"
	got, err := ParseName("name", "organizations/o/mailServices/m/reservations/sales", pattern)
	if err != nil || cmp.Diff([]string{"o", "m", "sales"}, got) != "" {
		t.Errorf("ParseName = %v, %v", got, err)
	}
	for _, name := range []string{
		"", "organizations/o", "organizations/o/mailServices/m/reservations/", "organizations//mailServices/m/reservations/x",
		"organizations/o/mailservices/m/reservations/x", "organizations/o/mailServices/m/reservations/x/y",
	} {
		_, err := ParseName("name", name, pattern)
		if field(err) != "name" || !strings.Contains(err.Error(), "must be a name like "+pattern) {
			t.Errorf("ParseName(%q) = %v", name, err)
		}
	}
}

func TestParseIDs(t *testing.T) {
	const pattern = "organizations/{organization}/members/{member}"
	org, user := uuid.New(), uuid.New()
	got, err := ParseIDs("member.name", "organizations/"+org.String()+"/members/"+user.String(), pattern)
	if err != nil || cmp.Diff([]uuid.UUID{org, user}, got) != "" {
		t.Errorf("ParseIDs = %v, %v", got, err)
	}
	if got, err := ParseIDs("name", "organizations/"+strings.ToUpper(org.String())+"/members/"+user.String(), pattern); err != nil || got[0] != org {
		t.Errorf("upper case: %v, %v", got, err)
	}
	for _, name := range []string{
		"organizations/x/members/" + user.String(),
		"organizations/{" + org.String() + "}/members/" + user.String(),
		"organizations/urn:uuid:" + org.String() + "/members/" + user.String(),
		"organizations/" + strings.ReplaceAll(org.String(), "-", "") + "/members/" + user.String(),
		"organizations/" + org.String(),
	} {
		if _, err := ParseIDs("member.name", name, pattern); field(err) != "member.name" {
			t.Errorf("ParseIDs(%q) = %v", name, err)
		}
	}
}

var addressFields = map[string]Match{"local_part": Prefix, "user": Equal}

func TestParseFilter(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Filter
		err  string // a part of the error's message; the field is always filter
	}{
		{"", nil, ""},
		{"   ", nil, ""},
		{`local_part = "sales"`, Filter{{Field: "local_part", Value: "sales"}}, ""},
		{`local_part="sal*"`, Filter{{Field: "local_part", Value: "sal", Prefix: true}}, ""},
		{`localPart = sal*`, Filter{{Field: "local_part", Value: "sal", Prefix: true}}, ""},
		{`local_part = "\*"`, Filter{{Field: "local_part", Value: "*"}}, ""},
		{`local_part = "a \"b\" \\ c"`, Filter{{Field: "local_part", Value: `a "b" \ c`}}, ""},
		{`local_part = ""`, Filter{{Field: "local_part", Value: ""}}, ""},
		{`local_part = "s*" AND user = users/42`, Filter{{Field: "local_part", Value: "s", Prefix: true}, {Field: "user", Value: "users/42"}}, ""},
		{"\tuser = \"users/1\"\tAND local_part = x ", Filter{{Field: "user", Value: "users/1"}, {Field: "local_part", Value: "x"}}, ""},

		{`kind = "mailbox"`, nil, `"kind": unknown field; filterable: local_part, user`},
		{`user = "users/*"`, nil, "user takes an exact value, not a prefix"},
		{`local_part = "*"`, nil, "empty prefix"},
		{`local_part = "a*b"`, nil, "* may only end a value"},
		{`local_part = "a\n"`, nil, `\ escapes only`},
		{`local_part = "sales`, nil, "missing closing quote"},
		{`local_part != "sales"`, nil, "expected = after the field name"},
		{`local_part : "sales"`, nil, "expected = after the field name"},
		{`local_part =`, nil, "expected a value"},
		{`local_part = a AND local_part = b`, nil, "local_part is filtered twice"},
		{`local_part = a OR user = b`, nil, "only AND"},
		{`local_part = a and user = b`, nil, "only AND"},
		{`local_part = a user = b`, nil, "expected AND after a term"},
		{`local_part = a AND`, nil, "a term must follow AND"},
		{`(local_part = a)`, nil, "expected a field name"},
		{`NOT local_part = a`, nil, `"NOT": unknown field`},
		{strings.Repeat(" ", MaxFilterLength+1), nil, "at most 512 bytes"},
	} {
		got, err := ParseFilter(tt.in, addressFields)
		if tt.err != "" {
			if field(err) != "filter" || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseFilter(%q) error %v, want filter %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseFilter(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseFilter(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

// FuzzParseFilter checks that any input either parses into known fields,
// each once, that print and parse back the same, or fails naming filter.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{`local_part = "sal*" AND user = users/1`, `local_part = "\*\"\\"`, `a = b OR`, `user="`, "localPart=x*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ParseFilter(in, addressFields)
		if err != nil {
			if field(err) != "filter" {
				t.Fatalf("ParseFilter(%q) error %v does not name filter", in, err)
			}
			return
		}
		seen := map[string]bool{}
		for _, term := range got {
			if _, ok := addressFields[term.Field]; !ok || seen[term.Field] {
				t.Fatalf("ParseFilter(%q) = %v: unknown or repeated field", in, got)
			}
			seen[term.Field] = true
		}
		again, err := ParseFilter(got.String(), addressFields)
		if err != nil && len(got.String()) <= MaxFilterLength {
			t.Fatalf("ParseFilter(%q) = %v prints as %q, which fails: %v", in, got, got.String(), err)
		}
		if err == nil && cmp.Diff(got, again) != "" {
			t.Fatalf("ParseFilter(%q) = %v, round trip %v", in, got, again)
		}
	})
}

func TestParseOrderBy(t *testing.T) {
	def := Order{Field: "local_part"}
	fields := []string{"local_part", "create_time"}
	for _, tt := range []struct {
		in   string
		want Order
		err  string
	}{
		{"", def, ""},
		{"create_time", Order{Field: "create_time"}, ""},
		{" createTime  desc ", Order{Field: "create_time", Desc: true}, ""},
		{"local_part ASC", Order{Field: "local_part"}, ""},
		{"update_time", Order{}, "unknown field; sortable: local_part, create_time"},
		{"local_part down", Order{}, "asc or desc"},
		{"local_part, create_time", Order{}, "one field"},
		{"local_part desc desc", Order{}, "one field"},
	} {
		got, err := ParseOrderBy(tt.in, def, fields...)
		if tt.err != "" {
			if field(err) != "orderBy" || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseOrderBy(%q) error %v, want orderBy %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseOrderBy(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	if s := (Order{Field: "create_time", Desc: true}).String(); s != "create_time desc" {
		t.Errorf("String = %q", s)
	}
}

// FuzzPageToken checks that no token makes ParsePage panic or fail other
// than naming pageToken.
func FuzzPageToken(f *testing.F) {
	p, _ := ParsePage(0, "", "q")
	f.Add(p.Next("sales", uuid.NewString()))
	f.Add(p.Next())
	f.Fuzz(func(t *testing.T, token string) {
		if _, err := ParsePage(0, token, "q"); err != nil && field(err) != "pageToken" {
			t.Fatalf("ParsePage(%q): %v", token, err)
		}
	})
}

func TestCursor(t *testing.T) {
	p, _ := ParsePage(0, "", "q")
	if k, id, err := p.Cursor(true); k != nil || id != nil || err != nil {
		t.Errorf("first page: %v %v %v", k, id, err)
	}
	when, u := time.UnixMicro(1_780_000_000_123_456), uuid.New()
	for _, tt := range []struct {
		keys    []string
		isTime  bool
		wantKey any
		err     bool
	}{
		{[]string{TimeKey(when), u.String()}, true, when, false},
		{[]string{"sales", u.String()}, false, "sales", false},
		{[]string{"sales", u.String()}, true, nil, true},
		{[]string{"sales", "x"}, false, nil, true},
		{[]string{"sales"}, false, nil, true},
	} {
		next, err := ParsePage(0, p.Next(tt.keys...), "q")
		if err != nil {
			t.Fatal(err)
		}
		k, id, err := next.Cursor(tt.isTime)
		if tt.err {
			if field(err) != "pageToken" {
				t.Errorf("Cursor(%v) error %v, want pageToken", tt.keys, err)
			}
			continue
		}
		if err != nil || id != u || !cmp.Equal(k, tt.wantKey) {
			t.Errorf("Cursor(%v) = %v, %v, %v", tt.keys, k, id, err)
		}
	}
}
