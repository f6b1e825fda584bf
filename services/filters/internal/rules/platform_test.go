package rules_test

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailplane/mailplane/services/filters/internal/rules"
	"github.com/mailplane/mailplane/services/platform/sieve"
)

var platform = rules.Platform{
	Allow: []string{"friend@spammy.example", "partner.example"},
	Block: []string{"pest@other.example", "spammy.example"},
	Spam:  true, SpamFolder: "Spam",
	Ads: true, NewsletterFolder: "Newsletters", NoticeFolder: "Notifications",
	Mention: true, Tag: `[EXTERNAL "x"]`, OwnDomains: []string{"example.com", "example.org"},
}

// personal is a customer's rules for the platform tests.
var personal = []rules.Rule{{
	Name: "Invoices", Enabled: true, Match: rules.All,
	Conditions: []rules.Condition{{Field: rules.Subject, Op: rules.Contains, Value: "invoice"}},
	Actions:    []rules.Action{{Kind: rules.Move, Folder: "Invoices"}},
}}

// outcome runs a message from sender with the extra headers through the
// platform's scripts and the personal one in Pigeonhole, in Dovecot's
// order (sieve-test runs -s scripts first, so the after script is its
// main one), and returns where it goes, whether it was answered, and the
// subject it was stored with.
func outcome(t *testing.T, p rules.Platform, from, headers string) (folder string, answered bool, out, dir string) {
	t.Helper()
	vac, err := sieve.Vacation{Message: "Away."}.Script(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	before, after, err := p.Scripts(vac)
	if err != nil {
		t.Fatal(err)
	}
	own, err := rules.Compile(personal)
	if err != nil {
		t.Fatal(err)
	}
	var scripts []string
	for _, s := range before {
		scripts = append(scripts, s.Text)
	}
	scripts = append(scripts, own)
	main := "keep;\n"
	if len(after) == 1 {
		main = after[0].Text
	}
	mail := "From: " + from + "\nTo: anna@example.com\n" + headers + "Message-ID: <" + strings.ReplaceAll(from, "@", ".") + time.Now().Format(".150405.000000") + "@x>\n\nHello\n"
	if !strings.Contains(headers, "Subject:") {
		mail = "Subject: Hello\n" + mail
	}
	out, dir = sieveTest(t, mail, scripts, main)
	if strings.Contains(out, "final result: failed") {
		t.Fatalf("scripts failed:\n%s", out)
	}
	if strings.Contains(out, "reject action: rejected message") {
		folder = "reject"
	} else if stored := regexp.MustCompile(`Info: sieve: .*stored mail into mailbox '(.*)'`).FindAllStringSubmatch(out, -1); len(stored) > 0 {
		folder = stored[len(stored)-1][1]
	} else {
		t.Fatalf("neither stored nor refused:\n%s", out)
	}
	return folder, strings.Contains(out, "sent vacation response"), out, dir
}

func TestPlatformInPigeonhole(t *testing.T) {
	for _, tt := range []struct {
		name, from, headers string
		folder              string
		answered            bool
	}{
		{"plain", "bob@outside.example", "", "INBOX", true},
		{"rspamd yes", "bob@outside.example", "X-Spam: Yes\n", "Spam", false},
		{"rspamd result", "bob@outside.example", "X-Spamd-Result: default: True [16.20 / 15.00];\n\tBAYES_SPAM(5.10)[99.99%]\n", "Spam", false},
		{"rspamd result not spam", "bob@outside.example", "X-Spamd-Result: default: False [3.20 / 15.00];\n", "INBOX", true},
		{"rspamd negative", "bob@outside.example", "X-Spam: Yes\nX-Spamd-Result: default: True [-2.50 / 15.00];\n", "INBOX", true},
		{"spamassassin flag", "bob@outside.example", "X-Spam-Flag: YES\nX-Spam-Status: Yes, score=12.3 required=5.0 tests=BAYES_99\n", "Spam", false},
		{"spamassassin status", "bob@outside.example", "X-Spam-Status: Yes, score=5.3 required=5.0\n", "Spam", false},
		{"spamassassin no", "bob@outside.example", "X-Spam-Flag: NO\nX-Spam-Status: No, score=1.2 required=5.0\n", "INBOX", true},
		{"spamassassin negative", "bob@outside.example", "X-Spam-Flag: YES\nX-Spam-Status: Yes, score=-5.3 required=5.0\n", "INBOX", true},
		{"score negative", "bob@outside.example", "X-Spam: yes\nX-Spam-Score: -0.1\n", "INBOX", true},
		{"allowed address spam", "friend@spammy.example", "X-Spam: Yes\n", "INBOX", true},
		{"allowed domain spam", "x@mail.partner.example", "X-Spam-Flag: YES\n", "INBOX", true},
		{"blocked address", "Pest <pest@other.example>", "", "Spam", false},
		{"blocked subdomain", "x@news.spammy.example", "", "Spam", false},
		{"not blocked lookalike", "x@notspammy.example", "", "INBOX", true},
		{"newsletter", "news@shop.example", "List-Unsubscribe: <mailto:u@shop.example>\n", "Newsletters", false},
		// Pigeonhole's vacation answers Precedence: bulk (it skips lists and
		// automatic mail), and skips any Auto-Submitted, even "no".
		{"bulk", "news@shop.example", "Precedence: bulk\n", "Newsletters", true},
		{"feedback id", "news@shop.example", "Feedback-ID: 1:2:3:esp\n", "Newsletters", true},
		{"discussion list", "ann@club.example", "List-Id: <team.club.example>\nList-Post: <mailto:team@club.example>\nList-Unsubscribe: <mailto:team-leave@club.example>\nPrecedence: list\n", "INBOX", false},
		{"announcement list", "ann@club.example", "List-Id: <news.club.example>\nList-Post: NO\n", "Newsletters", false},
		{"refused", "pest@other.example", "", "reject", false},
		{"notification", "robot@shop.example", "Auto-Submitted: auto-generated\n", "Notifications", false},
		// An auto-reply as Pigeonhole's vacation writes it, Precedence: bulk
		// included, is a notification, not a newsletter.
		{"auto-reply", "anna@outside.example", "Auto-Submitted: auto-replied (vacation)\nPrecedence: bulk\n", "Notifications", false},
		{"no-reply", "No-Reply@shop.example", "", "Notifications", true},
		{"auto-submitted no", "bob@outside.example", "Auto-Submitted: no\n", "INBOX", false},
		{"personal rule wins over ads", "news@shop.example", "Subject: Your invoice\nList-Id: <x.shop.example>\n", "Invoices", false},
		{"personal rule, still answered", "bob@outside.example", "Subject: invoice 7\n", "Invoices", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := platform
			p.Refuse = tt.folder == "reject"
			folder, answered, out, _ := outcome(t, p, tt.from, tt.headers)
			if folder != tt.folder || answered != tt.answered {
				t.Fatalf("folder %s answered %v, want %s %v:\n%s", folder, answered, tt.folder, tt.answered, out)
			}
		})
	}
}

// TestMentionInPigeonhole checks the stored message: tagged once with the
// header from outside, untouched between the organization's domains, and
// a forged header removed.
func TestMentionInPigeonhole(t *testing.T) {
	p := rules.Platform{Mention: true, Tag: "[EXT]", OwnDomains: []string{"example.com", "example.org"}}
	for _, tt := range []struct {
		name, from, headers string
		subject             string
		external            bool
	}{
		{"outside", "bob@outside.example", "Subject: Hi\n", "Subject: [EXT] Hi", true},
		{"already tagged", "bob@outside.example", "Subject: Re: [EXT] Hi\n", "Subject: Re: [EXT] Hi", true},
		{"own domain", "carl@example.org", "Subject: Hi\nX-Mailplane-External: yes\n", "Subject: Hi", false},
		{"own subdomain", "carl@eu.example.com", "Subject: Hi\n", "Subject: Hi", false},
		{"lookalike", "eve@example.com.evil.example", "Subject: Hi\n", "Subject: [EXT] Hi", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, out, dir := outcome(t, p, tt.from, tt.headers)
			files, _ := filepath.Glob(filepath.Join(dir, "Maildir", "new", "*"))
			if len(files) != 1 {
				t.Fatalf("%d messages stored:\n%s", len(files), out)
			}
			b, err := os.ReadFile(files[0])
			if err != nil {
				t.Fatal(err)
			}
			msg := strings.ReplaceAll(string(b), "\r\n", "\n")
			if !strings.Contains(msg, "\n"+tt.subject+"\n") && !strings.HasPrefix(msg, tt.subject+"\n") {
				t.Errorf("want %q in\n%s", tt.subject, msg)
			}
			if got := strings.Contains(msg, rules.ExternalHeader+": yes"); got != tt.external {
				t.Errorf("external header %v, want %v:\n%s", got, tt.external, msg)
			}
		})
	}
}

// TestPlatformVariants compiles the platform's scripts for settings the
// Pigeonhole test does not use: nothing on, spam alone, refusing blocked
// mail without an allow list, odd folder names.
func TestPlatformVariants(t *testing.T) {
	for _, p := range []rules.Platform{
		{},
		{Spam: true, SpamFolder: "Junk"},
		{Block: []string{"a@b.example"}, Refuse: true},
		{Block: []string{"b.example"}, SpamFolder: `Sp"am\x`, Allow: []string{"c@b.example"}},
		{Ads: true, NewsletterFolder: "News/Letters \"1\"", NoticeFolder: `Notices\`},
		{Mention: true, Tag: `[EXT "\]`, OwnDomains: []string{"example.com"}},
	} {
		before, after, err := p.Scripts("")
		if err != nil {
			t.Fatalf("%+v: %v", p, err)
		}
		for _, s := range append(before, after...) {
			sievec(t, s.Text)
		}
	}
}

func TestPlatformValidate(t *testing.T) {
	for _, tt := range []struct {
		p     rules.Platform
		field string
	}{
		{rules.Platform{Block: []string{"bob@"}}, "block[0]"},
		{rules.Platform{Block: []string{"x.example"}, SpamFolder: "a*b"}, "spam_folder"},
		{rules.Platform{Allow: []string{"ok.example", "Bob <b@x.example>"}}, "allow[1]"},
		{rules.Platform{Allow: []string{"\"a b\"@x.example"}}, "allow[0]"},
		{rules.Platform{Allow: []string{"bücher.example"}}, "allow[0]"},
		{rules.Platform{Allow: make([]string, rules.MaxList+1)}, "allow"},
		{rules.Platform{Spam: true, SpamFolder: "${x}"}, "spam_folder"},
		{rules.Platform{Ads: true, NewsletterFolder: "N"}, "notice_folder"},
		{rules.Platform{Mention: true, Tag: "${subject}", OwnDomains: []string{"example.com"}}, "tag"},
		{rules.Platform{Mention: true, Tag: "[EXT]"}, "own_domains"},
		{rules.Platform{Mention: true, Tag: "[EXT]", OwnDomains: []string{"-x.example"}}, "own_domains[0]"},
	} {
		err := tt.p.Validate()
		var e rules.Error
		if !errors.As(err, &e) || e[0].Field != tt.field {
			t.Errorf("%+v: want %s, got %v", tt.p, tt.field, err)
		}
	}
}

// TestServiceListsInPigeonhole: the mail service's lists (its admins')
// with the address's own. An admin's block holds whatever the address
// allows, and only the admins' allow list excepts it; the address's own
// block holds whatever the admins allow; spam headers spare a sender
// either list allows.
func TestServiceListsInPigeonhole(t *testing.T) {
	p := platform // the address: allows friend@spammy.example, partner.example; blocks pest@other.example, spammy.example
	p.ServiceBlock = []string{"partner.example", "bad.example"}
	p.ServiceAllow = []string{"ok.bad.example", "pest@other.example", "trusted.example"}
	for _, tt := range []struct {
		name, from, headers string
		refuse              bool
		folder              string
	}{
		{"admin block beats the address's allow", "x@mail.partner.example", "", false, "Spam"},
		{"admin block refused", "x@bad.example", "", true, "reject"},
		{"admin allow excepts its own block", "y@ok.bad.example", "", false, "INBOX"},
		{"the address's block beats the admin allow", "pest@other.example", "", false, "Spam"},
		{"admin allow spares spam headers", "z@trusted.example", "X-Spam: Yes\n", false, "INBOX"},
		{"otherwise spam", "z@untrusted.example", "X-Spam: Yes\n", false, "Spam"},
		{"plain", "bob@outside.example", "", false, "INBOX"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := p
			p.ServiceRefuse = tt.refuse
			folder, _, out, _ := outcome(t, p, tt.from, tt.headers)
			if folder != tt.folder {
				t.Fatalf("folder %s, want %s:\n%s", folder, tt.folder, out)
			}
		})
	}
	p.ServiceBlock = []string{"not a sender"}
	var e rules.Error
	if err := p.Validate(); !errors.As(err, &e) || e[0].Field != "service_block[0]" {
		t.Errorf("Validate: %v", err)
	}
}
