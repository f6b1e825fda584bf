package mailboxes

import (
	"fmt"
	"path/filepath"
	"strings"

	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"google.golang.org/protobuf/proto"
)

// MailDir is the directory under root whose mail the event on subject makes
// garbage: an address's home once it is deleted, a mail service's once it is
// purged (Dovecot's homes are <root>/<mail service id>/<address id>,
// deploy/mail/dovecot). The path is made of parsed ids only, so an event
// can name nothing outside root.
func MailDir(root, subject string, data []byte) (string, error) {
	switch {
	case strings.HasSuffix(subject, ".address.deleted"):
		var ev mailboxesv1.AddressChanged
		if err := proto.Unmarshal(data, &ev); err != nil {
			return "", fmt.Errorf("address event: %w", err)
		}
		ids, err := parseName("address.name", ev.GetAddress().GetName(), "organizations", "mailServices", "addresses")
		if err != nil {
			return "", err
		}
		return filepath.Join(root, ids[1].String(), ids[2].String()), nil
	case strings.HasSuffix(subject, ".mail_service.purged"):
		var ev mailboxesv1.MailServiceChanged
		if err := proto.Unmarshal(data, &ev); err != nil {
			return "", fmt.Errorf("mail service event: %w", err)
		}
		ids, err := parseName("mailService.name", ev.GetMailService().GetName(), "organizations", "mailServices")
		if err != nil {
			return "", err
		}
		return filepath.Join(root, ids[1].String()), nil
	}
	return "", fmt.Errorf("subject %s: not an event that removes mail", subject)
}
