// Package smtptest runs a real SMTP submission server on loopback for tests:
// STARTTLS with a throwaway certificate, AUTH PLAIN, and every message it
// accepts kept for the test to read.
package smtptest

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/mail"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/mailplane/mailplane/services/platform/tlstest"
)

// Message is a message the server accepted.
type Message struct {
	From string
	To   []string
	Data []byte
}

// Parsed returns the message parsed.
func (m Message) Parsed(t testing.TB) *mail.Message {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatalf("received message does not parse: %v", err)
	}
	return msg
}

// Server is a running test server.
type Server struct {
	Addr     string
	Username string
	Password string
	// ClientTLS trusts the server's certificate; CAPEM is that certificate
	// in PEM, for clients configured with a CA file.
	ClientTLS *tls.Config
	CAPEM     []byte

	mu       sync.Mutex
	messages []Message
	// failures is how many deliveries to refuse (temporarily) first.
	failures int
	// open takes mail without AUTH (StartRelay).
	open bool
}

// Start runs a server until t ends. It requires STARTTLS before AUTH and
// AUTH before MAIL.
func Start(t testing.TB) *Server {
	t.Helper()
	ca := tlstest.NewCA(t)
	cert, pool, caPEM := ca.Issue("127.0.0.1"), ca.Pool(), ca.PEM()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: lis.Addr().String(), Username: "mailer", Password: "relay-password",
		ClientTLS: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}, CAPEM: caPEM}
	srv := smtp.NewServer(backend{s})
	srv.Domain = "localhost"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	go srv.Serve(lis)
	t.Cleanup(func() { srv.Close() })
	return s
}

// StartRelay runs a server, until t ends, that takes mail without AUTH, as
// the loopback relay next to a mail server does (Postfix's mynetworks), for
// clients that cannot authenticate, such as Dovecot's submission_host.
func StartRelay(t testing.TB) *Server {
	t.Helper()
	s := Start(t)
	s.mu.Lock()
	s.open = true
	s.mu.Unlock()
	return s
}

// Messages returns what the server accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// FailNext makes the next n deliveries fail with a temporary error.
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = n
}

type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: b.s, conn: c}, nil
}

type session struct {
	s      *Server
	conn   *smtp.Conn
	authed bool
	from   string
	to     []string
}

func (ss *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if _, isTLS := ss.conn.TLSConnectionState(); !isTLS {
		return nil, &smtp.SMTPError{Code: 538, EnhancedCode: smtp.EnhancedCode{5, 7, 11}, Message: "encryption required"}
	}
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != ss.s.Username || pass != ss.s.Password {
			return errors.New("invalid credentials")
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	ss.s.mu.Lock()
	open := ss.s.open
	ss.s.mu.Unlock()
	if !ss.authed && !open {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	if ss.s.failures > 0 {
		ss.s.failures--
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	ss.s.messages = append(ss.s.messages, Message{From: ss.from, To: ss.to, Data: data})
	return nil
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }
