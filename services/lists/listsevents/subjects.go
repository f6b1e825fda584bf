// Package listsevents names the subjects of the lists service's events,
// relative to the process's event prefix. Publishers and consumers use
// these constants, never strings.
package listsevents

const (
	// ListCreated carries a ListChanged.
	ListCreated = "lists.list.created"
	// ListUpdated carries a ListChanged.
	ListUpdated = "lists.list.updated"
	// ListDeleted carries a ListChanged.
	ListDeleted = "lists.list.deleted"
	// MemberCreated carries a MemberChanged.
	MemberCreated = "lists.member.created"
	// MemberUpdated carries a MemberChanged: delivery disabled by
	// bounces, or enabled again.
	MemberUpdated = "lists.member.updated"
	// MemberDeleted carries a MemberChanged.
	MemberDeleted = "lists.member.deleted"
	// HeldPostAccepted carries a HeldPostChanged.
	HeldPostAccepted = "lists.held_post.accepted"
	// HeldPostRejected carries a HeldPostChanged.
	HeldPostRejected = "lists.held_post.rejected"
	// HeldPostDiscarded carries a HeldPostChanged.
	HeldPostDiscarded = "lists.held_post.discarded"
	// SubscriptionRequestCreated carries a SubscriptionRequestChanged: a
	// new request to join, by mail or form, before any confirmation.
	SubscriptionRequestCreated = "lists.subscription_request.created"
	// SubscriptionRequestConfirmed carries a SubscriptionRequestChanged:
	// the subscriber confirmed (the request as it was before).
	SubscriptionRequestConfirmed = "lists.subscription_request.confirmed"
	// SubscriptionRequestAccepted carries a SubscriptionRequestChanged.
	SubscriptionRequestAccepted = "lists.subscription_request.accepted"
	// SubscriptionRequestRejected carries a SubscriptionRequestChanged.
	SubscriptionRequestRejected = "lists.subscription_request.rejected"
	// SubscriptionRequestDiscarded carries a SubscriptionRequestChanged.
	SubscriptionRequestDiscarded = "lists.subscription_request.discarded"
	// AuditRecorded carries an accounts AuditRecorded.
	AuditRecorded = "lists.audit.recorded"
)

// Subjects are every subject the service publishes.
func Subjects() []string {
	return []string{ListCreated, ListUpdated, ListDeleted, MemberCreated, MemberUpdated, MemberDeleted,
		HeldPostAccepted, HeldPostRejected, HeldPostDiscarded,
		SubscriptionRequestCreated, SubscriptionRequestConfirmed,
		SubscriptionRequestAccepted, SubscriptionRequestRejected, SubscriptionRequestDiscarded, AuditRecorded}
}
