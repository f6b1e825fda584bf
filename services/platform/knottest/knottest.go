// Package knottest runs a real Knot DNS server (knotd) for tests: a private
// instance in a temporary directory, authoritative for one zone on
// 127.0.0.1, accepting RFC 2136 updates of TXT records signed with a TSIG
// key, as a customer's primary server would for Mailplane's DNS security
// service.
//
// A test without Knot installed is skipped, except under CI=true, where it
// fails: CI must never pass on tests that did not run.
package knottest

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/mailplane/mailplane/services/platform/freeport"
	"github.com/mailplane/mailplane/services/platform/logtest"
)

// Algorithm is the TSIG algorithm of every server's key, as Knot names it
// (miekg/dns: mdns.HmacSHA256).
const Algorithm = "hmac-sha256"

// Server is a running knotd, authoritative for Zone at Addr.
type Server struct {
	// Addr is "127.0.0.1:PORT", served over UDP and TCP.
	Addr string
	// Zone is the zone's name, canonical: lower case, with the trailing dot.
	Zone string
	// KeyName, Algorithm and Secret (base64) are the TSIG key updates are
	// signed with. KeyName is fully qualified, as mdns.Client.TsigSecret
	// and mdns.Msg.SetTsig want it.
	KeyName   string
	Algorithm string
	Secret    string
	// OwnerKeyName and OwnerSecret are the zone owner's own key, which may
	// update any record of the zone, as a customer does with their DNS
	// host (SetTXT): publishing a verification record, say. Mailplane is
	// never given it.
	OwnerKeyName string
	OwnerSecret  string
	// Dir is the instance's directory; the zone file, rewritten after each
	// update, is Dir/zones/<zone>zone.
	Dir string
}

// keyName is the TSIG key's name in every instance; instances are told
// apart by their secrets. ownerKeyName is the zone owner's.
const (
	keyName      = "update-key."
	ownerKeyName = "owner-key."
)

// conf is knotd's configuration, after /work/shared/recipes/knot-rfc2136.md:
// a signed update may change TXT records at the apex and _dmarc (owner
// equal) and under _domainkey (owner sub). Knot's sub-or-equal on the apex
// would let every name through, hence the two ACLs.
var conf = template.Must(template.New("knot.conf").Parse(`server:
    rundir: "{{.Dir}}/run"
    listen: 127.0.0.1@{{.Port}}
log:
  - target: stderr
    any: info
database:
    storage: "{{.Dir}}/db"
key:
  - id: {{.KeyName}}
    algorithm: {{.Algorithm}}
    secret: {{.Secret}}
  - id: {{.OwnerKeyName}}
    algorithm: {{.Algorithm}}
    secret: {{.OwnerSecret}}
acl:
  - id: owner
    key: {{.OwnerKeyName}}
    action: update
  - id: update-exact
    key: {{.KeyName}}
    action: update
    update-type: [TXT]
    update-owner: name
    update-owner-match: equal
    update-owner-name: ["{{.Zone}}", "_dmarc.{{.Zone}}"]
  - id: update-dkim
    key: {{.KeyName}}
    action: update
    update-type: [TXT]
    update-owner: name
    update-owner-match: sub
    update-owner-name: ["_domainkey.{{.Zone}}"]
template:
  - id: default
    storage: "{{.Dir}}/zones"
    zonefile-sync: 0
    zonefile-load: difference-no-serial
    journal-content: all
    serial-policy: increment
zone:
  - domain: "{{.Zone}}"
    file: "{{.Zone}}zone"
    acl: [update-exact, update-dkim, owner]
`))

// Start runs knotd serving zone, zone-file text whose SOA record names the
// zone (with $ORIGIN, names may be relative), on a free loopback port, and
// stops it when t ends, logging its configuration and output if t failed.
// It returns once the server answers the zone's SOA.
func Start(t testing.TB, zone string) *Server {
	t.Helper()
	bin := knotd(t)
	s := prepare(t, zone)
	// The port is free when chosen but may be taken before knotd binds it
	// (other tests, other packages' test binaries). knotd then exits:
	// its TCP socket is exclusive, even where UDP uses SO_REUSEPORT, so two
	// servers never share a port unnoticed. Try again on another.
	for attempt := 1; ; attempt++ {
		err := s.start(t, bin, freeport.Port(t))
		if err == nil {
			return s
		}
		if !errors.Is(err, errPortTaken) || attempt == 5 {
			t.Fatalf("knottest: %v", err)
		}
	}
}

// prepare makes the server's directory and zone file.
func prepare(t testing.TB, zone string) *Server {
	t.Helper()
	name, err := ZoneName(zone)
	if err != nil {
		t.Fatalf("knottest: %v", err)
	}
	secret, owner := make([]byte, 32), make([]byte, 32)
	rand.Read(secret)
	rand.Read(owner)
	s := &Server{
		Zone:         name,
		KeyName:      keyName,
		Algorithm:    Algorithm,
		Secret:       base64.StdEncoding.EncodeToString(secret),
		OwnerKeyName: ownerKeyName,
		OwnerSecret:  base64.StdEncoding.EncodeToString(owner),
		Dir:          t.TempDir(),
	}
	for _, sub := range []string{"zones", "db", "run"} {
		if err := os.Mkdir(filepath.Join(s.Dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "zones", name+"zone"), []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// knotd is the path of knotd, or t is skipped (failed under CI=true).
func knotd(t testing.TB) string {
	t.Helper()
	// Debian puts it in /usr/sbin, which a user's PATH may lack.
	bin, err := exec.LookPath("knotd")
	if err != nil {
		bin, err = exec.LookPath("/usr/sbin/knotd")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("knotd is not installed; CI needs it (apt-get install knot knot-dnsutils)")
		}
		t.Skip("knotd is not installed (apt-get install knot knot-dnsutils)")
	}
	return bin
}

var errPortTaken = errors.New("port taken")

// start runs knotd on port until it answers SOA; the process is stopped
// when t ends, or at once if it does not start.
func (s *Server) start(t testing.TB, bin string, port int) error {
	t.Helper()
	var b strings.Builder
	err := conf.Execute(&b, map[string]any{
		"Dir": s.Dir, "Port": port, "Zone": s.Zone,
		"KeyName": s.KeyName, "Algorithm": s.Algorithm, "Secret": s.Secret,
		"OwnerKeyName": s.OwnerKeyName, "OwnerSecret": s.OwnerSecret,
	})
	if err != nil {
		return err
	}
	path := filepath.Join(s.Dir, "knot.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return err
	}

	var out logtest.Buffer
	cmd := exec.Command(bin, "-c", path)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start knotd: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}

	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			if strings.Contains(out.String(), "address already in use") {
				return fmt.Errorf("%w: knotd on %s: %s", errPortTaken, s.Addr, out.String())
			}
			return fmt.Errorf("knotd exited:\n%s\nknot.conf:\n%s", out.String(), b.String())
		default:
		}
		// Until knotd has bound its port and exited on finding it taken,
		// another server there may answer; only this one signs the answer
		// with this key.
		err = s.askSOA()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("knotd did not answer SOA %s on %s within 15s: %v\n%s", s.Zone, s.Addr, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("knot.conf:\n%s\nknotd output:\n%s", b.String(), out.String())
		}
	})
	return nil
}

// SetTXT replaces name's TXT records (name absolute, in the zone) with one
// record per value, TTL 0, signed with the owner's key: what a customer
// does at their DNS host, such as publishing a verification record that
// Mailplane's key may not write.
func (s *Server) SetTXT(t testing.TB, name string, values ...string) {
	t.Helper()
	rrs := make([]mdns.RR, len(values))
	for i, v := range values {
		rrs[i] = &mdns.TXT{Hdr: mdns.RR_Header{Name: mdns.Fqdn(name), Rrtype: mdns.TypeTXT, Class: mdns.ClassINET}, Txt: []string{v}}
	}
	m := new(mdns.Msg)
	m.SetUpdate(s.Zone)
	m.RemoveRRset([]mdns.RR{&mdns.ANY{Hdr: mdns.RR_Header{Name: mdns.Fqdn(name), Rrtype: mdns.TypeTXT, Class: mdns.ClassINET}}})
	m.Insert(rrs)
	m.SetTsig(s.OwnerKeyName, mdns.HmacSHA256, 300, time.Now().Unix())
	c := &mdns.Client{Net: "tcp", Timeout: 5 * time.Second, TsigSecret: map[string]string{s.OwnerKeyName: s.OwnerSecret}}
	r, _, err := c.Exchange(m, s.Addr)
	if err != nil {
		t.Fatalf("knottest: update %s TXT: %v", name, err)
	}
	if r.Rcode != mdns.RcodeSuccess {
		t.Fatalf("knottest: update %s TXT: %s", name, mdns.RcodeToString[r.Rcode])
	}
}

func (s *Server) askSOA() error {
	m := new(mdns.Msg)
	m.SetQuestion(s.Zone, mdns.TypeSOA)
	m.SetTsig(s.KeyName, mdns.HmacSHA256, 300, time.Now().Unix())
	c := &mdns.Client{Net: "tcp", Timeout: time.Second, TsigSecret: map[string]string{s.KeyName: s.Secret}}
	r, _, err := c.Exchange(m, s.Addr)
	switch {
	case err != nil:
		return err
	case r.Rcode != mdns.RcodeSuccess || len(r.Answer) == 0:
		return fmt.Errorf("answer %s with %d records", mdns.RcodeToString[r.Rcode], len(r.Answer))
	}
	return nil
}

// ZoneName returns the canonical name of the zone in zone-file text: the
// owner of its SOA record, which must be the only one.
func ZoneName(zone string) (string, error) {
	zp := mdns.NewZoneParser(strings.NewReader(zone), "", "zone")
	var name string
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if rr.Header().Rrtype != mdns.TypeSOA {
			continue
		}
		if name != "" {
			return "", fmt.Errorf("zone has two SOA records (%s and %s)", name, rr.Header().Name)
		}
		name = mdns.CanonicalName(rr.Header().Name)
	}
	if err := zp.Err(); err != nil {
		return "", fmt.Errorf("parse zone: %w", err)
	}
	if name == "" {
		return "", errors.New("zone has no SOA record: it names the zone")
	}
	return name, nil
}
