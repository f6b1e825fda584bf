package mailboxes_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/uuid"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
)

// TestIdempotentCreates: a create retried with its key (request_id, or
// the idempotency-key metadata) answers what the first made, once, even
// when the retries race; the key reused for another request is refused.
func TestIdempotentCreates(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	owner := e.person(t, "owner@example.com")
	ms, err := e.services.CreateMailService(owner.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: owner.org, MailService: &mailboxesv1.MailService{Domain: "example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	parent := ms.MailService.Name
	createAddress := func(ctx context.Context, key, local string) (*mailboxesv1.Address, error) {
		resp, err := e.addrs.CreateAddress(ctx, &mailboxesv1.CreateAddressRequest{Parent: parent, RequestId: key,
			Address: &mailboxesv1.Address{LocalPart: local}, Access: &mailboxesv1.AddressAccess{Caller: true}})
		return resp.GetAddress(), err
	}
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := e.pool.QueryRow(ctx, q, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	key := uuid.NewString()
	first, err := createAddress(owner.ctx, key, "sales")
	if err != nil {
		t.Fatal(err)
	}
	again, err := createAddress(owner.ctx, key, "sales")
	if err != nil || again.Name != first.Name {
		t.Errorf("retry: %v, %v; want %s", again.GetName(), err, first.Name)
	}
	// The key in the metadata, as the edge sends the Idempotency-Key header.
	byHeader, err := createAddress(metadata.AppendToOutgoingContext(owner.ctx, "idempotency-key", key), "", "sales")
	if err != nil || byHeader.Name != first.Name {
		t.Errorf("retry with the key in metadata: %v, %v; want %s", byHeader.GetName(), err, first.Name)
	}
	if n := count("SELECT count(*) FROM addresses WHERE local_key = 'sales'"); n != 1 {
		t.Errorf("%d addresses, want 1", n)
	}
	// Without a key, a second create is refused as before.
	_, err = createAddress(owner.ctx, "", "sales")
	wantCode(t, err, codes.AlreadyExists)
	// The key for another request.
	_, err = createAddress(owner.ctx, key, "support")
	st := wantCode(t, err, codes.Aborted)
	if reason := errorReason(st.Details()); reason != "IDEMPOTENCY_KEY_REUSED" {
		t.Errorf("reason %q", reason)
	}
	_, err = createAddress(owner.ctx, "nope", "support")
	if wantCode(t, err, codes.InvalidArgument); field(err) != "requestId" {
		t.Errorf("a bad key: field %q", field(err))
	}

	// Ten retries racing: one address.
	key = uuid.NewString()
	var wg sync.WaitGroup
	names := make([]string, 10)
	errs := make([]error, 10)
	for i := range names {
		wg.Go(func() {
			a, err := createAddress(owner.ctx, key, "race")
			names[i], errs[i] = a.GetName(), err
		})
	}
	wg.Wait()
	for i := range names {
		if errs[i] != nil || names[i] != names[0] {
			t.Errorf("racing create %d: %q, %v; want %q", i, names[i], errs[i], names[0])
		}
	}
	if n := count("SELECT count(*) FROM addresses WHERE local_key = 'race'"); n != 1 {
		t.Errorf("%d racing addresses, want 1", n)
	}

	// The other creates.
	key = uuid.NewString()
	sigs := mailboxesv1.NewSignatureServiceClient(e.cc)
	var sigNames []string
	for range 2 {
		resp, err := sigs.CreateSignature(owner.ctx, &mailboxesv1.CreateSignatureRequest{Parent: parent, RequestId: key, Signature: &mailboxesv1.Signature{DisplayName: "Team", Template: "{{name}}"}})
		if err != nil {
			t.Fatalf("signature: %v", err)
		}
		sigNames = append(sigNames, resp.Signature.Name)
	}
	devices := mailboxesv1.NewDevicePasswordServiceClient(e.cc)
	var dpNames []string
	for range 2 {
		resp, err := devices.CreateDevicePassword(owner.ctx, &mailboxesv1.CreateDevicePasswordRequest{Parent: first.Name, RequestId: key, DevicePassword: &mailboxesv1.DevicePassword{DeviceName: "phone"}})
		if err != nil {
			t.Fatalf("device password: %v", err)
		}
		dpNames = append(dpNames, resp.DevicePassword.Name)
	}
	var resNames []string
	for range 2 {
		resp, err := e.reserve.CreateReservation(owner.ctx, &mailboxesv1.CreateReservationRequest{Parent: parent, RequestId: key, LocalPart: "lists", Holder: "lists"})
		if err != nil {
			t.Fatalf("reservation: %v", err)
		}
		resNames = append(resNames, resp.Name)
	}
	bulk := mailboxesv1.NewBulkServiceClient(e.cc)
	var jobNames []string
	for i := range 2 {
		// The second upload is of another file: the key decides.
		resp, err := bulk.CreateBulkJob(owner.ctx, &mailboxesv1.CreateBulkJobRequest{Parent: parent, RequestId: key, Csv: bulkCSV(100, 110)})
		if err != nil {
			t.Fatalf("bulk job %d: %v", i, err)
		}
		jobNames = append(jobNames, resp.Job.Name)
	}
	var msNames []string
	for range 2 {
		resp, err := e.services.CreateMailService(owner.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: owner.org, RequestId: key, MailService: &mailboxesv1.MailService{Domain: "retried.example"}})
		if err != nil {
			t.Fatalf("mail service: %v", err)
		}
		msNames = append(msNames, resp.MailService.Name)
	}
	for what, names := range map[string][]string{"mail service": msNames, "signature": sigNames, "device password": dpNames, "reservation": resNames, "bulk job": jobNames} {
		if names[0] != names[1] {
			t.Errorf("%s retried: %q", what, names)
		}
	}
	if n := count("SELECT count(*) FROM device_passwords"); n != 1 {
		t.Errorf("%d device passwords, want 1", n)
	}
	if n := count("SELECT count(*) FROM idempotency_keys"); n != 7 {
		t.Errorf("%d keys kept, want 7: two addresses, five other creates", n)
	}
}

func errorReason(details []any) string {
	for _, d := range details {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei.GetReason()
		}
	}
	return ""
}
