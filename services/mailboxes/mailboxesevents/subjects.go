// Package mailboxesevents names the subjects the mailboxes service
// publishes its events on (proto/mailplane/mailboxes/v1/events.proto holds
// the messages), relative to the deployment's subject prefix. Publishers
// and consumers use these constants, never the strings: a typo is then a
// compile error, and a filter that matches no declared subject (see
// Subjects) stops its consumer at start rather than consuming nothing.
//
// It is a package of its own, importing nothing, so that another service
// names mailboxes' subjects without importing the service.
package mailboxesevents

// Subjects of the mailboxes service's events, each with its message.
const (
	// MailServiceClaimed carries a MailServiceChanged: a domain claimed,
	// pending verification.
	MailServiceClaimed = "mailboxes.mail_service.claimed"
	// MailServiceCreated carries a MailServiceChanged: the claim verified;
	// from then on the organization hosts the domain.
	MailServiceCreated = "mailboxes.mail_service.created"
	// MailServiceClaimEnded carries a MailServiceChanged: another
	// organization verified the domain first, or the claim expired.
	MailServiceClaimEnded = "mailboxes.mail_service.claim_ended"
	// MailServiceUpdated carries a MailServiceChanged.
	MailServiceUpdated = "mailboxes.mail_service.updated"
	// MailServiceDeleted carries a MailServiceChanged (a soft deletion).
	MailServiceDeleted = "mailboxes.mail_service.deleted"
	// MailServiceUndeleted carries a MailServiceChanged.
	MailServiceUndeleted = "mailboxes.mail_service.undeleted"
	// MailServicePurged carries a MailServiceChanged: gone for good.
	MailServicePurged = "mailboxes.mail_service.purged"
	// AddressCreated carries an AddressChanged.
	AddressCreated = "mailboxes.address.created"
	// AddressUpdated carries an AddressChanged.
	AddressUpdated = "mailboxes.address.updated"
	// AddressDeleted carries an AddressChanged.
	AddressDeleted = "mailboxes.address.deleted"
	// AutoReplyUpdated carries an AddressChanged with its auto_reply and
	// vacation_sieve set (docs/mailboxes.md says how to install it).
	AutoReplyUpdated = "mailboxes.auto_reply.updated"
	// DevicePasswordRevoked carries a DevicePasswordRevoked.
	DevicePasswordRevoked = "mailboxes.device_password.revoked"
	// AuditRecorded carries an accounts AuditRecorded.
	AuditRecorded = "mailboxes.audit.recorded"
)

// Subjects returns every subject above, for the catalog consumers check
// their filters against (events.NewCatalog).
func Subjects() []string {
	return []string{
		MailServiceClaimed, MailServiceCreated, MailServiceClaimEnded, MailServiceUpdated,
		MailServiceDeleted, MailServiceUndeleted, MailServicePurged,
		AddressCreated, AddressUpdated, AddressDeleted, AutoReplyUpdated,
		DevicePasswordRevoked, AuditRecorded,
	}
}
