package mailboxes

import "testing"

func TestCheckScripts(t *testing.T) {
	for domain, ok := range map[string]bool{
		"example.com":                 true,
		"bücher.example":              true,
		"пример.example":              true,
		"παράδειγμα.example":          true,
		"mail-2.пример.example":       true,  // digits and the hyphen belong to no script
		"日本語ひらがなカタカナ.example":         true,  // Japanese
		"sony日本.example":              true,  // Latin with Han
		"한국어漢字.example":               true,  // Korean
		"p\u0430ypal.example":         false, // Cyrillic а among Latin
		"\u03bfpen.example":           false, // Greek ο
		"ok.g\u043e\u043egle.example": false,
		"пример\u03b1.example":        false, // Cyrillic and Greek
		"한국ひらがな.example":              false, // Hangul and Hiragana
	} {
		if err := checkScripts(domain); (err == nil) != ok {
			t.Errorf("checkScripts(%q) = %v, want ok %v", domain, err, ok)
		}
	}
}
