package imports_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/mailplane/mailplane/gateway"
	"github.com/mailplane/mailplane/services/imports"
	"github.com/mailplane/mailplane/services/imports/internal/imapcopy"
	"github.com/mailplane/mailplane/services/platform/dovecottest"
	"github.com/mailplane/mailplane/services/platform/tlstest"
	"google.golang.org/grpc/metadata"
)

const (
	srcUser, srcPassword = "anna@example.net", "a secret"
	master, masterSecret = "mailplane-imports", "master secret"
)

// specialUse are both servers' special-use folders, by the same names:
// folders then map one to one and the two mailboxes compare as they are.
var specialUse = map[string]string{"Sent": `\Sent`, "Drafts": `\Drafts`, "Trash": `\Trash`, "Junk": `\Junk`, "Archive": `\Archive`}

// mailbox is a source Dovecot over implicit TLS with a certificate no
// system root trusts, and the platform's Dovecot (plain, a master user).
type mailboxes struct {
	src, dst *dovecottest.Dovecot
	imaps    int
	pin      string
}

func startDovecots(t *testing.T) *mailboxes {
	t.Helper()
	m := &mailboxes{src: dovecottest.New(t), dst: dovecottest.New(t)}
	ca := tlstest.NewCA(t)
	cert := ca.Issue("127.0.0.1")
	sum := sha256.Sum256(cert.Certificate[0])
	m.pin = strings.ToUpper(hex.EncodeToString(sum[:]))
	certFile, keyFile := tlstest.WriteFiles(t, m.src.Dir, cert)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.imaps = l.Addr().(*net.TCPAddr).Port
	l.Close()
	m.src.Start(t, m.src.StoreConf(t, dovecottest.Store{Separator: "/", Users: map[string]string{srcUser: srcPassword}, SpecialUse: specialUse})+fmt.Sprintf(`
ssl = yes
ssl_cert = <%s
ssl_key = <%s
service imap-login {
  inet_listener imaps {
    address = 127.0.0.1
    port = %d
  }
}
`, certFile, keyFile, m.imaps))
	m.dst.Start(t, m.dst.StoreConf(t, dovecottest.Store{Separator: "/", Users: map[string]string{"anna@example.test": "never used"},
		Master: master, MasterPassword: masterSecret, SpecialUse: specialUse}))
	return m
}

// seed fills the source: nested folders with non-ASCII names, special-use
// folders, flags and keywords, a large and an empty message, the same
// message in two folders; and puts one of them at the destination
// already (present from elsewhere).
func (m *mailboxes) seed(t *testing.T) {
	t.Helper()
	date := time.Date(2021, 3, 4, 5, 6, 7, 0, time.FixedZone("", 3600))
	msg := func(id, subject, body string) []byte {
		h := "From: Bob <bob@example.net>\r\nTo: anna@example.net\r\nDate: Thu, 4 Mar 2021 05:06:07 +0100\r\nSubject: " + subject + "\r\n"
		if id != "" {
			h = "Message-ID: <" + id + ">\r\n" + h
		}
		return []byte(h + "\r\n" + body)
	}
	large := msg("large@x", "large", strings.Repeat("0123456789 abcdefghijklmnopqrstuvwxyz 0123456789 abcdefghijklmnopqrstuvwxyz\r\n", 512<<10/78))
	var msgs []dovecottest.Message
	for i := range 12 {
		msgs = append(msgs, dovecottest.Message{Folder: "INBOX", Date: date.Add(time.Duration(i) * time.Hour), Flags: []string{`\Seen`}, Raw: msg(fmt.Sprintf("%d@x", i), fmt.Sprintf("message %d", i), "hello\r\n")})
	}
	msgs = append(msgs,
		dovecottest.Message{Folder: "INBOX", Date: date, Flags: []string{`\Answered`, `\Flagged`, "$Forwarded", "Work"}, Raw: msg("flags@x", "flags", "flags and keywords\r\n")},
		dovecottest.Message{Folder: "INBOX", Date: date, Raw: large},
		dovecottest.Message{Folder: "INBOX", Date: date, Raw: msg("empty@x", "empty", "")},
		dovecottest.Message{Folder: "INBOX", Date: date, Raw: msg("", "no Message-ID", "anonymous\r\n")},
		dovecottest.Message{Folder: "Sent", Date: date, Flags: []string{`\Seen`}, Raw: msg("sent@x", "sent", "a reply\r\n")},
		dovecottest.Message{Folder: "Projets/Été 2024/Réunions", Date: date, Raw: msg("same@x", "in two folders", "twice\r\n")},
		dovecottest.Message{Folder: "Archive", Date: date, Raw: msg("same@x", "in two folders", "twice\r\n")},
		dovecottest.Message{Folder: "Drafts", Date: date, Flags: []string{`\Draft`}, Raw: msg("draft@x", "draft", "unfinished\r\n")},
	)
	m.src.Seed(t, srcUser, srcPassword, []string{"Trash", "Junk", "Projets", "Projets/Été 2024", "Empty"}, msgs)
	m.dst.Seed(t, "anna@example.test*"+master, masterSecret, nil, msgs[3:4])
}

// edge serves the REST edge in front of e's gRPC server.
func (e *env) edge() string {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h, closeEdge, err := gateway.New(ctx, gateway.Config{AccountsAddr: e.srv.Addr}, slog.New(slog.DiscardHandler))
	if err != nil {
		e.t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	e.t.Cleanup(func() { srv.Close(); cancel(); closeEdge() })
	return srv.URL
}

// rest sends a JSON request as ctx's caller and returns the status and body.
func rest(t *testing.T, ctx context.Context, method, url string, in any) (int, []byte) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, body)
	md, _ := metadata.FromOutgoingContext(ctx)
	req.Header.Set("Authorization", md.Get("authorization")[0])
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

type restJob struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	Progress struct {
		FoldersTotal, FoldersDone                             int
		MessagesTotal, MessagesCopied, MessagesSkipped, Bytes string
		MessagesFailed                                        string
	} `json:"progress"`
}

// watch follows job's stream through the edge to its end and returns
// the states seen, in order, and the last job.
func watch(t *testing.T, ctx context.Context, base, job string) ([]string, restJob) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/"+job+":watch", nil)
	md, _ := metadata.FromOutgoingContext(ctx)
	req.Header.Set("Authorization", md.Get("authorization")[0])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("watch: %d %s", resp.StatusCode, b)
	}
	var states []string
	var last restJob
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Result struct {
				ImportJob restJob `json:"importJob"`
			} `json:"result"`
			Error json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil || line.Error != nil {
			t.Fatalf("watch line %s: %v", sc.Bytes(), err)
		}
		last = line.Result.ImportJob
		states = append(states, last.State)
	}
	return states, last
}

// crashOnce wraps imapcopy.Run: in its first run the save of the second
// batch fails after the batch was appended (a process dying between the
// APPEND and the checkpoint), so that the next run takes the job up from
// the first checkpoint.
type crashOnce struct {
	mu      sync.Mutex
	runs    int
	crashed bool
}

type failingSave struct {
	imapcopy.Checkpoints
	c     *crashOnce
	saves int
}

func (f *failingSave) Save(ctx context.Context, source int, folder string, v, last uint32, p imapcopy.Progress, failed []imapcopy.Failure) error {
	f.saves++
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	if f.saves == 2 && !f.c.crashed {
		f.c.crashed = true
		return errors.New("killed between the APPEND and the checkpoint")
	}
	return f.Checkpoints.Save(ctx, source, folder, v, last, p, failed)
}

func (c *crashOnce) run(ctx context.Context, j imapcopy.Job) (imapcopy.Progress, error) {
	c.mu.Lock()
	c.runs++
	c.mu.Unlock()
	j.Checkpoints = &failingSave{Checkpoints: j.Checkpoints, c: c}
	return imapcopy.Run(ctx, j)
}

// TestImportThroughEdge copies a seeded mailbox from a server whose
// certificate is pinned into an address, through the REST edge, with a
// crash mid-way, and compares the two mailboxes message by message.
func TestImportThroughEdge(t *testing.T) {
	m := startDovecots(t)
	m.seed(t)
	crash := &crashOnce{}
	e := start(t, options{copier: &imports.Copier{Check: imapcopy.Check, Run: crash.run}, imap: m.dst.Addr, master: master, masterPassword: masterSecret,
		limits: imports.Limits{Retry: 50 * time.Millisecond}})
	dest := e.announce("anna")
	base := e.edge()
	url := base + "/v1/organizations/" + e.org.String() + "/importJobs"
	source := map[string]any{"host": "127.0.0.1", "port": m.imaps, "security": "SECURITY_TLS", "login": srcUser, "password": srcPassword}
	job := map[string]any{"destination": dest, "sources": []any{source}}

	// The certificate is not trusted: refused, naming the field, unless pinned.
	code, body := rest(t, e.admin, http.MethodPost, url, job)
	if code != http.StatusBadRequest || !strings.Contains(string(body), "sources[0].host") || !strings.Contains(string(body), "certificateSha256") {
		t.Fatalf("untrusted certificate: %d %s", code, body)
	}
	source["certificateSha256"] = strings.Repeat("00:", 31) + "00"
	if code, body := rest(t, e.admin, http.MethodPost, url, job); code != http.StatusBadRequest || !strings.Contains(string(body), "not the pinned one") {
		t.Fatalf("another pin: %d %s", code, body)
	}
	// Unknown JSON fields are refused by the edge.
	if code, body := rest(t, e.admin, http.MethodPost, url, map[string]any{"destination": dest, "sources": []any{source}, "colour": "red"}); code != http.StatusBadRequest {
		t.Fatalf("unknown field: %d %s", code, body)
	}
	source["certificateSha256"] = m.pin
	code, body = rest(t, e.admin, http.MethodPost, url, job)
	if code != http.StatusOK {
		t.Fatalf("create: %d %s", code, body)
	}
	var created restJob
	json.Unmarshal(body, &created)
	states, last := watch(t, e.admin, base, created.Name)
	if last.State != "STATE_SUCCEEDED" {
		t.Fatalf("watched %v, ended %+v", states, last)
	}
	if !crash.crashed || crash.runs < 2 {
		t.Fatalf("the crash did not happen (runs %d)", crash.runs)
	}
	want := m.src.Messages(t, srcUser, srcPassword)
	got := m.dst.Messages(t, "anna@example.test*"+master, masterSecret)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("destination differs from the source (-want +got):\n%s", diff)
	}
	if last.Progress.MessagesTotal != strconv.Itoa(len(want)) || last.Progress.MessagesFailed != "" && last.Progress.MessagesFailed != "0" {
		t.Fatalf("progress %+v, %d messages", last.Progress, len(want))
	}
	if e.passwords(created.Name) {
		t.Fatal("the source password is kept after the end")
	}

	// A second import of the same mailbox copies nothing again.
	code, body = rest(t, e.admin, http.MethodPost, url, job)
	if code != http.StatusOK {
		t.Fatalf("create again: %d %s", code, body)
	}
	json.Unmarshal(body, &created)
	_, last = watch(t, e.admin, base, created.Name)
	if last.State != "STATE_SUCCEEDED" || last.Progress.MessagesCopied != "" && last.Progress.MessagesCopied != "0" {
		t.Fatalf("second import: %+v", last)
	}
}

// TestBulkThroughEdge: the template downloads as a CSV file, and a filled
// one starts a bulk import, through the REST edge.
func TestBulkThroughEdge(t *testing.T) {
	e := start(t, options{})
	e.announce("anna")
	base := e.edge() + "/v1/organizations/" + e.org.String() + "/importJobs"
	req, _ := http.NewRequest(http.MethodGet, base+":template", nil)
	md, _ := metadata.FromOutgoingContext(e.admin)
	req.Header.Set("Authorization", md.Get("authorization")[0])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" ||
		!strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") || !strings.HasPrefix(string(tmpl), "source,login,password,destination") {
		t.Fatalf("template: %d %v %q", resp.StatusCode, resp.Header, tmpl)
	}
	if code, body := rest(t, e.as(uuid.Must(uuid.NewV7()), "admin"), http.MethodGet, base+":template", nil); code != http.StatusNotFound {
		t.Fatalf("another organization's template: %d %s", code, body)
	}
	csv := strings.SplitN(string(tmpl), "\r\n", 2)[0] + "\r\nimap.example.net,a@example.net,right,anna@example.test,,,\r\n"
	code, body := rest(t, e.admin, http.MethodPost, base+":bulkCreate", map[string]any{"csv": csv})
	if code != http.StatusOK {
		t.Fatalf("bulk: %d %s", code, body)
	}
	var j struct {
		Name      string   `json:"name"`
		ChildJobs []string `json:"childJobs"`
	}
	json.Unmarshal(body, &j)
	if len(j.ChildJobs) != 1 {
		t.Fatalf("bulk job %s", body)
	}
	states, _ := watch(t, e.admin, e.edge(), j.Name)
	if states[len(states)-1] != "STATE_SUCCEEDED" {
		t.Fatalf("bulk watched %v", states)
	}
}
