package mailboxes_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/mailboxes"
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/mailplane/mailplane/services/platform/natstest"
	"github.com/mailplane/mailplane/services/platform/outbox"
)

// startMailstore runs what production runs between the mailboxes service
// and the mail store: the outbox relay of pool into a JetStream of the
// test's own, and `mailplane mailstore`'s consumer removing mail from root
// and ending sessions with doveadm (none: sessions are left alone).
func startMailstore(t *testing.T, pool *pgxpool.Pool, root string, doveadm ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ns := natstest.Start(t)
	nc, js, err := events.Connect(events.NATS{URL: ns.ClientURL()}, "mailstoretest", log)
	if err != nil {
		t.Fatal(err)
	}
	if err := events.EnsureStream(ctx, js, "MAILPLANE", "mailplane", 1); err != nil {
		t.Fatal(err)
	}
	sub := (&mailboxes.Mailstore{Root: root, Doveadm: doveadm, Log: log}).Subscription()
	c := &events.Consumer{JS: js, Stream: "MAILPLANE", Durable: sub.Durable, Handle: sub.Handle, Log: log}
	for _, s := range sub.Subjects {
		c.Subjects = append(c.Subjects, "mailplane."+s)
	}
	relay := &outbox.Relay{Pool: pool, JS: js, Prefix: "mailplane", Log: log, Interval: 10 * time.Millisecond}
	done := make(chan struct{}, 2)
	go func() { relay.Run(ctx, time.Second); done <- struct{}{} }()
	go func() { c.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() {
		cancel()
		<-done
		<-done
		nc.Close()
	})
}

// testLog writes a log to the test's output, shown when it fails.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// waitGone waits until dir no longer exists.
func waitGone(t *testing.T, dir string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still there after 10s", dir)
		}
	}
}

// TestMailstore: deleting an address removes its mail; deleting a mail
// service keeps all of it while the service can be restored, and its purge
// removes it.
func TestMailstore(t *testing.T) {
	e := start(t)
	root := t.TempDir()
	startMailstore(t, e.pool, root)
	owner := e.person(t, "owner@example.com")
	ctx := owner.ctx
	// address makes an address and the home Dovecot would give it.
	address := func(ms *mailboxesv1.MailService, local string) (name, home string) {
		t.Helper()
		a, err := e.addrs.CreateAddress(ctx, &mailboxesv1.CreateAddressRequest{Parent: ms.Name, Address: &mailboxesv1.Address{LocalPart: local}})
		if err != nil {
			t.Fatal(err)
		}
		home = filepath.Join(root, lastID(ms.Name), lastID(a.Address.Name))
		if err := os.MkdirAll(filepath.Join(home, "Maildir", "cur"), 0o700); err != nil {
			t.Fatal(err)
		}
		return a.Address.Name, home
	}
	mailService := func(domain string) *mailboxesv1.MailService {
		t.Helper()
		ms, err := e.createVerified(t, ctx, &mailboxesv1.CreateMailServiceRequest{Parent: owner.org, MailService: &mailboxesv1.MailService{Domain: domain}})
		if err != nil {
			t.Fatal(err)
		}
		return ms.MailService
	}
	deleteAddress := func(name string) {
		t.Helper()
		if _, err := e.addrs.DeleteAddress(ctx, &mailboxesv1.DeleteAddressRequest{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	store, other := mailService("store.example"), mailService("other.example")
	leaves, leavesHome := address(store, "leaves")
	_, staysHome := address(store, "stays")
	marker, markerHome := address(other, "marker")
	stranger := filepath.Join(root, "not-ours")
	if err := os.Mkdir(stranger, 0o700); err != nil {
		t.Fatal(err)
	}

	deleteAddress(leaves)
	waitGone(t, leavesHome)

	if _, err := e.services.DeleteMailService(ctx, &mailboxesv1.DeleteMailServiceRequest{Name: store.Name}); err != nil {
		t.Fatal(err)
	}
	// Events reach the consumer in order: once the marker's mail is gone,
	// whatever the deletion published has been applied too.
	deleteAddress(marker)
	waitGone(t, markerHome)
	if _, err := os.Stat(staysHome); err != nil {
		t.Fatalf("a deleted mail service's mail must stay until its purge: %v", err)
	}

	if _, err := e.pool.Exec(context.Background(), "UPDATE mail_services SET delete_time = now() - interval '31 days' WHERE delete_time IS NOT NULL"); err != nil {
		t.Fatal(err)
	}
	if n, err := e.svc.Purge(context.Background()); err != nil || n != 1 {
		t.Fatalf("purged %d (%v), want 1", n, err)
	}
	waitGone(t, filepath.Join(root, lastID(store.Name)))
	if _, err := os.Stat(stranger); err != nil {
		t.Errorf("a directory no event named was touched: %v", err)
	}
}

// lastID is the id at the end of a resource name.
func lastID(name string) string { return name[strings.LastIndexByte(name, '/')+1:] }

// TestMailstoreRemovesMailWhenSessionsCannotEnd: a doveadm that fails does
// not keep a deleted address's mail on the disk.
func TestMailstoreRemovesMailWhenSessionsCannotEnd(t *testing.T) {
	e := start(t)
	root := t.TempDir()
	startMailstore(t, e.pool, root, "false")
	owner := e.person(t, "owner@example.com")
	ms, err := e.createVerified(t, owner.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: owner.org, MailService: &mailboxesv1.MailService{Domain: "store.example"}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.addrs.CreateAddress(owner.ctx, &mailboxesv1.CreateAddressRequest{Parent: ms.MailService.Name, Address: &mailboxesv1.Address{LocalPart: "leaves"}})
	if err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(root, lastID(ms.MailService.Name), lastID(a.Address.Name))
	if err := os.MkdirAll(filepath.Join(home, "Maildir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := e.addrs.DeleteAddress(owner.ctx, &mailboxesv1.DeleteAddressRequest{Name: a.Address.Name}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, home)
}
