// Package mirror keeps a service's local copy of what mailboxes owns and
// others read often: its addresses (with their users and rights) and its
// mail services (the organization's domains), fed by mailboxes' events
// (docs/services.md: a copy fed by events where eventual is fine, never a
// read across schemas).
//
// Each service keeps its copy in tables of its own schema, created by its
// own migrations; this package holds what would otherwise be written again
// in each: the SQL that applies the events (run on the service's pool,
// whose search_path is its schema) and the events.Subscription that runs
// it. The tables need at least these columns; a service may add its own,
// with defaults or generated, which the copy never writes:
//
//	CREATE TABLE addresses (
//	    id              uuid PRIMARY KEY,
//	    organization_id uuid NOT NULL,
//	    mail_service_id uuid NOT NULL,
//	    email           text NOT NULL,  -- in lower case
//	    login           text NOT NULL   -- Dovecot's login
//	);
//	CREATE TABLE address_users (
//	    address_id uuid NOT NULL REFERENCES addresses ON DELETE CASCADE,
//	    user_id    uuid NOT NULL,
//	    rights     text[] NOT NULL,     -- the Right* names the user holds
//	    PRIMARY KEY (address_id, user_id)
//	);
//	CREATE TABLE mail_services (
//	    id              uuid PRIMARY KEY,
//	    organization_id uuid NOT NULL,
//	    domain          text NOT NULL,  -- in lower case
//	    active          boolean NOT NULL DEFAULT true
//	);
//
// What a service does beyond the copy (filters' default settings and
// auto-replies, dnssecurity's first diagnostic) it does in a Then
// function, in the same transaction as the event's effect on the copy.
//
// Ordering: the last event applied wins. An older address or mail service
// event applied after a newer one (a redelivery after a failure) writes
// its older state, until the next event; a handler that must not go back
// compares AddressEvent.Seq, as filters does for auto-replies.
package mirror
