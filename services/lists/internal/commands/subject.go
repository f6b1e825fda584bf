package commands

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// replyPrefixes are the words mail clients put before a Subject when
// replying or forwarding, lower-cased: English Re/Fw/Fwd, German AW/WG,
// Scandinavian SV/VS/VB/Fs, Dutch Antw/Doorst, French TR/Réf, Italian R/RIF/I,
// Spanish RV, Polish Odp/Pd, Czech Odp/Fw, Chinese 回复/答复/转发, and the
// numbered forms some add (Re[2]:, Re^2:, Re(2):).
var replyPrefixes = map[string]bool{
	"re": true, "fw": true, "fwd": true, "aw": true, "wg": true, "sv": true,
	"vs": true, "vb": true, "fs": true, "antw": true, "antwort": true,
	"doorst": true, "tr": true, "réf": true, "ref": true, "r": true,
	"rif": true, "i": true, "rv": true, "odp": true, "pd": true,
	"回复": true, "答复": true, "转发": true, "回覆": true,
}

// StripPrefixes removes the reply and forward prefixes ("Re:", "AW:",
// "SV:", "Fwd:", ...) and bracketed tags ("[team]", "[EXTERNAL]") from the
// start of a decoded Subject, however many and in whatever order.
func StripPrefixes(s string) string {
	for {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
		if strings.HasPrefix(s, "[") {
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return s
			}
			s = s[end+1:]
			continue
		}
		colon := strings.IndexAny(s, ":：")
		if colon < 0 {
			return s
		}
		word := strings.ToLower(strings.TrimRightFunc(s[:colon], unicode.IsSpace))
		word = trimCounter(word)
		if !replyPrefixes[word] {
			return s
		}
		_, size := utf8.DecodeRuneInString(s[colon:])
		s = s[colon+size:]
	}
}

// trimCounter removes a reply counter: "re[2]", "re^2", "re(2)" give "re".
func trimCounter(w string) string {
	i := strings.IndexAny(w, "[^(")
	if i < 0 {
		return w
	}
	rest := strings.TrimRight(w[i+1:], "])")
	for _, r := range rest {
		if r < '0' || r > '9' {
			return w
		}
	}
	return w[:i]
}
