package lists

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"

	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-smtp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/mailplane/mailplane/services/lists/internal/commands"
	"github.com/mailplane/mailplane/services/lists/internal/letters"
	"github.com/mailplane/mailplane/services/lists/listsevents"
	"github.com/mailplane/mailplane/services/platform/auditlog"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/passwords"
	"github.com/mailplane/mailplane/services/platform/pg"
)

// maxRobotBytes caps a mail to a robot other than -owner: commands fit
// in far less, and what a robot keeps it reads whole. maxOwnerBytes caps
// a mail to -owner, whose forwarding jobs carry it in their args (River
// rewrites those at every retry): room for a screenshot, not an archive.
const (
	maxRobotBytes = 1 << 20
	maxOwnerBytes = 5 << 20
)

// robotMail is a mail to one of a list's robots, read.
type robotMail struct {
	raw       []byte
	header    gomail.Header
	sender    string // the first From address: whom the answer goes to
	name      string
	messageID string
}

// receiveRobot takes raw, a mail from the envelope sender from to l's
// robot r: nil when it was done or dropped as automatic, an
// *smtp.SMTPError otherwise.
func (s *Server) receiveRobot(ctx context.Context, l *list, r commands.Robot, from string, raw []byte) error {
	log := s.log.With("list", l.address(), "robot", string(r.Kind), "from", from, "bytes", len(raw))
	limit := int64(maxRobotBytes)
	if r.Kind == commands.KindOwner {
		limit = min(l.maxBytes, maxOwnerBytes)
	}
	if int64(len(raw)) > limit {
		log.Info("lmtp: robot mail refused: too large", "max", limit)
		return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4},
			Message: fmt.Sprintf("message of %d bytes is larger than this address takes (%d bytes)", len(raw), limit)}
	}
	th, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return malformed(log, fmt.Errorf("header: %w", err))
	}
	h := mailHeader(th)
	// Never answer a machine: a bounce, an auto-reply or another list's
	// robot would answer back, and the two would talk for ever.
	if commands.RobotSender(from) || commands.Automatic(h) {
		log.Info("lmtp: automatic mail to a robot dropped", "messageId", h.Get("Message-Id"))
		return nil
	}
	addrs, err := h.AddressList("From")
	if err != nil || len(addrs) == 0 {
		return malformed(log, fmt.Errorf("no From address to answer"))
	}
	// The name is stored with the request: one line of valid UTF-8 (a NUL
	// would fail the insert for good, a 451 the MTA retries for days),
	// at most the display name's length.
	name := []rune(clean(addrs[0].Name, 4*maxDisplayNameRune))
	name = name[:min(len(name), maxDisplayNameRune)]
	m := &robotMail{raw: raw, header: h, sender: addrs[0].Address, name: string(name)}
	m.messageID, _ = h.MessageID()
	switch r.Kind {
	case commands.KindJoin:
		err = s.requestJoin(ctx, l, m.sender, m.name, "mail")
	case commands.KindLeave:
		err = s.requestLeave(ctx, l, m.sender, "mail")
	case commands.KindConfirm:
		err = s.confirmByAddress(ctx, l, r.Detail, m)
	case commands.KindRequest:
		err = s.request(ctx, l, m)
	case commands.KindOwner:
		err = s.forwardToOwners(ctx, l, m)
	default:
		return errNotYet
	}
	return robotAnswer(log, err)
}

// robotAnswer is the LMTP answer to a robot's error.
func robotAnswer(log *slog.Logger, err error) error {
	var se *smtp.SMTPError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return se
	case errs.Is(err, errs.InvalidArgument):
		log.Info("lmtp: robot mail refused", "error", err)
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: "the From address cannot be answered"}
	case errs.Is(err, errs.ResourceExhausted):
		log.Warn("lmtp: robot mail deferred", "error", err)
		return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "too many requests wait on this list; try again later"}
	}
	log.Error("lmtp: robot", "error", err)
	return errTemporary
}

// confirmByAddress confirms with tok, from a mail to -confirm+TOKEN@ (a
// bare -confirm@ reads its commands as -request does). A success says
// nothing more than what it does (a welcome, a goodbye, a word that a
// moderator decides); an unknown or expired token gets a polite answer.
func (s *Server) confirmByAddress(ctx context.Context, l *list, tok string, m *robotMail) error {
	if tok == "" {
		return s.request(ctx, l, m)
	}
	return pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		ok, err := s.confirm(ctx, tx, l, tok)
		if err != nil || ok {
			return err
		}
		return s.answer(ctx, tx, l, m, []string{s.fragment(l, letters.ResBadToken, letters.Data{"Line": "confirm " + tok})})
	})
}

// fragment renders a result line in l's language; a fragment that does
// not render (a bug, caught by the letters tests) gives its name.
func (s *Server) fragment(l *list, k letters.Kind, data letters.Data) string {
	_, body, err := k.Render(l.lang(), data)
	if err != nil {
		s.log.Error("render result", "error", err)
		return k.Name
	}
	return body
}

// answer queues the results mail of m's commands, within m's sender's
// rate of answers, in tx.
func (s *Server) answer(ctx context.Context, tx pgx.Tx, l *list, m *robotMail, results []string) error {
	ok, err := allowReply(ctx, tx, l, m.sender)
	if err != nil || !ok {
		return err
	}
	return s.queueLetter(ctx, tx, l, letter{to: m.sender, from: "-request", inReplyTo: m.messageID, kind: letters.Results,
		data: letters.Data{"List": l.address(), "Results": joinResults(results)}})
}

func joinResults(rs []string) string {
	var b bytes.Buffer
	for i, r := range rs {
		if i > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString(r)
	}
	return b.String()
}

// request carries out the commands of m, a mail to l's -request address,
// and answers them all in one results mail. Each command runs in a
// savepoint of its own: one that cannot be done (a held post the list
// no longer lets through) is reported, the others stand; a failure of
// the database rolls all back and the MTA retries the mail.
func (s *Server) request(ctx context.Context, l *list, m *robotMail) error {
	req, err := commands.Parse(m.raw)
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "malformed message: the commands cannot be read"}
	}
	return pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		moderator, err := s.approved(ctx, tx, l, req.Approved)
		if err != nil {
			return err
		}
		var results []string
		for _, c := range req.Commands {
			sp, err := tx.Begin(ctx)
			if err != nil {
				return fmt.Errorf("savepoint: %w", err)
			}
			res, err := s.command(ctx, sp, l, m, c, moderator)
			if errs.KindOf(err) == errs.Internal && err != nil {
				sp.Rollback(ctx)
				return err
			}
			if err != nil {
				if rerr := sp.Rollback(ctx); rerr != nil {
					return fmt.Errorf("rollback savepoint: %w", rerr)
				}
				res = s.fragment(l, letters.ResFailed, letters.Data{"Line": c.Line, "Why": err.Error()})
			} else if err := sp.Commit(ctx); err != nil {
				return fmt.Errorf("release savepoint: %w", err)
			}
			results = append(results, res)
		}
		if len(req.Commands) == 0 {
			results = append(results, s.fragment(l, letters.ResNone, nil))
			results = append(results, s.help(l))
		}
		if req.Truncated {
			results = append(results, s.fragment(l, letters.ResTruncated, letters.Data{"Max": fmt.Sprint(commands.MaxCommands)}))
		}
		return s.answer(ctx, tx, l, m, results)
	})
}

// approved reports whether pw is l's moderator password; a list without
// one takes none.
func (s *Server) approved(ctx context.Context, tx pgx.Tx, l *list, pw string) (bool, error) {
	if pw == "" || !l.hasPassword {
		return false, nil
	}
	var hash string
	if err := tx.QueryRow(ctx, `SELECT moderator_password FROM lists WHERE id = $1`, l.id).Scan(&hash); err != nil {
		return false, fmt.Errorf("read moderator password: %w", err)
	}
	ok, err := passwords.Check(hash, pw)
	if err != nil {
		return false, fmt.Errorf("check moderator password: %w", err)
	}
	return ok, nil
}

func (s *Server) help(l *list) string {
	return s.fragment(l, letters.Help, letters.Data{"List": l.address(), "Request": l.robot("-request"), "Join": l.robot("-join"), "Leave": l.robot("-leave")})
}

// problems are the result lines of commands.Parse's problems.
var problems = map[commands.Problem]letters.Kind{
	commands.UnknownCommand:   letters.ResUnknown,
	commands.MissingArgument:  letters.ResMissing,
	commands.TooManyArguments: letters.ResTooMany,
	commands.BadAddress:       letters.ResBadAddress,
	commands.BadToken:         letters.ResBadToken,
	commands.BadTarget:        letters.ResBadCode,
}

// command carries out c, one command of m, in tx and returns its result
// line. moderator says m carried l's moderator password.
func (s *Server) command(ctx context.Context, tx pgx.Tx, l *list, m *robotMail, c commands.Command, moderator bool) (string, error) {
	res := func(k letters.Kind) string { return s.fragment(l, k, letters.Data{"Line": c.Line}) }
	if c.Problem != "" {
		return res(problems[c.Problem]), nil
	}
	switch c.Verb {
	case commands.Help:
		return s.help(l), nil
	case commands.Join, commands.Leave:
		who := m.sender
		if c.Address != "" {
			who = c.Address
		}
		var err error
		if c.Verb == commands.Join {
			name := ""
			if who == m.sender {
				name = m.name
			}
			err = s.join(ctx, tx, l, who, name, "mail", "")
		} else {
			err = s.leaveRequest(ctx, tx, l, who, "")
		}
		if err != nil {
			return "", err
		}
		// The same words whatever was done: the mail to who says more.
		return s.fragment(l, letters.ResJoin, letters.Data{"Line": c.Line, "Email": who}), nil
	case commands.Confirm:
		ok, err := s.confirm(ctx, tx, l, c.Token)
		if err != nil {
			return "", err
		}
		if !ok {
			return res(letters.ResBadToken), nil
		}
		return res(letters.ResDone), nil
	case commands.Accept, commands.Reject, commands.Discard:
		if c.Token != "" {
			return s.decideByToken(ctx, tx, l, c, m.sender)
		}
		if !moderator {
			return res(letters.ResNotAllowed), nil
		}
		return s.decideByAddress(ctx, tx, l, c, m.sender)
	}
	return res(letters.ResUnknown), nil
}

// decideByToken carries out a moderator's answer to a decision mail: the
// token, mailed to the moderators only, is the authority.
func (s *Server) decideByToken(ctx context.Context, tx pgx.Tx, l *list, c commands.Command, by string) (string, error) {
	res := func(k letters.Kind) string { return s.fragment(l, k, letters.Data{"Line": c.Line}) }
	t, err := useToken(ctx, tx, l, c.Token, tokenModerateJoin, tokenModeratePost)
	if err != nil {
		return "", err
	}
	if t == nil || t.target == nil {
		return res(letters.ResBadToken), nil
	}
	actor := moderatorActor(by)
	found := false
	switch t.action {
	case tokenModerateJoin:
		r, err := s.decideRequest(ctx, tx, l, *t.target, c.Verb, c.Reason, actor)
		found = r != nil
		if err != nil {
			return "", err
		}
	case tokenModeratePost:
		h, err := s.decideHeld(ctx, tx, l, *t.target, c.Verb, c.Reason, actor)
		found = h != nil
		if err != nil {
			return "", err
		}
	}
	if !found {
		return res(letters.ResBadToken), nil
	}
	kind := "subscription_request"
	if t.action == tokenModeratePost {
		kind = "held_post"
	}
	if err := auditByMail(ctx, tx, l, by, kind, c.Verb, *t.target, c.Reason); err != nil {
		return "", err
	}
	return res(letters.ResDone), nil
}

// auditByMail records a moderator's decision by mail in the
// organization's audit log, as the API's are, the actor being the
// address the decision came from: no user of the organization acted.
func auditByMail(ctx context.Context, tx pgx.Tx, l *list, by, kind string, verb commands.Verb, target uuid.UUID, reason string) error {
	name := listName(l.org, l.ms, l.id)
	if kind == "held_post" {
		name = heldPostName(l.org, l.ms, l.id, target)
	} else {
		name += "/subscriptionRequests/" + target.String()
	}
	details := map[string]string{"via": "mail"}
	if reason != "" {
		details["reason"] = reason
	}
	rec := auditlog.Record(ctx, "organizations/"+l.org.String(), moderatorActor(by), "lists."+kind+"."+string(verb), name, details)
	return outbox.Write(ctx, tx, listsevents.AuditRecorded, rec)
}

// decideByAddress carries out a moderator's accept, reject or discard of
// an address, with the moderator password: the subscription waiting for
// it; an accept of an address nothing waits for subscribes it, as a
// moderator adding a member does.
func (s *Server) decideByAddress(ctx context.Context, tx pgx.Tx, l *list, c commands.Command, by string) (string, error) {
	res := func(k letters.Kind) string { return s.fragment(l, k, letters.Data{"Line": c.Line}) }
	var id uuid.UUID
	err := tx.QueryRow(ctx, `SELECT id FROM subscription_requests WHERE list_id = $1 AND email_key = $2 AND state = $3`,
		l.id, emailKey(c.Address), awaitsModerator).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		if c.Verb != commands.Accept {
			return res(letters.ResNotPending), nil
		}
		m, err := s.addMember(ctx, tx, l, c.Address, "", "added by a moderator by mail", moderatorActor(by))
		if errors.Is(err, errMemberExists) {
			return res(letters.ResDone), nil
		}
		if err != nil {
			return "", err
		}
		rec := auditlog.Record(ctx, "organizations/"+l.org.String(), moderatorActor(by), "lists.member.create",
			memberName(l.org, l.ms, l.id, m.id), map[string]string{"email": c.Address, "via": "mail"})
		if err := outbox.Write(ctx, tx, listsevents.AuditRecorded, rec); err != nil {
			return "", err
		}
		return res(letters.ResDone), s.welcome(ctx, tx, l, c.Address, l.welcome)
	}
	if err != nil {
		return "", fmt.Errorf("find request: %w", err)
	}
	if _, err := s.decideRequest(ctx, tx, l, id, c.Verb, c.Reason, moderatorActor(by)); err != nil {
		return "", err
	}
	if err := auditByMail(ctx, tx, l, by, "subscription_request", c.Verb, id, c.Reason); err != nil {
		return "", err
	}
	return res(letters.ResDone), nil
}

// moderatorActor names a moderator deciding by mail in events: no user
// of the organization, the address their mail came from.
func moderatorActor(addr string) string { return "mailto:" + addr }

// errNoOwner answers mail to -owner when no moderator has an address.
var errNoOwner = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "this list's moderators cannot be reached by mail"}

// forwardToOwners forwards m, a mail to l's -owner address, as it came
// (its DKIM signature intact) to each moderator's address
// (moderatorEmails), from the -bounces address. A sender past its rate of answers is
// taken and not forwarded: the robots must not flood the moderators.
func (s *Server) forwardToOwners(ctx context.Context, l *list, m *robotMail) error {
	mods := l.moderatorEmails()
	if len(mods) == 0 {
		return errNoOwner
	}
	return pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		ok, err := allowReply(ctx, tx, l, m.sender)
		if err != nil || !ok {
			return err
		}
		if s.jobs == nil {
			return fmt.Errorf("forward to owners: no jobs client")
		}
		for _, to := range mods {
			if _, err := s.jobs.InsertTx(ctx, tx, letterArgs{List: l.id, To: to, Letter: "owner_forward", Msg: m.raw}, nil); err != nil {
				return fmt.Errorf("forward to owners: %w", err)
			}
		}
		return nil
	})
}
