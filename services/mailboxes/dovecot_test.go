package mailboxes_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mailplane/mailplane/gateway"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/platform/dovecottest"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// TestDovecotDevicePasswords runs a real Dovecot with the passdb and userdb
// of deploy/mail/dovecot against the test database: an IMAP login works with
// a device password made through the REST edge, and stops working once it
// is revoked (through the edge too), its user loses the "devices" right or
// the address, or the mail service is deleted.
func TestDovecotDevicePasswords(t *testing.T) {
	imap := dovecottest.New(t)
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

	startDovecot(t, imap, e.pool)
	startMailstore(t, e.pool, imap.Vmail, imap.Doveadm()...)
	check := func(t *testing.T, login, password, want string) {
		t.Helper()
		got, err := imap.Login(login, password)
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
			if got := imap.AuthTest(t, "smtp", "sales@example.com", tc.password); got != tc.ok {
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
	phoneConn, phoneIMAP, err := imap.Session("sales@example.com", phonePassword)
	if err != nil {
		t.Fatal(err)
	}
	defer phoneConn.Close()
	edge.do(t, anna.token, "DELETE", "/v1/"+phone, nil, nil)
	t.Run("revoked while connected", func(t *testing.T) { dovecottest.WaitDisconnected(t, phoneConn, phoneIMAP) })
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
			got, err := imap.Append("sales@example.com", laptopPassword, tc.size)
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
	msHome := filepath.Join(imap.Vmail, lastID(ms.GetMailService().GetName()))
	salesHome, infoHome := filepath.Join(msHome, lastID(sales)), filepath.Join(msHome, lastID(info))
	var infoDevice struct{ Password string }
	edge.do(t, anna.token, "POST", "/v1/"+info+"/devicePasswords", map[string]any{"deviceName": "Anna's phone"}, &infoDevice)
	if got, err := imap.Append("info@example.com", infoDevice.Password, 500); err != nil || !strings.HasPrefix(got, "a2 OK") {
		t.Fatalf("APPEND to info: %q, %v", got, err)
	}
	for _, home := range []string{salesHome, infoHome} {
		if _, err := os.Stat(filepath.Join(home, "Maildir")); err != nil {
			t.Fatalf("Dovecot's mail is not where the mail store looks: %v", err)
		}
	}
	edge.do(t, owner.token, "DELETE", "/v1/"+info, nil, nil)
	waitGone(t, infoHome)

	laptopConn, laptopIMAP, err := imap.Session("sales@example.com", laptopPassword)
	if err != nil {
		t.Fatal(err)
	}
	defer laptopConn.Close()
	if _, err := e.services.DeleteMailService(owner.ctx, &mailboxesv1.DeleteMailServiceRequest{Name: ms.GetMailService().GetName()}); err != nil {
		t.Fatal(err)
	}
	t.Run("mail service deleted while connected", func(t *testing.T) { dovecottest.WaitDisconnected(t, laptopConn, laptopIMAP) })
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

// dovecotConf is what Mailplane adds to Dovecot's configuration, as
// deploy/mail/dovecot/README.md sets it up: quotas and their usage, and the
// auth fragment.
const dovecotConf = `
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
!include {{.Dir}}/90-mailplane-auth.conf
`

// startDovecot starts d with Mailplane's configuration from
// deploy/mail/dovecot, reading pool's database.
func startDovecot(t *testing.T, d *dovecottest.Dovecot, pool *pgxpool.Pool) {
	t.Helper()
	// Mailplane's files, with this test's database and directories.
	connect := "connect = " + dovecottest.PGConnect(pool.Config().ConnConfig)
	deploy := filepath.Join("..", "..", "deploy", "mail", "dovecot")
	sqlConf := filepath.Join(d.Dir, "mailplane-sql.conf.ext")
	writeConf(t, filepath.Join(deploy, "mailplane-sql.conf.ext"), sqlConf,
		confEdit{regexp.MustCompile(`(?m)^connect = .*$`), connect},
		confEdit{regexp.MustCompile(`'/srv/vmail/'`), "'" + d.Vmail + "/'"})
	writeConf(t, filepath.Join(deploy, "mailplane-dict.conf.ext"), filepath.Join(d.Dir, "mailplane-dict.conf.ext"),
		confEdit{regexp.MustCompile(`(?m)^connect = .*$`), connect})
	writeConf(t, filepath.Join(deploy, "conf.d", "90-mailplane-auth.conf"), filepath.Join(d.Dir, "90-mailplane-auth.conf"),
		confEdit{regexp.MustCompile(regexp.QuoteMeta("/etc/dovecot/mailplane-sql.conf.ext")), sqlConf})
	var conf strings.Builder
	if err := template.Must(template.New("").Parse(dovecotConf)).Execute(&conf, d); err != nil {
		t.Fatal(err)
	}
	d.Start(t, conf.String())
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
