package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mailplane/mailplane/services/platform/notify"
	"github.com/mailplane/mailplane/services/platform/smtptest"
)

func TestSMTPDelivers(t *testing.T) {
	srv := smtptest.Start(t)
	m := &notify.SMTP{Addr: srv.Addr, From: "Mailplane <no-reply@mailplane.test>", Username: srv.Username, Password: srv.Password, TLS: srv.ClientTLS}
	err := m.Send(context.Background(), notify.Email{
		To:      "Zoë Müller <zoe@example.com>",
		Subject: "Willkommen bei Mailplane – Grüezi",
		Body:    "Hallo Zoë,\n\nöffnen Sie diesen Link: https://example.com/" + strings.Repeat("x", 100) + "\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("server got %d messages, want 1", len(msgs))
	}
	got := msgs[0]
	if got.From != "no-reply@mailplane.test" || len(got.To) != 1 || got.To[0] != "zoe@example.com" {
		t.Errorf("envelope from %q to %v", got.From, got.To)
	}
	msg := got.Parsed(t)
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || subject != "Willkommen bei Mailplane – Grüezi" {
		t.Errorf("subject %q (%v)", subject, err)
	}
	if msg.Header.Get("Message-Id") == "" || msg.Header.Get("Date") == "" {
		t.Error("no Message-ID or Date")
	}
	body, _ := io.ReadAll(msg.Body)
	// quoted-printable as sent; decode to compare.
	if !strings.Contains(msg.Header.Get("Content-Type"), "utf-8") {
		t.Errorf("content type %q", msg.Header.Get("Content-Type"))
	}
	if !strings.Contains(decodeQP(t, body), "Hallo Zoë,\r\n\r\nöffnen Sie diesen Link: https://example.com/"+strings.Repeat("x", 100)) {
		t.Errorf("body:\n%s", body)
	}
}

func TestSMTPRefusals(t *testing.T) {
	srv := smtptest.Start(t)
	tests := []struct {
		name string
		m    notify.SMTP
		want string
	}{
		{"wrong password", notify.SMTP{Addr: srv.Addr, From: "a@mailplane.test", Username: srv.Username, Password: "nope", TLS: srv.ClientTLS}, "auth"},
		{"untrusted certificate", notify.SMTP{Addr: srv.Addr, From: "a@mailplane.test", Username: srv.Username, Password: srv.Password}, "certificate"},
		{"no auth", notify.SMTP{Addr: srv.Addr, From: "a@mailplane.test", TLS: srv.ClientTLS}, "send"},
		{"bad sender", notify.SMTP{Addr: srv.Addr, From: "not an address", TLS: srv.ClientTLS}, "sender"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.m.Send(context.Background(), notify.Email{To: "x@example.com", Subject: "s", Body: "b"})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error about %s", err, tt.want)
			}
		})
	}
	srv.FailNext(1)
	m := notify.SMTP{Addr: srv.Addr, From: "a@mailplane.test", Username: srv.Username, Password: srv.Password, TLS: srv.ClientTLS}
	if err := m.Send(context.Background(), notify.Email{To: "x@example.com", Subject: "s", Body: "b"}); err == nil {
		t.Fatal("temporary failure not reported")
	}
	if len(srv.Messages()) != 0 {
		t.Fatal("refused message was kept")
	}
}

func TestHTTPSMS(t *testing.T) {
	var got map[string]string
	var auth string
	status := http.StatusAccepted
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		json.NewDecoder(r.Body).Decode(&got)
		w.WriteHeader(status)
		io.WriteString(w, `{"error":"number blocked"}`)
	}))
	defer provider.Close()
	p := &notify.HTTPSMS{URL: provider.URL, Key: "k3y"}
	if err := p.Send(context.Background(), notify.SMS{To: "+41791234567", Text: "Votre identifiant: jd4821"}); err != nil {
		t.Fatal(err)
	}
	if auth != "Bearer k3y" || got["to"] != "+41791234567" || got["text"] != "Votre identifiant: jd4821" {
		t.Errorf("provider saw auth %q body %v", auth, got)
	}
	status = http.StatusBadRequest
	err := p.Send(context.Background(), notify.SMS{To: "+41791234567", Text: "x"})
	if err == nil || !strings.Contains(err.Error(), "number blocked") {
		t.Errorf("refusal: %v", err)
	}
	if err := (notify.LogSMS{Log: slog.New(slog.DiscardHandler)}).Send(context.Background(), notify.SMS{To: "+1", Text: "x"}); err != nil {
		t.Error(err)
	}
}

func decodeQP(t *testing.T, b []byte) string {
	t.Helper()
	out, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(b)))
	if err != nil {
		t.Fatalf("quoted-printable: %v", err)
	}
	return string(out)
}
