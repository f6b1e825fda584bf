package imapcopy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap"
	"github.com/emersion/go-imap/client"
	"github.com/emersion/go-imap/utf7"
)

// The limits that bound a job's memory whatever the mailbox: a batch is
// fetched while the one before is appended, so at most two are held.
const (
	// batchBytes and batchMessages bound one FETCH and one MULTIAPPEND.
	batchBytes    = 4 << 20
	batchMessages = 200
	// MaxMessageBytes is the largest message copied; a larger one is a
	// Failure. It is fetched alone, and held twice while it is appended:
	// 64 MiB at most.
	MaxMessageBytes = 32 << 20
	// maxSubject bounds a Failure's Subject.
	maxSubject = 200
)

// Run copies until done or ctx is cancelled (cancel = stop cleanly after
// the current batch; the checkpoint stays).
func Run(ctx context.Context, j Job) (Progress, error) {
	return runWith(ctx, j, limits{batchBytes: batchBytes, batchMessages: batchMessages, maxMessage: MaxMessageBytes})
}

// limits are the batches' bounds; tests make them small.
type limits struct{ batchBytes, batchMessages, maxMessage int }

func runWith(ctx context.Context, j Job, l limits) (Progress, error) {
	if l.maxMessage == 0 {
		l.maxMessage = MaxMessageBytes
	}
	if n := len(j.Sources); n < 1 || n > 2 {
		return Progress{}, fmt.Errorf("imapcopy: %d sources, want 1 or 2", n)
	}
	if j.Checkpoints == nil {
		return Progress{}, errors.New("imapcopy: no checkpoints")
	}
	st, err := j.Checkpoints.Load(ctx)
	if err != nil {
		return Progress{}, fmt.Errorf("load checkpoints: %w", err)
	}
	r := &run{job: j, state: st, p: st.Progress, limits: l}
	// Folders are walked again by every run (a done one costs an EXAMINE):
	// their counts are this run's.
	r.p.FoldersTotal, r.p.FoldersDone = 0, 0

	r.dst, err = login(ctx, j.Destination)
	if err != nil {
		return r.p, fmt.Errorf("destination: %w", err)
	}
	defer r.dst.Logout()
	destFolders, err := list(r.dst)
	if err != nil {
		return r.p, fmt.Errorf("destination: list: %w", err)
	}
	r.mapping = newMapping(destFolders)
	r.multiAppend, _ = r.dst.Support("MULTIAPPEND")
	r.literalPlus, _ = r.dst.Support("LITERAL+")

	var plans []*sourcePlan
	defer func() {
		for _, sp := range plans {
			sp.c.Logout()
		}
	}()
	for i, a := range j.Sources {
		sp, err := r.plan(ctx, i, a)
		if err != nil {
			return r.p, fmt.Errorf("source %d: %w", i, err)
		}
		plans = append(plans, sp)
	}
	r.p.MessagesTotal = r.p.MessagesCopied + r.p.MessagesSkipped + r.p.MessagesFailed
	for _, sp := range plans {
		r.p.FoldersTotal += len(sp.folders)
		for _, f := range sp.folders {
			r.p.MessagesTotal += int64(len(f.todo))
		}
	}
	r.report()
	for _, sp := range plans {
		for _, f := range sp.folders {
			if err := ctx.Err(); err != nil {
				return r.p, err
			}
			if err := r.folder(ctx, sp, f); err != nil {
				return r.p, err
			}
		}
	}
	return r.p, nil
}

// run is one run of a job.
type run struct {
	job         Job
	limits      limits
	state       State
	p           Progress
	dst         *client.Client
	mapping     *mapping
	multiAppend bool
	literalPlus bool
	index       *destIndex // the destination folder being written
}

// sourcePlan is a source's connection and what is left to copy from it.
type sourcePlan struct {
	index   int
	c       *client.Client
	folders []*folderPlan
}

// folderPlan is a source folder to copy: where, and the messages not yet
// done, oldest first.
type folderPlan struct {
	copyFolder
	uidValidity uint32
	// done is the last UID done by earlier runs (0: none).
	done uint32
	todo []message
}

// message is a source message to copy: its UID and size.
type message struct {
	uid  uint32
	size uint32
}

// plan logs in to a source, maps its folders and lists, in each, the
// messages after the checkpoint.
func (r *run) plan(ctx context.Context, i int, a Account) (*sourcePlan, error) {
	c, err := login(ctx, a)
	if err != nil {
		return nil, err
	}
	sp := &sourcePlan{index: i, c: c}
	fs, err := list(c)
	if err != nil {
		c.Logout()
		return nil, fmt.Errorf("list: %w", err)
	}
	for _, cf := range r.mapping.source(fs) {
		st, err := c.Select(cf.source.Name, true)
		if err != nil {
			c.Logout()
			return nil, fmt.Errorf("examine %q: %w", cf.source.Name, err)
		}
		fp := &folderPlan{copyFolder: cf, uidValidity: st.UidValidity}
		from := uint32(1)
		if cp, ok := r.state.Folders[FolderKey{Source: i, Folder: cf.source.Name}]; ok && cp.UIDValidity == st.UidValidity {
			from = cp.LastUID + 1
			fp.done = cp.LastUID
		}
		// UIDVALIDITY changed (or no checkpoint): the whole folder again;
		// the identities keep what is already there from being copied twice.
		if st.Messages > 0 {
			fp.todo, err = sizes(c, from)
			if err != nil {
				c.Logout()
				return nil, fmt.Errorf("sizes in %q: %w", cf.source.Name, err)
			}
		}
		sp.folders = append(sp.folders, fp)
	}
	return sp, nil
}

// sizes lists the selected folder's messages from UID from on with their
// sizes, oldest first.
func sizes(c *client.Client, from uint32) ([]message, error) {
	set := new(imap.SeqSet)
	set.AddRange(from, 0)
	ch := make(chan *imap.Message, 64)
	done := make(chan error, 1)
	go func() { done <- c.UidFetch(set, []imap.FetchItem{imap.FetchUid, imap.FetchRFC822Size}, ch) }()
	var ms []message
	for m := range ch {
		// "from:*" always names the last message, even below from.
		if m.Uid >= from {
			ms = append(ms, message{uid: m.Uid, size: m.Size})
		}
	}
	if err := <-done; err != nil {
		return nil, err
	}
	slices.SortFunc(ms, func(a, b message) int { return int(a.uid) - int(b.uid) })
	return ms, nil
}

// list lists a server's folders.
func list(c *client.Client) ([]listed, error) {
	ch := make(chan *imap.MailboxInfo, 64)
	done := make(chan error, 1)
	go func() { done <- c.List("", "*", ch) }()
	var fs []listed
	for mi := range ch {
		fs = append(fs, listed{Name: mi.Name, Delim: mi.Delimiter, Attrs: mi.Attributes})
	}
	return fs, <-done
}

// report hands the progress to the job's watcher.
func (r *run) report() {
	if r.job.Progress != nil {
		r.job.Progress(r.p)
	}
}

// batch is messages fetched together.
type batch struct {
	msgs    []*fetched
	lastUID uint32
	err     error
}

// fetched is a source message in memory.
type fetched struct {
	uid   uint32
	flags []string
	date  time.Time
	raw   []byte
	// failed is why it is not copied, when it is not.
	failed string
}

// folder copies one source folder.
func (r *run) folder(ctx context.Context, sp *sourcePlan, f *folderPlan) error {
	if !r.mapping.dest[f.dest] {
		if err := r.dst.Create(f.dest); err != nil && !strings.Contains(strings.ToLower(err.Error()), "exists") {
			return fmt.Errorf("destination: create %q: %w", f.dest, err)
		}
		r.mapping.dest[f.dest] = true
		r.dst.Subscribe(f.dest) // a client shows it; a refusal changes nothing copied
	}
	if len(f.todo) == 0 {
		return r.folderDone(ctx, sp, f)
	}
	if r.index == nil || r.index.name != f.dest {
		idx, err := newDestIndex(r.dst, f.dest)
		if err != nil {
			return fmt.Errorf("destination: index %q: %w", f.dest, err)
		}
		r.index = idx
	}
	st, err := sp.c.Select(f.source.Name, true)
	if err != nil {
		return fmt.Errorf("source %d: examine %q: %w", sp.index, f.source.Name, err)
	}
	if st.UidValidity != f.uidValidity {
		return fmt.Errorf("source %d: %q changed UIDVALIDITY during the run; the next run copies it again", sp.index, f.source.Name)
	}

	// The source is read one batch ahead of the destination's appends,
	// except around a large message, which is held alone.
	batches := make(chan batch, 1)
	acks := make(chan struct{}, 4)
	stop := make(chan struct{})
	defer func() {
		close(stop)
		for range batches {
		}
	}()
	go fetchBatches(sp.c, f.todo, r.limits, batches, acks, stop)

	for b := range batches {
		if b.err != nil {
			return fmt.Errorf("source %d: fetch in %q: %w", sp.index, f.source.Name, b.err)
		}
		failures, err := r.appendBatch(b.msgs, f.dest)
		if err != nil {
			return fmt.Errorf("destination: append to %q: %w", f.dest, err)
		}
		var failed []Failure
		for _, m := range failures {
			failed = append(failed, Failure{Source: sp.index, Folder: f.source.Name, UID: m.uid, Subject: subject(m.raw), Reason: m.failed})
		}
		// The batch is done at the destination: its checkpoint is saved
		// even when ctx was cancelled meanwhile.
		if err := r.job.Checkpoints.Save(context.WithoutCancel(ctx), sp.index, f.source.Name, f.uidValidity, b.lastUID, r.p, failed); err != nil {
			return fmt.Errorf("save checkpoint: %w", err)
		}
		r.report()
		size := 0
		for _, m := range b.msgs {
			size += len(m.raw)
		}
		if size > r.limits.batchBytes {
			// A large message's buffer goes back at once: the heap goal
			// set while it lived would let garbage grow to twice its size.
			b.msgs = nil
			runtime.GC()
		}
		acks <- struct{}{}
		f.done = b.lastUID
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return r.folderDone(ctx, sp, f)
}

// folderDone counts a folder done and saves it: the job's stored progress
// then counts it too, and a folder without messages has its checkpoint.
func (r *run) folderDone(ctx context.Context, sp *sourcePlan, f *folderPlan) error {
	r.p.FoldersDone++
	if err := r.job.Checkpoints.Save(context.WithoutCancel(ctx), sp.index, f.source.Name, f.uidValidity, f.done, r.p, nil); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	r.report()
	return nil
}

// fetchBatches fetches todo in batches bounded by bytes and count, and
// sends them on out, which it closes. It stops at the first error or when
// stop is closed.
//
// A batch of one message larger than l.batchBytes is fetched only once
// the batches before it are appended (acked on acks), and the next only
// once it is: memory holds at most two batches or one large message.
func fetchBatches(c *client.Client, todo []message, l limits, out chan<- batch, acks <-chan struct{}, stop <-chan struct{}) {
	defer close(out)
	outstanding, lastLarge := 0, false
	drain := func(block bool) bool {
		for outstanding > 0 {
			if !block {
				select {
				case <-acks:
					outstanding--
					continue
				default:
					return true
				}
			}
			select {
			case <-acks:
				outstanding--
			case <-stop:
				return false
			}
		}
		return true
	}
	section := &imap.BodySectionName{Peek: true}
	items := []imap.FetchItem{imap.FetchUid, imap.FetchFlags, imap.FetchInternalDate, section.FetchItem()}
	for len(todo) > 0 {
		n, size := 0, 0
		var tooLarge []*fetched
		set := new(imap.SeqSet)
		for n < len(todo) && n < l.batchMessages {
			m := todo[n]
			if int(m.size) > l.maxMessage {
				tooLarge = append(tooLarge, &fetched{uid: m.uid, failed: fmt.Sprintf("larger than %d MiB (%d bytes)", l.maxMessage>>20, m.size)})
				n++
				continue
			}
			if n > 0 && size+int(m.size) > l.batchBytes {
				break
			}
			set.AddNum(m.uid)
			size += int(m.size)
			n++
		}
		b := batch{lastUID: todo[n-1].uid, msgs: tooLarge}
		todo = todo[n:]
		large := size > l.batchBytes
		if !drain(large || lastLarge) {
			return
		}
		lastLarge = large
		if !set.Empty() {
			b.err = uidFetch(c, set, items, func(m *imap.Message, flags []string) {
				if !set.Contains(m.Uid) {
					return // another session's flag change
				}
				fm := &fetched{uid: m.Uid, flags: flags, date: m.InternalDate}
				if body := m.GetBody(section); body != nil {
					if buf, ok := body.(*bytes.Buffer); ok {
						fm.raw = buf.Bytes()
					} else {
						fm.raw, _ = io.ReadAll(body)
					}
				}
				b.msgs = append(b.msgs, fm)
			})
		}
		// Messages expunged meanwhile are simply not there.
		slices.SortFunc(b.msgs, func(x, y *fetched) int { return int(x.uid) - int(y.uid) })
		select {
		case out <- b:
			outstanding++
		case <-stop:
			return
		}
		if b.err != nil {
			return
		}
	}
}

// appendBatch appends the batch's messages that are not at the
// destination yet, counts them, and returns those that failed.
func (r *run) appendBatch(msgs []*fetched, dest string) ([]*fetched, error) {
	var todo []*fetched
	var failed []*fetched
	ids := map[*fetched]identity{}
	for _, m := range msgs {
		if m.failed != "" {
			failed = append(failed, m)
			continue
		}
		id := identityOf(m.raw)
		dup, err := r.index.has(id)
		if err != nil {
			return nil, err
		}
		if dup {
			r.p.MessagesSkipped++
			continue
		}
		r.index.add(id) // a second copy in this batch is a duplicate too
		ids[m] = id
		todo = append(todo, m)
	}
	if len(todo) > 0 {
		ok := false
		if r.multiAppend && len(todo) > 1 {
			refusal, err := r.append(dest, todo)
			if err != nil {
				return nil, err
			}
			ok = refusal == ""
		}
		if !ok {
			// One by one: a refused message (too large, a quota) does not
			// keep the others out; MULTIAPPEND is all or nothing.
			for _, m := range todo {
				refusal, err := r.append(dest, []*fetched{m})
				if err != nil {
					return nil, err
				}
				if refusal != "" {
					m.failed = "the destination refused it: " + refusal
					r.index.remove(ids[m])
					failed = append(failed, m)
				}
			}
		}
		for _, m := range todo {
			if m.failed == "" {
				r.p.MessagesCopied++
				r.p.Bytes += int64(len(m.raw))
			}
		}
	}
	r.p.MessagesFailed += int64(len(failed))
	return failed, nil
}

// append appends msgs to dest in one command and returns the
// destination's refusal, if it refused them.
func (r *run) append(dest string, msgs []*fetched) (refusal string, err error) {
	st, err := r.dst.Execute(&appendCmd{mailbox: dest, msgs: msgs, literalPlus: r.literalPlus}, nil)
	switch {
	case err != nil && strings.Contains(err.Error(), "no continuation request received"):
		// The server refused a literal's size before it was sent
		// (Dovecot: "NO [LIMIT] Mail size is too large"); go-imap drops
		// the answer and says only this. The connection is still in step.
		return "too large for it, or over its quota", nil
	case err != nil:
		return "", err
	case st.Type != imap.StatusRespOk:
		return st.Info, nil
	}
	return "", nil
}

// appendCmd is APPEND with one message or more (MULTIAPPEND, RFC 3502),
// each with its flags and internal date.
type appendCmd struct {
	mailbox string
	msgs    []*fetched
	// literalPlus sends every literal without waiting for the server's
	// go-ahead (RFC 7888). go-imap waits for it above 4096 bytes, and when
	// the server refuses a literal's size at once it may miss the refusal
	// and wait forever (client.go: the "no continuation" signal is sent
	// without blocking, before the writer listens).
	literalPlus bool
}

func (cmd *appendCmd) Command() *imap.Command {
	name, _ := utf7.Encoding.NewEncoder().String(cmd.mailbox)
	args := []interface{}{imap.FormatMailboxName(name)}
	for _, m := range cmd.msgs {
		flags := []interface{}{}
		for _, f := range m.flags {
			if f != imap.RecentFlag {
				flags = append(flags, imap.RawString(f))
			}
		}
		args = append(args, flags)
		if !m.date.IsZero() {
			args = append(args, m.date)
		}
		if cmd.literalPlus {
			// One field (go-imap puts a space between two): a copy of the
			// message while the command is written, which MaxMessageBytes
			// bounds.
			args = append(args, imap.RawString(fmt.Sprintf("{%d+}\r\n", len(m.raw))+string(m.raw)))
		} else {
			args = append(args, bytes.NewBuffer(m.raw))
		}
	}
	return &imap.Command{Name: "APPEND", Arguments: args}
}

// subject is a message's Subject as it is written, for a Failure.
func subject(raw []byte) string {
	header, _ := splitMessage(raw)
	for _, f := range splitFields(header) {
		name, value, ok := bytes.Cut(f, []byte(":"))
		if ok && strings.EqualFold(strings.TrimSpace(string(name)), "Subject") {
			s := strings.Join(strings.Fields(string(value)), " ")
			s = strings.ToValidUTF8(s, "?")
			for len(s) > maxSubject {
				_, n := utf8.DecodeLastRuneInString(s)
				s = s[:len(s)-n]
			}
			return s
		}
	}
	return ""
}

// destIndex knows the messages of a destination folder by identity.
type destIndex struct {
	c    *client.Client
	name string
	// headers is the folder's messages by header key, sorted.
	headers []keyUID
	// known holds the identities known to be there: those of messages
	// whose header key matched (bodies hashed once) and those appended.
	known    map[identity]bool
	resolved map[headerKey]bool
}

type keyUID struct {
	key headerKey
	uid uint32
}

// newDestIndex reads the header keys of the folder's messages, leaving it
// selected (read-only) on c.
func newDestIndex(c *client.Client, name string) (*destIndex, error) {
	idx := &destIndex{c: c, name: name, known: map[identity]bool{}, resolved: map[headerKey]bool{}}
	st, err := c.Select(name, true)
	if err != nil {
		return nil, err
	}
	if st.Messages == 0 {
		return idx, nil
	}
	section := &imap.BodySectionName{Peek: true, BodyPartName: imap.BodyPartName{Specifier: imap.HeaderSpecifier, Fields: strings.Fields(identityFetch)}}
	set := new(imap.SeqSet)
	set.AddRange(1, 0)
	ch := make(chan *imap.Message, 64)
	done := make(chan error, 1)
	go func() { done <- c.UidFetch(set, []imap.FetchItem{imap.FetchUid, section.FetchItem()}, ch) }()
	for m := range ch {
		var h []byte
		if body := m.GetBody(section); body != nil {
			h, _ = io.ReadAll(body)
		}
		idx.headers = append(idx.headers, keyUID{keyOfHeader(h), m.Uid})
	}
	if err := <-done; err != nil {
		return nil, err
	}
	sort.Slice(idx.headers, func(i, j int) bool { return bytes.Compare(idx.headers[i].key[:], idx.headers[j].key[:]) < 0 })
	return idx, nil
}

// has reports whether a message of identity id is in the folder.
func (idx *destIndex) has(id identity) (bool, error) {
	if idx.known[id] {
		return true, nil
	}
	if idx.resolved[id.header] {
		return false, nil
	}
	idx.resolved[id.header] = true
	i := sort.Search(len(idx.headers), func(i int) bool { return bytes.Compare(idx.headers[i].key[:], id.header[:]) >= 0 })
	set := new(imap.SeqSet)
	for ; i < len(idx.headers) && idx.headers[i].key == id.header; i++ {
		set.AddNum(idx.headers[i].uid)
	}
	if set.Empty() {
		return false, nil
	}
	// Same header fields: the bodies tell.
	section := &imap.BodySectionName{Peek: true, BodyPartName: imap.BodyPartName{Specifier: imap.TextSpecifier}}
	ch := make(chan *imap.Message, 16)
	done := make(chan error, 1)
	go func() { done <- idx.c.UidFetch(set, []imap.FetchItem{imap.FetchUid, section.FetchItem()}, ch) }()
	for m := range ch {
		h := newBodyHash()
		if body := m.GetBody(section); body != nil {
			io.Copy(h, body)
		}
		idx.known[identity{header: id.header, body: h.sum()}] = true
	}
	if err := <-done; err != nil {
		return false, err
	}
	return idx.known[id], nil
}

func (idx *destIndex) add(id identity)    { idx.known[id] = true }
func (idx *destIndex) remove(id identity) { delete(idx.known, id) }
