package lists

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mailplane/mailplane/services/lists/internal/commands"
	"github.com/mailplane/mailplane/services/lists/internal/post"
	"golang.org/x/net/netutil"
)

// LMTP limits. A transaction carries at most maxLMTPRecipients list
// addresses (Postfix's lmtp_destination_recipient_limit defaults to 50);
// a message is at most maxMessageSize, the largest a list may allow, and
// each list's own max_message_bytes is checked per recipient.
const (
	maxLMTPRecipients = 50
	lmtpTimeout       = 5 * time.Minute
	// maxLMTPConns caps the connections served at once; more wait to be
	// accepted. Postfix runs at most default_process_limit (100) lmtp
	// clients per host.
	maxLMTPConns = 256
)

// The LMTP replies (RFC 3463 enhanced codes).
var (
	errNoSuchList = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such list address"}
	errBadAddress = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "malformed recipient address"}
	// errNotYet answers a robot address this version does not know (one
	// a newer replica may): the MTA keeps the mail and retries.
	errNotYet    = &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "this list robot does not take mail yet; try again later"}
	errTemporary = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "temporary failure; try again later"}
)

// ServeLMTP serves LMTP (RFC 2033) on ln until ctx is done: the MTA
// delivers list addresses' mail here. A post is checked (size,
// structure, loops), then queued for distribution or held by the posting
// policy; mail to a robot (-request, -join, -leave, -confirm+TOKEN,
// -owner: robots.go; -bounces: bounce_mail.go) is done by it.
func (s *Server) ServeLMTP(ctx context.Context, ln net.Listener) error {
	srv := smtp.NewServer(lmtpBackend{s})
	srv.LMTP = true
	srv.Domain = "lists"
	srv.MaxRecipients = maxLMTPRecipients
	srv.MaxMessageBytes = maxMessageSize
	srv.ReadTimeout, srv.WriteTimeout = lmtpTimeout, lmtpTimeout
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	err := srv.Serve(netutil.LimitListener(ln, maxLMTPConns))
	if ctx.Err() != nil || errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

type lmtpBackend struct{ s *Server }

func (b lmtpBackend) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &lmtpSession{s: b.s}, nil
}

// lmtpSession is one LMTP connection's current transaction.
type lmtpSession struct {
	s     *Server
	from  string
	rcpts []lmtpRcpt
}

type lmtpRcpt struct {
	addr  string
	l     *list
	robot commands.Robot
}

func (ss *lmtpSession) Reset()        { ss.from, ss.rcpts = "", nil }
func (ss *lmtpSession) Logout() error { return nil }

func (ss *lmtpSession) Mail(from string, _ *smtp.MailOptions) error {
	ss.from = from
	return nil
}

func (ss *lmtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	at := strings.LastIndexByte(to, '@')
	if at <= 0 || at == len(to)-1 {
		return errBadAddress
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, robot, err := findListByAddress(ctx, ss.s.pool, to[:at], to[at+1:])
	switch {
	case err != nil:
		ss.s.log.Error("lmtp: find list", "rcpt", to, "error", err)
		return errTemporary
	case l == nil:
		return errNoSuchList
	}
	switch robot.Kind {
	case commands.KindPost, commands.KindRequest, commands.KindJoin, commands.KindLeave, commands.KindConfirm, commands.KindOwner:
	case commands.KindBounces:
		// bounce_mail.go
	default:
		return errNotYet
	}
	ss.rcpts = append(ss.rcpts, lmtpRcpt{addr: to, l: l, robot: robot})
	return nil
}

// findListByAddress returns the list whose address or robot address
// local@domain is, and which robot; nil when none is. Lists are tried
// longest local part first, so that "team-request" names team's robot
// only when no list is called team-request (reservations keep both from
// existing at once, but the lookup should not depend on it).
func findListByAddress(ctx context.Context, q *pgxpool.Pool, local, domain string) (*list, commands.Robot, error) {
	rows, err := q.Query(ctx, listColumns+` WHERE lower(domain) = lower($1) AND starts_with(lower($2), local_key)
ORDER BY length(local_key) DESC`, domain, local)
	if err != nil {
		return nil, commands.Robot{}, fmt.Errorf("find list %s@%s: %w", local, domain, err)
	}
	ls, err := pgx.CollectRows(rows, scanList)
	if err != nil {
		return nil, commands.Robot{}, fmt.Errorf("find list %s@%s: %w", local, domain, err)
	}
	for _, l := range ls {
		if r, ok := commands.ParseAddress(local, l.localPart); ok {
			return l, r, nil
		}
	}
	return nil, commands.Robot{}, nil
}

func (ss *lmtpSession) Data(r io.Reader) error {
	return ss.LMTPData(r, nil)
}

// LMTPData answers for each recipient (RFC 2033 §4.2): one list may take
// a post another refuses as too large.
func (ss *lmtpSession) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err // too large for any list: go-smtp's 552
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// One verdict per recipient; without a collector (Data), the first
	// refusal answers for all.
	var first error
	for _, rc := range ss.rcpts {
		var err error
		switch rc.robot.Kind {
		case commands.KindPost:
			err = ss.s.receive(ctx, rc.l, ss.from, raw)
		case commands.KindBounces:
			err = ss.s.receiveBounce(ctx, rc.l, rc.addr, raw)
		default:
			err = ss.s.receiveRobot(ctx, rc.l, rc.robot, ss.from, raw)
		}
		if status != nil {
			status.SetStatus(rc.addr, err)
		} else if first == nil {
			first = err
		}
	}
	return first
}

// receive takes raw, a message from the envelope sender from, as a post
// to l: nil when it was queued, held or dropped as automatic, an
// *smtp.SMTPError otherwise.
func (s *Server) receive(ctx context.Context, l *list, from string, raw []byte) error {
	addr := l.localPart + "@" + l.domain
	log := s.log.With("list", addr, "from", from, "bytes", len(raw))
	if int64(len(raw)) > l.maxBytes {
		log.Info("lmtp: post refused: too large", "max", l.maxBytes)
		return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4},
			Message: fmt.Sprintf("message of %d bytes is larger than the list allows (%d bytes)", len(raw), l.maxBytes)}
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return malformed(log, fmt.Errorf("header: %w", err))
	}
	// Mail from a machine is never distributed: a bounce or an
	// auto-reply sent to the list would reach every member, whose
	// auto-replies would come back to the list. It is accepted (a refusal
	// would be one more bounce) and dropped.
	if commands.RobotSender(from) || commands.Automatic(mailHeader(h)) {
		log.Info("lmtp: automatic mail dropped", "messageId", h.Get("Message-Id"))
		return nil
	}
	p, err := post.Prepare(raw, postList(l))
	if err != nil {
		return malformed(log, err)
	}
	id, held, err := s.storePost(ctx, l, p, raw)
	if errors.Is(err, errHeldFull) {
		log.Warn("lmtp: post refused: moderation queue full", "max", maxHeldPosts)
		return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1},
			Message: fmt.Sprintf("the list's moderation queue is full (%d posts); try again later", maxHeldPosts)}
	}
	if err != nil {
		log.Error("lmtp: store post", "error", err)
		return errTemporary
	}
	log.Info("lmtp: post received", "post", id, "author", p.Author, "messageId", p.MessageID, "held", held)
	return nil
}

func malformed(log interface{ Info(string, ...any) }, err error) error {
	log.Info("lmtp: post refused: malformed", "error", err)
	msg := strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, err.Error())
	if len(msg) > 400 {
		msg = msg[:400]
	}
	return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "malformed message: " + msg}
}
