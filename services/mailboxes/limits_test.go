package mailboxes_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/mailboxes"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// TestAddressCaps: an address holds at most 50 aliases and 100 users, on
// create and update, and a taken alias among many is named.
func TestAddressCaps(t *testing.T) {
	e := start(t)
	owner := e.person(t, "owner@example.com")
	ms, err := e.services.CreateMailService(owner.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: owner.org, MailService: &mailboxesv1.MailService{Domain: "example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	create := func(a *mailboxesv1.Address, acc *mailboxesv1.AddressAccess) (*mailboxesv1.Address, error) {
		resp, err := e.addrs.CreateAddress(owner.ctx, &mailboxesv1.CreateAddressRequest{Parent: ms.MailService.Name, Address: a, Access: acc})
		return resp.GetAddress(), err
	}
	_, err = create(&mailboxesv1.Address{LocalPart: "many", Aliases: names("m", 51)}, nil)
	if wantCode(t, err, codes.InvalidArgument); field(err) != "address.aliases" {
		t.Errorf("51 aliases: field %q", field(err))
	}
	_, err = create(&mailboxesv1.Address{LocalPart: "crowd"}, &mailboxesv1.AddressAccess{InviteEmails: strings.Split(strings.Join(names("p", 101), "@x.example ")+"@x.example", " ")})
	if wantCode(t, err, codes.InvalidArgument); field(err) != "access" {
		t.Errorf("101 invitees: field %q", field(err))
	}
	if _, err := create(&mailboxesv1.Address{LocalPart: "taken", Aliases: []string{"a30"}}, nil); err != nil {
		t.Fatal(err)
	}
	a, err := create(&mailboxesv1.Address{LocalPart: "fifty", Aliases: names("b", 50)}, nil)
	if err != nil {
		t.Fatalf("50 aliases: %v", err)
	}
	update := func(aliases []string) error {
		_, err := e.addrs.UpdateAddress(owner.ctx, &mailboxesv1.UpdateAddressRequest{Address: &mailboxesv1.Address{Name: a.Name, Aliases: aliases},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"aliases"}}})
		return err
	}
	err = update(names("c", 51))
	if wantCode(t, err, codes.InvalidArgument); field(err) != "address.aliases" {
		t.Errorf("update to 51 aliases: field %q", field(err))
	}
	err = update(names("a", 50))
	if wantCode(t, err, codes.InvalidArgument); field(err) != "address.aliases[30]" {
		t.Errorf("update with a taken alias: field %q (%v)", field(err), err)
	}
	got, err := e.addrs.GetAddress(owner.ctx, &mailboxesv1.GetAddressRequest{Name: a.Name})
	if err != nil || len(got.Address.Aliases) != 50 || got.Address.Aliases[0] != "b0" {
		t.Errorf("after the refused updates: %v, %v", got.GetAddress().GetAliases(), err)
	}
	if err := update(names("a", 30)); err != nil {
		t.Errorf("update to 30 free aliases: %v", err)
	}
	if _, err := create(&mailboxesv1.Address{LocalPart: "b0"}, nil); err != nil {
		t.Errorf("an alias given up is free: %v", err)
	}
}

// TestBulkLimits: an organization has at most BulkJobsRunning jobs running
// and BulkUploadsPerHour uploads starting one per hour; over either, 429
// with when to retry. Uploading a file whose job exists costs nothing.
func TestBulkLimits(t *testing.T) {
	e := startWith(t, mailboxes.Config{BulkJobsRunning: 1, BulkUploadsPerHour: 2})
	ctx := context.Background()
	owner := e.person(t, "owner@example.com")
	ms, err := e.services.CreateMailService(owner.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: owner.org, MailService: &mailboxesv1.MailService{Domain: "acme.example"}})
	if err != nil {
		t.Fatal(err)
	}
	bulk := mailboxesv1.NewBulkServiceClient(e.cc)
	upload := func(data []byte) (*mailboxesv1.BulkJob, error) {
		resp, err := bulk.CreateBulkJob(owner.ctx, &mailboxesv1.CreateBulkJobRequest{Parent: ms.MailService.Name, Csv: data})
		return resp.GetJob(), err
	}
	exhausted := func(err error, reason string) {
		t.Helper()
		st := wantCode(t, err, codes.ResourceExhausted)
		var gotReason string
		var retry bool
		for _, d := range st.Details() {
			switch d := d.(type) {
			case *errdetails.ErrorInfo:
				gotReason = d.GetReason()
			case *errdetails.RetryInfo:
				retry = d.GetRetryDelay().AsDuration() > 0
			}
		}
		if gotReason != reason || !retry || st.Message() == "" {
			t.Errorf("reason %q, retry delay %v, message %q; want %q, a delay and a message", gotReason, retry, st.Message(), reason)
		}
	}

	first, err := upload(bulkCSV(0, 10))
	if err != nil {
		t.Fatal(err)
	}
	waitBulkJob(t, bulk, owner.ctx, first.Name)
	// As if it were still running, its run to be retried. Not "running":
	// River's completer, finishing the real run a moment later on a busy
	// machine, would turn a running job back to completed, and the next
	// upload would take the job over.
	if _, err := e.pool.Exec(ctx, "UPDATE bulk_jobs SET state = 'running', end_time = NULL, update_time = now()"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, "UPDATE river_job SET state = 'retryable', scheduled_at = now() + interval '1 hour', finalized_at = NULL WHERE kind = 'bulk_create'"); err != nil {
		t.Fatal(err)
	}
	_, err = upload(bulkCSV(10, 20))
	exhausted(err, "BULK_JOBS_RUNNING")
	if again, err := upload(bulkCSV(0, 10)); err != nil || again.Name != first.Name {
		t.Errorf("the running job's file again: %v, %v", again, err)
	}
	if _, err := e.pool.Exec(ctx, "UPDATE bulk_jobs SET state = 'succeeded', end_time = now()"); err != nil {
		t.Fatal(err)
	}
	second, err := upload(bulkCSV(10, 20))
	if err != nil {
		t.Fatalf("once the first job ended: %v", err)
	}
	waitBulkJob(t, bulk, owner.ctx, second.Name)
	_, err = upload(bulkCSV(20, 30))
	exhausted(err, "BULK_UPLOADS_PER_HOUR")
	var jobs int
	if err := e.pool.QueryRow(ctx, "SELECT count(*) FROM bulk_jobs").Scan(&jobs); err != nil || jobs != 2 {
		t.Errorf("%d jobs (%v), want 2", jobs, err)
	}
}
