package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/mailplane/mailplane/gateway"
	"github.com/mailplane/mailplane/services/platform/config"
	"github.com/mailplane/mailplane/services/platform/service"
)

// TestServiceList: the one list of services is what serve accepts, what the
// usage names, whose settings every process registers, and what the edge
// routes, so that a service added to it needs nothing else in cmd.
func TestServiceList(t *testing.T) {
	names := service.Names(services())
	if len(names) == 0 {
		t.Fatal("no services")
	}
	for _, name := range names {
		if !strings.Contains(usage, name) {
			t.Errorf("usage does not name %s:\n%s", name, usage)
		}
		if got, _, err := splitServices([]string{name, "--log-level", "debug"}); err != nil || !slices.Equal(got, []string{name}) {
			t.Errorf("splitServices(%s) = %v, %v", name, got, err)
		}
	}
	if _, _, err := splitServices([]string{"acounts"}); err == nil || !strings.Contains(err.Error(), strings.Join(names, ", ")) {
		t.Errorf("an unknown service: %v; want an error listing %v", err, names)
	}
	if edge := gateway.Services(); !slices.Equal(edge, names) {
		t.Errorf("the edge routes %v; the binary runs %v", edge, names)
	}

	var out bytes.Buffer
	l := config.NewLoader("mailplane serve", func(string) string { return "" }, &out)
	newSettings().register(l)
	l.Parse([]string{"-h"})
	for _, flag := range []string{"--accounts-addr", "-token-signing-key", "-bulk-jobs-running", "-access-token-ttl"} {
		if !strings.Contains(out.String(), strings.TrimLeft(flag, "-")) {
			t.Errorf("serve -h does not list %s", flag)
		}
	}
}
