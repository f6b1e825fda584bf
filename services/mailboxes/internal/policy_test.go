package mailboxes

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// policyClient speaks the policy delegation protocol as Postfix's smtpd
// does, over one reused connection.
type policyClient struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialPolicy(t *testing.T, addr string) *policyClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &policyClient{t: t, c: c, r: bufio.NewReader(c)}
}

// ask sends a request of attrs ("name=value" each) and returns the action.
func (p *policyClient) ask(attrs ...string) string {
	p.t.Helper()
	req := strings.Join(attrs, "\n") + "\n\n"
	if _, err := io.WriteString(p.c, req); err != nil {
		p.t.Fatalf("send request: %v", err)
	}
	line, err := p.r.ReadString('\n')
	if err != nil {
		p.t.Fatalf("read reply: %v", err)
	}
	if end, err := p.r.ReadString('\n'); err != nil || end != "\n" {
		p.t.Fatalf("reply not ended by an empty line: %q, %v", end, err)
	}
	action, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "action=")
	if !ok {
		p.t.Fatalf("reply %q is not action=...", line)
	}
	return action
}

// smtpdRequest is the request smtpd sends at RCPT TO, as Postfix 3.7 sends
// it, with the given sender, recipient and SASL login.
func smtpdRequest(login, sender, recipient string) []string {
	return []string{
		"request=smtpd_access_policy",
		"protocol_state=RCPT",
		"protocol_name=ESMTP",
		"client_address=192.0.2.10",
		"client_name=client.example.net",
		"helo_name=client.example.net",
		"queue_id=",
		"sender=" + sender,
		"recipient=" + recipient,
		"recipient_count=0",
		"size=0",
		"sasl_method=" + map[bool]string{true: "PLAIN"}[login != ""],
		"sasl_username=" + login,
		"sasl_sender=",
		"instance=1a2b.64b0c0f1.3c4d5.0",
		"policy_context=",
		"server_address=192.0.2.1",
		"server_port=587",
	}
}

func TestPolicyServer(t *testing.T) {
	addr := serveForTest(t, NewPolicyServer(NewLookups(newLookupPool(t)), slog.New(slog.DiscardHandler)).Serve)
	p := dialPolicy(t, addr) // one connection for every request, as Postfix reuses it
	tests := []struct {
		name                     string
		login, sender, recipient string
		want                     string
	}{
		{name: "own address", login: "sales@example.com", sender: "sales@example.com", recipient: "someone@gmail.com", want: "DUNNO"},
		{name: "an alias", login: "sales@example.com", sender: "contact@example.com", recipient: "someone@gmail.com", want: "DUNNO"},
		{name: "null sender", login: "sales@example.com", sender: "", recipient: "someone@gmail.com", want: "DUNNO"},
		{
			name: "someone else's address", login: "sales@example.com", sender: "boss@example.com", recipient: "someone@gmail.com",
			want: `REJECT 5.7.1 the address "boss@example.com" used as sender is not "sales@example.com" (the address you signed in with) nor one of its aliases`,
		},
		{
			name: "case of the login", login: "Anna.Smith@EXAMPLE.com", sender: "sales@example.com", recipient: "someone@gmail.com",
			want: `REJECT 5.7.1 the address "sales@example.com" used as sender is not "anna.smith@example.com" (the address you signed in with) nor one of its aliases`,
		},
		{
			name: "to a no-reply address", login: "", sender: "someone@gmail.com", recipient: "noreply@example.com",
			want: "REJECT 5.1.1 noreply@example.com is a no-reply address; mail to it is not delivered",
		},
		{
			name: "to an alias of a no-reply address, signed in", login: "sales@example.com", sender: "sales@example.com", recipient: "DoNotReply@example.com",
			want: "REJECT 5.1.1 DoNotReply@example.com is a no-reply address; mail to it is not delivered",
		},
		{name: "to a mailbox", sender: "someone@gmail.com", recipient: "sales@example.com", want: "DUNNO"},
		{
			name: "a domain not verified sends nothing", login: "sales@pending.example", sender: "sales@pending.example", recipient: "someone@gmail.com",
			want: `REJECT 5.7.1 the address "sales@pending.example" you signed in with cannot send mail`,
		},
		{name: "to the catch-all", sender: "someone@gmail.com", recipient: "nobody@example.com", want: "DUNNO"},
		{name: "unauthenticated with our address", sender: "sales@example.com", recipient: "sales@example.com", want: "DUNNO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.ask(smtpdRequest(tt.login, tt.sender, tt.recipient)...); got != tt.want {
				t.Errorf("action = %q, want %q", got, tt.want)
			}
		})
	}

	t.Run("another request type", func(t *testing.T) {
		if got := p.ask("request=something_else", "sasl_username=sales@example.com", "sender=boss@example.com"); got != "DUNNO" {
			t.Errorf("action = %q, want DUNNO", got)
		}
	})
	t.Run("CRLF line ends", func(t *testing.T) {
		io.WriteString(p.c, "request=smtpd_access_policy\r\nrecipient=noreply@example.com\r\n\r\n")
		line, err := p.r.ReadString('\n')
		p.r.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "action=REJECT 5.1.1 ") {
			t.Errorf("reply %q, %v", line, err)
		}
	})
	for _, garbage := range []string{"no equals sign\n\n", "\n", "=value\n\n", strings.Repeat("x", 2*maxPolicyLine) + "=1\n\n"} {
		t.Run("garbage closes the connection", func(t *testing.T) {
			g := dialPolicy(t, addr)
			io.WriteString(g.c, garbage)
			if b, err := g.r.ReadByte(); err == nil {
				t.Errorf("server answered %.20q with %q, want the connection closed", garbage, b)
			}
		})
	}
	// Still serving, on the first connection too.
	if got := p.ask(smtpdRequest("", "someone@gmail.com", "noreply@example.com")...); !strings.HasPrefix(got, "REJECT 5.1.1") {
		t.Errorf("after garbage: action = %q", got)
	}
}

func TestPolicyServerDatabaseDown(t *testing.T) {
	addr := serveForTest(t, NewPolicyServer(closedLookups(t), slog.New(slog.DiscardHandler)).Serve)
	p := dialPolicy(t, addr)
	const want = "DEFER_IF_PERMIT 4.3.0 temporary failure, try again later"
	if got := p.ask(smtpdRequest("sales@example.com", "sales@example.com", "someone@gmail.com")...); got != want {
		t.Errorf("sender check: action = %q, want %q", got, want)
	}
	if got := p.ask(smtpdRequest("", "someone@gmail.com", "sales@example.com")...); got != want {
		t.Errorf("recipient check: action = %q, want %q", got, want)
	}
}
