package mailboxes_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mailplane/mailplane/services/mailboxes"
)

// TestConfigListsLMTPAddr checks that a lists-lmtp-addr Postfix could not
// connect to stops the process at start, naming the setting.
func TestConfigListsLMTPAddr(t *testing.T) {
	tests := map[string]bool{ // valid?
		"":                          true, // off
		"127.0.0.1:9104":            true,
		"mailplane-lists-lmtp:9104": true,
		"[::1]:9104":                true,
		":9104":                     false, // a listen address, not one to connect to
		"mailplane-lists-lmtp":      false,
		"127.0.0.1:lmtp":            false,
	}
	for addr, valid := range tests {
		c := mailboxes.Config{DomainCheckInterval: time.Minute, ListsLMTPAddr: addr}
		errs := c.Validate()
		if valid && len(errs) != 0 {
			t.Errorf("lists-lmtp-addr %q: %v, want no error", addr, errs)
		}
		if !valid && (len(errs) != 1 || !strings.Contains(errs[0].Error(), "MAILPLANE_LISTS_LMTP_ADDR")) {
			t.Errorf("lists-lmtp-addr %q: %v, want one error naming MAILPLANE_LISTS_LMTP_ADDR", addr, errs)
		}
	}
}
