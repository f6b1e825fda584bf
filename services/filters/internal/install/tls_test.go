package install

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailplane/mailplane/services/platform/dovecottest"
	"github.com/mailplane/mailplane/services/platform/tlstest"
)

// TestInstallSTARTTLS: with TLS set the installer logs in only after
// STARTTLS, checking the server's certificate, and the scripts work; a
// server without STARTTLS, or with a certificate of another CA, gets no
// password.
func TestInstallSTARTTLS(t *testing.T) {
	ca := tlstest.NewCA(t)
	certFile, keyFile := tlstest.WriteFiles(t, t.TempDir(), ca.Issue("127.0.0.1"))
	m := dovecottest.StartMail(t, func(conf string) string {
		return conf + "\nssl = yes\nssl_cert = <" + certFile + "\nssl_key = <" + keyFile + "\n"
	})
	in := &Installer{Addr: m.SieveAddr, Personal: Login{dovecottest.PersonalMaster, dovecottest.PersonalSecret},
		Platform: Login{dovecottest.PlatformMaster, dovecottest.PlatformSecret}, Timeout: 10 * time.Second,
		TLS: &tls.Config{RootCAs: ca.Pool()}}
	const user = "tls@example.org"
	if err := in.Install(context.Background(), user, scripts); err != nil {
		t.Fatalf("Install over STARTTLS: %v", err)
	}
	msg := "From: bob@example.net\r\nTo: " + user + "\r\nSubject: invoice one\r\n\r\nHello.\r\n"
	if answers, err := m.Deliver("bob@example.net", []string{user}, msg); err != nil || !strings.HasPrefix(answers[0], "250") {
		t.Fatalf("deliver: %q %v", answers, err)
	}
	found, err := m.Find(user, dovecottest.UserPassword, "invoice one")
	if err != nil || len(found) != 1 || found[0].Mailbox != "Invoices" {
		t.Errorf("the invoice: %v %v, want in Invoices", found, err)
	}

	other := *in
	other.TLS = &tls.Config{RootCAs: tlstest.NewCA(t).Pool()}
	if err := other.Install(context.Background(), user, scripts); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Install trusting another CA: %v, want a certificate error", err)
	}

	plain := dovecottest.StartMail(t, nil)
	noTLS := *in
	noTLS.Addr = plain.SieveAddr
	if err := noTLS.Install(context.Background(), user, scripts); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("Install asking TLS of a server without it: %v, want an error naming STARTTLS", err)
	}
}

// TestInstallNoPlaintextAway: without TLS, a ManageSieve server on
// another host never gets the master password.
func TestInstallNoPlaintextAway(t *testing.T) {
	var ip net.IP
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			ip = n.IP
			break
		}
	}
	if ip == nil {
		t.Skip("no IPv4 address but loopback on this host")
	}
	l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte("\"IMPLEMENTATION\" \"fake\"\r\n\"SASL\" \"PLAIN\"\r\nOK \"ready\"\r\n"))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		got <- line
	}()
	in := &Installer{Addr: l.Addr().String(), Personal: Login{"m", "secret"}, Platform: Login{"p", "secret"}, Timeout: 5 * time.Second}
	if err := in.Install(context.Background(), "a@example.org", Scripts{}); err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Errorf("Install in the clear to %s: %v, want an error asking for TLS", in.Addr, err)
	}
	if line := <-got; line != "" {
		t.Errorf("the server got %q", line)
	}
}
