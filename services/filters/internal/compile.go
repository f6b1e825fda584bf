package filters

import (
	"context"
	"errors"
	"fmt"

	"github.com/mailplane/mailplane/services/filters/internal/install"
	"github.com/mailplane/mailplane/services/filters/internal/rules"
	"github.com/riverqueue/river"
)

// RulesCompiler compiles an address's own rules with the rule model's
// compiler into its personal script, beside the auto-reply's script
// mailboxes rendered (installed as is; empty removes it). The platform scripts (spam, ads,
// block and allow lists, the mention) are not compiled yet: the settings
// are stored and marked to install, and reach Dovecot once their
// compiler exists.
type RulesCompiler struct{}

// Compile returns the personal script and the auto-reply's.
func (RulesCompiler) Compile(rs []*Rule, st *Settings) (Scripts, error) {
	models := make([]rules.Rule, len(rs))
	for i, r := range rs {
		models[i] = r.Model()
	}
	personal, err := rules.Compile(models)
	if err != nil {
		return nil, err
	}
	return Scripts{install.PersonalKey: personal, install.VacationName: st.Vacation}, nil
}

// ManageSieve installs scripts with the install package's ManageSieve
// client.
type ManageSieve struct{ In *install.Installer }

// Install puts scripts in place for login. A script Dovecot does not
// compile is not retried (the job is cancelled; the address stays
// pending and the next change tries again).
func (m ManageSieve) Install(ctx context.Context, login string, s Scripts) error {
	scripts, err := install.FromMap(s)
	if err != nil {
		return err
	}
	err = m.In.Install(ctx, login, scripts)
	var se *install.ScriptError
	if errors.As(err, &se) {
		return river.JobCancel(fmt.Errorf("dovecot refused the scripts of %s: %w", login, err))
	}
	return err
}
