package mailboxes

import (
	"context"
	"log/slog"
	"net"
	"net/mail"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-milter"
)

// MilterServer is a milter that applies the sender-identity rule to the From
// header: a person signed in (SMTP AUTH, the {auth_authen} macro) as an
// address may only put that address or one of its aliases there. Mail
// without authentication passes untouched.
type MilterServer struct {
	lookups *Lookups
	log     *slog.Logger
	// Limits bound its connections; zero: the defaults.
	Limits ConnLimits
}

// NewMilterServer returns a milter deciding from lookups.
func NewMilterServer(lookups *Lookups, log *slog.Logger) *MilterServer {
	return &MilterServer{lookups: lookups, log: log}
}

// Serve answers connections on ln until ctx is done, then closes ln and
// every connection and returns nil once they are over.
func (s *MilterServer) Serve(ctx context.Context, ln net.Listener) error {
	limits := s.Limits.or(DefaultSessionIdle)
	tl := &trackedListener{Listener: ln, conns: map[*trackedConn]struct{}{}, counter: newConnCounter("milter", limits, s.log), idle: limits.Idle}
	srv := &milter.Server{
		NewMilter: func() milter.Milter { return &senderMilter{ctx: ctx, s: s} },
		// Only MAIL FROM (for its macros), the headers and their end.
		Protocol: milter.OptNoConnect | milter.OptNoHelo | milter.OptNoRcptTo | milter.OptNoBody,
	}
	stop := context.AfterFunc(ctx, tl.closeAll)
	defer stop()
	// Closing tl (not srv.Close, whose flag is not safe to set from another
	// goroutine) ends Serve.
	err := srv.Serve(tl)
	tl.wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// senderMilter handles one message at a time on one connection; go-milter
// makes a new one after each verdict.
type senderMilter struct {
	milter.NoOpMilter
	ctx   context.Context
	s     *MilterServer
	login string
	from  []string
}

// MailFrom takes the login from the MAIL stage's macros (go-milter keeps
// only the latest stage's).
func (m *senderMilter) MailFrom(from string, mod *milter.Modifier) (milter.Response, error) {
	m.login, m.from = "", nil
	for _, name := range []string{"{auth_authen}", "auth_authen"} {
		if v := mod.Macros[name]; v != "" {
			m.login = v
		}
	}
	if m.login == "" {
		return milter.RespAccept, nil
	}
	return milter.RespContinue, nil
}

// Header collects the From fields.
func (m *senderMilter) Header(name, value string, _ *milter.Modifier) (milter.Response, error) {
	if strings.EqualFold(name, "From") {
		m.from = append(m.from, value)
	}
	return milter.RespContinue, nil
}

// Headers decides once the headers are in.
func (m *senderMilter) Headers(textproto.MIMEHeader, *milter.Modifier) (milter.Response, error) {
	if m.login == "" {
		return milter.RespAccept, nil
	}
	ctx, cancel := context.WithTimeout(m.ctx, lookupTimeout)
	defer cancel()
	for _, field := range m.from {
		list, err := mail.ParseAddressList(unfold.Replace(field))
		if err != nil || len(list) == 0 {
			return milterReply("550 5.7.1 the From header cannot be read as email addresses"), nil
		}
		for _, a := range list {
			allowed, reason, err := m.s.lookups.CheckSender(ctx, m.login, "", a.Address)
			if err != nil {
				m.s.log.Error("milter: check sender", "login", m.login, "from", a.Address, "error", err)
				return milterReply("451 4.3.0 temporary failure, try again later"), nil
			}
			if !allowed {
				return milterReply("550 5.7.1 " + reason), nil
			}
		}
	}
	return milter.RespAccept, nil
}

// unfold undoes header folding: a line break is always followed by white
// space, which stays.
var unfold = strings.NewReplacer("\r\n", "", "\n", "")

// Abort forgets the message.
func (m *senderMilter) Abort(*milter.Modifier) error {
	m.login, m.from = "", nil
	return nil
}

// milterReply is a verdict with its SMTP reply. libmilter's rule, which
// Postfix follows: a "%" in the text is written "%%".
func milterReply(text string) milter.Response {
	text = strings.ReplaceAll(replyText(text), "%", "%%")
	return milter.NewResponseStr(byte(milter.ActReplyCode), text)
}

// trackedListener remembers the connections it accepted, so that they can
// be closed when the server stops: go-milter's Server only closes its
// listeners. It closes at once those over counter's caps, and gives each
// read idle to come (go-milter sets no deadline while it waits for the
// next command).
type trackedListener struct {
	net.Listener
	counter *connCounter
	idle    time.Duration
	mu      sync.Mutex
	conns   map[*trackedConn]struct{}
	closed  bool
	wg      sync.WaitGroup
}

func (l *trackedListener) Accept() (net.Conn, error) {
	var c net.Conn
	var host string
	for {
		var err error
		if c, err = l.Listener.Accept(); err != nil {
			return nil, err
		}
		var ok bool
		if host, ok = l.counter.acquire(c); ok {
			break
		}
		c.Close()
	}
	tc := &trackedConn{Conn: c, l: l, host: host}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		l.counter.release(host)
		return nil, net.ErrClosed
	}
	l.conns[tc] = struct{}{}
	l.wg.Add(1)
	return tc, nil
}

// closeAll closes the listener and every open connection.
func (l *trackedListener) closeAll() {
	l.Listener.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for c := range l.conns {
		c.Conn.Close()
	}
}

type trackedConn struct {
	net.Conn
	l    *trackedListener
	host string
	once sync.Once
}

func (c *trackedConn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.l.idle))
	return c.Conn.Read(p)
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		c.l.counter.release(c.host)
		c.l.wg.Done()
	})
	return err
}
