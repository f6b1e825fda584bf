package commands

import (
	"strings"
	"testing"
)

func TestNewToken(t *testing.T) {
	seen := map[string]bool{}
	used := map[rune]bool{}
	for range 2000 {
		tok := NewToken()
		if !ValidToken(tok) {
			t.Fatalf("NewToken() = %q, not valid", tok)
		}
		if seen[tok] {
			t.Fatalf("NewToken() repeated %q", tok)
		}
		seen[tok] = true
		for _, r := range tok {
			used[r] = true
		}
	}
	// 64,000 characters drawn: every one of the 32 must have appeared, and
	// none of the confusable ones.
	if len(used) != len(tokenAlphabet) {
		t.Errorf("tokens used %d distinct characters, want %d", len(used), len(tokenAlphabet))
	}
	for _, r := range "iloIL" {
		if used[r] {
			t.Errorf("a token holds the confusable %q", r)
		}
	}
}

func TestValidToken(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{tok1, true},
		{tok2, true},
		{strings.ToUpper(tok1), false},
		{tok1[:31], false},
		{tok1 + "0", false},
		{"", false},
		{strings.Replace(tok1, "a", "i", 1), false},
		{strings.Replace(tok1, "a", "l", 1), false},
		{strings.Replace(tok1, "a", "o", 1), false},
		{strings.Replace(tok1, "a", "u", 1), false},
		{strings.Replace(tok1, "a", "=", 1), false},
		{strings.Replace(tok1, "ab", "é", 1), false},
	}
	for _, tt := range tests {
		if got := ValidToken(tt.s); got != tt.want {
			t.Errorf("ValidToken(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}
