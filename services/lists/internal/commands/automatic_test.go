package commands

import (
	"bufio"
	"strings"
	"testing"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

func header(t *testing.T, s string) gomail.Header {
	t.Helper()
	h, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(strings.ReplaceAll(s, "\n", "\r\n") + "\r\n\r\n")))
	if err != nil {
		t.Fatalf("header %q: %v", s, err)
	}
	return gomail.Header{Header: message.Header{Header: h}}
}

func TestAutomatic(t *testing.T) {
	const person = "From: Alice <alice@example.org>\nTo: team-request@example.com\nSubject: join"
	tests := []struct {
		name, header string
		want         bool
	}{
		{"a person", person, false},
		{"auto-submitted no", person + "\nAuto-Submitted: no", false},
		{"auto-submitted NO with a comment", person + "\nAuto-Submitted: NO (sent by hand)", false},
		{"auto-replied", person + "\nAuto-Submitted: auto-replied", true},
		{"auto-generated with parameters", person + "\nAuto-Submitted: Auto-Generated; owner-email=\"x@example.org\"", true},
		{"auto-notified", person + "\nAuto-Submitted: auto-notified", true},
		{"auto-submitted empty", person + "\nAuto-Submitted:", true},
		{"precedence bulk", person + "\nPrecedence: bulk", true},
		{"precedence junk", person + "\nPrecedence: JUNK", true},
		{"precedence list", person + "\nPrecedence: list", true},
		{"precedence first-class", person + "\nPrecedence: first-class", false},
		{"list-id", person + "\nList-Id: Other <other.example.net>", true},
		{"list-unsubscribe", person + "\nList-Unsubscribe: <mailto:other-leave@example.net>", true},
		{"list-post", person + "\nList-Post: <mailto:other@example.net>", true},
		{"delivery status notification", person + "\nContent-Type: multipart/report; report-type=delivery-status; boundary=x", true},
		{"multipart/mixed", person + "\nContent-Type: multipart/mixed; boundary=x", false},
		{"null return path", person + "\nReturn-Path: <>", true},
		{"return path of a person", person + "\nReturn-Path: <alice@example.org>", false},
		{"return path of a list", person + "\nReturn-Path: <other-bounces+alice=example.org@example.net>", true},
		{"x-autoreply", person + "\nX-Autoreply: yes", true},
		{"x-autorespond", person + "\nX-Autorespond: vacation", true},
		{"from mailer-daemon", "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>", true},
		{"from postmaster", "From: postmaster@example.net", true},
		{"from a -request", "From: other-request@example.net", true},
		{"from owner-", "From: owner-other@example.net", true},
		{"from noreply", "From: \"Shop\" <no-reply@shop.example>", true},
		{"sender is a robot", person + "\nSender: other-bounces@example.net", true},
		{"unparsable from of a robot", "From: Mailer <mailer-daemon@example.net", true},
		{"unparsable from of a person", "From: Alice <alice@example.org", false},
		{"product owner is a person", "From: product-owner@example.org", false},
		{"no from", "Subject: x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Automatic(header(t, tt.header)); got != tt.want {
				t.Errorf("Automatic(%q) = %v, want %v", tt.header, got, tt.want)
			}
		})
	}
}

func TestRobotSender(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"", true},
		{"<>", true},
		{"MAILER-DAEMON", true},
		{"mailer-daemon@example.net", true},
		{"Postmaster@example.net", true},
		{"listserv@example.net", true},
		{"majordomo@example.net", true},
		{"mailman@example.net", true},
		{"team-request@example.com", true},
		{"team-bounces+alice=example.org@example.com", true},
		{"team-confirm+" + tok1 + "@example.com", true},
		{"owner-team@example.com", true},
		{"bounce-123@mailer.example", true},
		{"noreply@example.com", true},
		{"do-not-reply@example.com", true},
		{"shop-noreply@example.com", true},
		{"alice@example.org", false},
		{"alice+lists@example.org", false},
		{"it-admin@example.org", false},
		{"team-owner@example.com", false},
		{"requester@example.org", false},
		{"\"quoted local\"@example.org", false},
	}
	for _, tt := range tests {
		if got := RobotSender(tt.addr); got != tt.want {
			t.Errorf("RobotSender(%q) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}
