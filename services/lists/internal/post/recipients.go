package post

import "strings"

// Recipients returns the members who get a copy of a post, each once, in
// the order of members:
//
//   - the author is left out unless authorWantsOwn (Mailman's
//     receive_own_postings);
//   - a member the author put in To or Cc is left out: they received the
//     post directly, and a second copy from the list is the duplicate
//     Mailman 3 avoids too (its "avoid duplicates" default);
//   - a member listed twice gets one copy.
//
// Addresses compare as RFC 5321 §2.4 says: the domain without case, the
// local part exactly (it may be case-sensitive at its domain, so
// Jane@example.com and jane@example.com are two members).
func Recipients(members []string, author string, authorWantsOwn bool, to, cc []string) []string {
	seen := make(map[string]bool, len(members)+len(to)+len(cc)+1)
	for _, a := range to {
		seen[addrKey(a)] = true
	}
	for _, a := range cc {
		seen[addrKey(a)] = true
	}
	if !authorWantsOwn {
		seen[addrKey(author)] = true
	}
	out := make([]string, 0, len(members))
	for _, m := range members {
		k := addrKey(m)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, m)
	}
	return out
}

// addrKey is an address in its comparable form: the domain lower-cased.
func addrKey(a string) string {
	at := strings.LastIndexByte(a, '@')
	if at < 0 {
		return a
	}
	return a[:at+1] + strings.ToLower(a[at+1:])
}

func sameAddress(a, b string) bool { return addrKey(a) == addrKey(b) }
