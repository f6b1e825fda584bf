package mailboxes_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mailplane/mailplane/gateway"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/platform/logtest"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// TestDovecotDevicePasswords runs a real Dovecot with the passdb and userdb
// of deploy/mail/dovecot against the test database: an IMAP login works with
// a device password made through the REST edge, and stops working once it
// is revoked (through the edge too), its user loses the "devices" right or
// the address, or the mail service is deleted.
func TestDovecotDevicePasswords(t *testing.T) {
	bin := dovecotBinary(t)
	e := start(t)
	owner := e.person(t, "owner@example.com")
	anna := e.person(t, "anna@example.com")
	e.join(t, owner, anna, "anna@example.com", accountsv1.Role_ROLE_MEMBER)
	ms, err := e.createVerified(t, owner.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: owner.org, MailService: &mailboxesv1.MailService{Domain: "example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	var sales, info string
	for _, local := range []string{"Sales", "info"} {
		a, err := e.addrs.CreateAddress(owner.ctx, &mailboxesv1.CreateAddressRequest{
			Parent: ms.GetMailService().GetName(), Address: &mailboxesv1.Address{LocalPart: local},
			Access: &mailboxesv1.AddressAccess{Users: []string{anna.user}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if local == "Sales" {
			sales = a.GetAddress().GetName()
		} else {
			info = a.GetAddress().GetName()
		}
	}

	// Anna makes her device passwords through the REST edge, as the
	// manager's frontend does.
	edge := startEdge(t, e)
	devices := mailboxesv1.NewDevicePasswordServiceClient(e.conn(t))
	create := func(device string, protocols ...string) (name, password string) {
		t.Helper()
		var resp struct {
			DevicePassword struct{ Name string }
			Password       string
		}
		edge.do(t, anna.token, "POST", "/v1/"+sales+"/devicePasswords", map[string]any{"deviceName": device, "protocols": protocols}, &resp)
		if !regexp.MustCompile(`^[a-z2-9]{4}(-[a-z2-9]{4}){3}$`).MatchString(resp.Password) {
			t.Fatalf("password %q: want four groups of four letters and digits", resp.Password)
		}
		return resp.DevicePassword.Name, resp.Password
	}
	phone, phonePassword := create("Anna's phone")
	_, laptopPassword := create("Anna's laptop")
	_, readerPassword := create("Anna's reader", "MAIL_PROTOCOL_IMAP")
	_, printerPassword := create("The printer", "MAIL_PROTOCOL_SMTP")

	imap := startDovecot(t, bin, e.pool)
	startMailstore(t, e.pool, imap.vmail, doveadmPath(), "-c", imap.conf)
	check := func(t *testing.T, login, password, want string) {
		t.Helper()
		got, err := imap.login(login, password)
		if err != nil {
			t.Fatalf("IMAP LOGIN %s: %v", login, err)
		}
		if !strings.HasPrefix(got, want) {
			t.Errorf("IMAP LOGIN %s %q: got %q, want %q...", login, password, got, want)
		}
	}
	// A refusal must be the passdb's answer, not a failed query or database
	// connection ("NO [UNAVAILABLE]").
	const ok, refused = "a1 OK", "a1 NO [AUTHENTICATIONFAILED]"
	for _, tc := range []struct {
		name, login, password, want string
	}{
		{"first device", "sales@example.com", phonePassword, ok},
		// Two passwords on one address: the query returns one row, never
		// "multiple matches".
		{"second device, login in any case", "Sales@Example.COM", laptopPassword, ok},
		{"typed in capitals without dashes", "sales@example.com", strings.ToUpper(strings.ReplaceAll(phonePassword, "-", "")), ok},
		{"typed with spaces", "sales@example.com", strings.ReplaceAll(phonePassword, "-", " "), ok},
		{"another address's login", "info@example.com", phonePassword, refused},
		{"unknown address", "nobody@example.com", phonePassword, refused},
		{"wrong password", "sales@example.com", "abcd-efgh-ijkm-npqr", refused},
		{"quotes and backslashes are escaped", "sales@example.com", `x' OR '1'='1 \x41`, refused},
		{"empty password", "sales@example.com", "", refused},
		{"an IMAP-only password", "sales@example.com", readerPassword, ok},
		{"an SMTP-only password", "sales@example.com", printerPassword, refused},
	} {
		t.Run(tc.name, func(t *testing.T) { check(t, tc.login, tc.password, tc.want) })
	}
	// SMTP submission authenticates through Dovecot's auth service as
	// "smtp", which doveadm plays.
	for _, tc := range []struct {
		name, password string
		ok             bool
	}{
		{"SMTP with a password for both", laptopPassword, true},
		{"SMTP with an SMTP-only password", printerPassword, true},
		{"SMTP with an IMAP-only password", readerPassword, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := imap.authTest(t, "smtp", "sales@example.com", tc.password); got != tc.ok {
				t.Errorf("doveadm auth test service=smtp: %v, want %v", got, tc.ok)
			}
		})
	}

	// Dovecot's check recorded when each device was last used.
	list, err := devices.ListDevicePasswords(anna.ctx, &mailboxesv1.ListDevicePasswordsRequest{Parent: sales})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range list.GetDevicePasswords() {
		if d.GetLastUseTime() == nil || time.Since(d.GetLastUseTime().AsTime()) > time.Minute {
			t.Errorf("%s: last use %v, want the logins just made", d.GetDeviceName(), d.GetLastUseTime())
		}
	}

	// The phone is connected when its password is revoked: the mail store
	// ends its session (doveadm kick), so it stops reading mail at once.
	phoneConn, phoneIMAP, err := imap.session("sales@example.com", phonePassword)
	if err != nil {
		t.Fatal(err)
	}
	defer phoneConn.Close()
	edge.do(t, anna.token, "DELETE", "/v1/"+phone, nil, nil)
	t.Run("revoked while connected", func(t *testing.T) { waitDisconnected(t, phoneConn, phoneIMAP) })
	t.Run("revoked", func(t *testing.T) { check(t, "sales@example.com", phonePassword, refused) })
	t.Run("other device after the revocation", func(t *testing.T) { check(t, "sales@example.com", laptopPassword, ok) })

	setRights := func(r *mailboxesv1.Rights) {
		t.Helper()
		_, err := e.addrs.UpdateAddress(owner.ctx, &mailboxesv1.UpdateAddressRequest{
			Address:    &mailboxesv1.Address{Name: sales, Users: []*mailboxesv1.AddressUser{{User: anna.user, Rights: r}}},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"users"}},
		})
		if err != nil {
			t.Fatalf("set anna's rights: %v", err)
		}
	}
	setRights(&mailboxesv1.Rights{AutoReply: true, Filters: true, Signatures: true})
	t.Run("devices right taken away", func(t *testing.T) { check(t, "sales@example.com", laptopPassword, refused) })
	setRights(nil)
	t.Run("devices right given back", func(t *testing.T) { check(t, "sales@example.com", laptopPassword, ok) })

	// The address's quota is Dovecot's: a message that does not fit is
	// refused, one that does is stored.
	if _, err := e.addrs.UpdateAddress(owner.ctx, &mailboxesv1.UpdateAddressRequest{
		Address: &mailboxesv1.Address{Name: sales, QuotaBytes: 4096}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"quota_bytes"}},
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		size int
		want string
	}{
		{"a message within the quota", 1000, "a2 OK"},
		{"a message over the quota", 8000, "a2 NO [OVERQUOTA]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := imap.appendMessage("sales@example.com", laptopPassword, tc.size)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("APPEND of %d bytes: %q, want %q...", tc.size, got, tc.want)
			}
		})
	}
	// Dovecot copies the usage back (quota_clone); the address shows it.
	for deadline := time.Now().Add(10 * time.Second); ; {
		a, err := e.addrs.GetAddress(owner.ctx, &mailboxesv1.GetAddressRequest{Name: sales})
		if err != nil {
			t.Fatal(err)
		}
		if u := a.GetAddress().GetUsageBytes(); u > 1000 && u < 4096 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("usage %d bytes, want the stored message's (1,000 to 4,096)", u)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Dovecot keeps the mail where mailplane mailstore looks for it, and
	// deleting an address through the REST edge removes it from the disk.
	msHome := filepath.Join(imap.vmail, lastID(ms.GetMailService().GetName()))
	salesHome, infoHome := filepath.Join(msHome, lastID(sales)), filepath.Join(msHome, lastID(info))
	var infoDevice struct{ Password string }
	edge.do(t, anna.token, "POST", "/v1/"+info+"/devicePasswords", map[string]any{"deviceName": "Anna's phone"}, &infoDevice)
	if got, err := imap.appendMessage("info@example.com", infoDevice.Password, 500); err != nil || !strings.HasPrefix(got, "a2 OK") {
		t.Fatalf("APPEND to info: %q, %v", got, err)
	}
	for _, home := range []string{salesHome, infoHome} {
		if _, err := os.Stat(filepath.Join(home, "Maildir")); err != nil {
			t.Fatalf("Dovecot's mail is not where the mail store looks: %v", err)
		}
	}
	edge.do(t, owner.token, "DELETE", "/v1/"+info, nil, nil)
	waitGone(t, infoHome)

	laptopConn, laptopIMAP, err := imap.session("sales@example.com", laptopPassword)
	if err != nil {
		t.Fatal(err)
	}
	defer laptopConn.Close()
	if _, err := e.services.DeleteMailService(owner.ctx, &mailboxesv1.DeleteMailServiceRequest{Name: ms.GetMailService().GetName()}); err != nil {
		t.Fatal(err)
	}
	t.Run("mail service deleted while connected", func(t *testing.T) { waitDisconnected(t, laptopConn, laptopIMAP) })
	t.Run("mail service deleted", func(t *testing.T) { check(t, "sales@example.com", laptopPassword, refused) })
	// Its mail goes with its purge (TestMailstore shows it stays until then).
	if _, err := e.pool.Exec(context.Background(), "UPDATE mail_services SET delete_time = now() - interval '31 days'"); err != nil {
		t.Fatal(err)
	}
	if n, err := e.svc.Purge(context.Background()); err != nil || n != 1 {
		t.Fatalf("purged %d (%v), want 1", n, err)
	}
	waitGone(t, msHome)
}

// edge is the REST edge in front of a test's gRPC server.
type edge struct{ url string }

// startEdge serves the REST edge in front of e's services until the test ends.
func startEdge(t *testing.T, e *env) *edge {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h, closeEdge, err := gateway.New(ctx, gateway.Config{AccountsAddr: e.cc.Target()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); cancel(); closeEdge() })
	return &edge{url: srv.URL}
}

// do sends a JSON request as the holder of token and decodes the answer into
// out, failing the test on anything but 200.
func (g *edge) do(t *testing.T, token, method, path string, in, out any) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, g.url+path, body)
	req.Header.Set("Authorization", "Bearer "+token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s %s", method, path, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

// dovecotBinary finds dovecot (Debian: package dovecot-imapd, in /usr/sbin),
// skipping the test without it except under CI=true.
func dovecotBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("dovecot")
	if err != nil {
		bin, err = exec.LookPath("/usr/sbin/dovecot")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("dovecot is not installed; CI needs it (apt-get install dovecot-imapd dovecot-pgsql)")
		}
		t.Skip("dovecot is not installed (apt-get install dovecot-imapd dovecot-pgsql)")
	}
	return bin
}

// dovecotConf is the test's dovecot.conf: a private instance under dir,
// listening on 127.0.0.1 only, without TLS, including Mailplane's auth
// fragment.
var dovecotConf = template.Must(template.New("dovecot.conf").Parse(`
base_dir = {{.Dir}}/run
state_dir = {{.Dir}}/state
log_path = {{.Dir}}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_failure_delay = 0
auth_verbose = yes
auth_debug = yes
default_internal_user = {{.InternalUser}}
default_internal_group = {{.InternalGroup}}
default_login_user = {{.LoginUser}}
mail_uid = {{.MailUID}}
mail_gid = {{.MailGID}}
first_valid_uid = {{.MailUID}}
first_valid_gid = {{.MailGID}}
mail_location = maildir:~/Maildir
# Quotas and their usage as deploy/mail/dovecot/README.md sets them up.
mail_plugins = $mail_plugins quota quota_clone
protocol imap {
  mail_plugins = $mail_plugins imap_quota
}
plugin {
  quota = count:User quota
  quota_vsizes = yes
  quota_clone_dict = proxy::mailplane-quota
}
dict {
  mailplane-quota = pgsql:{{.Dir}}/mailplane-dict.conf.ext
}
service dict {
  unix_listener dict {
    mode = 0660
    user = {{.MailUser}}
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = {{.Port}}
  }
  inet_listener imaps {
    port = 0
  }
{{- if not .Root}}
  chroot =
{{- end}}
}
{{- if not .Root}}
service anvil {
  chroot =
}
{{- end}}
!include {{.Dir}}/90-mailplane-auth.conf
`))

// dovecot is a running Dovecot's IMAP address.
type dovecot struct {
	addr string
	// conf is its configuration file, for doveadm.
	conf string
	// vmail holds the homes, as /srv/vmail does in deploy/mail/dovecot.
	vmail string
	// clients counts connections, each from its own loopback address:
	// Dovecot 2.3 delays every failed login from an address more than the
	// last (auth penalty, up to 15s), and nothing in its configuration
	// turns that off.
	clients atomic.Uint32
}

// startDovecot starts Dovecot in the foreground with Mailplane's
// configuration from deploy/mail/dovecot, reading pool's database, and stops
// it when t ends. Its log goes to the test output if t fails.
func startDovecot(t *testing.T, bin string, pool *pgxpool.Pool) *dovecot {
	t.Helper()
	// Not t.TempDir: the mail user must be able to reach its home, and
	// t.TempDir's parents are private to the user running the test.
	dir, err := os.MkdirTemp("", "mailplane-dovecot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}

	p := struct {
		Dir                         string
		Port                        int
		Root                        bool
		InternalUser, InternalGroup string
		LoginUser                   string
		MailUID, MailGID            string
		MailUser                    string
	}{Dir: dir, Port: dovecotPort(t), Root: os.Geteuid() == 0}
	if p.Root {
		// Debian's package creates these users; the mail user is dovecot's
		// (any unprivileged user does: uid 0 may not own mail).
		p.InternalUser, p.InternalGroup, p.LoginUser = "dovecot", "dovecot", "dovenull"
		u, err := user.Lookup("dovecot")
		if err != nil {
			t.Fatalf("dovecot runs as root and needs its users: %v", err)
		}
		p.MailUID, p.MailGID, p.MailUser = u.Uid, u.Gid, u.Username
	} else {
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		g, err := user.LookupGroupId(u.Gid)
		if err != nil {
			t.Fatal(err)
		}
		p.InternalUser, p.InternalGroup, p.LoginUser = u.Username, g.Name, u.Username
		p.MailUID, p.MailGID, p.MailUser = u.Uid, u.Gid, u.Username
	}
	vmail := filepath.Join(dir, "vmail")
	if err := os.Mkdir(vmail, 0o700); err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(p.MailUID)
	gid, _ := strconv.Atoi(p.MailGID)
	if err := os.Chown(vmail, uid, gid); err != nil {
		t.Fatal(err)
	}

	// Mailplane's files, with this test's database and directories.
	deploy := filepath.Join("..", "..", "deploy", "mail", "dovecot")
	sqlConf := filepath.Join(dir, "mailplane-sql.conf.ext")
	writeConf(t, filepath.Join(deploy, "mailplane-sql.conf.ext"), sqlConf,
		confEdit{regexp.MustCompile(`(?m)^connect = .*$`), "connect = " + pgConnect(pool)},
		confEdit{regexp.MustCompile(`'/srv/vmail/'`), "'" + vmail + "/'"})
	writeConf(t, filepath.Join(deploy, "mailplane-dict.conf.ext"), filepath.Join(dir, "mailplane-dict.conf.ext"),
		confEdit{regexp.MustCompile(`(?m)^connect = .*$`), "connect = " + pgConnect(pool)})
	writeConf(t, filepath.Join(deploy, "conf.d", "90-mailplane-auth.conf"), filepath.Join(dir, "90-mailplane-auth.conf"),
		confEdit{regexp.MustCompile(regexp.QuoteMeta("/etc/dovecot/mailplane-sql.conf.ext")), sqlConf})
	var conf bytes.Buffer
	if err := dovecotConf.Execute(&conf, p); err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	var out logtest.Buffer
	cmd := exec.Command(bin, "-F", "-c", confPath)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dovecot: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// SIGTERM lets the master stop its children; the group kill is for
		// a master that does not.
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			t.Logf("dovecot.conf:\n%s\ndovecot output:\n%s\ndovecot.log:\n%s", conf.Bytes(), out.String(), log)
		}
	})

	d := &dovecot{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Port)), conf: confPath, vmail: vmail}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("dovecot exited: %s", out.String())
		default:
		}
		conn, err := net.DialTimeout("tcp", d.addr, time.Second)
		if err == nil {
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			greeting, err := textproto.NewConn(conn).ReadLine()
			conn.Close()
			if err == nil && strings.HasPrefix(greeting, "* OK") {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("dovecot did not answer on %s within 15s: %v", d.addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// login opens a connection, sends LOGIN and returns the tagged answer, like
// "a1 OK [CAPABILITY ...] Logged in" or "a1 NO [AUTHENTICATIONFAILED] ...".
// authTest asks Dovecot's auth service, as service would (Postfix asks as
// "smtp"), whether password opens user, with doveadm auth test.
// doveadmPath is Debian's doveadm, which root's PATH may lack.
func doveadmPath() string {
	if p, err := exec.LookPath("doveadm"); err == nil {
		return p
	}
	return "/usr/bin/doveadm"
}

func (d *dovecot) authTest(t *testing.T, service, user, password string) bool {
	t.Helper()
	out, err := exec.Command(doveadmPath(), "-c", d.conf, "auth", "test", "-x", "service="+service, user, password).CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return true
	case errors.As(err, &exit) && exit.ExitCode() == 77: // authentication failed
		return false
	}
	t.Fatalf("doveadm auth test: %v\n%s", err, out)
	return false
}

// appendMessage logs in and appends a message of about size bytes to the
// INBOX, returning the APPEND's tagged answer.
func (d *dovecot) appendMessage(user, password string, size int) (string, error) {
	conn, c, err := d.dial()
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if line, err := imapCommand(c, "a1 LOGIN "+imapQuote(user)+" "+imapQuote(password)); err != nil || !strings.HasPrefix(line, "a1 OK") {
		return "", fmt.Errorf("LOGIN: %q %v", line, err)
	}
	msg := "From: someone@example.net\r\nTo: " + user + "\r\nSubject: test\r\n\r\n" + strings.Repeat("x", size) + "\r\n"
	// A synchronizing literal: the server says whether it takes the size
	// before the message is sent.
	if err := c.PrintfLine("a2 APPEND INBOX {%d}", len(msg)); err != nil {
		return "", err
	}
	line, err := c.ReadLine()
	if err != nil || !strings.HasPrefix(line, "+") {
		return line, err
	}
	if _, err := io.WriteString(conn, msg+"\r\n"); err != nil {
		return "", err
	}
	for {
		line, err := c.ReadLine()
		if err != nil || strings.HasPrefix(line, "a2 ") {
			return line, err
		}
	}
}

// dial connects to Dovecot's IMAP port, from a loopback address of its own,
// and reads the greeting.
func (d *dovecot) dial() (net.Conn, *textproto.Conn, error) {
	n := d.clients.Add(1) + 1 // 127.0.0.2 on
	dialer := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte(n>>8), byte(n))}}
	conn, err := dialer.Dial("tcp", d.addr)
	if err != nil {
		return nil, nil, err
	}
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	c := textproto.NewConn(conn)
	if _, err := c.ReadLine(); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("greeting: %w", err)
	}
	return conn, c, nil
}

// session logs in and selects the INBOX, as a mail client keeps doing.
func (d *dovecot) session(user, password string) (net.Conn, *textproto.Conn, error) {
	conn, c, err := d.dial()
	if err != nil {
		return nil, nil, err
	}
	for _, cmd := range []string{"a1 LOGIN " + imapQuote(user) + " " + imapQuote(password), "a2 SELECT INBOX"} {
		if line, err := imapCommand(c, cmd); err != nil || !strings.HasPrefix(line, cmd[:3]+"OK") {
			conn.Close()
			return nil, nil, fmt.Errorf("%s: %q %v", cmd[3:strings.IndexByte(cmd[3:], ' ')+3], line, err)
		}
	}
	return conn, c, nil
}

// waitDisconnected waits for the server to end the session on conn.
func waitDisconnected(t *testing.T, conn net.Conn, c *textproto.Conn) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		line, err := c.ReadLine()
		if errors.Is(err, io.EOF) || strings.HasPrefix(line, "* BYE") {
			return
		}
		if err != nil {
			t.Fatalf("the session is still open: %v", err)
		}
	}
}

func (d *dovecot) login(user, password string) (string, error) {
	conn, c, err := d.dial()
	if err != nil {
		return "", err
	}
	defer conn.Close()
	line, err := imapCommand(c, "a1 LOGIN "+imapQuote(user)+" "+imapQuote(password))
	if err != nil {
		return "", fmt.Errorf("LOGIN: %w", err)
	}
	if strings.HasPrefix(line, "a1 OK") {
		// Logged in: the userdb's home must hold a usable mailbox.
		if sel, err := imapCommand(c, "a2 SELECT INBOX"); err != nil || !strings.HasPrefix(sel, "a2 OK") {
			return "", fmt.Errorf("logged in, but SELECT INBOX: %q %v", sel, err)
		}
		c.PrintfLine("a3 LOGOUT")
	}
	return line, nil
}

// imapCommand sends an IMAP command and returns its tagged answer.
func imapCommand(c *textproto.Conn, cmd string) (string, error) {
	tag, _, _ := strings.Cut(cmd, " ")
	if err := c.PrintfLine("%s", cmd); err != nil {
		return "", err
	}
	for {
		line, err := c.ReadLine()
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(line, tag+" ") {
			return line, nil
		}
	}
}

// imapQuote makes s an IMAP quoted string (RFC 3501).
func imapQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// pgConnect is pool's database as a libpq connection string, as Dovecot's
// pgsql driver takes it.
func pgConnect(pool *pgxpool.Pool) string {
	c := pool.Config().ConnConfig
	quote := func(s string) string { return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'" }
	parts := []string{"host=" + quote(c.Host), "port=" + strconv.Itoa(int(c.Port)), "dbname=" + quote(c.Database), "user=" + quote(c.User)}
	if c.Password != "" {
		parts = append(parts, "password="+quote(c.Password))
	}
	if c.TLSConfig == nil {
		parts = append(parts, "sslmode=disable")
	}
	return strings.Join(parts, " ")
}

// confEdit replaces what re matches.
type confEdit struct {
	re   *regexp.Regexp
	with string
}

// writeConf copies the file from to to, applying edits, each of which
// must match.
func writeConf(t *testing.T, from, to string, edits ...confEdit) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range edits {
		if !e.re.Match(b) {
			t.Fatalf("%s: nothing matches %s", from, e.re)
		}
		b = e.re.ReplaceAllLiteral(b, []byte(e.with))
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// dovecotPort returns a TCP port free on 127.0.0.1 a moment ago.
func dovecotPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
