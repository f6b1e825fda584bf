package mailboxes_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestSignatures(t *testing.T) {
	e := start(t)
	owner := e.person(t, "owner@example.com")
	anna := e.person(t, "anna@example.com") // uses sales@, default rights
	bob := e.person(t, "bob@example.com")   // uses sales@, devices only
	carl := e.person(t, "carl@example.com") // a member not using sales@
	for _, m := range []struct {
		p     person
		email string
	}{{anna, "anna@example.com"}, {bob, "bob@example.com"}, {carl, "carl@example.com"}} {
		e.join(t, owner, m.p, m.email, accountsv1.Role_ROLE_MEMBER)
	}
	stranger := e.person(t, "stranger@example.com")
	sigs := mailboxesv1.NewSignatureServiceClient(e.conn(t))
	newService := func(domain string) string {
		t.Helper()
		ms, err := e.createVerified(t, owner.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: owner.org, MailService: &mailboxesv1.MailService{Domain: domain}})
		if err != nil {
			t.Fatal(err)
		}
		return ms.MailService.Name
	}
	parent, otherParent := newService("acme.example"), newService("other.example")
	create := func(p person, parent, display, template string) (*mailboxesv1.Signature, error) {
		resp, err := sigs.CreateSignature(p.ctx, &mailboxesv1.CreateSignatureRequest{Parent: parent, Signature: &mailboxesv1.Signature{DisplayName: display, Template: template}})
		return resp.GetSignature(), err
	}

	// Templates.
	sales, err := create(owner, parent, " Sales ", "{{name}}\n{{ email }} · {{organization}}")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sales.Name, parent+"/signatures/") || sales.DisplayName != "Sales" || sales.Template != "{{name}}\n{{ email }} · {{organization}}" || sales.CreateTime == nil {
		t.Errorf("created %v", sales)
	}
	support, err := create(owner, parent, "Support", "The support team")
	if err != nil {
		t.Fatal(err)
	}
	other, err := create(owner, otherParent, "Sales", "Other {{name}}")
	if err != nil {
		t.Fatalf("the same display name on another mail service: %v", err)
	}
	for _, tt := range []struct {
		name                      string
		p                         person
		parent, display, template string
		code                      codes.Code
		field                     string
	}{
		{"blank display name", owner, parent, " ", "x", codes.InvalidArgument, "signature.displayName"},
		{"unknown placeholder", owner, parent, "Phone", "Call {{phone}}", codes.InvalidArgument, "signature.template"},
		{"unclosed placeholder", owner, parent, "Phone", "{{name", codes.InvalidArgument, "signature.template"},
		{"blank template", owner, parent, "Phone", "", codes.InvalidArgument, "signature.template"},
		{"display name taken, other case", owner, parent, "SALES", "x", codes.AlreadyExists, ""},
		{"bad parent", owner, owner.org, "X", "x", codes.InvalidArgument, "parent"},
		{"a member", anna, parent, "Anna's", "x", codes.PermissionDenied, ""},
		{"another organization", stranger, parent, "X", "x", codes.NotFound, ""},
		{"another organization's parent in its own name", stranger, strings.Replace(parent, owner.org, stranger.org, 1), "X", "x", codes.NotFound, ""},
	} {
		t.Run("create/"+tt.name, func(t *testing.T) {
			_, err := create(tt.p, tt.parent, tt.display, tt.template)
			wantCode(t, err, tt.code)
			if field(err) != tt.field {
				t.Errorf("field %q, want %q", field(err), tt.field)
			}
		})
	}

	// Every member lists them, by display name; others may not.
	for _, p := range []person{owner, anna, carl} {
		list, err := sigs.ListSignatures(p.ctx, &mailboxesv1.ListSignaturesRequest{Parent: parent})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, s := range list.Signatures {
			names = append(names, s.DisplayName)
		}
		if got := strings.Join(names, ","); got != "Sales,Support" {
			t.Errorf("%s lists %s", p.user, got)
		}
	}
	_, err = sigs.ListSignatures(stranger.ctx, &mailboxesv1.ListSignaturesRequest{Parent: parent})
	wantCode(t, err, codes.NotFound)

	update := func(p person, name, display, template string, paths ...string) (*mailboxesv1.Signature, error) {
		resp, err := sigs.UpdateSignature(p.ctx, &mailboxesv1.UpdateSignatureRequest{
			Signature: &mailboxesv1.Signature{Name: name, DisplayName: display, Template: template}, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}})
		return resp.GetSignature(), err
	}
	renamed, err := update(owner, support.Name, "Help desk", "ignored", "display_name")
	if err != nil || renamed.DisplayName != "Help desk" || renamed.Template != "The support team" {
		t.Fatalf("rename: %v %v", renamed, err)
	}
	both, err := update(owner, support.Name, "Help desk", "{{name}}, help desk")
	if err != nil || both.Template != "{{name}}, help desk" {
		t.Fatalf("update without a mask: %v %v", both, err)
	}
	for _, tt := range []struct {
		name, sig, display, template string
		paths                        []string
		p                            person
		code                         codes.Code
		field                        string
	}{
		{"unknown placeholder", support.Name, "", "{{title}}", []string{"template"}, owner, codes.InvalidArgument, "signature.template"},
		{"blank display name", support.Name, "", "", []string{"displayName"}, owner, codes.InvalidArgument, "signature.displayName"},
		{"display name taken", support.Name, "sales", "", []string{"display_name"}, owner, codes.AlreadyExists, ""},
		{"unknown field", support.Name, "", "", []string{"create_time"}, owner, codes.InvalidArgument, "updateMask"},
		{"a member", support.Name, "Mine", "", []string{"display_name"}, anna, codes.PermissionDenied, ""},
		{"another organization", support.Name, "Mine", "", []string{"display_name"}, stranger, codes.NotFound, ""},
		{"another mail service", strings.Replace(support.Name, parent, otherParent, 1), "Mine", "", []string{"display_name"}, owner, codes.NotFound, ""},
	} {
		t.Run("update/"+tt.name, func(t *testing.T) {
			_, err := update(tt.p, tt.sig, tt.display, tt.template, tt.paths...)
			wantCode(t, err, tt.code)
			if field(err) != tt.field {
				t.Errorf("field %q, want %q", field(err), tt.field)
			}
		})
	}

	// Addresses choose one.
	addr, err := e.addrs.CreateAddress(owner.ctx, &mailboxesv1.CreateAddressRequest{Parent: parent, Address: &mailboxesv1.Address{LocalPart: "sales"}})
	if err != nil {
		t.Fatal(err)
	}
	salesAddr := addr.Address.Name
	if _, err := e.addrs.UpdateAddress(owner.ctx, &mailboxesv1.UpdateAddressRequest{
		Address: &mailboxesv1.Address{Name: salesAddr, Users: []*mailboxesv1.AddressUser{
			{User: anna.user}, {User: bob.user, Rights: &mailboxesv1.Rights{Devices: true}}}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"users"}},
	}); err != nil {
		t.Fatal(err)
	}
	choose := func(p person, sig string, paths ...string) (*mailboxesv1.Address, error) {
		if len(paths) == 0 {
			paths = []string{"signature"}
		}
		resp, err := e.addrs.UpdateAddress(p.ctx, &mailboxesv1.UpdateAddressRequest{
			Address: &mailboxesv1.Address{Name: salesAddr, Signature: sig, QuotaBytes: 1}, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}})
		return resp.GetAddress(), err
	}
	if a, err := choose(owner, sales.Name); err != nil || a.Signature != sales.Name {
		t.Fatalf("owner chooses: %v %v", a, err)
	}
	if a, err := e.addrs.GetAddress(anna.ctx, &mailboxesv1.GetAddressRequest{Name: salesAddr}); err != nil || a.Address.Signature != sales.Name {
		t.Fatalf("anna sees: %v %v", a, err)
	}
	if a, err := choose(anna, support.Name); err != nil || a.Signature != support.Name || a.QuotaBytes != 0 {
		t.Fatalf("anna (default rights) chooses: %v %v", a, err)
	}
	for _, tt := range []struct {
		name  string
		p     person
		sig   string
		paths []string
		code  codes.Code
		field string
	}{
		{"another mail service's signature", owner, other.Name, nil, codes.InvalidArgument, "address.signature"},
		{"no such signature", owner, strings.Replace(sales.Name, sales.Name[strings.LastIndex(sales.Name, "/")+1:], "0197a000-0000-7000-8000-000000000000", 1), nil, codes.InvalidArgument, "address.signature"},
		{"not a signature name", owner, parent, nil, codes.InvalidArgument, "address.signature"},
		{"a member changing more than the signature", anna, sales.Name, []string{"signature", "quota_bytes"}, codes.PermissionDenied, ""},
		{"a member without the signatures right", bob, sales.Name, nil, codes.PermissionDenied, ""},
		{"a member not using the address", carl, sales.Name, nil, codes.NotFound, ""},
		{"another organization", stranger, sales.Name, nil, codes.NotFound, ""},
	} {
		t.Run("choose/"+tt.name, func(t *testing.T) {
			_, err := choose(tt.p, tt.sig, tt.paths...)
			wantCode(t, err, tt.code)
			if field(err) != tt.field {
				t.Errorf("field %q, want %q", field(err), tt.field)
			}
		})
	}
	if a, err := choose(anna, ""); err != nil || a.Signature != "" {
		t.Fatalf("anna clears: %v %v", a, err)
	}

	// Deleting a template leaves its addresses without one.
	if _, err := choose(owner, support.Name); err != nil {
		t.Fatal(err)
	}
	_, err = sigs.DeleteSignature(anna.ctx, &mailboxesv1.DeleteSignatureRequest{Name: support.Name})
	wantCode(t, err, codes.PermissionDenied)
	_, err = sigs.DeleteSignature(stranger.ctx, &mailboxesv1.DeleteSignatureRequest{Name: support.Name})
	wantCode(t, err, codes.NotFound)
	if _, err := sigs.DeleteSignature(owner.ctx, &mailboxesv1.DeleteSignatureRequest{Name: support.Name}); err != nil {
		t.Fatal(err)
	}
	_, err = sigs.DeleteSignature(owner.ctx, &mailboxesv1.DeleteSignatureRequest{Name: support.Name})
	wantCode(t, err, codes.NotFound)
	if a, err := e.addrs.GetAddress(owner.ctx, &mailboxesv1.GetAddressRequest{Name: salesAddr}); err != nil || a.Address.Signature != "" {
		t.Fatalf("after the deletion: %v %v", a, err)
	}
	if list, _ := sigs.ListSignatures(owner.ctx, &mailboxesv1.ListSignaturesRequest{Parent: parent}); len(list.GetSignatures()) != 1 {
		t.Errorf("after the deletion: %v", list)
	}

	// At most 100 per mail service.
	msID := parent[strings.LastIndex(parent, "/")+1:]
	if _, err := e.pool.Exec(context.Background(), `INSERT INTO signatures (id, mail_service_id, display_name, template)
SELECT gen_random_uuid(), $1, 'filler ' || g, 'x' FROM generate_series(1, 99) g`, msID); err != nil {
		t.Fatal(err)
	}
	_, err = create(owner, parent, "One too many", "x")
	wantCode(t, err, codes.ResourceExhausted)

	var audits int
	e.pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE subject = 'mailboxes.audit.recorded'`).Scan(&audits)
	if audits < 12 {
		t.Errorf("%d audit records", audits)
	}
}

func TestAutoReply(t *testing.T) {
	e := start(t)
	owner := e.person(t, "owner@example.com")
	anna := e.person(t, "anna@example.com") // uses sales@, default rights
	bob := e.person(t, "bob@example.com")   // uses sales@, without the auto-reply right
	carl := e.person(t, "carl@example.com") // a member not using sales@
	for _, m := range []struct {
		p     person
		email string
	}{{anna, "anna@example.com"}, {bob, "bob@example.com"}, {carl, "carl@example.com"}} {
		e.join(t, owner, m.p, m.email, accountsv1.Role_ROLE_MEMBER)
	}
	stranger := e.person(t, "stranger@example.com")
	ms, err := e.createVerified(t, owner.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: owner.org, MailService: &mailboxesv1.MailService{Domain: "acme.example"}})
	if err != nil {
		t.Fatal(err)
	}
	parent := ms.MailService.Name
	addr, err := e.addrs.CreateAddress(owner.ctx, &mailboxesv1.CreateAddressRequest{Parent: parent, Address: &mailboxesv1.Address{LocalPart: "sales"}})
	if err != nil {
		t.Fatal(err)
	}
	setUsers := func(bobRights *mailboxesv1.Rights) {
		t.Helper()
		if _, err := e.addrs.UpdateAddress(owner.ctx, &mailboxesv1.UpdateAddressRequest{
			Address: &mailboxesv1.Address{Name: addr.Address.Name, Users: []*mailboxesv1.AddressUser{
				{User: anna.user}, {User: bob.user, Rights: bobRights}}},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"users"}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	setUsers(&mailboxesv1.Rights{Devices: true, Filters: true, Signatures: true})
	name := addr.Address.Name + "/autoReply"
	get := func(p person) (*mailboxesv1.AutoReply, error) {
		resp, err := e.addrs.GetAutoReply(p.ctx, &mailboxesv1.GetAutoReplyRequest{Name: name})
		return resp.GetAutoReply(), err
	}
	set := func(p person, ar *mailboxesv1.AutoReply) (*mailboxesv1.AutoReply, error) {
		if ar.Name == "" {
			ar.Name = name
		}
		resp, err := e.addrs.UpdateAutoReply(p.ctx, &mailboxesv1.UpdateAutoReplyRequest{AutoReply: ar})
		return resp.GetAutoReply(), err
	}

	// Never set: off, the default interval.
	if ar, err := get(owner); err != nil || ar.Name != name || ar.Enabled || ar.IntervalDays != 7 || ar.StartTime != nil {
		t.Fatalf("unset: %v %v", ar, err)
	}

	// A user with the default rights sets it.
	now := time.Now().Truncate(time.Second)
	start, end := now.Add(-time.Hour), now.Add(7*24*time.Hour)
	ar, err := set(anna, &mailboxesv1.AutoReply{Enabled: true, Subject: "Away", Message: "Back on Monday.\r\nAnna",
		StartTime: timestamppb.New(start), EndTime: timestamppb.New(end)})
	if err != nil {
		t.Fatal(err)
	}
	if !ar.Enabled || ar.Subject != "Away" || ar.Message != "Back on Monday.\nAnna" || ar.IntervalDays != 7 ||
		!ar.StartTime.AsTime().Equal(start) || !ar.EndTime.AsTime().Equal(end) {
		t.Errorf("set: %v", ar)
	}
	if got, err := get(anna); err != nil || got.Message != ar.Message || !got.EndTime.AsTime().Equal(end) {
		t.Errorf("read back: %v %v", got, err)
	}
	// Every field at once: unset dates go.
	if ar, err := set(owner, &mailboxesv1.AutoReply{Message: "Gone", IntervalDays: 30}); err != nil || ar.Enabled || ar.StartTime != nil || ar.IntervalDays != 30 {
		t.Errorf("owner turns it off: %v %v", ar, err)
	}

	for _, tt := range []struct {
		name  string
		p     person
		ar    *mailboxesv1.AutoReply
		code  codes.Code
		field string
	}{
		{"end before start", anna, &mailboxesv1.AutoReply{Enabled: true, Message: "x", StartTime: timestamppb.New(end), EndTime: timestamppb.New(start)}, codes.InvalidArgument, "autoReply.endTime"},
		{"on with an ended period", anna, &mailboxesv1.AutoReply{Enabled: true, Message: "x", EndTime: timestamppb.New(start)}, codes.InvalidArgument, "autoReply.endTime"},
		{"on without a message", anna, &mailboxesv1.AutoReply{Enabled: true}, codes.InvalidArgument, "autoReply.message"},
		{"interval of 31 days", anna, &mailboxesv1.AutoReply{IntervalDays: 31}, codes.InvalidArgument, "autoReply.intervalDays"},
		{"long subject", anna, &mailboxesv1.AutoReply{Subject: strings.Repeat("x", 201)}, codes.InvalidArgument, "autoReply.subject"},
		{"not an auto-reply name", anna, &mailboxesv1.AutoReply{Name: addr.Address.Name}, codes.InvalidArgument, "autoReply.name"},
		{"without the auto-reply right", bob, &mailboxesv1.AutoReply{}, codes.PermissionDenied, ""},
		{"a member not using the address", carl, &mailboxesv1.AutoReply{}, codes.NotFound, ""},
		{"another organization", stranger, &mailboxesv1.AutoReply{}, codes.NotFound, ""},
	} {
		t.Run("update/"+tt.name, func(t *testing.T) {
			_, err := set(tt.p, tt.ar)
			wantCode(t, err, tt.code)
			if field(err) != tt.field {
				t.Errorf("field %q, want %q", field(err), tt.field)
			}
		})
	}
	for _, tt := range []struct {
		name string
		p    person
		code codes.Code
	}{
		{"without the auto-reply right", bob, codes.PermissionDenied},
		{"a member not using the address", carl, codes.NotFound},
		{"another organization", stranger, codes.NotFound},
	} {
		t.Run("get/"+tt.name, func(t *testing.T) {
			_, err := get(tt.p)
			wantCode(t, err, tt.code)
		})
	}
	_, err = e.addrs.GetAutoReply(owner.ctx, &mailboxesv1.GetAutoReplyRequest{Name: addr.Address.Name + "/autoreply"})
	if wantCode(t, err, codes.InvalidArgument); field(err) != "name" {
		t.Errorf("field %q", field(err))
	}

	// Given the right, bob may.
	setUsers(&mailboxesv1.Rights{AutoReply: true})
	if _, err := get(bob); err != nil {
		t.Errorf("bob with the right: %v", err)
	}

	// Only a mailbox answers mail.
	fw, err := e.addrs.CreateAddress(owner.ctx, &mailboxesv1.CreateAddressRequest{Parent: parent, Address: &mailboxesv1.Address{
		LocalPart: "fw", Kind: mailboxesv1.AddressKind_ADDRESS_KIND_REDIRECT, RedirectDestinations: []string{"boss@elsewhere.example"}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = set(owner, &mailboxesv1.AutoReply{Name: fw.Address.Name + "/autoReply", Enabled: true, Message: "x"})
	wantCode(t, err, codes.FailedPrecondition)

	// Each change carries the auto-reply and its script, which whatever
	// installs scripts takes as it is: anna's, then none once it is off.
	evRows, err := e.pool.Query(context.Background(), `SELECT payload FROM outbox WHERE subject = 'mailboxes.auto_reply.updated' ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	payloads, err := pgx.CollectRows(evRows, pgx.RowTo[[]byte])
	if err != nil || len(payloads) != 2 {
		t.Fatalf("%d auto-reply events, want 2 (%v)", len(payloads), err)
	}
	for i, want := range []struct {
		enabled bool
		script  []string
	}{
		{true, []string{`:subject "Away"`, "text:\nBack on Monday.\nAnna\n.\n", start.UTC().Format("2006-01-02T15:04:05Z")}},
		{false, nil},
	} {
		var ev mailboxesv1.AddressChanged
		if err := proto.Unmarshal(payloads[i], &ev); err != nil {
			t.Fatal(err)
		}
		if ev.GetAutoReply().GetName() != name || ev.GetAutoReply().GetEnabled() != want.enabled || ev.GetLogin() != "sales@acme.example" {
			t.Errorf("event %d: %v", i, &ev)
		}
		if (ev.GetVacationSieve() != "") != want.enabled {
			t.Errorf("event %d: script %q", i, ev.GetVacationSieve())
		}
		for _, w := range want.script {
			if !strings.Contains(ev.GetVacationSieve(), w) {
				t.Errorf("event %d: no %q in the script:\n%s", i, w, ev.GetVacationSieve())
			}
		}
	}
	// It goes with its address.
	if _, err := e.addrs.DeleteAddress(owner.ctx, &mailboxesv1.DeleteAddressRequest{Name: addr.Address.Name}); err != nil {
		t.Fatal(err)
	}
	var rows int
	e.pool.QueryRow(context.Background(), `SELECT count(*) FROM auto_replies`).Scan(&rows)
	if rows != 0 {
		t.Errorf("%d auto-replies left", rows)
	}
}
