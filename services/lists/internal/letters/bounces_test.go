package letters

import (
	"strings"
	"testing"
)

func TestBounceKinds(t *testing.T) {
	for _, k := range []Kind{BounceWarning, BounceRemoved, BounceEnabled} {
		if err := CheckKind(k); err != nil {
			t.Error(err)
		}
	}
	// The diagnostic line shows only when there is one.
	data := Data{"List": "team@example.test", "Owner": "team-owner@example.test", "Confirm": "team-confirm+abc@example.test", "Expire": "2026-12-10", "Warning": "1", "Warnings": "3", "Diagnostic": "", "Remove": "2026-12-28"}
	for _, lang := range Langs {
		_, body, err := BounceWarning.Render(lang, data)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(body, ": \n") || !strings.Contains(body, "team-owner@example.test") || !strings.Contains(body, "team-confirm+abc@example.test") || !strings.Contains(body, "2026-12-28") {
			t.Errorf("%s warning:\n%s", lang, body)
		}
	}
}
