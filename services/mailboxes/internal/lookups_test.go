package mailboxes

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mailplane/mailplane/services/mailboxes/internal/migrations"
	"github.com/mailplane/mailplane/services/platform/pgtest"
)

// The organizations of the lookup fixture.
const (
	lookupOrg      = "00000000-0000-0000-0000-0000000000a1"
	lookupOtherOrg = "00000000-0000-0000-0000-0000000000a2"
)

// lookupFixture is a small hosting: example.com with every kind of address,
// aliases, reservations and a catch-all; other.example without a
// catch-all; gone.example, deleted; an IDN domain of another organization;
// pending.example, claimed but not verified, and another organization's
// lost claim on example.com, each with addresses that must not be served.
const lookupFixture = `
INSERT INTO mail_services (id, organization_id, domain, display_name, delete_time, state) VALUES
  ('00000000-0000-0000-0000-000000000001', '` + lookupOrg + `', 'example.com', 'Example', NULL, 'verified'),
  ('00000000-0000-0000-0000-000000000002', '` + lookupOrg + `', 'other.example', 'Other', NULL, 'verified'),
  ('00000000-0000-0000-0000-000000000003', '` + lookupOrg + `', 'gone.example', 'Gone', now() - interval '1 day', 'verified'),
  ('00000000-0000-0000-0000-000000000004', '` + lookupOtherOrg + `', 'xn--bcher-kva.example', 'Bücher', NULL, 'verified'),
  ('00000000-0000-0000-0000-000000000005', '` + lookupOtherOrg + `', 'pending.example', 'Pending', NULL, 'pending'),
  ('00000000-0000-0000-0000-000000000006', '` + lookupOtherOrg + `', 'example.com', 'Lost', NULL, 'claim_lost');

INSERT INTO addresses (id, mail_service_id, local_part, local_key, kind, redirects) VALUES
  ('00000000-0000-0000-0001-000000000001', '00000000-0000-0000-0000-000000000001', 'sales', 'sales', 'mailbox', '{}'),
  ('00000000-0000-0000-0001-000000000002', '00000000-0000-0000-0000-000000000001', 'Anna.Smith', 'anna.smith', 'mailbox', '{}'),
  ('00000000-0000-0000-0001-000000000003', '00000000-0000-0000-0000-000000000001', 'noreply', 'noreply', 'no_reply', '{}'),
  ('00000000-0000-0000-0001-000000000004', '00000000-0000-0000-0000-000000000001', 'fwd', 'fwd', 'redirect', '{a@gmail.com,b@example.org}'),
  ('00000000-0000-0000-0001-000000000005', '00000000-0000-0000-0000-000000000001', '*', '*', 'catch_all', '{sales@example.com}'),
  ('00000000-0000-0000-0001-000000000006', '00000000-0000-0000-0000-000000000001', 'sales+eu', 'sales+eu', 'mailbox', '{}'),
  ('00000000-0000-0000-0001-000000000007', '00000000-0000-0000-0000-000000000002', 'boss', 'boss', 'mailbox', '{}'),
  ('00000000-0000-0000-0001-000000000008', '00000000-0000-0000-0000-000000000003', 'old', 'old', 'mailbox', '{}'),
  ('00000000-0000-0000-0001-000000000009', '00000000-0000-0000-0000-000000000003', '*', '*', 'catch_all', '{old@gone.example}'),
  ('00000000-0000-0000-0001-000000000010', '00000000-0000-0000-0000-000000000004', 'info', 'info', 'mailbox', '{}'),
  ('00000000-0000-0000-0001-000000000011', '00000000-0000-0000-0000-000000000005', 'sales', 'sales', 'mailbox', '{}'),
  ('00000000-0000-0000-0001-000000000012', '00000000-0000-0000-0000-000000000005', 'noreply', 'noreply', 'no_reply', '{}'),
  ('00000000-0000-0000-0001-000000000013', '00000000-0000-0000-0000-000000000005', '*', '*', 'catch_all', '{sales@pending.example}'),
  ('00000000-0000-0000-0001-000000000014', '00000000-0000-0000-0000-000000000006', 'thief', 'thief', 'mailbox', '{}'),
  ('00000000-0000-0000-0001-000000000015', '00000000-0000-0000-0000-000000000006', '*', '*', 'catch_all', '{x@attacker.example}');

INSERT INTO local_parts (mail_service_id, local_key, address_id, is_alias, holder)
SELECT mail_service_id, local_key, id, false, NULL FROM addresses;

INSERT INTO local_parts (mail_service_id, local_key, address_id, is_alias, holder) VALUES
  ('00000000-0000-0000-0000-000000000001', 'contact', '00000000-0000-0000-0001-000000000001', true, NULL),
  ('00000000-0000-0000-0000-000000000001', 'info', '00000000-0000-0000-0001-000000000001', true, NULL),
  ('00000000-0000-0000-0000-000000000001', 'donotreply', '00000000-0000-0000-0001-000000000003', true, NULL),
  ('00000000-0000-0000-0000-000000000001', 'team', NULL, false, 'lists'),
  ('00000000-0000-0000-0000-000000000001', 'team-join', NULL, false, 'lists'),
  ('00000000-0000-0000-0000-000000000001', 'team-bounces', NULL, false, 'lists'),
  ('00000000-0000-0000-0000-000000000001', 'team+vip', '00000000-0000-0000-0001-000000000001', true, NULL),
  ('00000000-0000-0000-0000-000000000001', 'abuse', NULL, false, 'elsewhere'),
  ('00000000-0000-0000-0000-000000000003', 'gonelist', NULL, false, 'lists'),
  ('00000000-0000-0000-0000-000000000005', 'pendinglist', NULL, false, 'lists'),
  ('00000000-0000-0000-0000-000000000003', 'oldalias', '00000000-0000-0000-0001-000000000008', true, NULL);
`

// newLookupPool returns a pool on a fresh database holding lookupFixture.
func newLookupPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.NewPool(t, "mailboxes", migrations.FS)
	if _, err := pool.Exec(context.Background(), lookupFixture); err != nil {
		t.Fatalf("insert fixture: %v", err)
	}
	return pool
}

// closedLookups are lookups whose every query fails.
func closedLookups(t *testing.T) *Lookups {
	t.Helper()
	pool := pgtest.NewPool(t, "mailboxes", migrations.FS)
	pool.Close()
	return NewLookups(pool)
}

// malformedKeys are keys no lookup may find, nor fail on.
var malformedKeys = []string{
	"", "sales", "@example.com", "sales@", "sales@@example.com", "sales@team@example.com",
	`"sales"@example.com`, `"sales@example.com"`, "sales @example.com", "sales@example.com ",
	"sa\\les@example.com", ".sales@example.com", "sales..x@example.com", "sales@localhost",
	"sales@exa mple.com", "sales@-example.com", "anna\u00e9@example.com",
}

func TestLookupsDomain(t *testing.T) {
	l := NewLookups(newLookupPool(t))
	ctx := context.Background()
	tests := map[string]bool{
		"example.com":           true,
		"EXAMPLE.com":           true,
		"other.example":         true,
		"xn--bcher-kva.example": true,
		"bücher.example":        true,
		"gone.example":          false,
		"unknown.example":       false,
		"":                      false,
		"sales@example.com":     false,
		"example.com x":         false,
		"com":                   false,
		"pending.example":       false, // claimed, not verified
	}
	for domain, want := range tests {
		t.Run(domain, func(t *testing.T) {
			got, err := l.Domain(ctx, domain)
			if err != nil {
				t.Fatalf("Domain(%q): %v", domain, err)
			}
			if got != want {
				t.Errorf("Domain(%q) = %v, want %v", domain, got, want)
			}
		})
	}
}

func TestLookupsMailbox(t *testing.T) {
	l := NewLookups(newLookupPool(t))
	ctx := context.Background()
	tests := map[string]string{ // "" means not found
		"sales@example.com":                   "example.com/sales/",
		"SALES@Example.COM":                   "example.com/sales/",
		"Anna.Smith@example.com":              "example.com/anna.smith/",
		"anna.smith@example.com":              "example.com/anna.smith/",
		"sales+eu@example.com":                "example.com/sales+eu/",
		"*@example.com":                       "", // the catch-all forwards
		"boss@other.example":                  "other.example/boss/",
		"info@xn--bcher-kva.example":          "xn--bcher-kva.example/info/",
		"info@bücher.example":                 "xn--bcher-kva.example/info/",
		"contact@example.com":                 "",                   // an alias: the alias map resolves it first
		"noreply@example.com":                 "",                   // receives nothing
		"fwd@example.com":                     "",                   // stores nothing
		"team@example.com":                    "",                   // reserved
		"nobody@example.com":                  "",                   // the alias map sends it to the catch-all
		"sales+news@example.com":              "example.com/sales/", // Postfix asks with the extension only
		"contact+news@example.com":            "",
		"noreply+x@example.com":               "",
		"fwd+x@example.com":                   "",
		"team+x@example.com":                  "",
		"old@gone.example":                    "",
		"sales@unknown.example":               "",
		"boss@example.com":                    "",
		"info@example.com":                    "",
		"sales@example.com.unknown.example":   "",
		"sales@xn--bcher-kva.example":         "",
		"info@other.example":                  "",
		"sales@other.example":                 "",
		"old@example.com":                     "",
		"anna.smith@xn--bcher-kva.example":    "",
		"contact@xn--bcher-kva.example":       "",
		"nobody@xn--bcher-kva.example":        "",
		"team-join@example.com":               "",
		"donotreply@example.com":              "",
		"oldalias@gone.example":               "",
		"nobody@gone.example":                 "",
		"*@gone.example":                      "",
		"*@other.example":                     "",
		"anna.smith+tag@example.com":          "example.com/anna.smith/",
		"xn--bcher-kva.example@example.com":   "",
		"sales@xn--bcher-kva.example.example": "",
		"sales@pending.example":               "", // not verified
		"thief@example.com":                   "", // another organization's lost claim
	}
	for _, k := range malformedKeys {
		tests[k] = ""
	}
	for key, want := range tests {
		t.Run(key, func(t *testing.T) {
			got, found, err := l.Mailbox(ctx, key)
			if err != nil {
				t.Fatalf("Mailbox(%q): %v", key, err)
			}
			if found != (want != "") || got != want {
				t.Errorf("Mailbox(%q) = %q, %v; want %q", key, got, found, want)
			}
		})
	}
}

func TestLookupsAlias(t *testing.T) {
	l := NewLookups(newLookupPool(t))
	ctx := context.Background()
	tests := map[string][]string{ // nil means not found
		"sales@example.com":        {"sales@example.com"}, // identity: exact wins over the catch-all
		"SALES@EXAMPLE.COM":        {"sales@example.com"},
		"Anna.Smith@example.com":   {"anna.smith@example.com"},
		"contact@example.com":      {"sales@example.com"},
		"Info@Example.com":         {"sales@example.com"},
		"fwd@example.com":          {"a@gmail.com", "b@example.org"},
		"nobody@example.com":       {"sales@example.com"}, // the catch-all's destination
		"Nobody.Else@example.com":  {"sales@example.com"},
		"*@example.com":            {"sales@example.com"},
		"nobody+x@example.com":     {"sales@example.com"},
		"sales+eu@example.com":     {"sales+eu@example.com"},
		"sales+news@example.com":   {"sales+news@example.com"}, // the extension stays, for the mail store
		"Sales+News@Example.com":   {"sales+news@example.com"},
		"contact+news@example.com": {"sales+news@example.com"},
		"fwd+x@example.com":        {"a@gmail.com", "b@example.org"},
		"noreply+x@example.com":    nil,
		"team@example.com":         nil, // reserved by lists: not swallowed by the catch-all
		"team-join@example.com":    nil,
		"team+x@example.com":       nil,
		"noreply@example.com":      nil, // the policy service refuses it clearly
		"donotreply@example.com":   nil,
		"boss@other.example":       {"boss@other.example"},
		"nobody@other.example":     nil, // no catch-all
		"info@bücher.example":      {"info@xn--bcher-kva.example"},
		"old@gone.example":         nil,
		"oldalias@gone.example":    nil,
		"nobody@gone.example":      nil, // a deleted mail service's catch-all
		"sales@unknown.example":    nil,
		"someone@gmail.com":        nil,
		"sales@pending.example":    nil,                   // not verified
		"nobody@pending.example":   nil,                   // nor its catch-all
		"thief@example.com":        {"sales@example.com"}, // a lost claim's address is nobody: the catch-all's
	}
	for _, k := range malformedKeys {
		tests[k] = nil
	}
	for key, want := range tests {
		t.Run(key, func(t *testing.T) {
			got, found, err := l.Alias(ctx, key)
			if err != nil {
				t.Fatalf("Alias(%q): %v", key, err)
			}
			if found != (want != nil) {
				t.Errorf("Alias(%q) found = %v, want %v", key, found, want != nil)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Alias(%q) (-want +got):\n%s", key, diff)
			}
		})
	}
}

func TestLookupsSenderLogins(t *testing.T) {
	l := NewLookups(newLookupPool(t))
	ctx := context.Background()
	tests := map[string][]string{
		"sales@example.com":      {"sales@example.com"},
		"Sales@EXAMPLE.com":      {"sales@example.com"},
		"contact@example.com":    {"sales@example.com"},
		"INFO@example.com":       {"sales@example.com"},
		"anna.smith@example.com": {"anna.smith@example.com"},
		"noreply@example.com":    {"noreply@example.com"}, // sends only
		"donotreply@example.com": {"noreply@example.com"},
		"sales+eu@example.com":   {"sales+eu@example.com"},
		"boss@other.example":     {"boss@other.example"},
		"info@bücher.example":    {"info@xn--bcher-kva.example"},
		"sales+news@example.com": {"sales@example.com"},
		"contact+x@example.com":  {"sales@example.com"},
		"fwd+x@example.com":      nil,
		"team+x@example.com":     nil,
		"fwd@example.com":        nil,
		"*@example.com":          nil,
		"nobody@example.com":     nil,
		"team@example.com":       nil,
		"old@gone.example":       nil,
		"oldalias@gone.example":  nil,
		"sales@other.example":    nil,
		"sales@pending.example":  nil,
		"thief@example.com":      nil,
	}
	for _, k := range malformedKeys {
		tests[k] = nil
	}
	for key, want := range tests {
		t.Run(key, func(t *testing.T) {
			got, found, err := l.SenderLogins(ctx, key)
			if err != nil {
				t.Fatalf("SenderLogins(%q): %v", key, err)
			}
			if found != (want != nil) {
				t.Errorf("SenderLogins(%q) found = %v, want %v", key, found, want != nil)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("SenderLogins(%q) (-want +got):\n%s", key, diff)
			}
		})
	}
}

func TestLookupsNoReply(t *testing.T) {
	l := NewLookups(newLookupPool(t))
	ctx := context.Background()
	tests := map[string]bool{
		"noreply@example.com":     true,
		"NoReply@Example.com":     true,
		"donotreply@example.com":  true,
		"noreply+x@example.com":   true,
		"sales@example.com":       false,
		"nobody@example.com":      false,
		"team@example.com":        false,
		"noreply@other.example":   false,
		"":                        false,
		"noreply":                 false,
		"noreply@pending.example": false,
	}
	for key, want := range tests {
		t.Run(key, func(t *testing.T) {
			got, err := l.NoReply(ctx, key)
			if err != nil {
				t.Fatalf("NoReply(%q): %v", key, err)
			}
			if got != want {
				t.Errorf("NoReply(%q) = %v, want %v", key, got, want)
			}
		})
	}
}

// listsTransport is where the tests route the lists' reservations.
const listsTransport = "lmtp:inet:127.0.0.1:9104"

// TestLookupsRouted checks the lookups once the lists' reservations have a
// transport: a list's addresses, with a detail too, are mailboxes to
// Postfix (accepted at RCPT) that the transport map sends to the lists
// service; everything else keeps its answer, and an address of ours, even
// one that looks like a list's ("team+vip"), goes to the mail store.
func TestLookupsRouted(t *testing.T) {
	l := NewLookups(newLookupPool(t))
	l.Route(HolderLists, listsTransport)
	ctx := context.Background()
	tests := []struct {
		key, mailbox, transport string // "" means not found
		verify                  bool
	}{
		{"team@example.com", "lists", listsTransport, false},
		{"Team@EXAMPLE.com", "lists", listsTransport, false},
		{"team-join@example.com", "lists", listsTransport, false},
		{"team-bounces@example.com", "lists", listsTransport, false},
		{"team-bounces+ann=example.org@example.com", "lists", listsTransport, true},
		{"Team-Bounces+Ann=Example.org@example.com", "lists", listsTransport, true},
		// The lists service answers 550 to details it does not take:
		// Postfix asks it first (Verify).
		{"team+x@example.com", "lists", listsTransport, true},
		// An address of ours beats the reservation it extends.
		{"team+vip@example.com", "", "", false},
		{"team-request@example.com", "", "", false},    // not reserved here
		{"abuse@example.com", "", "", false},           // another holder, without a transport
		{"team@other.example", "", "", false},          // reserved on example.com only
		{"gonelist@gone.example", "", "", false},       // deleted mail service
		{"pendinglist@pending.example", "", "", false}, // not verified
		{"sales@example.com", "example.com/sales/", "", false},
		{"sales+news@example.com", "example.com/sales/", "", false},
		{"nobody@example.com", "", "", false},
		{"fwd@example.com", "", "", false},
		{"team-bounces@example.com.unknown.example", "", "", false},
	}
	for _, k := range malformedKeys {
		tests = append(tests, struct {
			key, mailbox, transport string
			verify                  bool
		}{k, "", "", false})
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			mailbox, found, err := l.Mailbox(ctx, tt.key)
			if err != nil || found != (tt.mailbox != "") || mailbox != tt.mailbox {
				t.Errorf("Mailbox(%q) = %q, %v, %v; want %q", tt.key, mailbox, found, err, tt.mailbox)
			}
			transport, found, err := l.Transport(ctx, tt.key)
			if err != nil || found != (tt.transport != "") || transport != tt.transport {
				t.Errorf("Transport(%q) = %q, %v, %v; want %q", tt.key, transport, found, err, tt.transport)
			}
			if verify, err := l.Verify(ctx, tt.key); verify != tt.verify || err != nil {
				t.Errorf("Verify(%q) = %v, %v; want %v", tt.key, verify, err, tt.verify)
			}
			// The alias map never swallows a reservation into the catch-all.
			if tt.transport != "" {
				if got, found, err := l.Alias(ctx, tt.key); found || err != nil {
					t.Errorf("Alias(%q) = %q, %v, %v; want not found", tt.key, got, found, err)
				}
			}
		})
	}
}

// TestLookupsUnrouted checks that without a transport nothing is routed
// and the lists' addresses stay unknown, as before.
func TestLookupsUnrouted(t *testing.T) {
	l := NewLookups(newLookupPool(t))
	ctx := context.Background()
	for _, key := range []string{"team@example.com", "team-bounces+a=b@example.com", "sales@example.com"} {
		if got, found, err := l.Transport(ctx, key); found || err != nil {
			t.Errorf("Transport(%q) = %q, %v, %v; want not found", key, got, found, err)
		}
	}
	if got, found, err := l.Mailbox(ctx, "team-bounces+a=b@example.com"); found || err != nil {
		t.Errorf("Mailbox(team-bounces+a=b@) = %q, %v, %v; want not found", got, found, err)
	}
}

func TestLMTPTransport(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"127.0.0.1:9104", "lmtp:inet:127.0.0.1:9104"},
		{"mailplane-lists-lmtp:9104", "lmtp:inet:mailplane-lists-lmtp:9104"},
		{"[::1]:9104", "lmtp:inet:[::1]:9104"},
		{":9104", ""}, // Postfix needs a host to connect to
		{"127.0.0.1", ""},
		{"127.0.0.1:lmtp", ""},
		{"127.0.0.1:0", ""},
		{"127.0.0.1:70000", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got, err := LMTPTransport(tt.addr)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("LMTPTransport(%q) = %q, %v; want %q", tt.addr, got, err, tt.want)
		}
	}
}

func TestLookupsDatabaseDown(t *testing.T) {
	l := closedLookups(t)
	ctx := context.Background()
	if _, err := l.Domain(ctx, "example.com"); err == nil {
		t.Error("Domain: no error")
	}
	if _, _, err := l.Mailbox(ctx, "sales@example.com"); err == nil {
		t.Error("Mailbox: no error")
	}
	if _, _, err := l.Alias(ctx, "sales@example.com"); err == nil {
		t.Error("Alias: no error")
	}
	if _, _, err := l.SenderLogins(ctx, "sales@example.com"); err == nil {
		t.Error("SenderLogins: no error")
	}
	if _, err := l.NoReply(ctx, "sales@example.com"); err == nil {
		t.Error("NoReply: no error")
	}
	l.Route(HolderLists, listsTransport)
	if _, _, err := l.Transport(ctx, "team@example.com"); err == nil {
		t.Error("Transport: no error")
	}
	if _, err := l.Verify(ctx, "team+x@example.com"); err == nil {
		t.Error("Verify: no error")
	}
	// A malformed key never reaches the database.
	if _, found, err := l.Alias(ctx, "@example.com"); found || err != nil {
		t.Errorf("Alias(@example.com) = %v, %v; want not found, no error", found, err)
	}
}
