package mailboxes

import (
	"path/filepath"
	"testing"

	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"google.golang.org/protobuf/proto"
)

func TestMailDir(t *testing.T) {
	const (
		org  = "organizations/01a21591-2a70-7e85-bb4b-7ab9fbd919af"
		ms   = "01a21591-2b57-797c-83b2-105ff7a125c8"
		addr = "01a21591-2557-7c1c-b359-390e5827d961"
	)
	deleted := func(name string) []byte {
		b, _ := proto.Marshal(&mailboxesv1.AddressChanged{Address: &mailboxesv1.Address{Name: name}})
		return b
	}
	purged := func(name string) []byte {
		b, _ := proto.Marshal(&mailboxesv1.MailServiceChanged{MailService: &mailboxesv1.MailService{Name: name}})
		return b
	}
	for _, tc := range []struct {
		name, subject string
		data          []byte
		want          string // empty: an error
	}{
		{"address deleted", "mailplane.mailboxes.address.deleted", deleted(org + "/mailServices/" + ms + "/addresses/" + addr), filepath.Join("/srv/vmail", ms, addr)},
		{"mail service purged", "mailplane.mailboxes.mail_service.purged", purged(org + "/mailServices/" + ms), filepath.Join("/srv/vmail", ms)},
		{"a path in the name", "mailplane.mailboxes.address.deleted", deleted(org + "/mailServices/../addresses/.."), ""},
		{"no name", "mailplane.mailboxes.mail_service.purged", purged(""), ""},
		{"not protobuf", "mailplane.mailboxes.address.deleted", []byte("\xff\xff"), ""},
		{"another event", "mailplane.mailboxes.mail_service.deleted", purged(org + "/mailServices/" + ms), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MailDir("/srv/vmail", tc.subject, tc.data)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("got %q, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
