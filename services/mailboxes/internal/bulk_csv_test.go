package mailboxes

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mailplane/mailplane/services/platform/errs"
)

// violations returns the field violations of checkBulk's answer as
// "field: description" lines.
func violations(be *bulkErrors) []string {
	err := be.err()
	if err == nil {
		return nil
	}
	var e *errs.Error
	if !errors.As(err, &e) || e.Kind != errs.InvalidArgument {
		return []string{"not an InvalidArgument: " + err.Error()}
	}
	var out []string
	for _, v := range e.Fields {
		out = append(out, v.Field+": "+v.Description)
	}
	return out
}

// readAll reads every valid row of data, as the job does.
func readAll(t *testing.T, data string) []bulkRow {
	t.Helper()
	be := &bulkErrors{}
	br := newBulkReader([]byte(data), be)
	if br == nil {
		t.Fatalf("header: %v", violations(be))
	}
	var rows []bulkRow
	for {
		row, valid, ok := br.next(be)
		if !ok {
			break
		}
		if !valid {
			t.Fatalf("row on line %d: %v", row.line, violations(be))
		}
		rows = append(rows, row)
	}
	return rows
}

func TestCheckBulk(t *testing.T) {
	const header = "local_part,kind,aliases,redirect_destinations,quota_mb\n"
	tests := []struct {
		name string
		csv  string
		rows int
		want []string // violations; nil: valid
	}{
		{"the template", bulkTemplate, 1, nil},
		{"BOM and CRLF", "\xef\xbb\xbflocal_part,kind\r\nanna,mailbox\r\nbob,\r\n", 2, nil},
		{"semicolons", "local_part;kind;aliases\r\nanna;mailbox;a1 a2\r\n", 1, nil},
		{"columns in any order, case and spaces", " Kind ,LOCAL_PART\nno_reply,noreply\n", 1, nil},
		{"quoted fields with commas, quotes and line breaks", header +
			`fw,redirect,,"a@x.example, b@y.example",` + "\n" +
			`"anna",mailbox,"an1 ""x"" an2",,1` + "\n" +
			"bob,mailbox,\"b1\nb2\",,\n" +
			"carl,,,,\n", 0, []string{`line 3, column aliases: alias "\"x\"" may hold only letters, digits, dots and ` + atext}},
		{"empty rows a spreadsheet left", header + "anna,,,,\n,,,,\n\n , ,,,\nbob,,,,\n", 2, nil},
		{"empty", "", 0, []string{"csv: is empty; download the template, fill it in and upload it"}},
		{"only the header", "\xef\xbb\xbf" + header, 0, []string{"csv: has no rows below the first line"}},
		{"no header", "anna,mailbox\n", 0, []string{
			"line 1, column anna: is not a column of the template; the columns are local_part, kind, aliases, redirect_destinations, quota_mb, users",
			"line 1, column mailbox: is not a column of the template; the columns are local_part, kind, aliases, redirect_destinations, quota_mb, users",
		}},
		{"no local_part column", "kind\nmailbox\n", 0, []string{
			"line 1: the first line must name the columns, local_part at least: local_part,kind,aliases,redirect_destinations,quota_mb,users",
		}},
		{"users column", "local_part,users\nanna,Ann@Example.com; bob@example.com\ncarl,\n", 2, nil},
		{"users in bad shape", "local_part,kind,users\nanna,,me\nnr,no_reply,a@example.com\n", 0, []string{
			`line 2, column users: "me" must be an email address like name@example.com`,
			"line 3, column users: a no-reply address has no users",
		}},
		{"the error file's columns are read past", "local_part,line,error\nanna,2,user x@example.com is not a member\n", 1, nil},
		{"column twice", "local_part,kind,Kind\nanna,,\n", 0, []string{"line 1, column Kind: appears twice"}},
		{"not UTF-8", header + "anna,,,,\nb\xe9b,,,,\n", 0, []string{`line 3: is not UTF-8 text; save the file as "CSV UTF-8"`}},
		{"bad column count", header + "anna,,,,\nbob,mailbox\ncarl,,,,,\n", 0, []string{
			"line 3: has 2 fields; the first line has 5",
			"line 4: has 6 fields; the first line has 5",
		}},
		{"bare quote", header + "anna,,,,\nb\"ob,,,,\ncarl,,,,\n", 0, []string{
			`line 3: a " in an unquoted field (character 2); quote the field and double the " inside; the rest of the file was not read`,
		}},
		{"bad values name the line and column", header +
			"ok,,,,\n" +
			"a b,,,,\n" +
			"anna,mailbox,x..y,,\n" +
			"fw,redirect,,nope,\n" +
			"fw2,redirect,,,\n" +
			"box,,,x@y.example,\n" +
			"postmaster,no_reply,,,\n" +
			"MAILER-DAEMON,,,,\n" +
			"any,catch_all,,,\n" +
			"q,,,,-1\n" +
			"q2,,,,1.5\n" +
			"k,group,,,\n" +
			"*,,,,\n" +
			"self,,Self,,\n", 0, []string{
			"line 3, column local_part: may hold only letters, digits, dots and " + atext,
			`line 4, column aliases: alias "x..y" must not start or end with a dot, nor have two in a row`,
			`line 5, column redirect_destinations: "nope" must be an email address like name@example.com`,
			"line 6, column redirect_destinations: a redirect address needs at least one destination",
			"line 7, column redirect_destinations: only redirect and catch-all addresses have destinations",
			`line 8, column kind: "postmaster" must receive mail (RFC 2142); it cannot be no-reply`,
			`line 9, column local_part: "mailer-daemon" belongs to the mail system itself`,
			"line 10, column kind: a catch-all address is created on its own, not from a file",
			"line 11, column quota_mb: must be a whole number of megabytes (MiB); 0 or empty: the default",
			"line 12, column quota_mb: must be a whole number of megabytes (MiB); 0 or empty: the default",
			"line 13, column kind: must be mailbox, no_reply or redirect (empty: mailbox)",
			`line 14, column local_part: "*" stands for the catch-all; create a catch-all address instead`,
			`line 15, column aliases: alias "Self" is the local part itself`,
		}},
		{"too many aliases", header + "anna,," + strings.Repeat("a", 51) + ",,\n" + "bob,," + aliasList(51) + ",,\n" + "carl,," + aliasList(50) + ",,\n", 0, []string{
			"line 3, column aliases: has 51 aliases; at most 50",
		}},
		{"a field too long", header + "anna,,,,\n" + "fw,redirect,," + strings.Repeat("x", 16385) + ",\n", 0, []string{
			"line 3, column redirect_destinations: is 16385 bytes long; at most 16384",
		}},
		{"duplicates in the file", header +
			"anna,,a1 A1,,\n" +
			"Anna,,,,\n" +
			"bob,,A1 anna2,,\n" +
			"anna2,,,,\n", 0, []string{
			`line 3, column local_part: "anna" is already on line 2`,
			`line 4, column aliases: "a1" is already on line 2`,
			`line 5, column local_part: "anna2" is already on line 4`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, be := checkBulk([]byte(tt.csv))
			got := violations(be)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("violations (-want +got):\n%s", diff)
			}
			if tt.want == nil && f.rows != tt.rows {
				t.Errorf("%d rows, want %d", f.rows, tt.rows)
			}
		})
	}
}

// aliasList is n aliases, separated by spaces.
func aliasList(n int) string {
	as := make([]string, n)
	for i := range as {
		as[i] = fmt.Sprintf("al%d", i)
	}
	return strings.Join(as, " ")
}

func TestBulkRows(t *testing.T) {
	rows := readAll(t, "\xef\xbb\xbflocal_part,kind,aliases,redirect_destinations,quota_mb\r\n"+
		"Anna.Smith,,Anna asmith ANNA,,2048\r\n"+
		"fw,redirect,,\"Boss@Elsewhere.example, b@y.example\",\r\n"+
		"\"no-reply\",No-Reply,,,0\r\n"+
		"ops,redirect,,'-ops@y.example,\r\n") // defused by the error file
	got := make([]string, len(rows))
	for i, r := range rows {
		got[i] = fmt.Sprintf("%d %s %s %s %v %v %d", r.line, r.localPart, r.key, bulkKinds[r.kind], r.aliases, r.redirects, r.quota)
	}
	want := []string{
		"2 Anna.Smith anna.smith mailbox [anna asmith] [] 2147483648",
		"3 fw fw redirect [] [boss@elsewhere.example b@y.example] 0",
		"4 no-reply no-reply no_reply [] [] 0",
		"5 ops ops redirect [] [-ops@y.example] 0",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

func TestBulkErrorsCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString("local_part\n")
	for range 250 {
		b.WriteString("a..b\n")
	}
	_, be := checkBulk([]byte(b.String()))
	err := be.err()
	var e *errs.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v", err)
	}
	if len(e.Fields) != maxBulkErrors || be.total != 250 {
		t.Errorf("%d violations listed, %d counted; want %d, 250", len(e.Fields), be.total, maxBulkErrors)
	}
	if e.Fields[99].Field != "line 101, column local_part" {
		t.Errorf("last listed %q", e.Fields[99].Field)
	}
	want := "line 2, column local_part: must not start or end with a dot, nor have two in a row (and 249 more problems in the file; the first 100 are listed)"
	if e.Message != want {
		t.Errorf("message %q\nwant     %q", e.Message, want)
	}
}

func TestBulkTooManyRows(t *testing.T) {
	var b strings.Builder
	b.WriteString("local_part\n")
	for i := range maxBulkRows + 1 {
		fmt.Fprintf(&b, "a%d\n", i)
	}
	_, be := checkBulk([]byte(b.String()))
	if diff := cmp.Diff([]string{"csv: has more than 100000 rows; split it into several files"}, violations(be)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
