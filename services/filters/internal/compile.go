package filters

import (
	"context"

	"github.com/mailplane/mailplane/services/filters/internal/install"
	"github.com/mailplane/mailplane/services/filters/internal/rules"
)

// RulesCompiler compiles an address's scripts with the rules package:
// its own rules into the personal script, its settings into the
// platform's before and after scripts, around the auto-reply's script
// mailboxes rendered (installed as is; empty removes it).
type RulesCompiler struct{}

// Compile returns the address's four scripts by install's names.
func (RulesCompiler) Compile(rs []*Rule, st *Settings) (Scripts, error) {
	models := make([]rules.Rule, len(rs))
	for i, r := range rs {
		models[i] = r.Model()
	}
	personal, err := rules.Compile(models)
	if err != nil {
		return nil, err
	}
	before, after, err := st.platform().Scripts(st.Vacation)
	if err != nil {
		return nil, err
	}
	s, err := install.FromRules(before, after, personal)
	if err != nil {
		return nil, err
	}
	return Scripts{install.BeforeName: s.Before, install.VacationName: s.Vacation, install.PersonalKey: s.Personal, install.AfterName: s.After}, nil
}

// mentionTag goes before the subject of mail from outside the
// organization.
const mentionTag = "[External]"

// platform is st as the rules package's platform filters. The mention
// waits for the organization's first verified domain: without one,
// every message would be "external".
func (st *Settings) platform() rules.Platform {
	return rules.Platform{
		Allow: st.Allowed, Block: st.Blocked, Refuse: st.RejectBlocked,
		ServiceAllow: st.ServiceAllowed, ServiceBlock: st.ServiceBlocked, ServiceRefuse: st.ServiceRefuse,
		Spam: st.AntiSpam, SpamFolder: st.SpamFolder,
		Ads: st.AdFilter, NewsletterFolder: st.NewsletterFolder, NoticeFolder: st.NotificationFolder,
		Mention: st.ExternalMention && len(st.OwnDomains) > 0, Tag: mentionTag, OwnDomains: st.OwnDomains,
	}
}

// platformFields maps the rules package's platform field names to the
// API's.
var platformFields = map[string]string{
	"allow": "allowedSenders", "block": "blockedSenders", "spam_folder": "spamFolder",
	"newsletter_folder": "newsletterFolder", "notice_folder": "notificationFolder",
}

// ManageSieve installs scripts with the install package's ManageSieve
// client.
type ManageSieve struct{ In *install.Installer }

// Install puts scripts in place for login. A script Dovecot does not
// compile is an *install.ScriptError (installAddress does not retry it).
func (m ManageSieve) Install(ctx context.Context, login string, s Scripts) error {
	scripts, err := install.FromMap(s)
	if err != nil {
		return err
	}
	return m.In.Install(ctx, login, scripts)
}
