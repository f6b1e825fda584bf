package dovecottest

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap"
	"github.com/emersion/go-imap/client"
	"github.com/emersion/go-sasl"
)

// TestReportsOnlyFromPeople: the deployed imapsieve rules make a spam
// report of what a person puts into Spam over IMAP, and none of what the
// platform's master users do there (an import appending a mailbox's
// Spam, a run-now rule moving mail): those are not anyone's verdict.
func TestReportsOnlyFromPeople(t *testing.T) {
	m := StartMail(t, nil)
	const anna = "anna@example.test"
	reports := func() int {
		entries, err := os.ReadDir(m.Reports)
		if err != nil {
			t.Fatal(err)
		}
		return len(entries)
	}
	msg := func(id string) *strings.Reader {
		return strings.NewReader("From: x@example.net\r\nSubject: buy\r\nMessage-ID: <" + id + "@example.net>\r\n\r\nbuy\r\n")
	}
	login := func(as, user, password string) *client.Client {
		c, err := client.Dial(m.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Logout() })
		if err := c.Authenticate(sasl.NewPlainClient(as, user, password)); err != nil {
			t.Fatalf("%s as %q: %v", user, as, err)
		}
		return c
	}

	person := login("", anna, UserPassword)
	if err := person.Append("Spam", nil, time.Now(), msg("person")); err != nil {
		t.Fatal(err)
	}
	if n := reports(); n != 1 {
		t.Fatalf("%d reports after the person's APPEND into Spam, want 1", n)
	}

	for _, master := range []struct{ user, password string }{{ImportsMaster, ImportsSecret}, {PersonalMaster, PersonalSecret}} {
		c := login(anna, master.user, master.password)
		if err := c.Append("Spam", nil, time.Now(), msg(master.user)); err != nil {
			t.Fatal(err)
		}
		if err := c.Append("INBOX", nil, time.Now(), msg(master.user+"-inbox")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Select("INBOX", false); err != nil {
			t.Fatal(err)
		}
		seq, err := c.Search(imapSearchAll())
		if err != nil || len(seq) == 0 {
			t.Fatalf("INBOX: %v %v", seq, err)
		}
		if err := c.Move(seqSet(seq), "Spam"); err != nil {
			t.Fatal(err)
		}
		if n := reports(); n != 1 {
			t.Errorf("%d reports after %s's APPEND and MOVE into Spam, want the person's 1", n, master.user)
		}
	}
}

func imapSearchAll() *imap.SearchCriteria { return imap.NewSearchCriteria() }

func seqSet(nums []uint32) *imap.SeqSet {
	s := new(imap.SeqSet)
	s.AddNum(nums...)
	return s
}
