package mailboxes

import (
	"log/slog"
	"testing"
	"time"

	"github.com/emersion/go-milter"
)

// milterSession opens a session with the milter at addr, as an MTA would.
func milterSession(t *testing.T, addr string) *milter.ClientSession {
	t.Helper()
	c := milter.NewClientWithOptions("tcp", addr, milter.ClientOptions{ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second})
	s, err := c.Session()
	if err != nil {
		t.Fatalf("milter session: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// milterMessage sends one message's envelope sender, with {auth_authen}
// when login is set, and its From fields; it returns the verdict.
func milterMessage(t *testing.T, s *milter.ClientSession, login, sender string, from ...string) *milter.Action {
	t.Helper()
	if login != "" {
		if err := s.Macros(milter.CodeMail, "{auth_type}", "PLAIN", "{auth_authen}", login); err != nil {
			t.Fatal(err)
		}
	} else if err := s.Macros(milter.CodeMail, "{mail_addr}", sender); err != nil {
		t.Fatal(err)
	}
	act, err := s.Mail(sender, nil)
	if err != nil {
		t.Fatalf("MAIL: %v", err)
	}
	if act.Code != milter.ActContinue {
		return act
	}
	// The macros of a later stage replace the MAIL stage's in go-milter:
	// the login must survive them.
	if err := s.Macros(milter.CodeHeader, "i", "4Q1x2y3z"); err != nil {
		t.Fatal(err)
	}
	fields := append([]string{"Subject"}, from...)
	for i, f := range fields {
		key, value := "From", f
		if i == 0 {
			key, value = "Subject", "Hello"
		}
		act, err := s.HeaderField(key, value)
		if err != nil {
			t.Fatalf("header: %v", err)
		}
		if act.Code != milter.ActContinue {
			return act
		}
	}
	act, err = s.HeaderEnd()
	if err != nil {
		t.Fatalf("end of headers: %v", err)
	}
	if act.Code != milter.ActContinue {
		return act
	}
	_, act, err = s.End()
	if err != nil {
		t.Fatalf("end of message: %v", err)
	}
	return act
}

func TestMilter(t *testing.T) {
	addr := serveForTest(t, NewMilterServer(NewLookups(newLookupPool(t)), slog.New(slog.DiscardHandler)).Serve)
	accept := milter.Action{Code: milter.ActAccept}
	reject := func(text string) milter.Action {
		return milter.Action{Code: milter.ActReplyCode, SMTPCode: 550, SMTPText: text}
	}
	tests := []struct {
		name   string
		login  string
		sender string
		from   []string
		want   milter.Action
	}{
		{name: "own address", login: "sales@example.com", sender: "sales@example.com", from: []string{"Sales <sales@example.com>"}, want: accept},
		{name: "an alias, any case", login: "sales@example.com", sender: "sales@example.com", from: []string{`"Example, Sales" <Contact@EXAMPLE.com>`}, want: accept},
		{name: "encoded display name", login: "sales@example.com", sender: "sales@example.com", from: []string{"=?UTF-8?Q?Z=C3=BCrich_Sales?= <info@example.com>"}, want: accept},
		{name: "folded", login: "sales@example.com", sender: "sales@example.com", from: []string{"Sales\r\n <sales@example.com>"}, want: accept},
		{name: "no From header", login: "sales@example.com", sender: "sales@example.com", want: accept},
		{name: "not signed in", sender: "boss@example.com", from: []string{"boss@example.com"}, want: accept},
		{
			name: "someone else's address", login: "sales@example.com", sender: "sales@example.com", from: []string{"The Boss <boss@example.com>"},
			want: reject(`5.7.1 the address "boss@example.com" in the From header is not "sales@example.com" (the address you signed in with) nor one of its aliases`),
		},
		{
			name: "two addresses, one not allowed", login: "sales@example.com", sender: "sales@example.com", from: []string{"sales@example.com, boss@other.example"},
			want: reject(`5.7.1 the address "boss@other.example" in the From header is not "sales@example.com" (the address you signed in with) nor one of its aliases`),
		},
		{
			name: "a second From field", login: "sales@example.com", sender: "sales@example.com", from: []string{"sales@example.com", "boss@example.com"},
			want: reject(`5.7.1 the address "boss@example.com" in the From header is not "sales@example.com" (the address you signed in with) nor one of its aliases`),
		},
		{
			name: "unreadable From", login: "sales@example.com", sender: "sales@example.com", from: []string{"sales at example dot com"},
			want: reject("5.7.1 the From header cannot be read as email addresses"),
		},
		{
			name: "a redirect cannot send", login: "fwd@example.com", sender: "fwd@example.com", from: []string{"fwd@example.com"},
			want: reject(`5.7.1 the address "fwd@example.com" you signed in with cannot send mail`),
		},
		{
			name: "a domain not verified sends nothing", login: "sales@pending.example", sender: "sales@pending.example", from: []string{"sales@pending.example"},
			want: reject(`5.7.1 the address "sales@pending.example" you signed in with cannot send mail`),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := milterMessage(t, milterSession(t, addr), tt.login, tt.sender, tt.from...)
			if *got != tt.want {
				t.Errorf("verdict = %+v, want %+v", *got, tt.want)
			}
		})
	}

	t.Run("several messages on one connection", func(t *testing.T) {
		s := milterSession(t, addr)
		steps := []struct {
			login, from string
			want        milter.ActionCode
		}{
			{"sales@example.com", "boss@example.com", milter.ActReplyCode},
			{"sales@example.com", "sales@example.com", milter.ActAccept},
			{"", "boss@example.com", milter.ActAccept},
			{"anna.smith@example.com", "sales@example.com", milter.ActReplyCode},
			{"anna.smith@example.com", "anna.smith@example.com", milter.ActAccept},
		}
		for i, st := range steps {
			if got := milterMessage(t, s, st.login, st.from, st.from); got.Code != st.want {
				t.Errorf("message %d: verdict %+v, want code %c", i, *got, st.want)
			}
		}
	})
}

func TestMilterDatabaseDown(t *testing.T) {
	addr := serveForTest(t, NewMilterServer(closedLookups(t), slog.New(slog.DiscardHandler)).Serve)
	got := milterMessage(t, milterSession(t, addr), "sales@example.com", "sales@example.com", "sales@example.com")
	want := milter.Action{Code: milter.ActReplyCode, SMTPCode: 451, SMTPText: "4.3.0 temporary failure, try again later"}
	if *got != want {
		t.Errorf("verdict = %+v, want %+v", *got, want)
	}
}
