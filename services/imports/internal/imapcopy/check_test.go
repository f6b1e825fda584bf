package imapcopy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/mailplane/mailplane/services/platform/dovecottest"
	"github.com/mailplane/mailplane/services/platform/freeport"
	"github.com/mailplane/mailplane/services/platform/tlstest"
)

// TestCheck logs in over implicit TLS, STARTTLS and plain IMAP, and is
// refused with the error kind the imports service tells the customer.
func TestCheck(t *testing.T) {
	d := dovecottest.New(t)
	ca := tlstest.NewCA(t)
	certFile, keyFile := tlstest.WriteFiles(t, d.Dir, ca.Issue("127.0.0.1"))
	imaps := freeport.Port(t)
	d.Start(t, d.StoreConf(t, dovecottest.Store{Separator: "/", Users: map[string]string{"anna@example.test": "a secret"}})+fmt.Sprintf(`
ssl = yes
ssl_cert = <%s
ssl_key = <%s
service imap-login {
  inet_listener imaps {
    address = 127.0.0.1
    port = %d
  }
}
`, certFile, keyFile, imaps))
	plain := dovecottest.New(t)
	plain.Start(t, plain.StoreConf(t, dovecottest.Store{Separator: "/", Users: map[string]string{"anna@example.test": "a secret"}}))

	host, p, _ := net.SplitHostPort(d.Addr)
	port, _ := strconv.Atoi(p)
	trusted := &tls.Config{RootCAs: ca.Pool()}
	account := func(port int, sec Security, cfg *tls.Config, password string) Account {
		return Account{Server: Server{Host: host, Port: port, Security: sec, TLS: cfg}, Login: "anna@example.test", Password: password}
	}
	_, pp, _ := net.SplitHostPort(plain.Addr)
	plainPort, _ := strconv.Atoi(pp)
	for _, tc := range []struct {
		name    string
		a       Account
		want    error
		message string
	}{
		{"implicit TLS, the certificate's CA trusted", account(imaps, TLS, trusted, "a secret"), nil, ""},
		{"STARTTLS, the certificate's CA trusted", account(port, StartTLS, trusted, "a secret"), nil, ""},
		{"plain", account(plainPort, Plain, nil, "a secret"), nil, ""},
		{"implicit TLS, an unknown CA", account(imaps, TLS, nil, "a secret"), ErrTLS, "certificate signed by unknown authority"},
		{"STARTTLS, an unknown CA", account(port, StartTLS, nil, "a secret"), ErrTLS, "certificate signed by unknown authority"},
		{"implicit TLS, another name", account(imaps, TLS, &tls.Config{RootCAs: ca.Pool(), ServerName: "imap.example.net"}, "a secret"), ErrTLS, "imap.example.net"},
		{"implicit TLS on the plain port", account(port, TLS, trusted, "a secret"), ErrTLS, ""},
		{"STARTTLS not offered", account(plainPort, StartTLS, trusted, "a secret"), ErrTLS, "does not offer STARTTLS"},
		{"a wrong password", account(imaps, TLS, trusted, "another"), ErrLogin, "anna@example.test"},
		{"nothing listening", account(freeport.Port(t), Plain, nil, "a secret"), ErrUnreachable, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(context.Background(), tc.a)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("Check: %v, want %v with %q", err, tc.want, tc.message)
			}
		})
	}

	t.Run("a server that never greets", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		stop := make(chan struct{})
		defer close(stop)
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			c, err := l.Accept()
			if err == nil {
				cancel() // the caller gives up; Check must return at once
				defer c.Close()
				<-stop
			}
		}()
		err = Check(ctx, Account{Server: Server{Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, Security: Plain}})
		if !errors.Is(err, ErrUnreachable) {
			t.Fatalf("Check: %v, want ErrUnreachable", err)
		}
	})
}

// TestPublicOnly: a PublicOnly server whose name resolves to loopback is
// refused at the dial with ErrPrivate, and the server listening there
// sees no connection; without PublicOnly the same name reaches it.
func TestPublicOnly(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan int)
	go func() {
		n := 0
		for {
			c, err := l.Accept()
			if err != nil {
				accepted <- n
				return
			}
			n++
			c.Write([]byte("* BYE not today\r\n"))
			c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	for _, host := range []string{"localhost", "127.0.0.1", "::ffff:127.0.0.1"} {
		err := Check(context.Background(), Account{Server: Server{Host: host, Port: port, Security: Plain, PublicOnly: true}, Login: "a", Password: "b"})
		if !errors.Is(err, ErrPrivate) {
			t.Errorf("Check of %s PublicOnly: %v, want ErrPrivate", host, err)
		}
	}
	err = Check(context.Background(), Account{Server: Server{Host: "127.0.0.1", Port: port, Security: Plain}, Login: "a", Password: "b"})
	if err == nil || errors.Is(err, ErrPrivate) {
		t.Errorf("Check without PublicOnly: %v, want the server's refusal", err)
	}
	l.Close()
	if n := <-accepted; n != 1 {
		t.Errorf("the server saw %d connections, want the one without PublicOnly", n)
	}
}

func TestPublic(t *testing.T) {
	for ip, want := range map[string]bool{
		"198.51.100.7": true, "2001:db8::1": true, "8.8.8.8": true,
		"127.0.0.1": false, "::1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "fe80::1": false, "fc00::1": false, "0.0.0.0": false, "::": false,
		"224.0.0.1": false, "::ffff:10.0.0.1": false, "ff02::1": false,
	} {
		if got := Public(net.ParseIP(ip)); got != want {
			t.Errorf("Public(%s) = %v, want %v", ip, got, want)
		}
	}
}
