package csvcell

import "testing"

func TestDefuse(t *testing.T) {
	for in, want := range map[string]string{
		"=HYPERLINK(\"http://x\")": "'=HYPERLINK(\"http://x\")",
		"+1":                       "'+1",
		"-x":                       "'-x",
		"@example.com":             "'@example.com",
		"\tcmd":                    "'\tcmd",
		"\rcmd":                    "'\rcmd",
		"ann@example.com":          "ann@example.com",
		"'quoted":                  "'quoted",
		"":                         "",
	} {
		if got := Defuse(in); got != want {
			t.Errorf("Defuse(%q) = %q, want %q", in, got, want)
		}
		if got := Restore(Defuse(in)); got != in {
			t.Errorf("Restore(Defuse(%q)) = %q", in, got)
		}
	}
}

func TestRestoreLeavesOtherCells(t *testing.T) {
	for _, in := range []string{"'", "'quoted", "''=x", "ann", "@example.com", ""} {
		if got := Restore(in); got != in {
			t.Errorf("Restore(%q) = %q, want it unchanged", in, got)
		}
	}
}
