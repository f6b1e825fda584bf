package mailboxes

import (
	"fmt"
	"path/filepath"
	"strings"
	"unicode"

	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"github.com/mailplane/mailplane/services/platform/events"
	"google.golang.org/protobuf/proto"
)

// MailstoreWork is what an event asks of the mail store.
type MailstoreWork struct {
	// Kick is a Dovecot login, or a mask of logins ("*@example.com"), whose
	// open sessions must end: a revoked password or a deleted address must
	// not keep a connected phone reading mail.
	Kick string
	// Remove is a directory whose mail is garbage: an address's home once
	// it is deleted, a mail service's once it is purged (Dovecot's homes are
	// <root>/<mail service id>/<address id>, deploy/mail/dovecot). It is
	// made of parsed ids only, so an event can name nothing outside root.
	Remove string
}

// MailstoreWorkFor is what the event on subject asks of the mail store under
// root.
func MailstoreWorkFor(root, subject string, data []byte) (MailstoreWork, error) {
	var w MailstoreWork
	switch {
	case events.SubjectIs(subject, mailboxesevents.AddressDeleted):
		var ev mailboxesv1.AddressChanged
		if err := proto.Unmarshal(data, &ev); err != nil {
			return w, fmt.Errorf("address event: %w", err)
		}
		ids, err := parseName("address.name", ev.GetAddress().GetName(), "organizations", "mailServices", "addresses")
		if err != nil {
			return w, err
		}
		w.Remove = filepath.Join(root, ids[1].String(), ids[2].String())
		w.Kick = kickable(ev.GetLogin())
	case events.SubjectIs(subject, mailboxesevents.DevicePasswordRevoked):
		var ev mailboxesv1.DevicePasswordRevoked
		if err := proto.Unmarshal(data, &ev); err != nil {
			return w, fmt.Errorf("device password event: %w", err)
		}
		w.Kick = kickable(ev.GetLogin())
	case events.SubjectIs(subject, mailboxesevents.MailServiceDeleted), events.SubjectIs(subject, mailboxesevents.MailServicePurged):
		var ev mailboxesv1.MailServiceChanged
		if err := proto.Unmarshal(data, &ev); err != nil {
			return w, fmt.Errorf("mail service event: %w", err)
		}
		ids, err := parseName("mailService.name", ev.GetMailService().GetName(), "organizations", "mailServices")
		if err != nil {
			return w, err
		}
		if events.SubjectIs(subject, mailboxesevents.MailServicePurged) {
			// Its mail stays while it can be restored; its sessions ended
			// when it was deleted.
			w.Remove = filepath.Join(root, ids[1].String())
		} else if d := kickable(ev.GetMailService().GetDomain()); d != "" && liveState(ev.GetMailService().GetState()) {
			w.Kick = "*@" + d
		}
	default:
		return w, fmt.Errorf("subject %s: not an event for the mail store", subject)
	}
	return w, nil
}

// liveState reports whether a mail service in state served mail: verified
// (or older than verification, unspecified). A claim that was never
// verified has no sessions, and the domain's may be another
// organization's.
func liveState(state mailboxesv1.MailServiceState) bool {
	return state == mailboxesv1.MailServiceState_MAIL_SERVICE_STATE_VERIFIED ||
		state == mailboxesv1.MailServiceState_MAIL_SERVICE_STATE_UNSPECIFIED
}

// kickable is s if doveadm can take it as one login or domain, else "":
// doveadm reads * and ? as wildcards, so a login holding one cannot be
// named alone (its sessions end when the client next logs in).
func kickable(s string) string {
	if strings.ContainsAny(s, "*?") || strings.ContainsFunc(s, unicode.IsSpace) {
		return ""
	}
	return s
}
