package events_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mailplane/mailplane/services/platform/events"
)

func TestCatalogCheck(t *testing.T) {
	c, err := events.NewCatalog("mailplane",
		[]string{"accounts.member.deleted", "accounts.user.login_released"},
		[]string{"mailboxes.audit.recorded", "mailboxes.mail_service.created"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		filters []string
		unknown string // named in the error; "" for none
	}{
		{"declared", []string{"mailplane.accounts.member.deleted", "mailplane.mailboxes.mail_service.created"}, ""},
		{"none", nil, ""},
		{"a typo", []string{"mailplane.accounts.member.deleted", "mailplane.accounts.members.deleted"}, "mailplane.accounts.members.deleted"},
		{"without the prefix", []string{"accounts.member.deleted"}, "accounts.member.deleted"},
		{"another prefix", []string{"mp.accounts.member.deleted"}, "mp.accounts.member.deleted"},
		{"a declared subject's prefix", []string{"mailplane.accounts.member"}, "mailplane.accounts.member"},
		{"longer than declared", []string{"mailplane.accounts.member.deleted.x"}, "mailplane.accounts.member.deleted.x"},
		{"* matching", []string{"mailplane.*.audit.recorded", "mailplane.accounts.*.deleted"}, ""},
		{"* matching nothing", []string{"mailplane.*.audit.created"}, "mailplane.*.audit.created"},
		{"* is one token", []string{"mailplane.*.recorded"}, "mailplane.*.recorded"},
		{"> matching", []string{"mailplane.>", "mailplane.accounts.>", "mailplane.mailboxes.mail_service.>"}, ""},
		{"> is one token or more", []string{"mailplane.accounts.member.deleted.>"}, "mailplane.accounts.member.deleted.>"},
		{"> matching nothing", []string{"mailplane.lists.>"}, "mailplane.lists.>"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Check(tt.filters)
			switch {
			case tt.unknown == "" && err != nil:
				t.Fatalf("Check(%q): %v", tt.filters, err)
			case tt.unknown != "" && (err == nil || !strings.Contains(err.Error(), tt.unknown)):
				t.Fatalf("Check(%q) = %v, want an error naming %s", tt.filters, err, tt.unknown)
			}
		})
	}
}

func TestSubjectIs(t *testing.T) {
	for _, tt := range []struct {
		subject, want string
		is            bool
	}{
		{"mailplane.accounts.user.deleted", "accounts.user.deleted", true},
		{"mp.eu.accounts.user.deleted", "accounts.user.deleted", true},
		{"accounts.user.deleted", "accounts.user.deleted", true},
		{"mailplane.accounts.member.deleted", "accounts.user.deleted", false},
		{"mailplane.xaccounts.user.deleted", "accounts.user.deleted", false},
		{"mailplane.accounts.user.deleted.x", "accounts.user.deleted", false},
	} {
		if got := events.SubjectIs(tt.subject, tt.want); got != tt.is {
			t.Errorf("SubjectIs(%q, %q) = %v", tt.subject, tt.want, got)
		}
	}
}

func TestNewCatalogRefusesBadSubjects(t *testing.T) {
	for _, tt := range []struct {
		name     string
		declared [][]string
	}{
		{"wildcard", [][]string{{"accounts.*.deleted"}}},
		{"tail wildcard", [][]string{{"accounts.>"}}},
		{"empty token", [][]string{{"accounts..deleted"}}},
		{"empty", [][]string{{""}}},
		{"space", [][]string{{"accounts.member deleted"}}},
		{"twice in two lists", [][]string{{"accounts.user.deleted"}, {"accounts.user.deleted"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := events.NewCatalog("mailplane", tt.declared...); err == nil {
				t.Fatalf("NewCatalog(%q): no error", tt.declared)
			}
		})
	}
}

// TestConsumerRefusesUnknownSubject: a consumer whose filter no service
// declares fails at start, before it reaches NATS.
func TestConsumerRefusesUnknownSubject(t *testing.T) {
	c, err := events.NewCatalog("mailplane", []string{"accounts.member.deleted"})
	if err != nil {
		t.Fatal(err)
	}
	cons := &events.Consumer{Stream: stream, Durable: "people", Catalog: c,
		Subjects: []string{"mailplane.accounts.member.deleted", "mailplane.acounts.user.deleted"}}
	err = cons.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "mailplane.acounts.user.deleted") || !strings.Contains(err.Error(), "people") {
		t.Fatalf("Run = %v, want an error naming the consumer and the unknown subject", err)
	}
}
