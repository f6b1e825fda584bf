package imapcopy

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mailplane/mailplane/services/platform/dovecottest"
)

// memCheckpoints keeps a job's checkpoints in memory, as the imports
// service keeps them in PostgreSQL.
type memCheckpoints struct {
	mu       sync.Mutex
	state    State
	failures []Failure
	saves    int
	// failSave, when set, fails that Save (counted from 1): a crash
	// after the batch was appended, before its checkpoint.
	failSave int
}

func (m *memCheckpoints) Load(context.Context) (State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := State{Folders: map[FolderKey]FolderState{}, Progress: m.state.Progress}
	for k, v := range m.state.Folders {
		st.Folders[k] = v
	}
	return st, nil
}

func (m *memCheckpoints) Save(_ context.Context, source int, folder string, uidValidity, lastUID uint32, p Progress, failed []Failure) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.saves++
	if m.saves == m.failSave {
		return errors.New("the database went away")
	}
	if m.state.Folders == nil {
		m.state.Folders = map[FolderKey]FolderState{}
	}
	m.state.Folders[FolderKey{source, folder}] = FolderState{UIDValidity: uidValidity, LastUID: lastUID}
	m.state.Progress = p
	m.failures = append(m.failures, failed...)
	return nil
}

// world is a source Dovecot (separator ".", two users: two sources) and a
// destination Dovecot (separator "/", reached as a master user), seeded,
// with the destination's expected content.
type world struct {
	src, dst *dovecottest.Dovecot
	job      Job
	// want is the destination's expected messages; wantCopied and
	// wantSkipped the counts of one whole copy.
	want                    []dovecottest.Message
	wantCopied, wantSkipped int64
	// seeded are the source messages.
	seeded int
}

const (
	anna   = "anna@example.test"
	bob    = "bob@example.test"
	dest   = "dest@example.test"
	secret = "a secret"
)

func account(d *dovecottest.Dovecot, login, password string) Account {
	host, p, _ := net.SplitHostPort(d.Addr)
	port, _ := strconv.Atoi(p)
	return Account{Server: Server{Host: host, Port: port, Security: Plain}, Login: login, Password: password}
}

// master is the destination as the service reaches it: the master user
// acting as dest (SASL PLAIN's authorization identity). The test's own
// reads log in as "dest*mailplane-imports", which the test store allows.
func master(d *dovecottest.Dovecot) Account {
	a := account(d, "mailplane-imports", "master secret")
	a.As = dest
	return a
}

// msg makes a message; extra headers go first, as trace fields do.
func msg(id, subject, body string, extra ...string) []byte {
	var b strings.Builder
	for _, e := range extra {
		b.WriteString(e + "\r\n")
	}
	if id != "" {
		b.WriteString("Message-ID: <" + id + ">\r\n")
	}
	b.WriteString("From: Anna <anna@example.net>\r\nTo: dest@example.test\r\nDate: Tue, 3 Dec 2024 10:00:00 +0100\r\nSubject: " + subject + "\r\n\r\n" + body)
	return []byte(b.String())
}

// newWorld starts and seeds the world; dstConf is added to the
// destination's configuration.
func newWorld(t *testing.T, dstConf string) *world {
	t.Helper()
	w := &world{src: dovecottest.New(t), dst: dovecottest.New(t)}
	w.src.Start(t, w.src.StoreConf(t, dovecottest.Store{
		Separator: ".",
		Users:     map[string]string{anna: secret, bob: secret},
		// Not the destination's names: mapped by attribute.
		SpecialUse: map[string]string{"Sent Items": `\Sent`, "Brouillons": `\Drafts`, "Corbeille": `\Trash`, "Spam": `\Junk`, "Archives": `\Archive`},
	}))
	w.dst.Start(t, w.dst.StoreConf(t, dovecottest.Store{
		Separator:      "/",
		Users:          map[string]string{dest: "the customer's, never used"},
		Master:         "mailplane-imports",
		MasterPassword: "master secret",
		SpecialUse:     map[string]string{"Sent": `\Sent`, "Drafts": `\Drafts`, "Trash": `\Trash`, "Junk": `\Junk`, "Archive": `\Archive`},
	})+dstConf)

	date := func(s string) time.Time {
		d, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	d1 := date("2019-05-01T08:30:00+02:00")
	d2 := date("2024-12-03T10:00:00-05:00")
	large := msg("large@x", "a large one", strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxy\r\n", 2<<20/73))
	same := msg("same@x", "in two folders", "the same message in two folders\r\n")
	// seed: source user, message, destination folder, and whether it is
	// a duplicate there.
	type seed struct {
		user string
		m    dovecottest.Message
		to   string
		dup  bool
	}
	seeds := []seed{
		{anna, dovecottest.Message{Folder: "INBOX", Flags: []string{`\Seen`}, Date: d1, Raw: msg("1@x", "hello", "first\r\n")}, "INBOX", false},
		{anna, dovecottest.Message{Folder: "INBOX", Flags: []string{`\Answered`, `\Flagged`, "$Forwarded", "Work"}, Date: d2, Raw: msg("2@x", "flags and keywords", "second\r\n")}, "INBOX", false},
		{anna, dovecottest.Message{Folder: "INBOX", Date: d1, Raw: large}, "INBOX", false},
		{anna, dovecottest.Message{Folder: "INBOX", Date: d1, Raw: msg("empty@x", "no body", "")}, "INBOX", false},
		{anna, dovecottest.Message{Folder: "INBOX", Date: d2, Raw: msg("", "no Message-ID", "anonymous\r\n")}, "INBOX", false},
		{anna, dovecottest.Message{Folder: "INBOX", Date: d2, Raw: msg("", "no Message-ID", "another anonymous\r\n")}, "INBOX", false},
		// The same Message-ID, another content: both kept.
		{anna, dovecottest.Message{Folder: "INBOX", Date: d1, Raw: msg("reused@x", "reused", "one\r\n")}, "INBOX", false},
		{anna, dovecottest.Message{Folder: "INBOX", Date: d1, Raw: msg("reused@x", "reused", "two\r\n")}, "INBOX", false},
		// Twice in one folder: once at the destination.
		{anna, dovecottest.Message{Folder: "INBOX", Date: d1, Raw: msg("twice@x", "twice", "twice\r\n")}, "INBOX", false},
		{anna, dovecottest.Message{Folder: "INBOX", Flags: []string{`\Seen`}, Date: d1, Raw: msg("twice@x", "twice", "twice\r\n")}, "INBOX", true},
		// Already at the destination, delivered there with other trace
		// fields: not copied.
		{anna, dovecottest.Message{Folder: "INBOX", Date: d1, Raw: msg("there@x", "already there", "there\r\n", "Received: from a by b")}, "INBOX", true},
		// In two folders: in each.
		{anna, dovecottest.Message{Folder: "Projets", Date: d1, Raw: same}, "Projets", false},
		{anna, dovecottest.Message{Folder: "Projets.Été 2024", Flags: []string{`\Seen`}, Date: d1, Raw: same}, "Projets/Été 2024", false},
		{anna, dovecottest.Message{Folder: "Projets.Été 2024.Réunions", Date: d2, Raw: msg("3@x", "réunion", "nested\r\n")}, "Projets/Été 2024/Réunions", false},
		{anna, dovecottest.Message{Folder: "Rapports 2024/25", Date: d2, Raw: msg("4@x", "slash", "the other side's separator\r\n")}, "Rapports 2024_25", false},
		{anna, dovecottest.Message{Folder: "日本語", Date: d2, Raw: msg("5@x", "nihongo", "non-ASCII\r\n")}, "日本語", false},
		{anna, dovecottest.Message{Folder: "Sent Items", Flags: []string{`\Seen`}, Date: d2, Raw: msg("6@x", "sent", "sent\r\n")}, "Sent", false},
		{anna, dovecottest.Message{Folder: "Sent Items.2019", Flags: []string{`\Seen`}, Date: d1, Raw: msg("7@x", "sent in 2019", "old\r\n")}, "Sent/2019", false},
		{anna, dovecottest.Message{Folder: "Brouillons", Flags: []string{`\Draft`}, Date: d2, Raw: msg("8@x", "draft", "draft\r\n")}, "Drafts", false},
		{anna, dovecottest.Message{Folder: "Corbeille", Flags: []string{`\Deleted`, `\Seen`}, Date: d2, Raw: msg("9@x", "trash", "trash\r\n")}, "Trash", false},
		{anna, dovecottest.Message{Folder: "Spam", Date: d2, Raw: msg("10@x", "spam", "spam\r\n")}, "Junk", false},
		{anna, dovecottest.Message{Folder: "Archives", Flags: []string{`\Seen`}, Date: d1, Raw: msg("11@x", "archived", "archived\r\n")}, "Archive", false},
		// The second source: a message also in the first, and its own.
		{bob, dovecottest.Message{Folder: "INBOX", Flags: []string{`\Seen`}, Date: d1, Raw: msg("1@x", "hello", "first\r\n")}, "INBOX", true},
		{bob, dovecottest.Message{Folder: "INBOX", Date: d2, Raw: msg("bob@x", "bob's", "bob\r\n")}, "INBOX", false},
		{bob, dovecottest.Message{Folder: "Work", Date: d2, Raw: msg("work@x", "work", "work\r\n")}, "Work", false},
	}
	var annas, bobs []dovecottest.Message
	for _, s := range seeds {
		if s.user == anna {
			annas = append(annas, s.m)
		} else {
			bobs = append(bobs, s.m)
		}
		if s.dup {
			w.wantSkipped++
			continue
		}
		w.wantCopied++
		flags := append([]string(nil), s.m.Flags...)
		sort.Strings(flags)
		w.want = append(w.want, dovecottest.Message{Folder: s.to, Flags: flags, Date: s.m.Date, Raw: s.m.Raw})
	}
	w.seeded = len(seeds)
	w.src.Seed(t, anna, secret, []string{"Empty folder", "Archives"}, annas)
	w.src.Seed(t, bob, secret, nil, bobs)
	// At the destination from elsewhere: kept as it is; and the special
	// folders, empty.
	there := []dovecottest.Message{
		{Folder: "INBOX", Flags: []string{`\Seen`}, Date: d2, Raw: msg("there@x", "already there", "there\r\n", "Received: from c by d", "Delivered-To: dest@example.test")},
		{Folder: "INBOX", Date: d2, Raw: msg("reused@x", "reused but changed", "one\r\n")},
	}
	w.dst.Seed(t, dest+"*mailplane-imports", "master secret", []string{"Sent", "Drafts", "Trash", "Junk", "Archive"}, there)
	for _, m := range there {
		sort.Strings(m.Flags)
		w.want = append(w.want, m)
	}
	w.job = Job{
		Sources:     []Account{account(w.src, anna, secret), account(w.src, bob, secret)},
		Destination: master(w.dst),
	}
	return w
}

// check compares the destination with what it must hold, message by
// message: folder, bytes, flags and internal date.
func (w *world) check(t *testing.T) {
	t.Helper()
	got := w.dst.Messages(t, dest+"*mailplane-imports", "master secret")
	want := append([]dovecottest.Message(nil), w.want...)
	sortMessages(want)
	sortMessages(got)
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }), cmp.Transformer("string", func(b []byte) string { return string(b) })); diff != "" {
		t.Errorf("destination (-want +got):\n%s", diff)
	}
	var folders []string
	for _, f := range w.dst.Folders(t, dest+"*mailplane-imports", "master secret") {
		folders = append(folders, f.Name)
	}
	wantFolders := []string{"Archive", "Drafts", "Empty folder", "INBOX", "Junk", "Projets", "Projets/Été 2024", "Projets/Été 2024/Réunions", "Rapports 2024_25", "Sent", "Sent/2019", "Trash", "Work", "日本語"}
	if diff := cmp.Diff(wantFolders, folders); diff != "" {
		t.Errorf("destination folders (-want +got):\n%s", diff)
	}
}

func sortMessages(ms []dovecottest.Message) {
	sort.SliceStable(ms, func(i, j int) bool {
		if ms[i].Folder != ms[j].Folder {
			return ms[i].Folder < ms[j].Folder
		}
		if a, b := string(ms[i].Raw), string(ms[j].Raw); a != b {
			return a < b
		}
		return strings.Join(ms[i].Flags, " ") < strings.Join(ms[j].Flags, " ")
	})
}

// TestRun copies two sources into a destination, then again: the second
// run copies nothing. The sources are unchanged.
func TestRun(t *testing.T) {
	w := newWorld(t, "")
	before := w.src.Messages(t, anna, secret)
	cp := &memCheckpoints{}
	w.job.Checkpoints = cp
	var reported []Progress
	w.job.Progress = func(p Progress) { reported = append(reported, p) }
	p, err := runWith(context.Background(), w.job, limits{batchBytes: 1 << 20, batchMessages: 4})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	w.check(t)
	want := Progress{FoldersTotal: 15, FoldersDone: 15, MessagesTotal: int64(w.seeded), MessagesCopied: w.wantCopied, MessagesSkipped: w.wantSkipped}
	p.Bytes = 0
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}
	if len(reported) < 5 || reported[len(reported)-1].MessagesCopied != w.wantCopied {
		t.Errorf("progress reported %d times, last %+v", len(reported), reported[len(reported)-1])
	}
	if diff := cmp.Diff(before, w.src.Messages(t, anna, secret), cmp.Transformer("string", func(b []byte) string { return string(b) })); diff != "" {
		t.Errorf("the source changed (-before +after):\n%s", diff)
	}

	// Again, from the checkpoints: nothing to do.
	p2, err := Run(context.Background(), w.job)
	if err != nil {
		t.Fatalf("second Run: %v", err)
	}
	if p2.MessagesCopied != w.wantCopied || p2.MessagesSkipped != w.wantSkipped {
		t.Errorf("second run: %+v, want the first's counts", p2)
	}
	// Again, as a new job (no checkpoints): everything is a duplicate.
	p3, err := Run(context.Background(), Job{Sources: w.job.Sources, Destination: w.job.Destination, Checkpoints: &memCheckpoints{}})
	if err != nil {
		t.Fatalf("new job: %v", err)
	}
	if p3.MessagesCopied != 0 || p3.MessagesSkipped != int64(w.seeded) {
		t.Errorf("a new job over the same mail: %+v, want all %d skipped", p3, w.seeded)
	}
	w.check(t)
}

// TestResume stops a job mid-way, twice: cancelled, then failing to save
// a checkpoint after a batch was appended (a crash). The resumed job ends
// with an exact copy.
func TestResume(t *testing.T) {
	w := newWorld(t, "")
	cp := &memCheckpoints{}
	w.job.Checkpoints = cp
	l := limits{batchBytes: 1 << 20, batchMessages: 3}

	ctx, cancel := context.WithCancel(context.Background())
	w.job.Progress = func(p Progress) {
		if p.MessagesCopied >= 5 {
			cancel()
		}
	}
	p, err := runWith(ctx, w.job, l)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Run: %v", err)
	}
	if p.MessagesCopied < 5 || p.MessagesCopied >= w.wantCopied {
		t.Fatalf("cancelled after %d messages copied, want 5 to %d", p.MessagesCopied, w.wantCopied)
	}

	cp.failSave = cp.saves + 2
	w.job.Progress = nil
	if _, err := runWith(context.Background(), w.job, l); err == nil || !strings.Contains(err.Error(), "the database went away") {
		t.Fatalf("Run with a failing Save: %v", err)
	}
	p, err = runWith(context.Background(), w.job, l)
	if err != nil {
		t.Fatalf("resumed Run: %v", err)
	}
	w.check(t)
	// The batch appended before the failed Save is counted as skipped
	// by the resumed run: its counts were not saved.
	if p.MessagesCopied > w.wantCopied || p.MessagesCopied+p.MessagesSkipped != w.wantCopied+w.wantSkipped || p.MessagesFailed != 0 {
		t.Errorf("over the runs: %+v, want %d copied or skipped, %d at most copied", p, w.wantCopied+w.wantSkipped, w.wantCopied)
	}
}

// TestUIDValidity: a source folder whose UIDVALIDITY changed between two
// runs is read again; nothing is copied twice, a new message is.
func TestUIDValidity(t *testing.T) {
	w := newWorld(t, "")
	cp := &memCheckpoints{}
	w.job.Checkpoints = cp
	if _, err := Run(context.Background(), w.job); err != nil {
		t.Fatalf("Run: %v", err)
	}
	args := append(w.src.Doveadm(), "mailbox", "update", "--uid-validity", "4242", "-u", anna, "INBOX")
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("doveadm mailbox update: %v\n%s", err, out)
	}
	late := dovecottest.Message{Folder: "INBOX", Flags: []string{"$Late"}, Date: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Raw: msg("late@x", "late", "after the first run\r\n")}
	w.src.Seed(t, anna, secret, nil, []dovecottest.Message{late})
	w.want = append(w.want, late)

	p, err := Run(context.Background(), w.job)
	if err != nil {
		t.Fatalf("Run after the change: %v", err)
	}
	w.check(t)
	if p.MessagesCopied != w.wantCopied+1 {
		t.Errorf("copied %d, want %d", p.MessagesCopied, w.wantCopied+1)
	}
	if got := cp.state.Folders[FolderKey{0, "INBOX"}].UIDValidity; got != 4242 {
		t.Errorf("INBOX checkpoint's UIDVALIDITY %d, want 4242", got)
	}
}

// TestRefused: a message the destination refuses, or too large to copy,
// is a Failure with the reason; the others are copied.
func TestRefused(t *testing.T) {
	w := newWorld(t, `
mail_plugins = $mail_plugins quota
plugin {
  quota = maildir:User quota
  quota_max_mail_size = 1M
}
`)
	cp := &memCheckpoints{}
	w.job.Checkpoints = cp
	p, err := runWith(context.Background(), w.job, limits{batchBytes: 1 << 20, batchMessages: 50, maxMessage: 4 << 20})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if p.MessagesFailed != 1 || p.MessagesCopied != w.wantCopied-1 {
		t.Errorf("progress %+v, want 1 failed, %d copied", p, w.wantCopied-1)
	}
	if len(cp.failures) != 1 || cp.failures[0].Subject != "a large one" || cp.failures[0].Folder != "INBOX" || cp.failures[0].Source != 0 ||
		!strings.Contains(cp.failures[0].Reason, "the destination refused it: Mail size is larger than the maximum size") {
		t.Errorf("failures %+v, want the large one refused by the destination", cp.failures)
	}

	// Larger than the engine copies: refused before it is fetched.
	cp = &memCheckpoints{}
	w.job.Checkpoints = cp
	w.job.Destination = master(w.dst)
	p, err = runWith(context.Background(), Job{Sources: w.job.Sources[:1], Destination: w.job.Destination, Checkpoints: cp}, limits{batchBytes: 1 << 20, batchMessages: 50, maxMessage: 1 << 20})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(cp.failures) != 1 || cp.failures[0].UID == 0 || !strings.Contains(cp.failures[0].Reason, "larger than 1 MiB") {
		t.Errorf("failures %+v, want the large one too large", cp.failures)
	}
}
