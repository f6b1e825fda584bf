package commands

import "strings"

// Kind names what a list's address is for.
type Kind string

// The robots of a list. A list named "team" answers at team@ (KindPost),
// team-request@, team-join@, team-leave@, team-owner@, team-bounces+VERP@ and
// team-confirm+TOKEN@.
const (
	KindPost    Kind = "post"    // the list itself: a post to its members
	KindRequest Kind = "request" // commands in the Subject and first body lines
	KindJoin    Kind = "join"    // subscribe the sender; the body is ignored
	KindLeave   Kind = "leave"   // unsubscribe the sender; the body is ignored
	KindOwner   Kind = "owner"   // forwarded to the moderators
	KindBounces Kind = "bounces" // a bounce; Detail is the VERP part naming the member
	KindConfirm Kind = "confirm" // a confirmation; Detail is the token
)

// Delimiter separates a robot's local part from its detail (VERP or token),
// as in list-bounces+alice=example.org@ and list-confirm+TOKEN@. It must
// match the MTA's recipient_delimiter (Postfix), so that a lookup of
// list-bounces+anything@ falls back to the reserved list-bounces@.
const Delimiter = "+"

// suffixes are the robots other than the list itself, in the order Robots
// gives them.
var suffixes = [...]struct {
	suffix string
	kind   Kind
}{
	{"-request", KindRequest},
	{"-join", KindJoin},
	{"-leave", KindLeave},
	{"-owner", KindOwner},
	{"-bounces", KindBounces},
	{"-confirm", KindConfirm},
}

// Robot is what one of a list's addresses asks for.
type Robot struct {
	Kind Kind
	// Detail is what follows the delimiter: the VERP part of a bounce
	// address as written (decoding it is the bounce handler's job), or a
	// confirmation token, lower-cased (check it with ValidToken). Empty when
	// the address had none, which a bounce to the bare -bounces address or a
	// confirmation without token does.
	Detail string
}

// ParseAddress says which of the robots of the list whose local part is list
// the local part local names. The comparison ignores case (local parts are
// case-sensitive by RFC 5321, but no one expects Team-Request@ and
// team-request@ to differ). Only -bounces and -confirm take a detail after
// the delimiter; list+tag@ or list-request+tag@ is not a robot, so mail to
// it is refused rather than guessed at.
func ParseAddress(local, list string) (Robot, bool) {
	if list == "" || len(local) < len(list) || !strings.EqualFold(local[:len(list)], list) {
		return Robot{}, false
	}
	rest := local[len(list):]
	if rest == "" {
		return Robot{Kind: KindPost}, true
	}
	base, detail, hasDetail := strings.Cut(rest, Delimiter)
	for _, s := range suffixes {
		if !strings.EqualFold(base, s.suffix) {
			continue
		}
		switch {
		case !hasDetail:
			return Robot{Kind: s.kind}, true
		case s.kind == KindBounces:
			return Robot{Kind: KindBounces, Detail: detail}, true
		case s.kind == KindConfirm:
			return Robot{Kind: KindConfirm, Detail: strings.ToLower(detail)}, true
		}
		return Robot{}, false
	}
	return Robot{}, false
}

// Robots gives the local parts a list needs reserved, the list's own first:
// list, list-request, list-join, list-leave, list-owner, list-bounces and
// list-confirm. The addresses with a detail (list-bounces+VERP,
// list-confirm+TOKEN) need no reservation of their own: they ride on their
// base's, because the MTA strips the detail after the recipient_delimiter
// when it looks an address up (Postfix's socketmap lookup of mailboxes, or a
// transport map), and the lists service gets the full address over LMTP.
func Robots(list string) []string {
	out := make([]string, 0, len(suffixes)+1)
	out = append(out, list)
	for _, s := range suffixes {
		out = append(out, list+s.suffix)
	}
	return out
}
