package commands

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Two tokens of the form NewToken makes.
const (
	tok1 = "0123456789abcdefghjkmnpqrstvwxyz"
	tok2 = "zyxwvtsrqpnmkjhgfedcba9876543210"
)

// crlf writes a mail as it travels: CRLF line ends.
func crlf(s string) []byte {
	return []byte(strings.ReplaceAll(strings.TrimPrefix(s, "\n"), "\n", "\r\n"))
}

func TestParse(t *testing.T) {
	tests := []struct {
		name      string
		mail      string
		want      []Command
		approved  string
		truncated bool
	}{
		{
			name: "thunderbird subject only",
			mail: `
From: Alice <alice@example.org>
To: team-request@example.com
Subject: subscribe
Message-ID: <1@example.org>
User-Agent: Mozilla Thunderbird
Content-Type: text/plain; charset=UTF-8; format=flowed
Content-Transfer-Encoding: 7bit

`,
			want: []Command{{Verb: Join, Line: "subscribe", InSubject: true}},
		},
		{
			name: "plain body with blank lines and a signature",
			mail: `
From: alice@example.org
Subject: commands
Content-Type: text/plain; charset=us-ascii

join

  help
-- 
Alice Example
leave
`,
			want: []Command{{Verb: Join, Line: "join"}, {Verb: Help, Line: "help"}},
		},
		{
			name: "signature separator without its space",
			mail: `
From: alice@example.org
Subject:

unsubscribe bob@example.org
--
Alice
help
`,
			want: []Command{{Verb: Leave, Address: "bob@example.org", Line: "unsubscribe bob@example.org"}},
		},
		{
			name: "apple mail multipart/alternative prefers text/plain",
			mail: `
From: Alice <alice@example.org>
Content-Type: multipart/alternative;
	boundary="Apple-Mail=_1F2E"
Subject: Re: hello
Mime-Version: 1.0 (Mac OS X Mail 16.0)

--Apple-Mail=_1F2E
Content-Transfer-Encoding: 7bit
Content-Type: text/plain;
	charset=us-ascii

leave address=alice@example.org

--Apple-Mail=_1F2E
Content-Transfer-Encoding: 7bit
Content-Type: text/html;
	charset=us-ascii

<html><body><div>help</div></body></html>
--Apple-Mail=_1F2E--
`,
			want: []Command{{Verb: Leave, Address: "alice@example.org", Line: "leave address=alice@example.org"}},
		},
		{
			name: "outlook on the web html only with its reply block",
			mail: `
From: Bob <bob@example.net>
To: "team-request@example.com" <team-request@example.com>
Subject: RE: Welcome to team
Content-Type: text/html; charset="iso-8859-1"
Content-Transfer-Encoding: quoted-printable
X-MS-Has-Attach:

<html><head><meta http-equiv=3D"Content-Type" content=3D"text/html; charset=
=3Diso-8859-1"><style type=3D"text/css">p {margin:0}</style></head>
<body dir=3D"ltr"><div style=3D"font-family: Calibri">join&nbsp;</div>
<div style=3D"font-family: Calibri">help</div>
<div id=3D"appendonsend"></div>
<hr style=3D"display:inline-block;width:98%" tabindex=3D"-1">
<div id=3D"divRplyFwdMsg" dir=3D"ltr"><font face=3D"Calibri"><b>From:</b> t=
eam-request@example.com<br><b>Sent:</b> Monday<br></font></div>
<div>leave</div></body></html>
`,
			want: []Command{{Verb: Join, Line: "join"}, {Verb: Help, Line: "help"}},
		},
		{
			name: "gmail quoted reply confirms from the subject",
			mail: `
From: Carol <carol@gmail.com>
Date: Mon, 1 Jan 2024 10:00:00 +0100
Subject: Re: confirm ` + tok1 + `
To: team-request@example.com
Content-Type: multipart/alternative; boundary="000000000000a1b2c3"

--000000000000a1b2c3
Content-Type: text/plain; charset="UTF-8"



On Mon, 1 Jan 2024 at 09:00, <team-request@example.com> wrote:

> Reply to this message to confirm.
> confirm ` + tok2 + `
>

--000000000000a1b2c3
Content-Type: text/html; charset="UTF-8"

<div dir="ltr"><br></div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, 1 Jan 2024 at 09:00, &lt;<a href="mailto:team-request@example.com">team-request@example.com</a>&gt; wrote:<br></div><blockquote class="gmail_quote">confirm ` + tok2 + `</blockquote></div>

--000000000000a1b2c3--
`,
			want: []Command{{Verb: Confirm, Token: tok1, Line: "confirm " + tok1, InSubject: true}},
		},
		{
			name: "outlook top-post with AW prefix and underscores",
			mail: `
From: Dieter <dieter@example.de>
Subject: AW: confirm ` + strings.ToUpper(tok1) + `
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: base64

` + "RGFua2UhCgpfX19fX19fX19fX19fX19fX19fX19fX19fX19fX19fX18KVm9uOiB0ZWFtLXJlcXVl\nc3RAZXhhbXBsZS5jb20KR2VzZW5kZXQ6IE1vbnRhZwpjb25maXJtIG90aGVyCg==" + `
`,
			// "Danke!" is not a command, and is reported as such.
			want: []Command{
				{Verb: Confirm, Token: tok1, Line: "confirm " + strings.ToUpper(tok1), InSubject: true},
				{Problem: UnknownCommand, Line: "Danke!"},
			},
		},
		{
			name: "RE and SV prefixes stacked, confirm repeated in the body kept once",
			mail: `
From: sven@example.se
Subject: SV: RE: Re[2]: [team] confirm ` + tok1 + `

confirm ` + tok1 + `
`,
			want: []Command{{Verb: Confirm, Token: tok1, Line: "confirm " + tok1, InSubject: true}},
		},
		{
			name: "encoded subject in UTF-8",
			mail: `
From: =?UTF-8?Q?Jos=C3=A9?= <jose@example.es>
Subject: =?UTF-8?Q?RE:_confirm_` + tok2 + `?=

`,
			want: []Command{{Verb: Confirm, Token: tok2, Line: "confirm " + tok2, InSubject: true}},
		},
		{
			name: "encoded subject in ISO-8859-1 with a French prefix",
			mail: `
From: marie@example.fr
Subject: =?ISO-8859-1?Q?R=E9f=A0:_confirm_` + tok2 + `?=

`,
			want: []Command{{Verb: Confirm, Token: tok2, Line: "confirm " + tok2, InSubject: true}},
		},
		{
			name: "confirmation in the middle of a subject",
			mail: `
From: a@example.org
Subject: Re: Your confirmation is needed: confirm ` + tok1 + `

`,
			want: []Command{{Verb: Confirm, Token: tok1, Line: "Your confirmation is needed: confirm " + tok1, InSubject: true}},
		},
		{
			name: "moderator accepts with an Approved line",
			mail: `
From: mod@example.com
Subject: 

Approved: s3cret pass
accept carol@example.org
`,
			approved: "s3cret pass",
			want:     []Command{{Verb: Accept, Address: "carol@example.org", Line: "accept carol@example.org"}},
		},
		{
			name: "Approved header",
			mail: `
From: mod@example.com
Approved: hunter2
Subject: accept <carol@example.org>

`,
			approved: "hunter2",
			want:     []Command{{Verb: Accept, Address: "carol@example.org", Line: "accept <carol@example.org>", InSubject: true}},
		},
		{
			name: "a letter instead of commands; a subject that is none is ignored",
			mail: `
From: d@example.org
Subject: hello there

Hi, please remove me from this list.
Thanks
`,
			want: []Command{
				{Problem: UnknownCommand, Line: "Hi, please remove me from this list."},
				{Problem: UnknownCommand, Line: "Thanks"},
			},
		},
		{
			name: "problems",
			mail: `
From: d@example.org
Subject: confirm

confirm nothex
join not-an-address
join Alice <a@example.org>
help me
accept bob
discard ` + tok1 + ` now
reject bob@example.org  off topic,  twice
REJECT ` + tok2 + `
`,
			want: []Command{
				{Verb: Confirm, Problem: MissingArgument, Line: "confirm", InSubject: true},
				{Verb: Confirm, Problem: BadToken, Line: "confirm nothex"},
				{Verb: Join, Problem: BadAddress, Line: "join not-an-address"},
				{Verb: Join, Problem: TooManyArguments, Line: "join Alice <a@example.org>"},
				{Verb: Help, Problem: TooManyArguments, Line: "help me"},
				{Verb: Accept, Problem: BadTarget, Line: "accept bob"},
				{Verb: Discard, Problem: TooManyArguments, Line: "discard " + tok1 + " now"},
				{Verb: Reject, Address: "bob@example.org", Reason: "off topic,  twice", Line: "reject bob@example.org  off topic,  twice"},
				{Verb: Reject, Token: tok2, Line: "REJECT " + tok2},
			},
		},
		{
			name: "at most MaxCommands",
			mail: `
From: d@example.org
Subject: join

join a1@example.org
join a2@example.org
join a3@example.org
join a4@example.org
join a5@example.org
join a6@example.org
join a7@example.org
join a8@example.org
join a9@example.org
join a10@example.org
`,
			truncated: true,
			want: []Command{
				{Verb: Join, Line: "join", InSubject: true},
				{Verb: Join, Address: "a1@example.org", Line: "join a1@example.org"},
				{Verb: Join, Address: "a2@example.org", Line: "join a2@example.org"},
				{Verb: Join, Address: "a3@example.org", Line: "join a3@example.org"},
				{Verb: Join, Address: "a4@example.org", Line: "join a4@example.org"},
				{Verb: Join, Address: "a5@example.org", Line: "join a5@example.org"},
				{Verb: Join, Address: "a6@example.org", Line: "join a6@example.org"},
				{Verb: Join, Address: "a7@example.org", Line: "join a7@example.org"},
				{Verb: Join, Address: "a8@example.org", Line: "join a8@example.org"},
				{Verb: Join, Address: "a9@example.org", Line: "join a9@example.org"},
			},
		},
		{
			name: "end and stop end the scan",
			mail: `
From: d@example.org

join
END
help
`,
			want: []Command{{Verb: Join, Line: "join"}},
		},
		{
			name: "format=flowed joins a wrapped reason",
			mail: `
From: mod@example.com
Subject: x
Content-Type: text/plain; charset=utf-8; format=flowed; delsp=yes

reject ` + tok1 + ` Please keep posts on topic; this one is about something el 
se entirely.
 stop
help
`,
			want: []Command{{Verb: Reject, Token: tok1, Reason: "Please keep posts on topic; this one is about something else entirely.", Line: "reject " + tok1 + " Please keep posts on topic; this one is about something else entirely."}},
		},
		{
			name: "ISO-8859-1 quoted-printable body",
			mail: `
From: mod@example.de
Subject: x
Content-Type: text/plain; charset=ISO-8859-1
Content-Transfer-Encoding: quoted-printable

reject bob@example.org Bitte keine Werbung. Gr=FC=DFe
`,
			want: []Command{{Verb: Reject, Address: "bob@example.org", Reason: "Bitte keine Werbung. Grüße", Line: "reject bob@example.org Bitte keine Werbung. Grüße"}},
		},
		{
			name: "a reject link's mail: the body is the reason",
			mail: `
From: mod@example.com
To: team-request@example.com
Subject: reject ` + tok1 + `

This is an advertisement.

We do not take those.
-- 
Moderator
`,
			want: []Command{{Verb: Reject, Token: tok1, Reason: "This is an advertisement. We do not take those.", Line: "reject " + tok1, InSubject: true}},
		},
		{
			name: "thunderbird german reply: attribution ends the scan",
			mail: `
From: m@example.de
Subject: AW: Willkommen

join
Am 01.01.2024 um 10:00 schrieb team-request@example.com:
help
`,
			want: []Command{{Verb: Join, Line: "join"}},
		},
		{
			name: "attachment skipped, html body used",
			mail: `
From: a@example.org
Content-Type: multipart/mixed; boundary=b1

--b1
Content-Type: text/plain; name=notes.txt
Content-Disposition: attachment; filename=notes.txt

leave
--b1
Content-Type: text/html; charset=utf-8

<html><head><title>join</title><script>help()</script></head><body><p>help</p><blockquote>leave</blockquote></body></html>
--b1--
`,
			want: []Command{{Verb: Help, Line: "help"}},
		},
		{
			name: "no body at all",
			mail: `
From: a@example.org
Subject: Fwd: unsubscribe
Content-Type: image/png
Content-Transfer-Encoding: base64

iVBORw0KGgo=
`,
			want: []Command{{Verb: Leave, Line: "unsubscribe", InSubject: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := Parse(crlf(tt.mail))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, req.Commands); diff != "" {
				t.Errorf("Commands (-want +got):\n%s", diff)
			}
			if req.Approved != tt.approved {
				t.Errorf("Approved = %q, want %q", req.Approved, tt.approved)
			}
			if req.Truncated != tt.truncated {
				t.Errorf("Truncated = %v, want %v", req.Truncated, tt.truncated)
			}
		})
	}
}

func TestParseSubjectAndHeader(t *testing.T) {
	req, err := Parse(crlf(`
From: =?UTF-8?B?SsO8cmdlbg==?= <j@example.de>
Subject: =?UTF-8?Q?AW:_Gr=C3=BC=C3=9Fe?=

`))
	if err != nil {
		t.Fatal(err)
	}
	if req.Subject != "AW: Grüße" {
		t.Errorf("Subject = %q", req.Subject)
	}
	from, err := req.Header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Address != "j@example.de" || from[0].Name != "Jürgen" {
		t.Errorf("From = %v, %v", from, err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, mail, want string
	}{
		{"header line without colon", "From: a@example.org\r\nthis is no header\r\n\r\nhelp\r\n", "header"},
		{"multipart without its boundary", "From: a@example.org\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\nhelp\r\n", "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.mail))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse = %v, want an error about the %s", err, tt.want)
			}
		})
	}
}

func TestStripPrefixes(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Re: confirm x", "confirm x"},
		{"RE: AW: SV: Fwd: FW: WG: TR: Réf: RIF: Odp: VS: Antw: join", "join"},
		{"Re[3]: Re^2: Re(4): help", "help"},
		{"[team] Re: [EXTERNAL] leave", "leave"},
		{"回复：join", "join"},
		{"Reply: help", "Reply: help"},
		{"Re: Re: ", ""},
		{"[unclosed join", "[unclosed join"},
		{"subscribe", "subscribe"},
	}
	for _, tt := range tests {
		if got := StripPrefixes(tt.in); got != tt.want {
			t.Errorf("StripPrefixes(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
