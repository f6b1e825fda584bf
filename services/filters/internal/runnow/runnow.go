// Package runnow applies an address's rules to mail already stored ("run
// now"): it walks a folder (and its subfolders on request) over IMAP in
// batches of UIDs, evaluates each message with the rule model
// (rules.Prepare(...).Evaluate, the same model the Sieve compiler writes),
// and applies the outcome with UID MOVE, UID COPY, UID STORE and UID
// EXPUNGE, or in a dry run only lists it. docs/filters.md, "Run now", says
// what each action means on stored mail.
package runnow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap"
	"github.com/emersion/go-imap/client"
	"github.com/emersion/go-sasl"
	"github.com/mailplane/mailplane/services/filters/internal/rules"
)

// Login is a Dovecot master user (passdb master = yes).
type Login struct {
	User, Password string
}

// Dial connects to Dovecot's IMAP port at addr and logs in as address
// through master (SASL PLAIN, authorization id = the address,
// authentication id = the master user, as the installer does over
// ManageSieve). timeout bounds each command.
func Dial(ctx context.Context, addr, address string, master Login, timeout time.Duration) (*client.Client, error) {
	if address == "" || strings.ContainsAny(address, "\x00\r\n") {
		return nil, fmt.Errorf("imap login: invalid address %q", address)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect to imap: %w", err)
	}
	nc.SetDeadline(time.Now().Add(timeout))
	c, err := client.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("imap greeting: %w", err)
	}
	c.Timeout = timeout
	// Its reader's errors reach the caller as the command's error; its
	// own log would write plain text into the service's JSON logs.
	c.ErrorLog = log.New(io.Discard, "", 0)
	if err := c.Authenticate(sasl.NewPlainClient(address, master.User, master.Password)); err != nil {
		c.Logout()
		return nil, fmt.Errorf("imap login as %s through %s: %w", address, master.User, err)
	}
	return c, nil
}

// Limits on a run.
const (
	// DefaultBatch is how many messages one FETCH asks for. Large: in a
	// Maildir folder every command that changes it costs Dovecot time in
	// proportion to the folder's size (it syncs the directory and
	// rewrites dovecot-uidlist), so fewer, larger UID sets are what makes
	// a big folder fast (docs/benchmarks.md); memory holds only the
	// batch's UIDs and changes, never its messages.
	DefaultBatch = 2000
	// MaxBatch caps Job.Batch.
	MaxBatch = 10000
	// MaxFolders caps the folders one run walks (the folder and its
	// subfolders).
	MaxFolders = 1000
	// MaxMessage is the largest message evaluated; a larger one is
	// counted failed and left alone (rules.Message holds it whole).
	MaxMessage = 64 << 20
)

// Job is what to run.
type Job struct {
	// Rules are validated rules, run in order (disabled ones are skipped,
	// as on delivery).
	Rules []rules.Rule
	// Folder is where to start ("INBOX", or a name with "/" between
	// levels), Subfolders whether to walk the folders under it too.
	Folder     string
	Subfolders bool
	// DryRun opens folders read-only (EXAMINE) and changes nothing: the
	// report's entries say what would happen.
	DryRun bool
	// Batch is how many messages are fetched and acted on at a time; 0:
	// DefaultBatch.
	Batch int
}

// Folder is a folder of a run as it was when the run started: messages
// with a UID from UIDNext on came later (among them those this run moved
// there) and are not walked.
type Folder struct {
	Name        string `json:"name"`
	UIDValidity uint32 `json:"uidValidity"`
	UIDNext     uint32 `json:"uidNext"`
	Messages    uint32 `json:"messages"`
}

// Progress is how far a run got, and the checkpoint it resumes from: every
// message of Folders[:Current] is done, and of Folders[Current] those up
// to LastUID.
type Progress struct {
	Folders []Folder `json:"folders"`
	Current int      `json:"current"`
	LastUID uint32   `json:"lastUid"`

	// Total is the messages of the folders at the start; Done those
	// evaluated, Matched those the rules act on (or would), Changed
	// those changed in the mailbox, Failed those that could not be read
	// or evaluated (left as they are).
	Total   int64 `json:"total"`
	Done    int64 `json:"done"`
	Matched int64 `json:"matched"`
	Changed int64 `json:"changed"`
	Failed  int64 `json:"failed"`
}

// FoldersDone is how many folders are finished.
func (p *Progress) FoldersDone() int { return min(p.Current, len(p.Folders)) }

// Entry is what the rules do (or would do) to one message.
type Entry struct {
	Folder    string
	UID       uint32
	MessageID string
	From      string
	Subject   string
	// Actions, in order, like `move to "Work"`, `add flags \Seen`;
	// forward and reject say they are not applied to stored mail.
	Actions []string
}

// Report is called after each batch, with the progress (the new
// checkpoint) and the batch's matched messages, before the next batch
// starts: a report that stores both in one transaction makes the
// checkpoint and the listing agree. An error from it ends the run.
type Report func(p Progress, entries []Entry) error

// ErrNoFolder is wrapped by Run's error when the folder to start from
// does not exist: trying again does not help.
var ErrNoFolder = errors.New("no such folder")

// ErrCanceled is wrapped by Run's error when ctx ended it.
var ErrCanceled = errors.New("run canceled")

// Run walks the job's folders on c (logged in as the address), from the
// checkpoint in from (nil: from the start), and reports after each batch.
// A run interrupted between batches and started again from its last
// report acts on no message twice; a batch interrupted half way is done
// again, and only its copies can then be made twice (a move, flag or
// delete already done is not repeated: the message is gone or flagged).
func Run(ctx context.Context, c *client.Client, job Job, from *Progress, report Report) (Progress, error) {
	batch := job.Batch
	if batch <= 0 {
		batch = DefaultBatch
	}
	batch = min(batch, MaxBatch)
	var p Progress
	if from != nil {
		p = *from
		p.Folders = slices.Clone(from.Folders)
	} else {
		folders, err := plan(c, job.Folder, job.Subfolders)
		if err != nil {
			return p, err
		}
		p.Folders = folders
		for _, f := range folders {
			p.Total += int64(f.Messages)
		}
		if err := report(p, nil); err != nil {
			return p, err
		}
	}
	r := &runner{c: c, job: job, prog: rules.Prepare(job.Rules), batch: batch, known: map[string]bool{}}
	if !job.DryRun {
		if err := r.listKnown(); err != nil {
			return p, err
		}
	}
	for ; p.Current < len(p.Folders); p.Current, p.LastUID = p.Current+1, 0 {
		if err := r.folder(ctx, &p, report); err != nil {
			return p, err
		}
	}
	// Every folder done: the checkpoint a resume finds nothing left in.
	return p, report(p, nil)
}

type runner struct {
	c     *client.Client
	job   Job
	prog  *rules.Program
	batch int
	// known are the folders that exist (lower-cased INBOX), so a move
	// creates only those missing, as fileinto :create does.
	known map[string]bool
}

// plan lists the folders to walk, the start first, then its subfolders by
// name, with their state now.
func plan(c *client.Client, start string, subfolders bool) ([]Folder, error) {
	names := []string{start}
	if subfolders {
		infos, err := list(c, start+"/*")
		if err != nil {
			return nil, err
		}
		var subs []string
		for _, mb := range infos {
			if !hasAttr(mb.Attributes, imap.NoSelectAttr) && !hasAttr(mb.Attributes, "\\NonExistent") {
				subs = append(subs, mb.Name)
			}
		}
		slices.Sort(subs)
		names = append(names, subs...)
	}
	if len(names) > MaxFolders {
		return nil, fmt.Errorf("%s has %d subfolders, more than %d", start, len(names)-1, MaxFolders-1)
	}
	var out []Folder
	for _, n := range names {
		st, err := c.Status(n, []imap.StatusItem{imap.StatusUidValidity, imap.StatusUidNext, imap.StatusMessages})
		if err != nil && strings.Contains(strings.ToLower(err.Error()), "doesn't exist") {
			return nil, fmt.Errorf("%w: %s", ErrNoFolder, n)
		}
		if err != nil {
			return nil, fmt.Errorf("status of %s: %w", n, err)
		}
		out = append(out, Folder{Name: n, UIDValidity: st.UidValidity, UIDNext: st.UidNext, Messages: st.Messages})
	}
	return out, nil
}

func list(c *client.Client, pattern string) ([]*imap.MailboxInfo, error) {
	ch := make(chan *imap.MailboxInfo, 64)
	done := make(chan error, 1)
	go func() { done <- c.List("", pattern, ch) }()
	var out []*imap.MailboxInfo
	for mb := range ch {
		out = append(out, mb)
	}
	if err := <-done; err != nil {
		return nil, fmt.Errorf("list %s: %w", pattern, err)
	}
	return out, nil
}

func (r *runner) listKnown() error {
	infos, err := list(r.c, "*")
	if err != nil {
		return err
	}
	for _, mb := range infos {
		if !hasAttr(mb.Attributes, "\\NonExistent") {
			r.known[folderKey(mb.Name)] = true
		}
	}
	return nil
}

func hasAttr(attrs []string, a string) bool {
	return slices.ContainsFunc(attrs, func(x string) bool { return strings.EqualFold(x, a) })
}

// folderKey compares folder names as IMAP does: INBOX in any case is the
// INBOX, every other name as written.
func folderKey(name string) string {
	if strings.EqualFold(name, rules.Inbox) {
		return rules.Inbox
	}
	if len(name) > 6 && strings.EqualFold(name[:6], rules.Inbox+"/") {
		return rules.Inbox + name[5:]
	}
	return name
}

// folder walks p.Folders[p.Current] from p.LastUID on.
func (r *runner) folder(ctx context.Context, p *Progress, report Report) error {
	f := &p.Folders[p.Current]
	st, err := r.c.Select(f.Name, r.job.DryRun)
	if err != nil {
		// A folder deleted since the run started has nothing left to do.
		if strings.Contains(strings.ToLower(err.Error()), "doesn't exist") {
			return nil
		}
		return fmt.Errorf("select %s: %w", f.Name, err)
	}
	if st.UidValidity != f.UIDValidity {
		// The folder was recreated: its UIDs name other messages. Walk
		// what it holds now.
		f.UIDValidity, f.UIDNext, p.LastUID = st.UidValidity, st.UidNext, 0
	}
	// width is the UID range searched for the next batch: it doubles over
	// sparse ranges (mail moved away) and shrinks again over dense ones,
	// so a batch stays near r.batch messages and memory stays flat.
	width := uint32(r.batch)
	for p.LastUID+1 < f.UIDNext {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%w: %w", ErrCanceled, err)
		}
		lo := p.LastUID + 1
		hi := min(f.UIDNext-1, lo+width-1)
		if hi < lo { // overflow
			hi = f.UIDNext - 1
		}
		uids, err := r.search(lo, hi)
		if err != nil {
			return fmt.Errorf("search %s: %w", f.Name, err)
		}
		switch {
		case len(uids) > r.batch:
			uids = uids[:r.batch]
			hi = uids[len(uids)-1]
			width = max(uint32(r.batch), width/2)
		case len(uids) < r.batch/2 && width < 1<<30:
			width *= 2
		}
		var entries []Entry
		if len(uids) > 0 {
			entries, err = r.batchOf(p, f.Name, uids)
			if err != nil {
				return err
			}
		}
		p.LastUID = hi
		if len(uids) > 0 || hi == f.UIDNext-1 {
			if err := report(*p, entries); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *runner) search(lo, hi uint32) ([]uint32, error) {
	set := new(imap.SeqSet)
	set.AddRange(lo, hi)
	crit := imap.NewSearchCriteria()
	crit.Uid = set
	uids, err := r.c.UidSearch(crit)
	if err != nil {
		return nil, err
	}
	// A range past the last UID also matches the last message (RFC 3501:
	// n:* and n:m with m beyond): keep only the range asked.
	uids = slices.DeleteFunc(uids, func(u uint32) bool { return u < lo || u > hi })
	slices.Sort(uids)
	return uids, nil
}

// op is one IMAP change to a message, done in order: flags before the
// copy that must carry them.
type op struct {
	kind   opKind
	folder string
	flags  []string
}

type opKind int

const (
	addFlags opKind = iota
	copyTo
	moveTo
	expunge
)

func (o op) key() string {
	return fmt.Sprintf("%d\x00%s\x00%s", o.kind, o.folder, strings.Join(o.flags, " "))
}

func (o op) String() string {
	switch o.kind {
	case addFlags:
		return "add flags " + strings.Join(o.flags, " ")
	case copyTo:
		return fmt.Sprintf("copy to %q", o.folder)
	case moveTo:
		return fmt.Sprintf("move to %q", o.folder)
	default:
		return "delete (expunged, as discard drops it on delivery)"
	}
}

// plan turns an outcome into the IMAP changes to a message in folder.
// Flags only grow along the outcome's stores (imap4flags reach the stores
// after them), so adding each store's new flags to the message before
// copying it gives every copy its flags; the last store of a message
// that does not stay is a move.
func opsFor(out rules.Outcome, folder string) []op {
	if out.Reject != "" {
		return nil // not applied to stored mail
	}
	here := folderKey(folder)
	var ops []op
	var have []string
	stays := false
	var stayFlags []string
	addDelta := func(flags []string) {
		var delta []string
		for _, f := range flags {
			if !slices.Contains(have, f) {
				delta = append(delta, f)
			}
		}
		if len(delta) > 0 {
			ops = append(ops, op{kind: addFlags, flags: delta})
			have = append(have, delta...)
			slices.Sort(have)
		}
	}
	for _, s := range out.Stores {
		k := folderKey(s.Folder)
		if out.Keep && k == rules.Inbox {
			continue // the implicit keep: the message stays where it is
		}
		if k == here {
			stays, stayFlags = true, s.Flags
			continue
		}
		addDelta(s.Flags)
		ops = append(ops, op{kind: copyTo, folder: s.Folder})
	}
	if out.Keep {
		stays, stayFlags = true, out.KeepFlags
	}
	switch {
	case stays:
		addDelta(stayFlags)
	case len(ops) > 0 && ops[len(ops)-1].kind == copyTo:
		ops[len(ops)-1].kind = moveTo
	default:
		ops = append(ops, op{kind: expunge})
	}
	return ops
}

// planned is a message of a batch and its changes.
type planned struct {
	uid uint32
	ops []op
}

// batchOf fetches uids of folder (BODY.PEEK: nothing is marked read),
// evaluates each message as it arrives, then applies the batch's changes
// phase by phase, each phase one command per distinct change.
func (r *runner) batchOf(p *Progress, folder string, uids []uint32) ([]Entry, error) {
	set := new(imap.SeqSet)
	set.AddNum(uids...)
	section := &imap.BodySectionName{Peek: true}
	items := []imap.FetchItem{imap.FetchUid, imap.FetchRFC822Size, section.FetchItem()}
	// One message at a time in memory: the channel holds one more.
	ch := make(chan *imap.Message, 1)
	done := make(chan error, 1)
	go func() { done <- r.c.UidFetch(set, items, ch) }()
	var work []planned
	var entries []Entry
	for m := range ch {
		p.Done++
		body := m.GetBody(section)
		if body == nil || m.Size > MaxMessage {
			p.Failed++
			if body != nil {
				io.Copy(io.Discard, body)
			}
			continue
		}
		raw, err := io.ReadAll(body)
		if err != nil {
			p.Failed++
			continue
		}
		msg, err := rules.ReadMessage(raw)
		if err != nil {
			p.Failed++
			continue
		}
		out := r.prog.Evaluate(msg)
		ops := opsFor(out, folder)
		notes := notApplied(out)
		if len(ops) == 0 && len(notes) == 0 {
			continue
		}
		p.Matched++
		if r.job.DryRun {
			e := Entry{Folder: folder, UID: m.Uid, MessageID: msg.Header.Get("Message-Id"),
				From: msg.Header.Get("From"), Subject: decoded(msg.Header.Get("Subject"))}
			for _, o := range ops {
				e.Actions = append(e.Actions, o.String())
			}
			e.Actions = append(e.Actions, notes...)
			entries = append(entries, e)
			continue
		}
		if len(ops) > 0 {
			work = append(work, planned{m.Uid, ops})
		}
	}
	if err := <-done; err != nil {
		return nil, fmt.Errorf("fetch %s: %w", folder, err)
	}
	if err := r.apply(work); err != nil {
		return nil, fmt.Errorf("apply in %s: %w", folder, err)
	}
	p.Changed += int64(len(work))
	return entries, nil
}

// notApplied says what of an outcome run-now leaves out.
func notApplied(out rules.Outcome) []string {
	var notes []string
	for _, f := range out.Forwards {
		notes = append(notes, fmt.Sprintf("forward to %s: not applied to stored mail", f))
	}
	if out.Reject != "" {
		notes = append(notes, "reject: not applied to stored mail (the message stays)")
	}
	if out.Failed {
		notes = append(notes, "reject after a store or forward: conflicting, the message stays (as on delivery)")
	}
	return notes
}

func decoded(s string) string {
	if d, err := new(mime.WordDecoder).DecodeHeader(s); err == nil {
		return d
	}
	return s
}

// apply runs the batch's changes: phase i is every message's i-th change,
// grouped into one command per distinct change (a UID set each).
func (r *runner) apply(work []planned) error {
	for phase := 0; ; phase++ {
		groups := map[string]*imap.SeqSet{}
		var order []op
		for _, w := range work {
			if phase >= len(w.ops) {
				continue
			}
			o := w.ops[phase]
			k := o.key()
			if groups[k] == nil {
				groups[k] = new(imap.SeqSet)
				order = append(order, o)
			}
			groups[k].AddNum(w.uid)
		}
		if len(order) == 0 {
			return nil
		}
		for _, o := range order {
			if err := r.do(o, groups[o.key()]); err != nil {
				return err
			}
		}
	}
}

func (r *runner) do(o op, set *imap.SeqSet) error {
	switch o.kind {
	case addFlags:
		flags := make([]any, len(o.flags))
		for i, f := range o.flags {
			flags[i] = f
		}
		return r.c.UidStore(set, imap.FormatFlagsOp(imap.AddFlags, true), flags, nil)
	case copyTo, moveTo:
		if err := r.ensure(o.folder); err != nil {
			return err
		}
		if o.kind == copyTo {
			return r.c.UidCopy(set, o.folder)
		}
		return r.c.UidMove(set, o.folder)
	default:
		if err := r.c.UidStore(set, imap.FormatFlagsOp(imap.AddFlags, true), []any{imap.DeletedFlag}, nil); err != nil {
			return err
		}
		_, err := r.c.Execute(&uidExpunge{set}, nil)
		return err
	}
}

// ensure creates folder when missing, as fileinto :create does.
func (r *runner) ensure(folder string) error {
	if r.known[folderKey(folder)] {
		return nil
	}
	if err := r.c.Create(folder); err != nil && !strings.Contains(strings.ToLower(err.Error()), "already exists") {
		return fmt.Errorf("create %s: %w", folder, err)
	}
	r.known[folderKey(folder)] = true
	return nil
}

// uidExpunge is UID EXPUNGE (RFC 4315, UIDPLUS, which Dovecot has):
// only the messages of the set, never others marked \Deleted by a client.
type uidExpunge struct{ set *imap.SeqSet }

func (u *uidExpunge) Command() *imap.Command {
	return &imap.Command{Name: "UID", Arguments: []any{imap.RawString("EXPUNGE"), u.set}}
}
