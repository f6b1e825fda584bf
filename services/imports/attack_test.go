package imports_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	importsv1 "github.com/mailplane/mailplane/proto/mailplane/imports/v1"
	"github.com/mailplane/mailplane/services/imports"
	"github.com/mailplane/mailplane/services/imports/internal/imapcopy"
	"github.com/mailplane/mailplane/services/platform/attacktest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// attackEnv is an organization with an address (anna its user) and an
// admin's import into it, cancelled so that it has ended (a watch of it
// answers at once, and another import may start).
type attackEnv struct {
	*env
	org, dest, job string
	anna           uuid.UUID
}

// bulkCSV is a bulk import of one row into anna's address.
const bulkCSV = "source,login,password,destination\nimap.example.net,a@example.net,right,anna@example.test\n"

func startAttack(t *testing.T) *attackEnv {
	t.Helper()
	// No job runs: every job stays as the test leaves it.
	e := &attackEnv{env: start(t, options{limits: imports.Limits{ActiveJobs: 1000, ChecksPerHour: 1 << 20}, noWork: true}),
		anna: uuid.Must(uuid.NewV7())}
	e.org = "organizations/" + e.env.org.String()
	e.dest = e.announce("anna", e.anna)
	e.job = e.createJob(t, e.admin)
	return e
}

// createJob starts an import into anna's address as ctx's caller and
// cancels it.
func (e *attackEnv) createJob(t *testing.T, ctx context.Context) string {
	t.Helper()
	created, err := e.client.CreateImportJob(ctx, &importsv1.CreateImportJobRequest{Parent: e.org, ImportJob: &importsv1.ImportJob{
		Destination: e.dest, Sources: []*importsv1.Source{server("imap.example.net")}}})
	if err != nil {
		t.Fatal(err)
	}
	name := created.GetImportJob().GetName()
	if _, err := e.client.CancelImportJob(ctx, &importsv1.CancelImportJobRequest{Name: name}); err != nil {
		t.Fatal(err)
	}
	return name
}

// suite is the attack on every method of the imports API, each with the
// resource it acts on; a method added to the proto without a row here
// fails the test, so none escapes the attack.
func (e *attackEnv) suite(job string) *attacktest.Suite {
	return &attacktest.Suite{
		Conn:  e.srv.Conn,
		Files: []protoreflect.FileDescriptor{importsv1.File_mailplane_imports_v1_imports_proto},
		Targets: map[string]string{
			"CreateImportJob": e.org, "GetImportJob": job, "ListImportJobs": e.org, "CancelImportJob": job,
			"WatchImportJob": job, "ListImportFailures": job, "GetImportTemplate": e.org, "CreateBulkImport": e.org,
		},
		// A member may call these on anything of the organization;
		// the others only on their own jobs and addresses.
		Reads: map[string]bool{"ListImportJobs": true, "GetImportTemplate": true},
		Valid: e.valid,
		Ignored: []string{
			// Output only: a new job's name and state are the service's.
			"import_job.name", "import_job.error", "import_job.parent_job", "import_job.child_jobs[0]",
			"import_job.creator", "import_job.destination_email",
		},
	}
}

// valid fills what a request needs besides its resource, so that a
// refusal is the attack's doing, not a missing field's.
func (e *attackEnv) valid(m proto.Message) {
	switch r := m.(type) {
	case *importsv1.CreateImportJobRequest:
		r.ImportJob = &importsv1.ImportJob{Destination: e.dest, Sources: []*importsv1.Source{server("imap.example.net")}}
	case *importsv1.CreateBulkImportRequest:
		r.Csv = bulkCSV
	}
}

// TestAttackOtherOrganization: another organization's caller, naming this
// organization's resources as they are or under its own organization's
// id, is told NotFound by every method, and nothing changes.
func TestAttackOtherOrganization(t *testing.T) {
	e := startAttack(t)
	other := uuid.Must(uuid.NewV7())
	s := e.suite(e.job)
	for _, m := range s.Methods(t) {
		for _, target := range []string{m.Target, strings.Replace(m.Target, e.env.org.String(), other.String(), 1)} {
			for _, role := range []string{"owner", "admin", "member"} {
				err := s.Call(e.as(other, role), m, s.Request(t, m, target))
				attacktest.Never(t, m.Name(), err)
				own := target != m.Target
				switch {
				case own && m.Read && err == nil:
					continue // its own organization's list (empty: checked below) and template
				case own && m.Name() == "CreateBulkImport" && status.Code(err) == codes.InvalidArgument && attacktest.Named(err, "csv line 2, column destination"):
					// The CSV names the destination by email: one of
					// another organization is the same as one that does
					// not exist.
					continue
				}
				if status.Code(err) != codes.NotFound {
					t.Errorf("%s on %s as another organization's %s: %v, want NotFound", m.Name(), target, role, err)
				}
			}
		}
	}
	got, err := e.client.GetImportJob(e.admin, &importsv1.GetImportJobRequest{Name: e.job})
	if err != nil || got.GetImportJob().GetState() != importsv1.State_STATE_CANCELLED {
		t.Errorf("the job after the attack: %v, %v", got, err)
	}
	list, err := e.client.ListImportJobs(e.admin, &importsv1.ListImportJobsRequest{Parent: e.org})
	if err != nil || len(list.GetImportJobs()) != 1 {
		t.Errorf("the organization's jobs after the attack: %v, %v; want the one", list, err)
	}
	theirs := strings.Replace(e.org, e.env.org.String(), other.String(), 1)
	list, err = e.client.ListImportJobs(e.as(other, "owner"), &importsv1.ListImportJobsRequest{Parent: theirs})
	if err != nil || len(list.GetImportJobs()) != 0 {
		t.Errorf("another organization's jobs: %v, %v; want none", list, err)
	}
	// A bulk import's rows, named by another organization's job: the
	// answer to a job that does not exist.
	_, err = e.client.ListImportJobs(e.as(other, "owner"), &importsv1.ListImportJobsRequest{Parent: theirs, ParentJob: e.job})
	attacktest.WantCode(t, err, codes.NotFound, "")
	_, err = e.client.ListImportJobs(e.admin, &importsv1.ListImportJobsRequest{Parent: e.org, ParentJob: e.org + "/importJobs/" + uuid.NewString()})
	attacktest.WantCode(t, err, codes.NotFound, "")
}

// TestAttackMemberRole: a member of the organization who is neither the
// destination's user nor the job's creator, and a member's API token,
// are refused every method but the list (which shows them nothing) and
// the template, with PermissionDenied; the address's user may call every
// method on the job they started.
func TestAttackMemberRole(t *testing.T) {
	e := startAttack(t)
	s := e.suite(e.job)
	for who, ctx := range map[string]context.Context{
		"a member not the address's user": e.person(uuid.Must(uuid.NewV7())),
		"a member's API token":            e.as(e.env.org, "member"),
	} {
		for _, m := range s.Methods(t) {
			err := s.Call(ctx, m, s.Request(t, m, m.Target))
			switch {
			case m.Read && err != nil:
				t.Errorf("%s as %s: %v, want an answer", m.Name(), who, err)
			case !m.Read && status.Code(err) != codes.PermissionDenied:
				t.Errorf("%s as %s: %v, want PermissionDenied", m.Name(), who, err)
			}
		}
		list, err := e.client.ListImportJobs(ctx, &importsv1.ListImportJobsRequest{Parent: e.org})
		if err != nil || len(list.GetImportJobs()) != 0 {
			t.Errorf("the jobs %s sees: %v, %v; want none", who, list, err)
		}
	}
	// anna's own job, and the admin's: hers answers every method, the
	// admin's is refused.
	anna := e.person(e.anna)
	mine := e.createJob(t, anna)
	for _, m := range e.suite(mine).Methods(t) {
		if err := s.Call(anna, m, s.Request(t, m, strings.Replace(m.Target, e.job, mine, 1))); err != nil {
			t.Errorf("%s as the address's user on her job: %v, want an answer", m.Name(), err)
		}
		if m.Target == e.job {
			err := s.Call(anna, m, s.Request(t, m, e.job))
			attacktest.WantCode(t, err, codes.PermissionDenied, "")
		}
	}
	// She sees hers (the one above, and those the calls made), not the
	// admin's.
	list, err := e.client.ListImportJobs(anna, &importsv1.ListImportJobsRequest{Parent: e.org})
	if err != nil {
		t.Fatal(err)
	}
	seen := false
	for _, j := range list.GetImportJobs() {
		seen = seen || j.GetName() == mine
		if j.GetCreator() != "users/"+e.anna.String() {
			t.Errorf("anna sees %s's job %s", j.GetCreator(), j.GetName())
		}
	}
	if !seen {
		t.Errorf("anna does not see her job %s: %v", mine, list)
	}
}

// TestAttackStrings: every string field of every request, at any depth,
// given a hostile value (the resource names too), is refused with
// InvalidArgument naming the field; nothing answers Internal.
func TestAttackStrings(t *testing.T) {
	e := startAttack(t)
	e.suite(e.job).Strings(t, e.admin)
}

// TestAttackPages: forged page tokens are refused by every method that
// pages, and a token of one query does not page another.
func TestAttackPages(t *testing.T) {
	e := startAttack(t)
	e.createJob(t, e.admin)
	page, err := e.client.ListImportJobs(e.admin, &importsv1.ListImportJobsRequest{Parent: e.org, PageSize: 1})
	if err != nil || page.GetNextPageToken() == "" {
		t.Fatalf("first page: %v, %v", page, err)
	}
	_, err = e.client.ListImportFailures(e.admin, &importsv1.ListImportFailuresRequest{Parent: e.job, PageToken: page.GetNextPageToken()})
	attacktest.WantCode(t, err, codes.InvalidArgument, "pageToken")
	_, err = e.client.ListImportJobs(e.admin, &importsv1.ListImportJobsRequest{Parent: e.org, ParentJob: e.job, PageToken: page.GetNextPageToken()})
	attacktest.WantCode(t, err, codes.InvalidArgument, "pageToken")
	e.suite(e.job).PageTokens(t, e.admin, page.GetNextPageToken())
}

// TestAttackBulkCaps: a bulk CSV's cells are held to the caps the API
// puts on the same fields of a single import (the proto's rules do not
// reach inside the CSV), each refusal naming its cell; nothing starts.
func TestAttackBulkCaps(t *testing.T) {
	e := startAttack(t)
	head := "source,login,password,destination,security,port,certificate_sha256\n"
	long := strings.Repeat("a", 255)
	for _, tc := range []struct{ name, row, cell string }{
		{"a login past 254 characters", "imap.example.net," + long + ",right,anna@example.test,,,", "csv line 2, column login"},
		{"a hosted source's login past 254 characters", "old@example.test," + long + ",right,anna@example.test,,,", "csv line 2, column login"},
		{"a password past 1024 bytes", "imap.example.net,a," + strings.Repeat("p", 1025) + ",anna@example.test,,,", "csv line 2, column password"},
		{"a destination past 254 characters", "imap.example.net,a,right," + long + "@example.test,,,", "csv line 2, column destination"},
		{"a source past 253 characters", strings.Repeat("a.", 127) + "example,a,right,anna@example.test,,,", "csv line 2, column source"},
		{"a tab in a login", "imap.example.net,a\tb,right,anna@example.test,,,", "csv line 2, column login"},
		{"a line break in a password", "imap.example.net,a,\"x\ny\",anna@example.test,,,", "csv line 2, column password"},
		{"a bad fingerprint", "imap.example.net,a,right,anna@example.test,,,abc", "csv line 2, column certificate_sha256"},
		{"an unknown security", "imap.example.net,a,right,anna@example.test,none,,", "csv line 2, column security"},
		{"a port of no number", "imap.example.net,a,right,anna@example.test,,0x3e1,", "csv line 2, column port"},
		{"a host with a scheme", "imaps://imap.example.net,a,right,anna@example.test,,,", "csv line 2, column source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.CreateBulkImport(e.admin, &importsv1.CreateBulkImportRequest{Parent: e.org, Csv: head + tc.row + "\n"})
			attacktest.WantCode(t, err, codes.InvalidArgument, tc.cell)
		})
	}
	list, err := e.client.ListImportJobs(e.admin, &importsv1.ListImportJobsRequest{Parent: e.org})
	if err != nil || len(list.GetImportJobs()) != 1 {
		t.Errorf("the jobs after the refusals: %v, %v; want the first alone", list, err)
	}
}

// TestAttackRebinding: a source's name that points to a public address
// when the job is checked and inside the network when it runs (DNS
// rebinding) reaches nothing: every connection to another provider's
// server, the check's and the runs', is held to public addresses, and a
// run refused so fails the job at once, saying why. Hosted sources are
// the platform's own server, not held to it.
func TestAttackRebinding(t *testing.T) {
	e := start(t, options{publicOnly: true})
	const host = "198.51.100.7" // public, as far as the check can tell
	e.copier.rebound = host
	dest := e.announce("anna")
	e.announce("old")
	created, err := e.client.CreateImportJob(e.admin, &importsv1.CreateImportJobRequest{Parent: "organizations/" + e.org.String(), ImportJob: &importsv1.ImportJob{
		Destination: dest, Sources: []*importsv1.Source{{Host: host, Login: "anna@example.net", Password: "right"}, {HostedEmail: "old@example.test", Password: "right"}}}})
	if err != nil {
		t.Fatal(err)
	}
	e.copier.mu.Lock()
	public := e.copier.public
	e.copier.mu.Unlock()
	if !public["anna@example.net"] || public["old@example.test"] {
		t.Errorf("the check's accounts held to public addresses: %v, want the provider's alone", public)
	}
	j := e.ended(e.admin, created.GetImportJob().GetName())
	if j.GetState() != importsv1.State_STATE_FAILED || !strings.Contains(j.GetError(), "private") {
		t.Errorf("the job after its source's name moved inside: %v, want failed saying why", j)
	}
	if e.passwords(j.GetName()) {
		t.Error("the passwords are kept after the job failed")
	}

	// The check itself refused (the name moved before it): the host is
	// named, as for a name that resolves inside at once.
	e.copier.mu.Lock()
	e.copier.refuse = func(a imapcopy.Account) error {
		if a.PublicOnly {
			return fmt.Errorf("dial %s:993: %w", a.Host, imapcopy.ErrPrivate)
		}
		return nil
	}
	e.copier.mu.Unlock()
	_, err = e.client.CreateImportJob(e.admin, &importsv1.CreateImportJobRequest{Parent: "organizations/" + e.org.String(), ImportJob: &importsv1.ImportJob{
		Destination: dest, Sources: []*importsv1.Source{{Host: host, Login: "anna@example.net", Password: "right"}}}})
	attacktest.WantCode(t, err, codes.InvalidArgument, "importJob.sources[0].host")
}

// TestAttackREST: through the REST edge, NUL in a path, a query or a
// body, and another organization's ids, get the service's answers as
// HTTP: 400 naming the field, 404, 403; never a 500.
func TestAttackREST(t *testing.T) {
	e := startAttack(t)
	base := e.edge() + "/v1/"
	other := uuid.Must(uuid.NewV7())
	theirs := strings.Replace(e.job, e.env.org.String(), other.String(), 1)
	source := map[string]any{"host": "imap.example.net", "login": "a", "password": "right"}
	nul := map[string]any{"host": "imap.example.net", "login": "a\x00b", "password": "right"}
	stranger := e.person(uuid.Must(uuid.NewV7()))
	for _, tc := range []struct {
		name, method, path string
		ctx                context.Context
		body               any
		code               int
		field              string
	}{
		{"NUL in a job's path", "GET", e.job + "%00", e.admin, nil, 400, "name"},
		{"NUL in the path of a cancel", "POST", e.job + "%00:cancel", e.admin, map[string]any{}, 400, "name"},
		{"NUL in the path of a watch", "GET", e.job + "%00:watch", e.admin, nil, 400, "name"},
		{"another organization's job watched", "GET", e.job + ":watch", e.as(other, "owner"), nil, 404, ""},
		{"a member watching a job not theirs", "GET", e.job + ":watch", stranger, nil, 403, ""},
		{"NUL in the path of the failures", "GET", e.job + "%00/failures", e.admin, nil, 400, "parent"},
		{"NUL in the organization of the template", "GET", e.org + "%00/importJobs:template", e.admin, nil, 400, "parent"},
		{"NUL in the organization of a create", "POST", e.org + "%00/importJobs", e.admin, map[string]any{"destination": e.dest, "sources": []any{source}}, 400, "parent"},
		{"NUL in the query", "GET", e.org + "/importJobs?parentJob=" + e.job + "%00", e.admin, nil, 400, "parentJob"},
		{"NUL in a source's login", "POST", e.org + "/importJobs", e.admin, map[string]any{"destination": e.dest, "sources": []any{nul}}, 400, "sources[0].login"},
		{"NUL in the destination", "POST", e.org + "/importJobs", e.admin, map[string]any{"destination": e.dest + "\x00", "sources": []any{source}}, 400, "destination"},
		{"NUL in the CSV", "POST", e.org + "/importJobs:bulkCreate", e.admin, map[string]any{"csv": bulkCSV + "\x00"}, 400, "csv"},
		{"another organization's job", "GET", e.job, e.as(other, "owner"), nil, 404, ""},
		{"another organization's job under its own", "GET", theirs, e.as(other, "owner"), nil, 404, ""},
		{"another organization's job cancelled", "POST", e.job + ":cancel", e.as(other, "owner"), map[string]any{}, 404, ""},
		{"another organization's failures", "GET", e.job + "/failures", e.as(other, "owner"), nil, 404, ""},
		{"another organization's jobs", "GET", e.org + "/importJobs", e.as(other, "owner"), nil, 404, ""},
		{"another organization's template", "GET", e.org + "/importJobs:template", e.as(other, "owner"), nil, 404, ""},
		{"another organization's bulk", "POST", e.org + "/importJobs:bulkCreate", e.as(other, "owner"), map[string]any{"csv": bulkCSV}, 404, ""},
		{"another organization's address", "POST", "organizations/" + other.String() + "/importJobs", e.as(other, "owner"), map[string]any{"destination": e.dest, "sources": []any{source}}, 404, ""},
		{"a member on a job not theirs", "GET", e.job, stranger, nil, 403, ""},
		{"a member cancelling a job not theirs", "POST", e.job + ":cancel", stranger, map[string]any{}, 403, ""},
		{"a member into an address not theirs", "POST", e.org + "/importJobs", stranger, map[string]any{"destination": e.dest, "sources": []any{source}}, 403, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := rest(t, tc.ctx, tc.method, base+tc.path, tc.body)
			if code != tc.code || !strings.Contains(string(body), tc.field) {
				t.Errorf("%d, want %d naming %q: %.300s", code, tc.code, tc.field, body)
			}
		})
	}
	got, err := e.client.GetImportJob(e.admin, &importsv1.GetImportJobRequest{Name: e.job})
	if err != nil || got.GetImportJob().GetState() != importsv1.State_STATE_CANCELLED {
		t.Errorf("the job after the attack: %v, %v", got, err)
	}
}

// TestAttackWatchAfterRemoval: a person watching the job they started
// is cut off once they are no longer a member of the organization,
// within the time a role is remembered, however long the job runs.
func TestAttackWatchAfterRemoval(t *testing.T) {
	e := startAttack(t)
	created, err := e.client.CreateImportJob(e.person(e.anna), &importsv1.CreateImportJobRequest{Parent: e.org, ImportJob: &importsv1.ImportJob{
		Destination: e.dest, Sources: []*importsv1.Source{server("imap.example.net")}}})
	if err != nil {
		t.Fatal(err)
	}
	// No job runs: the job stays pending, the stream open.
	ctx, cancel := context.WithTimeout(e.person(e.anna), time.Minute)
	defer cancel()
	stream, err := e.client.WatchImportJob(ctx, &importsv1.WatchImportJobRequest{Name: created.GetImportJob().GetName()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("the job now: %v", err)
	}
	e.accounts.removed.Store(e.anna.String(), true)
	_, err = stream.Recv()
	attacktest.WantCode(t, err, codes.NotFound, "")
}

// TestAttackWatchCap: an organization's watches open at once are capped
// (each reads its job twice a second while open): past the cap a watch
// is refused RESOURCE_EXHAUSTED, and one closed makes room.
func TestAttackWatchCap(t *testing.T) {
	e := start(t, options{limits: imports.Limits{Watches: 2}, noWork: true})
	dest := e.announce("anna")
	created, err := e.client.CreateImportJob(e.admin, &importsv1.CreateImportJobRequest{Parent: "organizations/" + e.org.String(), ImportJob: &importsv1.ImportJob{
		Destination: dest, Sources: []*importsv1.Source{server("imap.example.net")}}})
	if err != nil {
		t.Fatal(err)
	}
	req := &importsv1.WatchImportJobRequest{Name: created.GetImportJob().GetName()}
	// open watches the pending job (its stream stays open) and returns
	// the stream's cancel and the first answer's error.
	open := func() (context.CancelFunc, error) {
		ctx, cancel := context.WithCancel(e.admin)
		t.Cleanup(cancel)
		stream, err := e.client.WatchImportJob(ctx, req)
		if err != nil {
			return cancel, err
		}
		_, err = stream.Recv()
		return cancel, err
	}
	var first context.CancelFunc
	for i := range 2 {
		cancel, err := open()
		if err != nil {
			t.Fatalf("watch %d: %v", i+1, err)
		}
		if i == 0 {
			first = cancel
		}
	}
	_, err = open()
	attacktest.WantCode(t, err, codes.ResourceExhausted, "")
	first()
	e.eventually("a watch closed makes room", func() bool {
		cancel, err := open()
		if err != nil {
			cancel()
		}
		return err == nil
	})
}

// TestAttackHostileFolder: a source server listing a folder whose name
// PostgreSQL cannot hold (NUL, "&AAA-" in modified UTF-7) or holding
// escapes and bidi controls does not break the job: the folder keeps no
// checkpoint, and its failures are listed with those characters made
// U+FFFD (NUL dropped), as screens and the confirmation show them.
func TestAttackHostileFolder(t *testing.T) {
	e := start(t, options{})
	const hostile = "Archive\x00\x1b[31m\u202e"
	e.copier.folders = []string{"INBOX", hostile}
	dest := e.announce("anna")
	created, err := e.client.CreateImportJob(e.admin, &importsv1.CreateImportJobRequest{Parent: "organizations/" + e.org.String(), ImportJob: &importsv1.ImportJob{
		Destination: dest, Sources: []*importsv1.Source{server("imap.example.net")}}})
	if err != nil {
		t.Fatal(err)
	}
	j := e.ended(e.admin, created.GetImportJob().GetName())
	if j.GetState() != importsv1.State_STATE_SUCCEEDED || j.GetProgress().GetFoldersDone() != 2 {
		t.Fatalf("the job: %v, want succeeded with both folders", j)
	}
	fails, err := e.client.ListImportFailures(e.admin, &importsv1.ListImportFailuresRequest{Parent: j.GetName()})
	if err != nil || len(fails.GetFailures()) != 1 {
		t.Fatalf("failures %v, %v", fails, err)
	}
	if f := fails.GetFailures()[0]; f.GetFolder() != "Archive\uFFFD[31m\uFFFD" || f.GetSubject() != "Too big" {
		t.Errorf("failure %q in %q, want the controls replaced", f.GetSubject(), f.GetFolder())
	}
}

// TestAttackHostedProbe: asking for imports from hosted addresses that
// do not exist (refused at once, the answer a wrong password gets)
// counts against the organization's hourly source logins like a login:
// nobody can test which addresses are hosted here as often as they like.
func TestAttackHostedProbe(t *testing.T) {
	e := start(t, options{limits: imports.Limits{ChecksPerHour: 3}, noWork: true})
	dest := e.announce("anna")
	probe := func(email string) error {
		_, err := e.client.CreateImportJob(e.admin, &importsv1.CreateImportJobRequest{Parent: "organizations/" + e.org.String(),
			ImportJob: &importsv1.ImportJob{Destination: dest, Sources: []*importsv1.Source{{HostedEmail: email, Password: "guess"}}}})
		return err
	}
	for i := range 3 {
		attacktest.WantCode(t, probe(fmt.Sprintf("nobody%d@example.test", i)), codes.InvalidArgument, "importJob.sources[0].password")
	}
	attacktest.WantCode(t, probe("nobody3@example.test"), codes.ResourceExhausted, "")
}
