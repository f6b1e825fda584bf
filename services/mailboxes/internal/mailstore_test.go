package mailboxes

import (
	"path/filepath"
	"testing"

	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"google.golang.org/protobuf/proto"
)

func TestMailstoreWorkFor(t *testing.T) {
	const (
		org  = "organizations/01a21591-2a70-7e85-bb4b-7ab9fbd919af"
		ms   = "01a21591-2b57-797c-83b2-105ff7a125c8"
		addr = "01a21591-2557-7c1c-b359-390e5827d961"
	)
	deleted := func(name, login string) []byte {
		b, _ := proto.Marshal(&mailboxesv1.AddressChanged{Address: &mailboxesv1.Address{Name: name}, Login: login})
		return b
	}
	revoked := func(login string) []byte {
		b, _ := proto.Marshal(&mailboxesv1.DevicePasswordRevoked{Login: login})
		return b
	}
	mailService := func(name, domain string) []byte {
		b, _ := proto.Marshal(&mailboxesv1.MailServiceChanged{MailService: &mailboxesv1.MailService{Name: name, Domain: domain}})
		return b
	}
	home := filepath.Join("/srv/vmail", ms, addr)
	for _, tc := range []struct {
		name, subject string
		data          []byte
		want          MailstoreWork
		wantErr       bool
	}{
		{"address deleted", "mailplane.mailboxes.address.deleted", deleted(org+"/mailServices/"+ms+"/addresses/"+addr, "sales@example.com"),
			MailstoreWork{Kick: "sales@example.com", Remove: home}, false},
		{"device password revoked", "mailplane.mailboxes.device_password.revoked", revoked("sales@example.com"),
			MailstoreWork{Kick: "sales@example.com"}, false},
		{"mail service deleted: its sessions end, its mail stays", "mailplane.mailboxes.mail_service.deleted", mailService(org+"/mailServices/"+ms, "xn--bcher-kva.example"),
			MailstoreWork{Kick: "*@xn--bcher-kva.example"}, false},
		{"a claim never verified deleted: the domain's sessions (maybe another organization's) stay", "mailplane.mailboxes.mail_service.deleted",
			func() []byte {
				b, _ := proto.Marshal(&mailboxesv1.MailServiceChanged{MailService: &mailboxesv1.MailService{Name: org + "/mailServices/" + ms, Domain: "example.com",
					State: mailboxesv1.MailServiceState_MAIL_SERVICE_STATE_CLAIM_LOST}})
				return b
			}(), MailstoreWork{}, false},
		{"mail service purged: its mail goes", "mailplane.mailboxes.mail_service.purged", mailService(org+"/mailServices/"+ms, "example.com"),
			MailstoreWork{Remove: filepath.Join("/srv/vmail", ms)}, false},
		{"a login doveadm would read as a mask is not kicked", "mailplane.mailboxes.address.deleted", deleted(org+"/mailServices/"+ms+"/addresses/"+addr, "a*b@example.com"),
			MailstoreWork{Remove: home}, false},
		{"a path in the name", "mailplane.mailboxes.address.deleted", deleted(org+"/mailServices/../addresses/..", "x@example.com"), MailstoreWork{}, true},
		{"no name", "mailplane.mailboxes.mail_service.purged", mailService("", ""), MailstoreWork{}, true},
		{"not protobuf", "mailplane.mailboxes.address.deleted", []byte("\xff\xff"), MailstoreWork{}, true},
		{"another event", "mailplane.mailboxes.mail_service.created", mailService(org+"/mailServices/"+ms, "example.com"), MailstoreWork{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MailstoreWorkFor("/srv/vmail", tc.subject, tc.data)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v (error: %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
