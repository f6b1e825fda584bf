package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/mailplane/mailplane/services/platform/freeport"
	"github.com/mailplane/mailplane/services/platform/natstest"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
)

// TestMailstoreCommand runs `mailplane mailstore` against a JetStream: an
// address.deleted event removes that address's home and nothing else, and
// Ctrl-C stops it.
func TestMailstoreCommand(t *testing.T) {
	ns := natstest.Start(t)
	nc, js, err := events.Connect(events.NATS{URL: ns.ClientURL()}, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := events.EnsureStream(context.Background(), js, "MAILPLANE", "mailplane", 1); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	ms, gone, kept := uuid.NewString(), uuid.NewString(), uuid.NewString()
	for _, a := range []string{gone, kept} {
		if err := os.MkdirAll(filepath.Join(root, ms, a, "Maildir", "new"), 0o700); err != nil {
			t.Fatal(err)
		}
	}

	metricsAddr := freeport.Addr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"mailstore", "--mail-root", root, "--nats-url", ns.ClientURL(), "--doveadm", "", "--metrics-addr", metricsAddr},
			func(string) string { return "" }, &out)
	}()
	payload, _ := proto.Marshal(&mailboxesv1.AddressChanged{Address: &mailboxesv1.Address{
		Name: "organizations/" + uuid.NewString() + "/mailServices/" + ms + "/addresses/" + gone,
	}})
	if _, err := js.Publish(context.Background(), "mailplane.mailboxes.address.deleted", payload, jetstream.WithMsgID(uuid.NewString())); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(root, ms, gone)); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deleted address's home is still there:\n%s", out.String())
		}
	}
	if _, err := os.Stat(filepath.Join(root, ms, kept)); err != nil {
		t.Errorf("another address's home: %v", err)
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `mailplane_events_applied_total{consumer="mailboxes-mailstore"`) {
		t.Errorf("/metrics does not count the mail store's events:\n%s", metrics)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("mailstore stopped with %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("mailstore did not stop")
	}
}

// TestMailstoreDoveadm: a doveadm that cannot end sessions stops the mail
// store at start, with what to do about it.
func TestMailstoreDoveadm(t *testing.T) {
	err := run(context.Background(), []string{"mailstore", "--mail-root", t.TempDir(), "--doveadm", "false"}, func(string) string { return "" }, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "MAILPLANE_DOVEADM") || !strings.Contains(err.Error(), "anvil") {
		t.Fatalf("got %v, want an error naming the setting and the anvil socket", err)
	}
}

// TestMailstoreRoot: the command refuses a mail root that is missing,
// relative or not a directory, naming the setting.
func TestMailstoreRoot(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{"", "vmail", file, filepath.Join(t.TempDir(), "missing")} {
		err := run(context.Background(), []string{"mailstore", "--mail-root", root}, func(string) string { return "" }, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "MAILPLANE_MAIL_ROOT") {
			t.Errorf("mail root %q: got %v, want an error naming the setting", root, err)
		}
	}
}
