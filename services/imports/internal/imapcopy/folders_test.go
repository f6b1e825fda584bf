package imapcopy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMapping(t *testing.T) {
	ours := []listed{
		{Name: "INBOX", Delim: "/"},
		{Name: "Sent", Delim: "/", Attrs: []string{`\HasNoChildren`, `\Sent`}},
		{Name: "Drafts", Delim: "/", Attrs: []string{`\Drafts`}},
		{Name: "Trash", Delim: "/", Attrs: []string{`\Trash`}},
		{Name: "Spam", Delim: "/", Attrs: []string{`\Junk`}},
		{Name: "Archive", Delim: "/", Attrs: []string{`\Archive`}},
	}
	for _, tc := range []struct {
		name   string
		dest   []listed
		source []listed
		want   map[string]string // source -> destination; absent: not copied
	}{{
		name: "attributes, another separator, a separator in a name",
		dest: ours,
		source: []listed{
			{Name: "INBOX", Delim: "."},
			{Name: "Sent Items", Delim: ".", Attrs: []string{`\Sent`, `\HasChildren`}},
			{Name: "Sent Items.2019", Delim: "."},
			{Name: "Éléments supprimés", Delim: ".", Attrs: []string{`\Trash`}},
			{Name: "Courrier indésirable", Delim: ".", Attrs: []string{`\Junk`}},
			{Name: "Drafts", Delim: "."}, // no attribute where others have one: an ordinary folder
			{Name: "a.b/c", Delim: "."},
			{Name: "INBOX.Child", Delim: "."},
			{Name: "Parent", Delim: ".", Attrs: []string{`\Noselect`, `\HasChildren`}},
			{Name: "Parent.Kid", Delim: "."},
			{Name: "Starred", Delim: ".", Attrs: []string{`\Flagged`}},
		},
		want: map[string]string{
			"INBOX": "INBOX", "Sent Items": "Sent", "Sent Items.2019": "Sent/2019", "Éléments supprimés": "Trash",
			"Courrier indésirable": "Spam", "Drafts": "Drafts", "a.b/c": "a/b_c", "INBOX.Child": "INBOX/Child", "Parent.Kid": "Parent/Kid",
		},
	}, {
		name: "no attributes at the source: by name, top level only",
		dest: ours,
		source: []listed{
			{Name: "INBOX", Delim: "/"},
			{Name: "Sent Messages", Delim: "/"},
			{Name: "Deleted Items", Delim: "/"},
			{Name: "Junk E-mail", Delim: "/"},
			{Name: "Work/Sent", Delim: "/"},
			{Name: "Gesendet", Delim: "/"},
		},
		want: map[string]string{
			"INBOX": "INBOX", "Sent Messages": "Sent", "Deleted Items": "Trash", "Junk E-mail": "Spam", "Work/Sent": "Work/Sent", "Gesendet": "Sent",
		},
	}, {
		name: "everything under INBOX. at the source (Courier)",
		dest: ours,
		source: []listed{
			{Name: "INBOX", Delim: "."},
			{Name: "INBOX.Sent", Delim: ".", Attrs: []string{`\Sent`}},
			{Name: "INBOX.Work", Delim: "."},
			{Name: "INBOX.Work.2024", Delim: "."},
		},
		want: map[string]string{"INBOX": "INBOX", "INBOX.Sent": "Sent", "INBOX.Work": "Work", "INBOX.Work.2024": "Work/2024"},
	}, {
		name: "a destination under INBOX. without attributes, no hierarchy at the source",
		dest: []listed{{Name: "INBOX", Delim: "."}, {Name: "INBOX.Sent", Delim: "."}, {Name: "INBOX.Trash", Delim: "."}},
		source: []listed{
			{Name: "INBOX"},
			{Name: "Sent", Attrs: []string{`\Sent`}},
			{Name: "Reports 1.2"},
		},
		want: map[string]string{"INBOX": "INBOX", "Sent": "INBOX.Sent", "Reports 1.2": "INBOX.Reports 1_2"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]string{}
			for _, c := range newMapping(tc.dest).source(tc.source) {
				got[c.source.Name] = c.dest
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("mapping (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIdentity(t *testing.T) {
	base := "Message-ID: <a@x>\r\nFrom: A <a@x>\r\nTo: b@y\r\nDate: Tue, 3 Dec 2024 10:00:00 +0100\r\nSubject: hello\r\n\r\nbody\r\n"
	for _, tc := range []struct {
		name string
		raw  string
		same bool
	}{
		{"the same bytes", base, true},
		{"trace fields added", "Received: from a by b\r\nDelivered-To: c@z\r\n" + base, true},
		{"bare LF", "Message-ID: <a@x>\nFrom: A <a@x>\nTo: b@y\nDate: Tue, 3 Dec 2024 10:00:00 +0100\nSubject: hello\n\nbody\n", true},
		{"a folded subject", "Message-ID: <a@x>\r\nFrom: A <a@x>\r\nTo: b@y\r\nDate: Tue, 3 Dec 2024 10:00:00 +0100\r\nSubject:\r\n hello\r\n\r\nbody\r\n", true},
		{"field names in another case", "message-id: <a@x>\r\nFROM: A <a@x>\r\nto: b@y\r\ndate: Tue, 3 Dec 2024 10:00:00 +0100\r\nsubject: hello\r\n\r\nbody\r\n", true},
		{"another body", "Message-ID: <a@x>\r\nFrom: A <a@x>\r\nTo: b@y\r\nDate: Tue, 3 Dec 2024 10:00:00 +0100\r\nSubject: hello\r\n\r\nbody!\r\n", false},
		{"another subject", "Message-ID: <a@x>\r\nFrom: A <a@x>\r\nTo: b@y\r\nDate: Tue, 3 Dec 2024 10:00:00 +0100\r\nSubject: hello again\r\n\r\nbody\r\n", false},
		{"no Message-ID", "From: A <a@x>\r\nTo: b@y\r\nDate: Tue, 3 Dec 2024 10:00:00 +0100\r\nSubject: hello\r\n\r\nbody\r\n", false},
		{"a Cc added", "Cc: d@z\r\n" + base, false},
		{"the body moved into the header", "Message-ID: <a@x>\r\nFrom: A <a@x>\r\nTo: b@y\r\nDate: Tue, 3 Dec 2024 10:00:00 +0100\r\nSubject: hello\r\nbody\r\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := identityOf([]byte(tc.raw)) == identityOf([]byte(base)); got != tc.same {
				t.Errorf("same identity: %v, want %v", got, tc.same)
			}
		})
	}
	// The destination's index hashes HEADER.FIELDS and TEXT as a server
	// sends them; they must give what the whole message gives.
	fields := "Message-ID: <a@x>\r\nFrom: A <a@x>\r\nTo: b@y\r\nDate: Tue, 3 Dec 2024 10:00:00 +0100\r\nSubject: hello\r\n\r\n"
	if keyOfHeader([]byte(fields)) != identityOf([]byte("Received: x\r\n"+base)).header {
		t.Error("the header key of the fetched fields differs from the message's")
	}
	h, b := splitMessage([]byte("Subject: only a header\r\n"))
	if string(h) != "Subject: only a header\r\n" || len(b) != 0 {
		t.Errorf("a message without body: header %q, body %q", h, b)
	}
}
