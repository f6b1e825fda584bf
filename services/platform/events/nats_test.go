package events_test

import (
	"crypto/tls"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailplane/mailplane/services/platform/config"
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/mailplane/mailplane/services/platform/natstest"
	"github.com/mailplane/mailplane/services/platform/tlstest"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// connected reports whether c reaches the server: with reconnection on, a
// refused connection is no error at Connect, only no answer.
func connected(t *testing.T, c events.NATS) bool {
	t.Helper()
	nc, _, err := events.Connect(c, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	return nc.FlushTimeout(time.Second) == nil
}

// TestConnectMutualTLS: a cluster whose certificate comes from a private CA
// and which asks for a client certificate is reached with nats-ca-file,
// nats-cert-file and nats-key-file, and refused without either.
func TestConnectMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t)
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := tlstest.WriteFiles(t, dir, ca.Issue("mailplane"))
	ns := natstest.Start(t, func(o *server.Options) {
		o.TLS, o.TLSVerify = true, true
		o.TLSConfig = &tls.Config{
			Certificates: []tls.Certificate{ca.Issue("127.0.0.1")},
			ClientCAs:    ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
		}
	})
	full := events.NATS{URL: "tls://" + ns.Addr().String(), CAFile: caFile, CertFile: certFile, KeyFile: keyFile}
	if !connected(t, full) {
		t.Fatal("not connected with the CA and a client certificate")
	}
	noCert := full
	noCert.CertFile, noCert.KeyFile = "", ""
	if connected(t, noCert) {
		t.Error("connected without a client certificate")
	}
	noCA := full
	noCA.CAFile = ""
	if connected(t, noCA) {
		t.Error("connected without trusting the private CA")
	}
}

// TestConnectCredentials: a cluster in operator mode lets in the user of a
// credentials file (nats-creds-file), and nobody without one.
func TestConnectCredentials(t *testing.T) {
	operator, _ := nkeys.CreateOperator()
	operatorPub, _ := operator.PublicKey()
	oc := jwt.NewOperatorClaims(operatorPub)
	if _, err := oc.Encode(operator); err != nil {
		t.Fatal(err)
	}
	account, _ := nkeys.CreateAccount()
	accountPub, _ := account.PublicKey()
	accountJWT, err := jwt.NewAccountClaims(accountPub).Encode(operator)
	if err != nil {
		t.Fatal(err)
	}
	user, _ := nkeys.CreateUser()
	userPub, _ := user.PublicKey()
	userJWT, err := jwt.NewUserClaims(userPub).Encode(account)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := user.Seed()
	creds, err := jwt.FormatUserConfig(userJWT, seed)
	if err != nil {
		t.Fatal(err)
	}
	credsFile := filepath.Join(t.TempDir(), "mailplane.creds")
	if err := os.WriteFile(credsFile, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	resolver := &server.MemAccResolver{}
	if err := resolver.Store(accountPub, accountJWT); err != nil {
		t.Fatal(err)
	}
	ns := natstest.Start(t, func(o *server.Options) {
		o.JetStream = false // an account of its own would need JetStream limits
		o.TrustedOperators = []*jwt.OperatorClaims{oc}
		o.AccountResolver = resolver
	})
	if !connected(t, events.NATS{URL: ns.ClientURL(), CredsFile: credsFile}) {
		t.Fatal("not connected with the credentials file")
	}
	if connected(t, events.NATS{URL: ns.ClientURL()}) {
		t.Error("connected without credentials")
	}
}

// TestNATSSettings: a missing file or half a client certificate stops the
// process at start, naming the setting.
func TestNATSSettings(t *testing.T) {
	env := map[string]string{
		"MAILPLANE_NATS_CA_FILE":   filepath.Join(t.TempDir(), "missing.pem"),
		"MAILPLANE_NATS_CERT_FILE": os.Args[0],
	}
	l := config.NewLoader("test", func(k string) string { return env[k] }, &strings.Builder{})
	var c events.NATS
	c.Register(l)
	if err := l.Parse(nil); err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, err := range c.Validate() {
		msgs = append(msgs, err.Error())
	}
	got := strings.Join(msgs, "\n")
	for _, want := range []string{"MAILPLANE_NATS_CA_FILE", "MAILPLANE_NATS_CERT_FILE"} {
		if !strings.Contains(got, want) {
			t.Errorf("errors %q do not name %s", got, want)
		}
	}
}
