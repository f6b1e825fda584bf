package accounts

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestZZSample(t *testing.T) {
	pdf, err := buildDPA("Zoë Müller GmbH", "Bahnhofstrasse 12\n8001 Zürich", time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile("/tmp/dpa-sample.pdf", pdf, 0o644)
	pdf, _ = buildDPA(strings.Repeat("Very Long Association Name ", 6), "Dvořák & Łukasiewicz Sàrl\nc/o Fiduciaire Œuvre\nRue de la Gare 1\n1003 Lausanne", time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	os.WriteFile("/tmp/dpa-long.pdf", pdf, 0o644)
}
