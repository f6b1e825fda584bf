package auditlog

import (
	"testing"

	dnssecurityv1 "github.com/mailplane/mailplane/proto/mailplane/dnssecurity/v1"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"google.golang.org/protobuf/proto"
)

func TestAction(t *testing.T) {
	for _, c := range []struct{ service, method, want string }{
		{"mailboxes", "CreateAddress", "mailboxes.address.create"},
		{"mailboxes", "UpdateAutoReply", "mailboxes.autoReply.update"},
		{"dnssecurity", "CorrectSpf", "dnssecurity.spf.correct"},
		{"dnssecurity", "GetSigningKey", "dnssecurity.signingKey.get"},
		{"x", "Purge", "x..purge"},
	} {
		if got := Action(c.service, c.method); got != c.want {
			t.Errorf("Action(%q, %q) = %q, want %q", c.service, c.method, got, c.want)
		}
	}
}

func TestTarget(t *testing.T) {
	for _, c := range []struct {
		req  proto.Message
		want string
	}{
		{&dnssecurityv1.RunDiagnosticRequest{Name: "organizations/o/mailServices/m/security"}, "organizations/o/mailServices/m/security"},
		{&mailboxesv1.ListAddressesRequest{Parent: "organizations/o/mailServices/m"}, "organizations/o/mailServices/m"},
		{&dnssecurityv1.UpdateDomainSecurityRequest{DomainSecurity: &dnssecurityv1.DomainSecurity{Name: "organizations/o/mailServices/m/security"}}, "organizations/o/mailServices/m/security"},
		{&dnssecurityv1.CheckHostRequest{Ip: "192.0.2.1"}, ""},
	} {
		if got := Target(c.req); got != c.want {
			t.Errorf("Target(%v) = %q, want %q", c.req, got, c.want)
		}
	}
}
