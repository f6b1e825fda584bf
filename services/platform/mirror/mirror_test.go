package mirror_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/mailplane/mailplane/services/platform/mirror"
	"github.com/mailplane/mailplane/services/platform/natstest"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/mailplane/mailplane/services/platform/pgtest"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// schema is the package's contract (mirror.go), with a column of the
// service's own beside each table's, as filters and dnssecurity have.
var schema = fstest.MapFS{"00001_init.sql": {Data: []byte(`
-- +goose Up
CREATE TABLE addresses (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    mail_service_id uuid NOT NULL,
    email           text NOT NULL,
    login           text NOT NULL,
    own             text NOT NULL DEFAULT 'kept'
);
CREATE TABLE address_users (
    address_id uuid NOT NULL REFERENCES addresses ON DELETE CASCADE,
    user_id    uuid NOT NULL,
    rights     text[] NOT NULL,
    filters    boolean GENERATED ALWAYS AS ('filters' = ANY (rights)) STORED,
    PRIMARY KEY (address_id, user_id)
);
CREATE TABLE mail_services (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    domain          text NOT NULL CHECK (domain = lower(domain)),
    active          boolean NOT NULL DEFAULT true,
    own             text NOT NULL DEFAULT 'kept'
);
CREATE TABLE mirror_versions (
    id  uuid PRIMARY KEY,
    seq bigint NOT NULL
);
-- +goose Down
DROP TABLE mirror_versions;
DROP TABLE mail_services;
DROP TABLE address_users;
DROP TABLE addresses;
`)}}

type env struct {
	t    *testing.T
	pool *pgxpool.Pool
	js   jetstream.JetStream
	ctx  context.Context
}

// start gives t a database with the tables and a NATS server of its own,
// and runs subs' consumers on its stream.
func start(t *testing.T, subs ...events.Subscription) *env {
	t.Helper()
	e := &env{t: t, pool: pgtest.NewPool(t, "mirrortest", schema)}
	ns := natstest.Start(t)
	log := slog.New(slog.DiscardHandler)
	nc, js, err := events.Connect(events.NATS{URL: ns.ClientURL()}, "test", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithCancel(context.Background())
	if err := events.EnsureStream(ctx, js, "MIRRORTEST", "mp", 1); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, sub := range subs {
		c := &events.Consumer{JS: js, Pool: e.pool, Stream: "MIRRORTEST", Durable: sub.Durable, Handle: sub.Handle, Log: log}
		for _, s := range sub.Subjects {
			c.Subjects = append(c.Subjects, "mp."+s)
		}
		wg.Go(func() { _ = c.Run(ctx) })
	}
	e.js, e.ctx = js, ctx
	return e
}

func (e *env) publish(subject string, m proto.Message) {
	e.t.Helper()
	data, err := proto.Marshal(m)
	if err != nil {
		e.t.Fatal(err)
	}
	e.publishData(subject, data)
}

func (e *env) publishData(subject string, data []byte) {
	e.t.Helper()
	if _, err := e.js.Publish(e.ctx, "mp."+subject, data, jetstream.WithMsgID(uuid.NewString())); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) eventually(what string, check func() bool) {
	e.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !check(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: not after 30 s", what)
		}
	}
}

// row is an address of the copy, users as "user:rights" sorted.
type row struct {
	Org, MS     uuid.UUID
	Email, Own  string
	Login       string
	Users       []string
	FilterUsers int
}

func (e *env) address(id uuid.UUID) *row {
	e.t.Helper()
	var r row
	err := e.pool.QueryRow(context.Background(), `
SELECT a.organization_id, a.mail_service_id, a.email, a.login, a.own,
       coalesce(array_agg(u.user_id::text || ':' || array_to_string(u.rights, ',') ORDER BY u.user_id) FILTER (WHERE u.user_id IS NOT NULL), '{}'),
       count(*) FILTER (WHERE u.filters)
FROM addresses a LEFT JOIN address_users u ON u.address_id = a.id
WHERE a.id = $1 GROUP BY a.id`, id).Scan(&r.Org, &r.MS, &r.Email, &r.Login, &r.Own, &r.Users, &r.FilterUsers)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return &r
}

type ids struct{ org, ms, addr uuid.UUID }

func newIDs() ids {
	return ids{uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())}
}

func (i ids) name() string {
	return "organizations/" + i.org.String() + "/mailServices/" + i.ms.String() + "/addresses/" + i.addr.String()
}

func (i ids) msName() string {
	return "organizations/" + i.org.String() + "/mailServices/" + i.ms.String()
}

func addressEvent(i ids, email, login string, users ...*mailboxesv1.AddressUser) *mailboxesv1.AddressChanged {
	return &mailboxesv1.AddressChanged{Address: &mailboxesv1.Address{Name: i.name(), Email: email, Users: users}, Login: login}
}

// TestAddresses: the copy follows an address from its creation to its
// deletion through a real consumer, users with their rights by name.
func TestAddresses(t *testing.T) {
	var mu sync.Mutex
	var got []mirror.AddressEvent
	e := start(t, mirror.Addresses{Durable: "test-addresses", Also: []string{mailboxesevents.AutoReplyUpdated},
		Then: func(_ context.Context, _ pgx.Tx, ev mirror.AddressEvent) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, ev)
			return nil
		}}.Subscription())
	i := newIDs()
	anna, bob, carl := uuid.MustParse("01000000-0000-7000-8000-000000000001"), uuid.MustParse("02000000-0000-7000-8000-000000000002"), uuid.MustParse("03000000-0000-7000-8000-000000000003")

	e.publish(mailboxesevents.AddressCreated, addressEvent(i, "Sales@Bücher.example", "sales@xn--bcher-kva.example",
		&mailboxesv1.AddressUser{User: "users/" + anna.String()}, // unset rights: all of them
		&mailboxesv1.AddressUser{User: "users/" + bob.String(), Rights: &mailboxesv1.Rights{Devices: true, Signatures: true}},
		&mailboxesv1.AddressUser{Email: "invited@elsewhere.example"}, // pending: no user yet
		&mailboxesv1.AddressUser{User: "users/not-a-uuid"},
	))
	e.eventually("the address recorded", func() bool { return e.address(i.addr) != nil })
	want := &row{Org: i.org, MS: i.ms, Email: "sales@bücher.example", Login: "sales@xn--bcher-kva.example", Own: "kept",
		Users: []string{anna.String() + ":auto_reply,devices,filters,signatures", bob.String() + ":devices,signatures"}, FilterUsers: 1}
	if diff := cmp.Diff(want, e.address(i.addr)); diff != "" {
		t.Fatalf("after its creation (-want +got):\n%s", diff)
	}

	// Users change as a whole; a missing login is the email's.
	e.publish(mailboxesevents.AddressUpdated, addressEvent(i, "Team@Example.test", "",
		&mailboxesv1.AddressUser{User: "users/" + carl.String(), Rights: &mailboxesv1.Rights{Filters: true}}))
	want.Email, want.Login, want.Users = "team@example.test", "team@example.test", []string{carl.String() + ":filters"}
	e.eventually("the update applied", func() bool { return cmp.Equal(want, e.address(i.addr)) })

	// An auto-reply goes to Then only, in order after the address's own.
	e.publish(mailboxesevents.AutoReplyUpdated, &mailboxesv1.AddressChanged{Address: &mailboxesv1.Address{Name: i.name(), Email: "other@example.test"}, VacationSieve: "vacation;"})
	e.publish(mailboxesevents.AddressDeleted, addressEvent(i, "team@example.test", ""))
	e.eventually("the address deleted", func() bool { return e.address(i.addr) == nil })
	var users int
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM address_users").Scan(&users); err != nil || users != 0 {
		t.Fatalf("%d address users left (%v)", users, err)
	}

	mu.Lock()
	defer mu.Unlock()
	var subjects []string
	for n, ev := range got {
		subjects = append(subjects, ev.Subject)
		if ev.ID != i.addr || ev.Organization != i.org || ev.MailService != i.ms {
			t.Errorf("event %d: ids %v %v %v, want %v", n, ev.Organization, ev.MailService, ev.ID, i)
		}
		if n > 0 && ev.Seq <= got[n-1].Seq {
			t.Errorf("event %d: Seq %d after %d", n, ev.Seq, got[n-1].Seq)
		}
	}
	wantSubjects := []string{"mp." + mailboxesevents.AddressCreated, "mp." + mailboxesevents.AddressUpdated, "mp." + mailboxesevents.AutoReplyUpdated, "mp." + mailboxesevents.AddressDeleted}
	if diff := cmp.Diff(wantSubjects, subjects); diff != "" {
		t.Fatalf("Then's events (-want +got):\n%s", diff)
	}
	if got[2].Msg.GetVacationSieve() != "vacation;" {
		t.Errorf("the auto-reply's event lost its script: %v", got[2].Msg)
	}
}

// TestAddressThenFails: an event whose Then fails leaves no trace and
// comes again; a payload that is no event is dropped, and the consumer
// goes on.
func TestAddressThenFails(t *testing.T) {
	var mu sync.Mutex
	calls := map[uuid.UUID]int{}
	e := start(t, mirror.Addresses{Durable: "test-addresses", Log: slog.New(slog.DiscardHandler),
		Then: func(ctx context.Context, tx pgx.Tx, ev mirror.AddressEvent) error {
			mu.Lock()
			calls[ev.ID]++
			n := calls[ev.ID]
			mu.Unlock()
			// The copy is written when Then runs, in Then's transaction.
			var login string
			if err := tx.QueryRow(ctx, "SELECT login FROM addresses WHERE id = $1", ev.ID).Scan(&login); err != nil {
				return err
			}
			if n == 1 {
				return errors.New("the service's own work failed")
			}
			return nil
		}}.Subscription())
	i := newIDs()
	e.publishData(mailboxesevents.AddressCreated, []byte("\xff not a protobuf"))
	e.publish(mailboxesevents.AddressCreated, addressEvent(i, "a@example.test", "a@example.test",
		&mailboxesv1.AddressUser{User: "users/" + i.org.String()}))
	e.eventually("the address recorded on the second try", func() bool { return e.address(i.addr) != nil })
	mu.Lock()
	defer mu.Unlock()
	if calls[i.addr] != 2 {
		t.Fatalf("Then ran %d times, want 2 (a failure, then the redelivery)", calls[i.addr])
	}
	if r := e.address(i.addr); len(r.Users) != 1 {
		t.Fatalf("users %v, want the one user once", r.Users)
	}
}

// TestOlderEventComesBack: an event whose Then fails comes back after the
// address's later events were applied; it is skipped, Then included, so
// that the copy keeps the newer state (the user's rights taken away).
func TestOlderEventComesBack(t *testing.T) {
	var mu sync.Mutex
	var then []string
	e := start(t, mirror.Addresses{Durable: "test-addresses",
		Then: func(_ context.Context, _ pgx.Tx, ev mirror.AddressEvent) error {
			mu.Lock()
			defer mu.Unlock()
			subject := strings.TrimPrefix(ev.Subject, "mp.mailboxes.address.")
			// The creation fails until the update is applied.
			if subject == "created" && !slices.Contains(then, "updated") {
				return errors.New("the service's own work failed")
			}
			then = append(then, subject)
			return nil
		}}.Subscription())
	i := newIDs()
	e.publish(mailboxesevents.AddressCreated, addressEvent(i, "a@example.test", "", &mailboxesv1.AddressUser{User: "users/" + i.org.String()}))
	e.publish(mailboxesevents.AddressUpdated, addressEvent(i, "b@example.test", ""))
	e.eventually("the update applied", func() bool { r := e.address(i.addr); return r != nil && r.Email == "b@example.test" })
	// The creation is redelivered 5 s after its failure.
	e.eventually("the creation redelivered", func() bool {
		var n int
		err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM applied_events").Scan(&n)
		return err == nil && n == 2
	})
	if r := e.address(i.addr); r.Email != "b@example.test" || len(r.Users) != 0 {
		t.Errorf("after the older creation came back: %+v, want the update's address without users", r)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"updated"}; !slices.Equal(then, want) {
		t.Errorf("Then succeeded for %v, want %v (the creation, redelivered after the update, skipped)", then, want)
	}
}

// TestApplyTwice: applying an event again (a redelivery the consumer did
// not recognise) changes nothing more, nor does an older one, deletions
// included; a name that is no address's is an error, so that the event is
// not lost.
func TestApplyTwice(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	i := newIDs()
	apply := func(subject string, seq uint64, ev *mailboxesv1.AddressChanged) bool {
		t.Helper()
		var applied bool
		if err := pg.InTx(ctx, e.pool, func(tx pgx.Tx) (err error) {
			_, applied, err = mirror.ApplyAddress(ctx, tx, "mp."+subject, seq, ev)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return applied
	}
	ev := addressEvent(i, "x@example.test", "x@example.test", &mailboxesv1.AddressUser{User: "users/" + i.org.String()})
	if !apply(mailboxesevents.AddressCreated, 10, ev) || apply(mailboxesevents.AddressCreated, 10, ev) {
		t.Fatal("a creation applied other than once")
	}
	if r := e.address(i.addr); r == nil || len(r.Users) != 1 {
		t.Fatalf("after two applications: %+v", r)
	}
	if apply(mailboxesevents.AddressUpdated, 9, addressEvent(i, "older@example.test", "")) {
		t.Error("an older update applied")
	}
	if r := e.address(i.addr); r.Email != "x@example.test" || len(r.Users) != 1 {
		t.Errorf("after an older update: %+v", r)
	}
	// Events the copy does not read are left to Then, unordered.
	if !apply(mailboxesevents.AutoReplyUpdated, 5, ev) {
		t.Error("an auto-reply event not passed on")
	}
	if !apply(mailboxesevents.AddressDeleted, 11, ev) || apply(mailboxesevents.AddressDeleted, 11, ev) {
		t.Fatal("a deletion applied other than once")
	}
	if r := e.address(i.addr); r != nil {
		t.Fatalf("deleted, still there: %+v", r)
	}
	if apply(mailboxesevents.AddressCreated, 10, ev) || e.address(i.addr) != nil {
		t.Fatal("a deleted address brought back by its older creation")
	}

	bad := addressEvent(i, "x@example.test", "")
	bad.Address.Name = "organizations/" + i.org.String() + "/addresses/" + i.addr.String()
	err := pg.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		_, _, err := mirror.ApplyAddress(ctx, tx, "mp."+mailboxesevents.AddressCreated, 12, bad)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "bad name") {
		t.Fatalf("a bad name: %v, want an error", err)
	}
}

// mailService is a mail service of the copy.
type mailService struct {
	Org    uuid.UUID
	Domain string
	Active bool
	Own    string
}

func (e *env) mailService(id uuid.UUID) *mailService {
	e.t.Helper()
	var m mailService
	err := e.pool.QueryRow(context.Background(), "SELECT organization_id, domain, active, own FROM mail_services WHERE id = $1", id).
		Scan(&m.Org, &m.Domain, &m.Active, &m.Own)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return &m
}

// TestMailServices: the copy holds a mail service from its verification
// to its purge, inactive while deleted; a pending claim deleted and
// undeleted never enters it.
func TestMailServices(t *testing.T) {
	var mu sync.Mutex
	var got []string
	e := start(t, mirror.MailServices{Durable: "test-mail-services",
		Then: func(_ context.Context, _ pgx.Tx, ev mirror.MailServiceEvent) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, strings.TrimPrefix(ev.Subject, "mp.mailboxes.mail_service.")+" "+ev.Organization.String()+" "+ev.ID.String()+" "+ev.Domain)
			return nil
		}}.Subscription())
	i, claim := newIDs(), newIDs()
	changed := func(i ids, domain string) *mailboxesv1.MailServiceChanged {
		return &mailboxesv1.MailServiceChanged{MailService: &mailboxesv1.MailService{Name: i.msName(), Domain: domain}}
	}
	state := func(want *mailService) func() bool {
		return func() bool { return cmp.Equal(want, e.mailService(i.ms)) }
	}

	e.publish(mailboxesevents.MailServiceCreated, changed(i, "Example.TEST"))
	e.eventually("verified", state(&mailService{Org: i.org, Domain: "example.test", Active: true, Own: "kept"}))
	e.publish(mailboxesevents.MailServiceDeleted, changed(i, "example.test"))
	e.eventually("deleted", state(&mailService{Org: i.org, Domain: "example.test", Active: false, Own: "kept"}))
	e.publish(mailboxesevents.MailServiceUndeleted, changed(i, "example.test"))
	e.eventually("undeleted", state(&mailService{Org: i.org, Domain: "example.test", Active: true, Own: "kept"}))

	// Anyone may claim any domain: a claim is never the organization's.
	e.publish(mailboxesevents.MailServiceDeleted, changed(claim, "gmail.example"))
	e.publish(mailboxesevents.MailServiceUndeleted, changed(claim, "gmail.example"))
	e.publish(mailboxesevents.MailServicePurged, changed(i, "example.test"))
	e.eventually("purged", state(nil))
	if m := e.mailService(claim.ms); m != nil {
		t.Fatalf("an undeleted claim entered the copy: %+v", m)
	}

	mu.Lock()
	defer mu.Unlock()
	m, c := i.org.String()+" "+i.ms.String(), claim.org.String()+" "+claim.ms.String()
	want := []string{"created " + m + " example.test", "deleted " + m + " example.test", "undeleted " + m + " example.test",
		"deleted " + c + " gmail.example", "undeleted " + c + " gmail.example", "purged " + m + " example.test"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Then's events (-want +got):\n%s", diff)
	}
}

// TestMailServiceApplyTwice: a verification applied twice records the
// mail service once; an older event changes nothing (an undeletion stays,
// a purge too); a bad name is an error.
func TestMailServiceApplyTwice(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	i := newIDs()
	ev := &mailboxesv1.MailServiceChanged{MailService: &mailboxesv1.MailService{Name: i.msName(), Domain: "example.test"}}
	apply := func(subject string, seq uint64) {
		t.Helper()
		if err := pg.InTx(ctx, e.pool, func(tx pgx.Tx) error {
			_, _, err := mirror.ApplyMailService(ctx, tx, "mp."+subject, seq, ev)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	apply(mailboxesevents.MailServiceCreated, 1)
	apply(mailboxesevents.MailServiceCreated, 1)
	apply(mailboxesevents.MailServiceDeleted, 2)
	apply(mailboxesevents.MailServiceDeleted, 2)
	var n int
	if err := e.pool.QueryRow(ctx, "SELECT count(*) FROM mail_services WHERE NOT active").Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d inactive mail services (%v), want 1", n, err)
	}
	apply(mailboxesevents.MailServiceUndeleted, 4)
	apply(mailboxesevents.MailServiceDeleted, 3)
	if m := e.mailService(i.ms); m == nil || !m.Active {
		t.Fatalf("undeleted, then its older deletion: %+v, want active", m)
	}
	apply(mailboxesevents.MailServicePurged, 6)
	apply(mailboxesevents.MailServiceCreated, 5)
	if m := e.mailService(i.ms); m != nil {
		t.Fatalf("purged, then an older verification: %+v, want gone", m)
	}

	// A verification that fails and comes back after the deletion: the
	// deletion of a verified mail service records it (inactive), and its
	// undeletion brings it back; a claim's does not.
	verified, claimed := newIDs(), newIDs()
	for _, x := range []struct {
		ids ids
		ev  *mailboxesv1.MailServiceChanged
	}{
		{verified, &mailboxesv1.MailServiceChanged{MailService: &mailboxesv1.MailService{Name: verified.msName(), Domain: "verified.test", VerifyTime: timestamppb.Now()}}},
		{claimed, &mailboxesv1.MailServiceChanged{MailService: &mailboxesv1.MailService{Name: claimed.msName(), Domain: "claimed.test"}}},
	} {
		ev = x.ev
		apply(mailboxesevents.MailServiceDeleted, 11)
		apply(mailboxesevents.MailServiceCreated, 10)
		apply(mailboxesevents.MailServiceUndeleted, 12)
	}
	if m := e.mailService(verified.ms); m == nil || !m.Active || m.Domain != "verified.test" {
		t.Errorf("verified, deleted and undeleted, its verification skipped: %+v, want active", m)
	}
	if m := e.mailService(claimed.ms); m != nil {
		t.Errorf("a claim deleted and undeleted: %+v, want none", m)
	}
	ev = &mailboxesv1.MailServiceChanged{MailService: &mailboxesv1.MailService{Name: i.msName(), Domain: "example.test"}}
	ev.MailService.Name = i.name()
	err := pg.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		_, _, err := mirror.ApplyMailService(ctx, tx, "mp."+mailboxesevents.MailServiceCreated, 7, ev)
		return err
	})
	if err == nil {
		t.Fatal("a bad name: no error")
	}
}

func TestSubjects(t *testing.T) {
	sub := mirror.Addresses{Durable: "d", Also: []string{mailboxesevents.AutoReplyUpdated}}.Subscription()
	if !slices.Equal(sub.Subjects, append(slices.Clone(mirror.AddressSubjects), mailboxesevents.AutoReplyUpdated)) {
		t.Fatalf("subjects %v", sub.Subjects)
	}
	// Another service's Also never leaks into the shared list.
	if len(mirror.Addresses{Durable: "e"}.Subscription().Subjects) != len(mirror.AddressSubjects) {
		t.Fatal("AddressSubjects changed by a subscription")
	}
}
