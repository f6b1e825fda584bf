package mailboxes

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"
)

// Limits on what a policy client may send: Postfix sends a few dozen short
// attributes per request.
const (
	maxPolicyLine       = 8192
	maxPolicyAttributes = 200
)

// The actions the policy server answers (access(5)).
const (
	policyDunno = "DUNNO"
	policyDefer = "DEFER_IF_PERMIT 4.3.0 temporary failure, try again later"
)

// PolicyServer is a Postfix policy delegation server (SMTPD_POLICY_README):
// each request is "name=value" lines ended by an empty line, each reply
// "action=..." and an empty line, on a connection Postfix reuses. It
// refuses mail an authenticated person sends as someone else, and mail to a
// no-reply address, with words they understand.
type PolicyServer struct {
	lookups *Lookups
	log     *slog.Logger
	// Limits bound its connections; zero: the defaults.
	Limits ConnLimits
}

// NewPolicyServer returns a policy server deciding from lookups.
func NewPolicyServer(lookups *Lookups, log *slog.Logger) *PolicyServer {
	return &PolicyServer{lookups: lookups, log: log}
}

// Serve answers connections on ln until ctx is done, then closes ln and
// every connection and returns nil once they are over.
func (s *PolicyServer) Serve(ctx context.Context, ln net.Listener) error {
	limits := s.Limits.or(DefaultSessionIdle)
	return serveConns(ctx, ln, s.log, newConnCounter("policy", limits, s.log), func(ctx context.Context, c net.Conn) {
		s.serveConn(ctx, c, limits.Idle)
	})
}

func (s *PolicyServer) serveConn(ctx context.Context, c net.Conn, idle time.Duration) {
	r := bufio.NewReaderSize(c, maxPolicyLine)
	w := bufio.NewWriter(c)
	for {
		c.SetReadDeadline(time.Now().Add(idle))
		attrs, err := readPolicyRequest(r)
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				s.log.Warn("policy: closing connection", "client", c.RemoteAddr().String(), "error", err)
			}
			return
		}
		action := s.decide(ctx, attrs)
		c.SetWriteDeadline(time.Now().Add(lookupTimeout))
		fmt.Fprintf(w, "action=%s\n\n", action)
		if err := w.Flush(); err != nil {
			return
		}
	}
}

// decide returns the action for one request. The policy_context attribute
// (set per check_policy_service in main.cf) says which check to make:
// "sender" (in smtpd_sender_restrictions, so that Postfix labels the refusal
// "Sender address rejected"), "recipient", or, when unset, both.
func (s *PolicyServer) decide(ctx context.Context, attrs map[string]string) string {
	if attrs["request"] != "smtpd_access_policy" {
		return policyDunno
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	pc := attrs["policy_context"]
	if login := attrs["sasl_username"]; login != "" && pc != "recipient" {
		allowed, reason, err := s.lookups.CheckSender(ctx, login, attrs["sender"], "")
		if err != nil {
			s.log.Error("policy: check sender", "login", login, "sender", attrs["sender"], "error", err)
			return policyDefer
		}
		if !allowed {
			return "REJECT 5.7.1 " + replyText(reason)
		}
	}
	if rcpt := attrs["recipient"]; rcpt != "" && pc != "sender" {
		noReply, err := s.lookups.NoReply(ctx, rcpt)
		if err != nil {
			s.log.Error("policy: check recipient", "recipient", rcpt, "error", err)
			return policyDefer
		}
		if noReply {
			return "REJECT 5.1.1 " + replyText(rcpt) + " is a no-reply address; mail to it is not delivered"
		}
	}
	return policyDunno
}

// readPolicyRequest reads "name=value" lines up to an empty line.
func readPolicyRequest(r *bufio.Reader) (map[string]string, error) {
	attrs := map[string]string{}
	for n := 0; ; n++ {
		line, err := r.ReadSlice('\n')
		switch {
		case errors.Is(err, io.EOF) && n == 0 && len(line) == 0:
			return nil, io.EOF
		case errors.Is(err, bufio.ErrBufferFull):
			return nil, fmt.Errorf("line longer than %d bytes", maxPolicyLine)
		case errors.Is(err, io.EOF):
			return nil, io.ErrUnexpectedEOF
		case err != nil:
			return nil, err
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if len(line) == 0 {
			if n == 0 {
				return nil, errors.New("empty request")
			}
			return attrs, nil
		}
		if n >= maxPolicyAttributes {
			return nil, fmt.Errorf("more than %d attributes", maxPolicyAttributes)
		}
		name, value, ok := bytes.Cut(line, []byte("="))
		if !ok || len(name) == 0 {
			return nil, fmt.Errorf("line %q is not name=value", line)
		}
		attrs[string(name)] = string(value)
	}
}

// replyText makes s safe inside one line of an SMTP reply: printable ASCII
// only.
func replyText(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r >= 0x7f {
			return '?'
		}
		return r
	}, s)
}
