package rules

import (
	"fmt"
	"strings"

	"github.com/mailplane/mailplane/services/platform/sieve"
)

// Platform is what the platform filters for an address, around the
// customer's own rules, in scripts the customer cannot see or change.
type Platform struct {
	// Allow and Block list senders: an address ("bob@example.com") or a
	// domain ("example.com", which covers its subdomains). Allowed senders
	// are never spam nor blocked, whatever else matches.
	Allow, Block []string
	// Refuse blocked mail (reject) instead of filing it in SpamFolder.
	Refuse bool
	// ServiceAllow and ServiceBlock are the mail service's lists, which
	// its admins keep for every address. Precedence: the service's block
	// list first, which only its own allow list excepts (an address's
	// allow list does not: an admin's block holds for everyone); then the
	// address's block list, which the service's allow list does not
	// override (the customer's own choice); spam headers skip a sender
	// allowed by either list.
	ServiceAllow, ServiceBlock []string
	// ServiceRefuse refuses mail the service blocks instead of filing it
	// in SpamFolder.
	ServiceRefuse bool

	// Spam files mail whose spam headers say spam into SpamFolder.
	Spam       bool
	SpamFolder string

	// Ads files newsletters and notifications into their folders.
	Ads                            bool
	NewsletterFolder, NoticeFolder string

	// Mention marks mail from outside OwnDomains: Tag before the subject
	// and the header ExternalHeader.
	Mention    bool
	Tag        string
	OwnDomains []string
}

// ExternalHeader marks mail the mention found external, for clients to
// show a banner.
const ExternalHeader = "X-Mailplane-External"

// MaxList caps each of the allow and block lists and the own domains.
const MaxList = 1000

// Script is one Sieve script the platform installs, by name.
type Script struct {
	Name, Text string
}

// Scripts returns the platform's scripts for one address around its
// personal script: Before, run first, in order, as Dovecot's sieve_before
// (then sieve_before2), and After, as sieve_after. vacation is mailboxes'
// auto-reply script (platform/sieve Vacation.Script), installed as it is;
// "" for none.
//
// Pigeonhole runs the next script only while the message is still to be
// kept (the implicit keep), so the order says who sees what:
//
//  1. "mailplane-before": block and allow lists, then spam, then the
//     mention. Blocked and spam mail is filed (or refused) here and nothing
//     after it runs: no personal rule forwards it, no auto-reply answers
//     it. The mention comes last so that it tags only mail that stays, and
//     first among what delivers it, since editheader changes only reach
//     the actions after them.
//  2. "mailplane-vacation": the auto-reply, before the personal rules, so
//     that a rule filing mail into a folder does not silence it (Pigeonhole
//     itself does not answer lists, bulk or automatic mail).
//  3. the personal script.
//  4. "mailplane-after": the ad filter, on what the customer's own rules
//     left in the inbox: their rules win over the platform's guess.
func (p Platform) Scripts(vacation string) (before []Script, after []Script, err error) {
	if err := p.Validate(); err != nil {
		return nil, nil, err
	}
	b, err := p.before()
	if err != nil {
		return nil, nil, err
	}
	before = append(before, Script{"mailplane-before", b})
	if vacation != "" {
		before = append(before, Script{"mailplane-vacation", vacation})
	}
	if p.Ads {
		a, err := p.ads()
		if err != nil {
			return nil, nil, err
		}
		after = append(after, Script{"mailplane-after", a})
	}
	return before, after, nil
}

// Validate checks the platform settings; errors are an Error naming the
// field.
func (p Platform) Validate() error {
	var e Error
	for _, l := range []struct {
		name string
		list []string
	}{{"allow", p.Allow}, {"block", p.Block}, {"service_allow", p.ServiceAllow}, {"service_block", p.ServiceBlock}, {"own_domains", p.OwnDomains}} {
		if len(l.list) > MaxList {
			e = append(e, Violation{l.name, fmt.Sprintf("%d entries, at most %d", len(l.list), MaxList)})
			continue
		}
		for i, s := range l.list {
			var err error
			if l.name == "own_domains" {
				err = checkDomain(s)
			} else {
				err = CheckSender(s)
			}
			if err != nil {
				e = append(e, Violation{fmt.Sprintf("%s[%d]", l.name, i), err.Error()})
			}
		}
	}
	for _, f := range []struct {
		name, folder string
		on           bool
	}{{"spam_folder", p.SpamFolder, p.Spam || len(p.Block) > 0 && !p.Refuse || len(p.ServiceBlock) > 0 && !p.ServiceRefuse}, {"newsletter_folder", p.NewsletterFolder, p.Ads}, {"notice_folder", p.NoticeFolder, p.Ads}} {
		if !f.on && f.folder == "" {
			continue
		}
		if err := CheckFolder(f.folder); err != nil {
			e = append(e, Violation{f.name, err.Error()})
		} else if f.name == "spam_folder" && strings.EqualFold(f.folder, Inbox) {
			// The daily sweep empties the spam folder of mail older than
			// 30 days: the INBOX would lose it.
			e = append(e, Violation{f.name, "not INBOX: the spam folder is emptied of mail older than 30 days"})
		} else if strings.Contains(f.folder, "${") {
			// The platform script uses variables, which would expand it.
			e = append(e, Violation{f.name, fmt.Sprintf("folder %q: must not hold ${", f.folder)})
		}
	}
	if p.Mention {
		switch {
		case strings.TrimSpace(p.Tag) == "":
			e = append(e, Violation{"tag", "a tag is required"})
		case len(p.Tag) > 50:
			e = append(e, Violation{"tag", fmt.Sprintf("tag of %d bytes, at most 50", len(p.Tag))})
		case text(p.Tag, false) != nil || strings.Contains(p.Tag, "$"):
			e = append(e, Violation{"tag", fmt.Sprintf("tag %q: no control characters or $", p.Tag)})
		}
		if len(p.OwnDomains) == 0 {
			e = append(e, Violation{"own_domains", "the organization's domains are required for the mention"})
		}
	}
	if len(e) > 0 {
		return e
	}
	return nil
}

// CheckSender checks an allow or block list entry: a plain address or a
// domain, in ASCII (IDNs as punycode), lower or upper case.
func CheckSender(s string) error {
	local, domain, ok := strings.Cut(s, "@")
	if !ok {
		return checkDomain(s)
	}
	if local == "" || len(local) > 64 || strings.ContainsAny(local, "\"\\ ()<>,;:[]@") || text(local, false) != nil {
		return fmt.Errorf("sender %q: a plain address or a domain", s)
	}
	for i := 0; i < len(local); i++ {
		if local[i] < '!' || local[i] > '~' {
			return fmt.Errorf("sender %q: a plain address or a domain (ASCII)", s)
		}
	}
	if err := checkDomain(domain); err != nil {
		return fmt.Errorf("sender %q: %w", s, err)
	}
	return nil
}

func checkDomain(d string) error {
	if d == "" || len(d) > 253 || !strings.Contains(d, ".") {
		return fmt.Errorf("domain %q: like example.com", d)
	}
	for l := range strings.SplitSeq(d, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("domain %q: like example.com", d)
		}
		for i := 0; i < len(l); i++ {
			c := l[i] | 0x20
			if !(c >= 'a' && c <= 'z' || l[i] >= '0' && l[i] <= '9' || l[i] == '-') {
				return fmt.Errorf("domain %q: letters, digits and - (IDNs as punycode)", d)
			}
		}
	}
	return nil
}

// quoteList is a Sieve string list.
func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		// Validated: no character Quote refuses.
		q[i], _ = sieve.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// senderTest is the test for a From among senders: addresses by :is,
// domains and their subdomains on the domain part.
func senderTest(senders []string) string {
	var addrs, doms []string
	for _, s := range senders {
		if strings.Contains(s, "@") {
			addrs = append(addrs, s)
		} else {
			doms = append(doms, s, "*."+s)
		}
	}
	var tests []string
	if len(addrs) > 0 {
		tests = append(tests, `address :all :is "from" `+quoteList(addrs))
	}
	if len(doms) > 0 {
		// A domain holds no "?" or "\", so only the "*." prefix is a wildcard.
		tests = append(tests, `address :domain :matches "from" `+quoteList(doms))
	}
	if len(tests) == 1 {
		return tests[0]
	}
	return "anyof (" + strings.Join(tests, ", ") + ")"
}

// Spam header tests: rspamd's X-Spam: Yes and X-Spamd-Result "default:
// True [score / required]", SpamAssassin's X-Spam-Flag: YES and
// X-Spam-Status "Yes, score=…". Any negative score in any of them means
// not spam, whatever flag is set (a score that is a number with a "-"
// never reaches i;ascii-numeric, which would read it as infinity).
const (
	spamSaid = `anyof (header :is "X-Spam" "yes",
               header :is "X-Spam-Flag" "yes",
               header :regex "X-Spamd-Result" "^default: true \\[[0-9]",
               header :regex "X-Spam-Status" "^yes, score=[0-9]")`
	spamNegative = `anyof (header :regex "X-Spamd-Result" "\\[ *-[0-9]",
               header :regex "X-Spam-Status" "score=-[0-9]",
               header :regex "X-Spam-Score" "^ *-[0-9]")`
)

func (p Platform) before() (string, error) {
	var b strings.Builder
	need := map[string]bool{}
	// unless wraps test t so that the senders of the allow lists never
	// match it.
	unless := func(t string, allow ...[]string) string {
		var all []string
		for _, l := range allow {
			all = append(all, l...)
		}
		if len(all) == 0 {
			return t
		}
		return "allof (not " + senderTest(all) + ",\n       " + t + ")"
	}
	spam, _ := sieve.Quote(p.SpamFolder)
	block := func(comment string, senders, allow []string, refuse bool) {
		b.WriteString("\n# " + comment + "\nif " + unless(senderTest(senders), allow) + " {\n")
		if refuse {
			need["reject"] = true
			b.WriteString("    reject \"Your message was refused by the recipient.\";\n")
		} else {
			need["fileinto"], need["mailbox"] = true, true
			b.WriteString("    fileinto :create " + spam + ";\n")
		}
		b.WriteString("    stop;\n}\n")
	}
	if len(p.ServiceBlock) > 0 {
		block("the mail service's block list (its admins')", p.ServiceBlock, p.ServiceAllow, p.ServiceRefuse)
	}
	if len(p.Block) > 0 {
		block("block list", p.Block, p.Allow, p.Refuse)
	}
	if p.Spam {
		need["fileinto"], need["mailbox"], need["regex"] = true, true, true
		b.WriteString("\n# spam headers (rspamd, SpamAssassin); a negative score is never spam\n")
		b.WriteString("if " + unless("allof ("+spamSaid+",\n       not "+spamNegative+")", p.Allow, p.ServiceAllow) + " {\n")
		b.WriteString("    fileinto :create " + spam + ";\n    stop;\n}\n")
	}
	if p.Mention {
		need["editheader"], need["variables"] = true, true
		tag, _ := sieve.Quote(p.Tag)
		tagSpace, _ := sieve.Quote(p.Tag + " ")
		h, _ := sieve.Quote(ExternalHeader)
		b.WriteString("\n# external mail mention; the header is the platform's alone\n")
		b.WriteString("deleteheader " + h + ";\n")
		b.WriteString("if not " + senderTest(p.OwnDomains) + " {\n")
		b.WriteString("    addheader " + h + " \"yes\";\n")
		b.WriteString("    if not header :contains \"subject\" " + tag + " {\n")
		b.WriteString("        set \"subject\" \"\";\n")
		b.WriteString("        if header :matches \"subject\" \"*\" {\n            set \"subject\" \"${1}\";\n        }\n")
		b.WriteString("        deleteheader \"subject\";\n")
		b.WriteString("        addheader \"Subject\" " + strings.TrimSuffix(tagSpace, `"`) + "${subject}\";\n")
		b.WriteString("    }\n}\n")
	}
	head := "# Mailplane: platform filters before the personal script, written by the filters service.\n"
	if len(need) > 0 {
		head += requireLine(need)
	}
	return head + b.String(), nil
}

// Headers of sending platforms that only bulk mail carries.
var bulkHeaders = []string{"X-MC-User", "X-CSA-Complaints", "X-Mailchimp-Campaign"}

// Local parts of automated senders.
var noReply = []string{"no-reply", "noreply", "no_reply", "donotreply", "do-not-reply", "do_not_reply", "mailer-daemon"}

func (p Platform) ads() (string, error) {
	news, _ := sieve.Quote(p.NewsletterFolder)
	notice, _ := sieve.Quote(p.NoticeFolder)
	var b strings.Builder
	b.WriteString("# Mailplane: platform filters after the personal script, written by the filters service.\n")
	b.WriteString(`require ["fileinto", "mailbox"];` + "\n\n")
	// An auto-reply is a notification, though Pigeonhole's vacation (ours
	// too) writes Precedence: bulk into it, which the newsletters' test
	// would take first.
	b.WriteString("# auto-replies\nif header :matches \"Auto-Submitted\" \"auto-replied*\" {\n")
	b.WriteString("    fileinto :create " + notice + ";\n    stop;\n}\n\n")
	// A discussion list (RFC 2369 List-Post with an address; an
	// announcement list says "NO") is conversation the member takes part
	// in, which stays in the inbox, though it carries every list header.
	b.WriteString("# discussion lists\nif header :contains \"List-Post\" \"mailto:\" {\n    stop;\n}\n\n")
	// "exists" with a list holds when all exist: one test each.
	b.WriteString("# newsletters\nif anyof (exists \"List-Unsubscribe\", exists \"List-Id\", exists \"Feedback-ID\",\n")
	b.WriteString("          header :is \"Precedence\" [\"bulk\", \"list\"],\n")
	for _, h := range bulkHeaders {
		b.WriteString("          exists \"" + h + "\",\n")
	}
	b.WriteString("          false) {\n")
	b.WriteString("    fileinto :create " + news + ";\n    stop;\n}\n")
	b.WriteString("\n# notifications\nif anyof (header :matches \"Auto-Submitted\" \"auto-*\",\n")
	b.WriteString("          exists \"X-Auto-Response-Suppress\",\n")
	b.WriteString("          address :localpart :is \"from\" " + quoteList(noReply) + ") {\n")
	b.WriteString("    fileinto :create " + notice + ";\n    stop;\n}\n")
	return b.String(), nil
}
