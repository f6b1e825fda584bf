package imports_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	importsv1 "github.com/mailplane/mailplane/proto/mailplane/imports/v1"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/imports"
	"github.com/mailplane/mailplane/services/imports/internal/imapcopy"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"github.com/mailplane/mailplane/services/platform/auth"
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/mailplane/mailplane/services/platform/natstest"
	"github.com/mailplane/mailplane/services/platform/notify"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/mailplane/mailplane/services/platform/pgtest"
	"github.com/mailplane/mailplane/services/platform/secret"
	"github.com/mailplane/mailplane/services/platform/servicetest"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

type env struct {
	t      *testing.T
	srv    *servicetest.Server
	svc    *imports.Service
	pool   *pgxpool.Pool
	client importsv1.ImportServiceClient
	org    uuid.UUID
	ms     string
	admin  context.Context
	js     jetstream.JetStream
	ctx    context.Context
	copier *fakeCopier
	// accounts answers who is a member of org.
	accounts *fakeAccounts
	mail     *mailbox
	workers  context.CancelFunc
	done     chan error
}

type options struct {
	limits imports.Limits
	// noWork: the jobs are not worked until e.work().
	noWork bool
	// publicOnly refuses sources on private networks, as in production.
	publicOnly bool
	// copier, when set, replaces the fake IMAP engine, and imap,
	// master and masterPassword are the platform's Dovecot.
	copier                       *imports.Copier
	imap, master, masterPassword string
}

// start runs the service on a fresh database with a fake accounts, a
// fake IMAP engine and a recording mailer, its consumer on a stream of
// the test's own, and its jobs.
func start(t *testing.T, o options) *env {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewMigratedDatabase(t, pgtest.Schema{Name: imports.Schema, Migrations: imports.Migrations})
	pool, err := pg.Connect(ctx, url, imports.Schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	e := &env{t: t, pool: pool, org: uuid.Must(uuid.NewV7()), copier: newFakeCopier(), mail: &mailbox{}}
	accounts := &fakeAccounts{org: e.org}
	e.accounts = accounts
	o.limits.PrivateSources = !o.publicOnly
	copier := imports.Copier{Check: e.copier.check, Run: e.copier.run}
	if o.copier != nil {
		copier = *o.copier
	}
	if o.imap == "" {
		o.imap, o.master, o.masterPassword = "127.0.0.1:1143", "master", "m"
	}
	e.srv = servicetest.Start(t, func(s *servicetest.Server) error {
		accountsv1.RegisterOrganizationServiceServer(s.GRPC.Server, accounts)
		accountsv1.RegisterUserServiceServer(s.GRPC.Server, &fakeUsers{})
		e.svc, err = imports.Register(s.GRPC.Server, pool, imports.Config{
			AccountsAddr: s.Addr, SecretKeys: secret.NewKey(),
			IMAPAddr: o.imap, IMAPSecurity: "plain", MasterUser: o.master, MasterPassword: o.masterPassword,
			Limits: o.limits, Copier: copier, Email: e.mail,
		}, s.Log)
		return err
	})
	e.client = importsv1.NewImportServiceClient(e.srv.Conn)
	e.ms = "organizations/" + e.org.String() + "/mailServices/" + uuid.Must(uuid.NewV7()).String()
	e.admin = e.as(e.org, "admin")

	ns := natstest.Start(t)
	log := slog.New(slog.DiscardHandler)
	nc, js, err := events.Connect(events.NATS{URL: ns.ClientURL()}, "test", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	cctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	if err := events.EnsureStream(cctx, js, "IMPORTSTEST", "mp", 1); err != nil {
		t.Fatal(err)
	}
	for _, sub := range e.svc.Subscriptions() {
		c := &events.Consumer{JS: js, Pool: pool, Stream: "IMPORTSTEST", Durable: sub.Durable, Handle: sub.Handle, Log: log}
		for _, s := range sub.Subjects {
			c.Subjects = append(c.Subjects, "mp."+s)
		}
		go c.Run(cctx)
	}
	e.js, e.ctx = js, cctx
	if !o.noWork {
		e.work()
	}
	return e
}

// work starts the job workers; stop stops them.
func (e *env) work() {
	ctx, cancel := context.WithCancel(e.ctx)
	e.workers, e.done = cancel, make(chan error, 1)
	go func() { e.done <- e.svc.RunForTest(ctx) }()
	e.t.Cleanup(e.stop)
}

func (e *env) stop() {
	if e.workers != nil {
		e.workers()
		<-e.done
		e.workers = nil
	}
}

// fakeAccounts answers GetMember: users of roles have that role, every
// other user is a member, for callers of org; others get NOT_FOUND.
type fakeAccounts struct {
	accountsv1.UnimplementedOrganizationServiceServer
	org uuid.UUID
	// removed are users no longer members (user id string -> true).
	removed sync.Map
}

func (f *fakeAccounts) GetMember(ctx context.Context, req *accountsv1.GetMemberRequest) (*accountsv1.GetMemberResponse, error) {
	prefix := "organizations/" + f.org.String() + "/members/"
	if !strings.HasPrefix(req.GetName(), prefix) || len(req.GetName()) == len(prefix) {
		return nil, status.Error(codes.NotFound, "organization not found")
	}
	p, _ := auth.FromContext(ctx)
	if _, gone := f.removed.Load(p.UserID); gone {
		return nil, status.Error(codes.NotFound, "organization not found")
	}
	return &accountsv1.GetMemberResponse{Member: &accountsv1.Member{Name: req.GetName(), User: "users/" + p.UserID, Role: accountsv1.Role_ROLE_MEMBER}}, nil
}

// fakeUsers answers GetCurrentUser: user <id> is <id>@people.test and
// writes French.
type fakeUsers struct {
	accountsv1.UnimplementedUserServiceServer
}

func (fakeUsers) GetCurrentUser(ctx context.Context, _ *accountsv1.GetCurrentUserRequest) (*accountsv1.GetCurrentUserResponse, error) {
	p, _ := auth.FromContext(ctx)
	return &accountsv1.GetCurrentUserResponse{User: &accountsv1.User{Name: "users/" + p.UserID, Email: p.UserID + "@people.test", Language: "fr"}}, nil
}

// mailbox records the confirmations sent.
type mailbox struct {
	mu   sync.Mutex
	sent []notify.Email
}

func (m *mailbox) Send(_ context.Context, e notify.Email) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, e)
	return nil
}

func (m *mailbox) to(addr string) []notify.Email {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []notify.Email
	for _, e := range m.sent {
		if e.To == addr {
			out = append(out, e)
		}
	}
	return out
}

// fakeCopier is the IMAP engine: accounts log in with password "right"
// on a host other than "down.example" and "selfsigned.example"; a job
// copies folders "INBOX" and "Archive" of each source, 10 messages each,
// one batch (Save) per 5 messages, each batch waiting for a token on
// step when step is set.
type fakeCopier struct {
	mu      sync.Mutex
	step    chan struct{}
	running int
	most    int
	logins  []string
	// rebound is a host whose name points inside the network once the
	// job has been checked (DNS rebinding): a run connecting to it
	// PublicOnly is refused as imapcopy's dial refuses it.
	rebound string
	// public are the PublicOnly of the accounts checked, by login.
	public map[string]bool
	// refuse, when set, answers the check before anything else.
	refuse func(imapcopy.Account) error
	// folders, when set, replace fakeFolders (a name starting with
	// "Archive" fails a message as Archive does).
	folders []string
}

func newFakeCopier() *fakeCopier { return &fakeCopier{} }

func (f *fakeCopier) check(_ context.Context, a imapcopy.Account) error {
	f.mu.Lock()
	f.logins = append(f.logins, a.Login)
	if f.public == nil {
		f.public = map[string]bool{}
	}
	f.public[a.Login] = a.PublicOnly
	refuse := f.refuse
	f.mu.Unlock()
	if refuse != nil {
		if err := refuse(a); err != nil {
			return err
		}
	}
	switch {
	case a.Host == "down.example":
		return fmt.Errorf("dial: %w", imapcopy.ErrUnreachable)
	case a.Host == "selfsigned.example" && a.TLS == nil:
		return fmt.Errorf("x509: certificate signed by unknown authority: %w", imapcopy.ErrTLS)
	case a.Password != "right":
		return fmt.Errorf("NO [AUTHENTICATIONFAILED]: %w", imapcopy.ErrLogin)
	}
	return nil
}

var fakeFolders = []string{"INBOX", "Archive"}

const fakePerFolder, fakeBatch = 10, 5

func (f *fakeCopier) run(ctx context.Context, j imapcopy.Job) (imapcopy.Progress, error) {
	f.mu.Lock()
	rebound := f.rebound
	f.mu.Unlock()
	for _, a := range j.Sources {
		if a.Host != "" && a.Host == rebound && a.PublicOnly {
			return imapcopy.Progress{}, fmt.Errorf("dial %s:993: %w", a.Host, imapcopy.ErrPrivate)
		}
	}
	f.mu.Lock()
	f.running++
	f.most = max(f.most, f.running)
	step, folders := f.step, f.folders
	f.mu.Unlock()
	if folders == nil {
		folders = fakeFolders
	}
	defer func() {
		f.mu.Lock()
		f.running--
		f.mu.Unlock()
	}()
	st, err := j.Checkpoints.Load(ctx)
	if err != nil {
		return imapcopy.Progress{}, err
	}
	p := st.Progress
	p.FoldersTotal = len(j.Sources) * len(folders)
	p.MessagesTotal = int64(p.FoldersTotal * fakePerFolder)
	for si := range j.Sources {
		for _, folder := range folders {
			fs := st.Folders[imapcopy.FolderKey{Source: si, Folder: folder}]
			for uid := fs.LastUID + 1; uid <= fakePerFolder; uid += fakeBatch {
				if step != nil {
					select {
					case <-step:
					case <-ctx.Done():
						return p, ctx.Err()
					}
				}
				if ctx.Err() != nil {
					return p, ctx.Err()
				}
				last := uid + fakeBatch - 1
				p.MessagesCopied += fakeBatch - 1
				p.MessagesSkipped++
				p.Bytes += 1000 * (fakeBatch - 1)
				var failed []imapcopy.Failure
				if last == fakePerFolder && strings.HasPrefix(folder, "Archive") {
					p.MessagesCopied--
					p.MessagesFailed++
					failed = append(failed, imapcopy.Failure{Source: si, Folder: folder, UID: last, Subject: "Too big\x00", Reason: "message over the destination's limit"})
				}
				if last == fakePerFolder {
					p.FoldersDone++
				}
				if err := j.Checkpoints.Save(ctx, si, folder, 7, last, p, failed); err != nil {
					return p, err
				}
				if j.Progress != nil {
					j.Progress(p)
				}
			}
		}
	}
	return p, nil
}

// as is a caller with role in org, through an API token.
func (e *env) as(org uuid.UUID, role string) context.Context {
	return e.srv.As(e.t, auth.Principal{TokenID: uuid.NewString(), OrganizationID: org.String(), Role: role})
}

// person is a signed-in user (a member of the organization).
func (e *env) person(user uuid.UUID) context.Context {
	return e.srv.As(e.t, auth.Principal{UserID: user.String()})
}

// announce publishes mailboxes' address event for a new address
// local@example.test of the mail service with users, waits until the
// service knows it, and returns its name.
func (e *env) announce(local string, users ...uuid.UUID) string {
	e.t.Helper()
	name := e.ms + "/addresses/" + uuid.Must(uuid.NewV7()).String()
	a := &mailboxesv1.Address{Name: name, LocalPart: local, Email: local + "@example.test"}
	for _, u := range users {
		a.Users = append(a.Users, &mailboxesv1.AddressUser{User: "users/" + u.String()})
	}
	data, _ := proto.Marshal(&mailboxesv1.AddressChanged{Address: a, Login: local + "@example.test"})
	if _, err := e.js.Publish(e.ctx, "mp."+mailboxesevents.AddressCreated, data, jetstream.WithMsgID(uuid.NewString())); err != nil {
		e.t.Fatal(err)
	}
	e.eventually("address "+local+" known", func() bool {
		var n int
		e.pool.QueryRow(context.Background(), `SELECT count(*) FROM addresses WHERE login = $1`, local+"@example.test").Scan(&n)
		return n == 1
	})
	return name
}

func (e *env) eventually(what string, check func() bool) {
	e.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !check(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			var jobs []string
			rows, _ := e.pool.Query(context.Background(), `SELECT kind || ' ' || state || ' ' || attempt || ' ' || coalesce(errors::text, '') FROM river_job`)
			for rows != nil && rows.Next() {
				var j string
				_ = rows.Scan(&j)
				jobs = append(jobs, j)
			}
			e.t.Fatalf("%s: not after 20 s (jobs: %v)", what, jobs)
		}
	}
}

// ended waits for job to end and returns it.
func (e *env) ended(ctx context.Context, name string) *importsv1.ImportJob {
	e.t.Helper()
	var j *importsv1.ImportJob
	e.eventually(name+" ended", func() bool {
		resp, err := e.client.GetImportJob(ctx, &importsv1.GetImportJobRequest{Name: name})
		if err != nil {
			e.t.Fatal(err)
		}
		j = resp.GetImportJob()
		s := j.GetState()
		return s == importsv1.State_STATE_SUCCEEDED || s == importsv1.State_STATE_FAILED || s == importsv1.State_STATE_CANCELLED
	})
	return j
}

// passwords says whether job still holds sealed passwords.
func (e *env) passwords(name string) bool {
	e.t.Helper()
	id := name[strings.LastIndexByte(name, '/')+1:]
	var has bool
	if err := e.pool.QueryRow(context.Background(), `SELECT passwords IS NOT NULL FROM jobs WHERE id = $1`, id).Scan(&has); err != nil {
		e.t.Fatal(err)
	}
	return has
}

func server(host string) *importsv1.Source {
	return &importsv1.Source{Host: host, Login: "anna@example.net", Password: "right"}
}

func wantCode(t *testing.T, err error, code codes.Code, field string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("got %v, want %v", err, code)
	}
	if field == "" {
		return
	}
	var fields []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetField() == field {
					return
				}
				fields = append(fields, v.GetField())
			}
		}
	}
	t.Fatalf("%v names no field %s (names %v)", err, field, fields)
}

func TestImportRunsToTheEnd(t *testing.T) {
	e := start(t, options{})
	dest := e.announce("anna")
	e.announce("old")
	resp, err := e.client.CreateImportJob(e.admin, &importsv1.CreateImportJobRequest{Parent: "organizations/" + e.org.String(), ImportJob: &importsv1.ImportJob{
		Destination: dest,
		Sources:     []*importsv1.Source{server("imap.example.net"), {HostedEmail: "OLD@example.test", Password: "right"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	j := resp.GetImportJob()
	if j.GetState() != importsv1.State_STATE_PENDING || j.GetDestinationEmail() != "anna@example.test" || len(j.GetSources()) != 2 {
		t.Fatalf("created %v", j)
	}
	for _, s := range j.GetSources() {
		if s.GetPassword() != "" {
			t.Fatalf("a password is returned: %v", s)
		}
	}
	j = e.ended(e.admin, j.GetName())
	p := j.GetProgress()
	if j.GetState() != importsv1.State_STATE_SUCCEEDED || p.GetFoldersDone() != 4 || p.GetFoldersTotal() != 4 ||
		p.GetMessagesTotal() != 40 || p.GetMessagesCopied() != 30 || p.GetMessagesSkipped() != 8 || p.GetMessagesFailed() != 2 || p.GetBytes() != 32000 {
		t.Fatalf("ended as %v", j)
	}
	if e.passwords(j.GetName()) {
		t.Fatal("the passwords are kept after the job ended")
	}
	// The hosted source logs in as the address's login, the destination
	// as the master user.
	e.copier.mu.Lock()
	logins := strings.Join(e.copier.logins, " ")
	e.copier.mu.Unlock()
	if !strings.Contains(logins, "old@example.test") {
		t.Fatalf("logins %s", logins)
	}
	fails, err := e.client.ListImportFailures(e.admin, &importsv1.ListImportFailuresRequest{Parent: j.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	if len(fails.GetFailures()) != 2 || fails.GetFailures()[0].GetSubject() != "Too big" || fails.GetFailures()[0].GetReason() == "" {
		t.Fatalf("failures %v", fails)
	}
	// A token has no person: the destination alone is told.
	e.eventually("confirmation", func() bool { return len(e.mail.to("anna@example.test")) == 1 })
	m := e.mail.to("anna@example.test")[0]
	if !strings.Contains(m.Subject, "anna@example.test") || !strings.Contains(m.Body, "Copied: 30") || !strings.Contains(m.Body, `"Too big"`) {
		t.Fatalf("confirmation %+v", m)
	}
}

func TestCreateRefusals(t *testing.T) {
	e := start(t, options{limits: imports.Limits{ActiveJobs: 1}, noWork: true})
	dest := e.announce("anna")
	parent := "organizations/" + e.org.String()
	create := func(ctx context.Context, j *importsv1.ImportJob) error {
		_, err := e.client.CreateImportJob(ctx, &importsv1.CreateImportJobRequest{Parent: parent, ImportJob: j})
		return err
	}
	one := func(s *importsv1.Source) *importsv1.ImportJob {
		return &importsv1.ImportJob{Destination: dest, Sources: []*importsv1.Source{s}}
	}
	long := strings.Repeat("p", 1025)
	for _, c := range []struct {
		name  string
		job   *importsv1.ImportJob
		code  codes.Code
		field string
	}{
		{"no source", &importsv1.ImportJob{Destination: dest}, codes.InvalidArgument, "importJob.sources"},
		{"three sources", &importsv1.ImportJob{Destination: dest, Sources: []*importsv1.Source{server("a.example"), server("b.example"), server("c.example")}}, codes.InvalidArgument, "importJob.sources"},
		{"no destination", &importsv1.ImportJob{Sources: []*importsv1.Source{server("a.example")}}, codes.InvalidArgument, "importJob.destination"},
		{"host not a host", one(&importsv1.Source{Host: "imap example!", Login: "a", Password: "right"}), codes.InvalidArgument, "importJob.sources[0].host"},
		{"host with a scheme", one(&importsv1.Source{Host: "imaps://imap.example.net", Login: "a", Password: "right"}), codes.InvalidArgument, "importJob.sources[0].host"},
		{"port 0x10000", one(&importsv1.Source{Host: "imap.example.net", Port: 65536, Login: "a", Password: "right"}), codes.InvalidArgument, "importJob.sources[0].port"},
		{"port -1", one(&importsv1.Source{Host: "imap.example.net", Port: -1, Login: "a", Password: "right"}), codes.InvalidArgument, "importJob.sources[0].port"},
		{"no password", one(&importsv1.Source{Host: "imap.example.net", Login: "a"}), codes.InvalidArgument, "importJob.sources[0].password"},
		{"long password", one(&importsv1.Source{Host: "imap.example.net", Login: "a", Password: long}), codes.InvalidArgument, "importJob.sources[0].password"},
		{"NUL in login", one(&importsv1.Source{Host: "imap.example.net", Login: "a\x00b", Password: "right"}), codes.InvalidArgument, "importJob.sources[0].login"},
		{"bad pin", one(&importsv1.Source{Host: "imap.example.net", Login: "a", Password: "right", CertificateSha256: "abc"}), codes.InvalidArgument, "importJob.sources[0].certificateSha256"},
		{"wrong password", one(&importsv1.Source{Host: "imap.example.net", Login: "a", Password: "wrong"}), codes.InvalidArgument, "importJob.sources[0].password"},
		{"unreachable", one(server("down.example")), codes.FailedPrecondition, "importJob.sources[0].host"},
		{"self-signed", one(server("selfsigned.example")), codes.InvalidArgument, "importJob.sources[0].host"},
		{"hosted unknown", one(&importsv1.Source{HostedEmail: "nobody@example.test", Password: "right"}), codes.InvalidArgument, "importJob.sources[0].password"},
		{"destination is the source", one(&importsv1.Source{HostedEmail: "anna@example.test", Password: "right"}), codes.InvalidArgument, "importJob.sources[0].hostedEmail"},
		{"destination of another org", &importsv1.ImportJob{Destination: "organizations/" + uuid.NewString() + "/mailServices/" + uuid.NewString() + "/addresses/" + uuid.NewString(), Sources: []*importsv1.Source{server("a.example")}}, codes.NotFound, ""},
		{"destination unknown", &importsv1.ImportJob{Destination: e.ms + "/addresses/" + uuid.NewString(), Sources: []*importsv1.Source{server("a.example")}}, codes.NotFound, ""},
	} {
		t.Run(c.name, func(t *testing.T) { wantCode(t, create(e.admin, c.job), c.code, c.field) })
	}
	// The explicit exception: the certificate's fingerprint.
	pinned := server("selfsigned.example")
	pinned.CertificateSha256 = strings.Repeat("ab:", 31) + "ab"
	if err := create(e.admin, one(pinned)); err != nil {
		t.Fatalf("pinned: %v", err)
	}
	// The cap on jobs not ended (1 here).
	wantCode(t, create(e.admin, one(server("imap.example.net"))), codes.ResourceExhausted, "")
	// Another organization: NotFound; a member without the address: denied.
	other := uuid.Must(uuid.NewV7())
	_, err := e.client.CreateImportJob(e.as(other, "admin"), &importsv1.CreateImportJobRequest{Parent: parent, ImportJob: one(server("a.example"))})
	wantCode(t, err, codes.NotFound, "")
	_, err = e.client.CreateImportJob(e.person(uuid.Must(uuid.NewV7())), &importsv1.CreateImportJobRequest{Parent: parent, ImportJob: one(server("a.example"))})
	wantCode(t, err, codes.PermissionDenied, "")
	_, err = e.client.GetImportJob(e.as(other, "admin"), &importsv1.GetImportJobRequest{Name: parent + "/importJobs/" + uuid.NewString()})
	wantCode(t, err, codes.NotFound, "")
}

func TestPrivateSourcesRefused(t *testing.T) {
	e := start(t, options{publicOnly: true, noWork: true})
	dest := e.announce("anna")
	for _, host := range []string{"127.0.0.1", "10.1.2.3", "localhost", "169.254.169.254", "::1"} {
		_, err := e.client.CreateImportJob(e.admin, &importsv1.CreateImportJobRequest{Parent: "organizations/" + e.org.String(), ImportJob: &importsv1.ImportJob{
			Destination: dest, Sources: []*importsv1.Source{server(host)}}})
		wantCode(t, err, codes.InvalidArgument, "importJob.sources[0].host")
	}
}

func TestMemberImportsIntoTheirAddress(t *testing.T) {
	e := start(t, options{})
	anna := uuid.Must(uuid.NewV7())
	dest := e.announce("anna", anna)
	ctx := e.person(anna)
	parent := "organizations/" + e.org.String()
	resp, err := e.client.CreateImportJob(ctx, &importsv1.CreateImportJobRequest{Parent: parent, ImportJob: &importsv1.ImportJob{
		Destination: dest, Sources: []*importsv1.Source{server("imap.example.net")}}})
	if err != nil {
		t.Fatal(err)
	}
	j := e.ended(ctx, resp.GetImportJob().GetName())
	if j.GetCreator() != "users/"+anna.String() {
		t.Fatalf("creator %s", j.GetCreator())
	}
	// Another member sees neither the job nor it in the list.
	bob := e.person(uuid.Must(uuid.NewV7()))
	_, err = e.client.GetImportJob(bob, &importsv1.GetImportJobRequest{Name: j.GetName()})
	wantCode(t, err, codes.PermissionDenied, "")
	list, err := e.client.ListImportJobs(bob, &importsv1.ListImportJobsRequest{Parent: parent})
	if err != nil || len(list.GetImportJobs()) != 0 {
		t.Fatalf("bob's list: %v, %v", list, err)
	}
	// The person is told in their language, and the address too.
	e.eventually("confirmations", func() bool {
		return len(e.mail.to(anna.String()+"@people.test")) == 1 && len(e.mail.to("anna@example.test")) == 1
	})
	if m := e.mail.to(anna.String() + "@people.test")[0]; !strings.Contains(m.Subject, "terminé") {
		t.Fatalf("not in French: %+v", m)
	}
}

func TestCancelWipesPasswords(t *testing.T) {
	e := start(t, options{})
	e.copier.step = make(chan struct{})
	dest := e.announce("anna")
	resp, err := e.client.CreateImportJob(e.admin, &importsv1.CreateImportJobRequest{Parent: "organizations/" + e.org.String(), ImportJob: &importsv1.ImportJob{
		Destination: dest, Sources: []*importsv1.Source{server("imap.example.net")}}})
	if err != nil {
		t.Fatal(err)
	}
	name := resp.GetImportJob().GetName()
	e.copier.step <- struct{}{} // one batch
	e.eventually("a batch saved", func() bool {
		r, _ := e.client.GetImportJob(e.admin, &importsv1.GetImportJobRequest{Name: name})
		return r.GetImportJob().GetProgress().GetMessagesCopied() > 0
	})
	if !e.passwords(name) {
		t.Fatal("no password while running")
	}
	c, err := e.client.CancelImportJob(e.admin, &importsv1.CancelImportJobRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if c.GetImportJob().GetState() != importsv1.State_STATE_CANCELLED || e.passwords(name) {
		t.Fatalf("cancelled: %v, passwords kept: %v", c.GetImportJob(), e.passwords(name))
	}
	// The worker stops at its next checkpoint, which finds it cancelled.
	close(e.copier.step)
	e.eventually("the copy stops", func() bool {
		e.copier.mu.Lock()
		defer e.copier.mu.Unlock()
		return e.copier.running == 0
	})
	j := e.ended(e.admin, name)
	if j.GetProgress().GetMessagesCopied() != 4 || j.GetState() != importsv1.State_STATE_CANCELLED {
		t.Fatalf("after the cancel: %v", j)
	}
	e.eventually("confirmation", func() bool { return len(e.mail.to("anna@example.test")) == 1 })
}

// TestResumeAfterStop: the workers stop mid-way (a restart); the job
// resumes from its checkpoint and ends with every message counted once.
func TestResumeAfterStop(t *testing.T) {
	e := start(t, options{})
	e.copier.step = make(chan struct{})
	dest := e.announce("anna")
	resp, err := e.client.CreateImportJob(e.admin, &importsv1.CreateImportJobRequest{Parent: "organizations/" + e.org.String(), ImportJob: &importsv1.ImportJob{
		Destination: dest, Sources: []*importsv1.Source{server("imap.example.net")}}})
	if err != nil {
		t.Fatal(err)
	}
	name := resp.GetImportJob().GetName()
	e.copier.step <- struct{}{}
	e.copier.step <- struct{}{}
	e.eventually("two batches", func() bool {
		r, _ := e.client.GetImportJob(e.admin, &importsv1.GetImportJobRequest{Name: name})
		return r.GetImportJob().GetProgress().GetFoldersDone() == 1
	})
	e.stop()
	e.copier.mu.Lock()
	e.copier.step = nil
	e.copier.mu.Unlock()
	e.work()
	j := e.ended(e.admin, name)
	if p := j.GetProgress(); j.GetState() != importsv1.State_STATE_SUCCEEDED || p.GetMessagesCopied()+p.GetMessagesSkipped()+p.GetMessagesFailed() != 20 {
		t.Fatalf("resumed: %v", j)
	}
}

func TestBulkImport(t *testing.T) {
	e := start(t, options{limits: imports.Limits{PerServer: 1}})
	for _, l := range []string{"anna", "bob", "carl"} {
		e.announce(l)
	}
	parent := "organizations/" + e.org.String()
	tmpl, err := e.client.GetImportTemplate(e.admin, &importsv1.GetImportTemplateRequest{Parent: parent})
	if err != nil || !strings.HasPrefix(tmpl.GetCsv(), "source,login,password,destination") {
		t.Fatalf("template %v, %v", tmpl, err)
	}
	bulk := func(csv string) (*importsv1.ImportJob, error) {
		r, err := e.client.CreateBulkImport(e.admin, &importsv1.CreateBulkImportRequest{Parent: parent, Csv: csv})
		return r.GetImportJob(), err
	}
	head := "source,login,password,destination,security,port\n"
	rows26 := head + strings.Repeat("imap.example.net,a@example.net,right,anna@example.test,,\n", 26)
	_, err = bulk(rows26)
	wantCode(t, err, codes.InvalidArgument, "csv line 27")
	_, err = bulk(head + "imap.example.net,a@example.net,right,anna@example.test,tls,99999\nimap example,a,right,nobody@example.test,,\n")
	wantCode(t, err, codes.InvalidArgument, "csv line 2, column port")
	wantCode(t, err, codes.InvalidArgument, "csv line 3, column source")
	_, err = bulk(head + "imap.example.net,a@example.net,right,nobody@example.test,,\n")
	wantCode(t, err, codes.InvalidArgument, "csv line 2, column destination")
	_, err = bulk(head + "imap.example.net,a@example.net,right,anna@example.test,,\nimap.example.net,b@example.net,wrong,bob@example.test,,\n")
	wantCode(t, err, codes.InvalidArgument, "csv line 3, column password")
	_, err = bulk("source,colour\n")
	wantCode(t, err, codes.InvalidArgument, "csv line 1, column colour")

	j, err := bulk(head + "imap.example.net,a@example.net,right,anna@example.test,,\n" +
		"imap.example.net,b@example.net,right,bob@example.test,starttls,\n" +
		"imap.example.net,c@example.net,right,carl@example.test,,\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(j.GetChildJobs()) != 3 {
		t.Fatalf("bulk %v", j)
	}
	j = e.ended(e.admin, j.GetName())
	if j.GetState() != importsv1.State_STATE_SUCCEEDED || j.GetProgress().GetMessagesTotal() != 60 || j.GetProgress().GetMessagesFailed() != 3 {
		t.Fatalf("bulk ended %v", j)
	}
	e.copier.mu.Lock()
	most := e.copier.most
	e.copier.mu.Unlock()
	if most != 1 {
		t.Fatalf("%d rows copied from one server at once, want 1", most)
	}
	rows, err := e.client.ListImportJobs(e.admin, &importsv1.ListImportJobsRequest{Parent: parent, ParentJob: j.GetName()})
	if err != nil || len(rows.GetImportJobs()) != 3 {
		t.Fatalf("rows %v, %v", rows, err)
	}
	fails, err := e.client.ListImportFailures(e.admin, &importsv1.ListImportFailuresRequest{Parent: j.GetName(), PageSize: 2})
	if err != nil || len(fails.GetFailures()) != 2 || fails.GetNextPageToken() == "" {
		t.Fatalf("failures %v, %v", fails, err)
	}
	for _, to := range []string{"anna@example.test", "bob@example.test", "carl@example.test"} {
		e.eventually("confirmation to "+to, func() bool { return len(e.mail.to(to)) == 1 })
	}
}

func TestWatch(t *testing.T) {
	e := start(t, options{})
	e.copier.step = make(chan struct{})
	dest := e.announce("anna")
	resp, err := e.client.CreateImportJob(e.admin, &importsv1.CreateImportJobRequest{Parent: "organizations/" + e.org.String(), ImportJob: &importsv1.ImportJob{
		Destination: dest, Sources: []*importsv1.Source{server("imap.example.net")}}})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := e.client.WatchImportJob(e.admin, &importsv1.WatchImportJobRequest{Name: resp.GetImportJob().GetName()})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range 4 {
			e.copier.step <- struct{}{}
		}
	}()
	var seen []int64
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, m.GetImportJob().GetProgress().GetMessagesCopied())
		if m.GetImportJob().GetState() == importsv1.State_STATE_SUCCEEDED {
			if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
				t.Fatalf("after the end: %v", err)
			}
			break
		}
	}
	if len(seen) < 2 || seen[len(seen)-1] != 15 {
		t.Fatalf("watched %v", seen)
	}
}

// TestSourceLoginsCapped: an organization looping on imports whose source
// login is refused (someone trying passwords against an IMAP server
// through the service) is stopped after its hourly count of logins, with
// RESOURCE_EXHAUSTED, before the server is asked again.
func TestSourceLoginsCapped(t *testing.T) {
	e := start(t, options{limits: imports.Limits{ChecksPerHour: 3}, noWork: true})
	dest := e.announce("anna")
	create := func(password string) error {
		_, err := e.client.CreateImportJob(e.admin, &importsv1.CreateImportJobRequest{Parent: "organizations/" + e.org.String(),
			ImportJob: &importsv1.ImportJob{Destination: dest, Sources: []*importsv1.Source{{Host: "imap.example.net", Login: "victim", Password: password}}}})
		return err
	}
	for i := range 3 {
		if err := create("guess" + strconv.Itoa(i)); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("guess %d: %v, want the refused login", i, err)
		}
	}
	if err := create("right"); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("past the cap: %v, want RESOURCE_EXHAUSTED", err)
	}
}
