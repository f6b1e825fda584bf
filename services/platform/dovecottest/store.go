package dovecottest

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap"
	"github.com/emersion/go-imap/client"
	"github.com/emersion/go-imap/commands"
	"github.com/emersion/go-imap/responses"
)

// Store is a mail store for tests of IMAP clients that copy mail: users
// from a passwd-file, the INBOX namespace with its separator, special-use
// folders, and a master user, as deploy/mail/dovecot has them.
type Store struct {
	// Separator is the hierarchy separator: "/" (as deploy/mail/dovecot)
	// or ".". Either way a name may hold the other one (listescape).
	Separator string
	// Users maps each login to its password.
	Users map[string]string
	// Master and MasterPassword, when set, let "user*Master" log in as
	// any user with the master password.
	Master, MasterPassword string
	// SpecialUse maps folder names to their SPECIAL-USE attribute, e.g.
	// "Sent": `\Sent`; such a folder is listed with it once it exists.
	SpecialUse map[string]string
}

// StoreConf writes s's users and returns the configuration to give Start.
func (d *Dovecot) StoreConf(t testing.TB, s Store) string {
	t.Helper()
	var users strings.Builder
	for u, p := range s.Users {
		fmt.Fprintf(&users, "%s:{PLAIN}%s::::::\n", u, p)
	}
	path := filepath.Join(d.Dir, "users")
	if err := os.WriteFile(path, []byte(users.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `
mail_plugins = $mail_plugins listescape
plugin {
  listescape_char = "\\"
}
passdb {
  driver = passwd-file
  args = username_format=%%u %s
}
userdb {
  driver = static
  args = home=%s/%%u
}
namespace inbox {
  inbox = yes
  separator = %s
`, path, d.Vmail, s.Separator)
	for _, name := range slices.Sorted(maps.Keys(s.SpecialUse)) {
		fmt.Fprintf(&b, "  mailbox %q {\n    special_use = %s\n  }\n", name, s.SpecialUse[name])
	}
	b.WriteString("}\n")
	if s.Master != "" {
		masters := filepath.Join(d.Dir, "masters")
		if err := os.WriteFile(masters, []byte(s.Master+":{PLAIN}"+s.MasterPassword+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, `
auth_master_user_separator = *
passdb {
  driver = passwd-file
  args = %s
  master = yes
}
`, masters)
	}
	return b.String()
}

// Client logs in as user over IMAP (go-imap), from a loopback address of
// its own, and logs out when t ends.
func (d *Dovecot) Client(t testing.TB, user, password string) *client.Client {
	t.Helper()
	n := d.clients.Add(1) + 1
	dialer := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte(n>>8), byte(n))}}
	conn, err := dialer.Dial("tcp", d.Addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(conn)
	if err != nil {
		t.Fatalf("greeting: %v", err)
	}
	c.ErrorLog = log.New(io.Discard, "", 0)
	c.Timeout = time.Minute
	if err := c.Login(user, password); err != nil {
		t.Fatalf("login as %s: %v", user, err)
	}
	t.Cleanup(func() { c.Logout() })
	return c
}

// Message is a message in a mailbox: its folder (decoded name, the
// store's separator), flags and keywords, internal date and bytes.
type Message struct {
	Folder string
	Flags  []string
	Date   time.Time
	Raw    []byte
}

// Seed creates the folders (the store's separator) and appends msgs,
// creating their folders too.
func (d *Dovecot) Seed(t testing.TB, user, password string, folders []string, msgs []Message) {
	t.Helper()
	c := d.Client(t, user, password)
	made := map[string]bool{"INBOX": true}
	create := func(f string) {
		if made[f] {
			return
		}
		made[f] = true
		if err := c.Create(f); err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Fatalf("create %q: %v", f, err)
		}
	}
	for _, f := range folders {
		create(f)
	}
	for i, m := range msgs {
		create(m.Folder)
		if err := c.Append(m.Folder, m.Flags, m.Date, bytes.NewBuffer(m.Raw)); err != nil {
			t.Fatalf("append message %d to %q: %v", i, m.Folder, err)
		}
	}
}

// Folder is a folder as LIST shows it: its decoded name and attributes.
type Folder struct {
	Name       string
	Attributes []string
}

// Folders lists user's folders, sorted by name.
func (d *Dovecot) Folders(t testing.TB, user, password string) []Folder {
	t.Helper()
	return folders(t, d.Client(t, user, password))
}

func folders(t testing.TB, c *client.Client) []Folder {
	t.Helper()
	ch := make(chan *imap.MailboxInfo, 16)
	done := make(chan error, 1)
	go func() { done <- c.List("", "*", ch) }()
	var fs []Folder
	for mi := range ch {
		attrs := slices.Clone(mi.Attributes)
		sort.Strings(attrs)
		fs = append(fs, Folder{Name: mi.Name, Attributes: attrs})
	}
	if err := <-done; err != nil {
		t.Fatalf("list: %v", err)
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].Name < fs[j].Name })
	return fs
}

// Messages returns every message of user in every selectable folder,
// sorted by folder then bytes then flags, with flags sorted and without
// \Recent (a session's, not the message's).
func (d *Dovecot) Messages(t testing.TB, user, password string) []Message {
	t.Helper()
	c := d.Client(t, user, password)
	var msgs []Message
	for _, f := range folders(t, c) {
		if slices.Contains(f.Attributes, imap.NoSelectAttr) || slices.Contains(f.Attributes, "\\NonExistent") {
			continue
		}
		st, err := c.Select(f.Name, true)
		if err != nil {
			t.Fatalf("examine %q: %v", f.Name, err)
		}
		if st.Messages == 0 {
			continue
		}
		section := &imap.BodySectionName{Peek: true}
		seq := new(imap.SeqSet)
		seq.AddRange(1, st.Messages)
		// go-imap's FETCH lower-cases keywords: the flags are read as
		// the server wrote them.
		items := []imap.FetchItem{imap.FetchFlags, imap.FetchInternalDate, section.FetchItem()}
		h := responses.HandlerFunc(func(resp imap.Resp) error {
			name, fields, ok := imap.ParseNamedResp(resp)
			if !ok || name != "FETCH" || len(fields) < 2 {
				return responses.ErrUnhandled
			}
			kv, _ := fields[1].([]interface{})
			m := &imap.Message{}
			if err := m.Parse(kv); err != nil {
				return err
			}
			var flags []string
			for i := 0; i+1 < len(kv); i += 2 {
				if k, _ := imap.ParseString(kv[i]); strings.EqualFold(k, "FLAGS") {
					list, _ := kv[i+1].([]interface{})
					for _, fl := range list {
						if s, _ := imap.ParseString(fl); s != imap.RecentFlag {
							flags = append(flags, s)
						}
					}
				}
			}
			sort.Strings(flags)
			raw, _ := io.ReadAll(m.GetBody(section))
			msgs = append(msgs, Message{Folder: f.Name, Flags: flags, Date: m.InternalDate, Raw: raw})
			return nil
		})
		status, err := c.Execute(&commands.Fetch{SeqSet: seq, Items: items}, h)
		if err == nil {
			err = status.Err()
		}
		if err != nil {
			t.Fatalf("fetch %q: %v", f.Name, err)
		}
	}
	sort.SliceStable(msgs, func(i, j int) bool {
		a, b := msgs[i], msgs[j]
		if a.Folder != b.Folder {
			return a.Folder < b.Folder
		}
		if c := bytes.Compare(a.Raw, b.Raw); c != 0 {
			return c < 0
		}
		return strings.Join(a.Flags, " ") < strings.Join(b.Flags, " ")
	})
	return msgs
}
