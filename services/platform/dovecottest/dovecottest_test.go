package dovecottest_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailplane/mailplane/services/platform/dovecottest"
)

// TestDovecot runs Dovecot with users from a file, as a service's test
// would with its own passdb and userdb.
func TestDovecot(t *testing.T) {
	d := dovecottest.New(t)
	users := filepath.Join(d.Dir, "users")
	if err := os.WriteFile(users, []byte("anna@example.test:{PLAIN}a secret::::::\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.Start(t, fmt.Sprintf(`
passdb {
  driver = passwd-file
  args = username_format=%%u %s
}
userdb {
  driver = static
  args = home=%s/%%u
}
`, users, d.Vmail))

	for _, tc := range []struct{ password, want string }{
		{"a secret", "a1 OK"},
		{"another", "a1 NO [AUTHENTICATIONFAILED]"},
	} {
		if got, err := d.Login("anna@example.test", tc.password); err != nil || !strings.HasPrefix(got, tc.want) {
			t.Errorf("LOGIN with %q: %q (%v), want %q...", tc.password, got, err, tc.want)
		}
	}
	if !d.AuthTest(t, "smtp", "anna@example.test", "a secret") {
		t.Error("doveadm auth test refused the password")
	}
	if got, err := d.Append("anna@example.test", "a secret", 100); err != nil || !strings.HasPrefix(got, "a2 OK") {
		t.Errorf("APPEND: %q (%v)", got, err)
	}
	if _, err := os.Stat(filepath.Join(d.Vmail, "anna@example.test", "Maildir")); err != nil {
		t.Errorf("the message is not in the home the userdb gave: %v", err)
	}
}
