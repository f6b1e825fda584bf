package commands

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

// tokenAlphabet is Crockford's base32, lower-cased: digits and letters
// without i, l, o and u, so no two characters of a token are confused when
// read aloud or retyped (0/o, 1/l/i), and no word is spelled by accident.
const tokenAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// tokenBytes is the entropy of a token: 160 bits, encoded in exactly 32
// characters with no padding.
const tokenBytes = 20

// TokenLen is the length of a token.
const TokenLen = tokenBytes * 8 / 5

var tokenEncoding = base32.NewEncoding(tokenAlphabet).WithPadding(base32.NoPadding)

// NewToken returns a fresh random token: 160 bits from crypto/rand in 32
// lower-case characters of Crockford's base32 alphabet. It confirms a
// subscription or carries a moderator's decision, so it must not be guessed;
// the service stores it, makes it single-use and expires it.
func NewToken() string {
	var b [tokenBytes]byte
	// crypto/rand.Read never fails (Go 1.24+: it crashes the program if the
	// kernel's generator does).
	_, _ = rand.Read(b[:])
	return tokenEncoding.EncodeToString(b[:])
}

// ValidToken reports whether s has the form of a token NewToken makes. It
// takes the canonical, lower-case form only: Parse and ParseAddress lower-case
// what a mail carries before they check it.
func ValidToken(s string) bool {
	if len(s) != TokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(tokenAlphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}
