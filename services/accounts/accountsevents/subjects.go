// Package accountsevents names the subjects the accounts service publishes
// its events on (proto/mailplane/accounts/v1/events.proto holds the
// messages), relative to the deployment's subject prefix. Publishers and
// consumers use these constants, never the strings: a typo is then a
// compile error, and a filter that matches no declared subject (see
// Subjects) stops its consumer at start rather than consuming nothing.
//
// It is a package of its own, importing next to nothing, so that another
// service names accounts' subjects without importing the service.
package accountsevents

import "github.com/mailplane/mailplane/services/platform/auth"

// Subjects of the accounts service's events, each with its message.
const (
	// OrganizationCreated carries an OrganizationCreated.
	OrganizationCreated = "accounts.organization.created"
	// OrganizationUpdated carries an OrganizationUpdated.
	OrganizationUpdated = "accounts.organization.updated"
	// OrganizationDeleted carries an OrganizationDeleted.
	OrganizationDeleted = "accounts.organization.deleted"
	// MemberUpdated carries a MemberUpdated.
	MemberUpdated = "accounts.member.updated"
	// MemberDeleted carries a MemberDeleted.
	MemberDeleted = "accounts.member.deleted"
	// InvitationAccepted carries an InvitationAccepted.
	InvitationAccepted = "accounts.invitation.accepted"
	// UserLoginReleased carries a LoginReleased.
	UserLoginReleased = "accounts.user.login_released"
	// UserDeleted carries a UserDeleted.
	UserDeleted = "accounts.user.deleted"
	// SessionRevoked carries a SessionsRevoked. Every process follows it,
	// so the platform's auth package, which applies it, owns the string.
	SessionRevoked = auth.RevocationSubject
)

// AnyAuditRecorded is the filter of the audit records every service
// publishes on "<service>.audit.recorded" (an AuditRecorded each), which
// the accounts service keeps in the organizations' audit logs.
const AnyAuditRecorded = "*.audit.recorded"

// Subjects returns every subject above, for the catalog consumers check
// their filters against (events.NewCatalog).
func Subjects() []string {
	return []string{
		OrganizationCreated, OrganizationUpdated, OrganizationDeleted,
		MemberUpdated, MemberDeleted, InvitationAccepted,
		UserLoginReleased, UserDeleted, SessionRevoked,
	}
}
