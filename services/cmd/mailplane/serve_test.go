package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mailplane/mailplane/services/accounts"
	"github.com/mailplane/mailplane/services/platform/auth"
	"github.com/mailplane/mailplane/services/platform/freeport"
	"github.com/mailplane/mailplane/services/platform/logtest"
	"github.com/mailplane/mailplane/services/platform/natstest"
	"github.com/mailplane/mailplane/services/platform/pgtest"
)

// keyPair returns a signing key and its public key, both base64.
func keyPair(t *testing.T, seed string) (string, string) {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(seed)
	if err != nil {
		t.Fatal(err)
	}
	pub := ed25519.NewKeyFromSeed(b).Public().(ed25519.PublicKey)
	return seed, base64.StdEncoding.EncodeToString(pub)
}

// TestServeRefusesDevelopmentKeys checks that `mailplane serve` (production)
// refuses token keys that others hold: the key once committed to the
// repository, and any key `mailplane dev` made.
func TestServeRefusesDevelopmentKeys(t *testing.T) {
	published, publishedPub := keyPair(t, auth.PublishedKeys[0])
	dev, devPub := keyPair(t, auth.NewDevKey())
	_, fresh, _ := ed25519.GenerateKey(nil)
	good, goodPub := keyPair(t, base64.StdEncoding.EncodeToString(fresh.Seed()))

	tests := []struct {
		name     string
		services []string
		sign     string
		pub      string
		want     string // in the error; "" when the keys pass
	}{
		{"the committed key", []string{"accounts"}, published, publishedPub,
			"token-signing-key (--token-signing-key, MAILPLANE_TOKEN_SIGNING_KEY): was published"},
		{"its public key, on a service that only verifies", []string{"mailboxes"}, "", publishedPub,
			"token-public-key (--token-public-key, MAILPLANE_TOKEN_PUBLIC_KEY): was published"},
		{"a key made by dev", []string{"accounts"}, dev, devPub,
			"token-signing-key (--token-signing-key, MAILPLANE_TOKEN_SIGNING_KEY): is a development key"},
		{"a key made by keygen", []string{"accounts"}, good, goodPub, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{
				"MAILPLANE_TOKEN_SIGNING_KEY": tt.sign,
				"MAILPLANE_TOKEN_PUBLIC_KEY":  tt.pub,
				// Nothing listens there: a key that passes fails next, on
				// the connection, after the check this test is about.
				"MAILPLANE_DATABASE_URL":  "postgres://nobody@" + freeport.Addr(t) + "/none?connect_timeout=1",
				"MAILPLANE_NATS_URL":      "nats://" + freeport.Addr(t),
				"MAILPLANE_GRPC_ADDR":     "127.0.0.1:0",
				"MAILPLANE_METRICS_ADDR":  "",
				"MAILPLANE_ACCOUNTS_ADDR": "127.0.0.1:1",
			}
			var out bytes.Buffer
			err := run(context.Background(), append([]string{"serve"}, tt.services...), func(k string) string { return env[k] }, &out)
			if err == nil {
				t.Fatal("serve started")
			}
			if got := strings.Contains(err.Error(), "configuration:"); got != (tt.want != "") {
				t.Fatalf("serve: %v; want a configuration error: %v", err, tt.want != "")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("serve: %v; want %q", err, tt.want)
			}
		})
	}
}

// TestDevKeysAreMarked checks that dev makes marked keys, and replaces an
// unmarked key left by an older dev.
func TestDevKeysAreMarked(t *testing.T) {
	dir := t.TempDir()
	s := newSettings()
	if err := devKeys(s, dir); err != nil {
		t.Fatal(err)
	}
	if !auth.IsDevKey(settingsOf[*accounts.Config](s.services).TokenSigningKey) || auth.ProductionSigningKey(settingsOf[*accounts.Config](s.services).TokenSigningKey) == nil {
		t.Errorf("dev made key %s, which serve would take", settingsOf[*accounts.Config](s.services).TokenSigningKey)
	}
	first := settingsOf[*accounts.Config](s.services).TokenSigningKey
	s = newSettings()
	if err := devKeys(s, dir); err != nil || settingsOf[*accounts.Config](s.services).TokenSigningKey != first {
		t.Errorf("second run: key %s, %v; want the first, %s", settingsOf[*accounts.Config](s.services).TokenSigningKey, err, first)
	}
	if err := os.WriteFile(dir+"/token-signing-key", []byte(auth.PublishedKeys[0]), 0o600); err != nil {
		t.Fatal(err)
	}
	s = newSettings()
	if err := devKeys(s, dir); err != nil || !auth.IsDevKey(settingsOf[*accounts.Config](s.services).TokenSigningKey) {
		t.Errorf("old unmarked key: now %s, %v; want a new marked one", settingsOf[*accounts.Config](s.services).TokenSigningKey, err)
	}
}

// servingStack is what serve needs to start: a database and NATS.
func servingStack(t *testing.T) map[string]string {
	t.Helper()
	ns := natstest.Start(t)
	_, priv, _ := ed25519.GenerateKey(nil)
	sign, pub := keyPair(t, base64.StdEncoding.EncodeToString(priv.Seed()))
	return map[string]string{
		"MAILPLANE_DATABASE_URL":      pgtest.NewDatabase(t),
		"MAILPLANE_NATS_URL":          ns.ClientURL(),
		"MAILPLANE_TOKEN_SIGNING_KEY": sign,
		"MAILPLANE_TOKEN_PUBLIC_KEY":  pub,
		"MAILPLANE_GRPC_ADDR":         freeport.Addr(t),
		"MAILPLANE_METRICS_ADDR":      freeport.Addr(t),
		"MAILPLANE_SOCKETMAP_ADDR":    freeport.Addr(t),
		"MAILPLANE_POLICY_ADDR":       freeport.Addr(t),
		"MAILPLANE_MILTER_ADDR":       freeport.Addr(t),
		"MAILPLANE_LMTP_ADDR":         freeport.Addr(t),
		"MAILPLANE_REPORT_ADDR":       freeport.Addr(t),
		"MAILPLANE_SHUTDOWN_TIMEOUT":  "5s",
	}
}

// TestServeTakenPort checks that a port that is taken stops serve before it
// says it serves, with an error naming the port and its setting (the
// lookup ports used to be bound after "serving", and the process then
// exited).
func TestServeTakenPort(t *testing.T) {
	for _, setting := range []string{"MAILPLANE_GRPC_ADDR", "MAILPLANE_METRICS_ADDR", "MAILPLANE_SOCKETMAP_ADDR", "MAILPLANE_MILTER_ADDR", "MAILPLANE_PPROF_ADDR"} {
		t.Run(setting, func(t *testing.T) {
			env := servingStack(t)
			taken, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer taken.Close()
			env[setting] = taken.Addr().String()
			out := &logtest.Buffer{}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = run(ctx, []string{"serve", "accounts", "mailboxes"}, func(k string) string { return env[k] }, out)
			want := "listen on " + taken.Addr().String() + " (" + setting + "): address already in use"
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("serve = %v, want an error with %q", err, want)
			}
			if strings.Contains(out.String(), `"msg":"serving"`) {
				t.Errorf("serve said it served:\n%s", out)
			}
		})
	}
}

// TestDevTakenPort checks that dev with its edge's port taken says which,
// instead of failing later in the demo's seeding.
func TestDevTakenPort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	var out bytes.Buffer
	err = run(context.Background(), []string{"dev", "--data-dir", t.TempDir(), "--http-addr", taken.Addr().String()},
		func(string) string { return "" }, &out)
	want := "listen on " + taken.Addr().String() + " (MAILPLANE_HTTP_ADDR): address already in use"
	if err == nil || err.Error() != want {
		t.Errorf("dev = %v, want %q", err, want)
	}
}

// TestProfiles checks that profiles are off by default, never on the
// metrics port (which the whole cluster reaches), and on their own loopback
// port when switched on; a non-loopback pprof address is refused.
func TestProfiles(t *testing.T) {
	env := servingStack(t)
	env["MAILPLANE_PPROF_ADDR"] = "0.0.0.0:6060"
	err := run(context.Background(), []string{"serve", "accounts"}, func(k string) string { return env[k] }, io.Discard)
	if want := "pprof-addr (--pprof-addr, MAILPLANE_PPROF_ADDR): profiles have no authentication"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("serve with pprof on all interfaces = %v, want %q", err, want)
	}

	get := func(url string) int {
		resp, err := http.Get(url)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, pprofAddr := range []string{"", freeport.Addr(t)} {
		t.Run("pprof-addr="+pprofAddr, func(t *testing.T) {
			env := servingStack(t)
			env["MAILPLANE_PPROF_ADDR"] = pprofAddr
			ctx, cancel := context.WithCancel(context.Background())
			out := &logtest.Buffer{}
			done := make(chan error, 1)
			go func() {
				done <- run(ctx, []string{"serve", "accounts"}, func(k string) string { return env[k] }, out)
			}()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("serve: %v", err)
				}
			}()
			metrics := "http://" + env["MAILPLANE_METRICS_ADDR"]
			deadline := time.Now().Add(30 * time.Second)
			for get(metrics+"/metrics") != 200 {
				if time.Now().After(deadline) {
					t.Fatalf("serve did not come up:\n%s", out)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if code := get(metrics + "/debug/pprof/"); code != 404 {
				t.Errorf("metrics port /debug/pprof/ = %d, want 404", code)
			}
			if pprofAddr == "" {
				return
			}
			if code := get("http://" + pprofAddr + "/debug/pprof/"); code != 200 {
				t.Errorf("pprof port /debug/pprof/ = %d, want 200", code)
			}
			if code := get("http://" + pprofAddr + "/debug/pprof/heap"); code != 200 {
				t.Errorf("pprof port /debug/pprof/heap = %d, want 200", code)
			}
		})
	}
}
