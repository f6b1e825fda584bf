package accounts

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// pdfText extracts a PDF's text with pdftotext (Debian: poppler-utils),
// keeping the layout. Without the tool the test skips, except in CI.
func pdfText(t *testing.T, pdf []byte) string {
	t.Helper()
	bin, err := exec.LookPath("pdftotext")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("pdftotext is not installed (apt-get install poppler-utils)")
		}
		t.Skip("pdftotext is not installed (apt-get install poppler-utils); skipping")
	}
	path := filepath.Join(t.TempDir(), "dpa.pdf")
	if err := os.WriteFile(path, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-layout", "-enc", "UTF-8", path, "-")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pdftotext: %v: %s", err, stderr.String())
	}
	return string(out)
}

// pdfInfo returns pdfinfo's "Key: value" lines, or skips as pdfText does.
func pdfInfo(t *testing.T, pdf []byte) map[string]string {
	t.Helper()
	if _, err := exec.LookPath("pdfinfo"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("pdfinfo is not installed (apt-get install poppler-utils)")
		}
		t.Skip("pdfinfo is not installed (apt-get install poppler-utils); skipping")
	}
	path := filepath.Join(t.TempDir(), "dpa.pdf")
	if err := os.WriteFile(path, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdfinfo", "-enc", "UTF-8", path).Output()
	if err != nil {
		t.Fatalf("pdfinfo: %v", err)
	}
	info := map[string]string{}
	for l := range strings.Lines(string(out)) {
		if k, v, ok := strings.Cut(l, ":"); ok {
			info[k] = strings.TrimSpace(v)
		}
	}
	return info
}

func TestBuildDPA(t *testing.T) {
	issued := time.Date(2026, time.November, 25, 9, 30, 0, 0, time.UTC)
	pdf, err := buildDPA("Zoë Müller GmbH", "Bahnhofstrasse 12\r\n  \n8001 Zürich\n", issued)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatalf("not a PDF: %q", pdf[:min(len(pdf), 16)])
	}
	text := pdfText(t, pdf)
	// pdftotext -layout may spread a justified line's words apart.
	flat := strings.Join(strings.Fields(text), " ")

	want := []string{
		"Data Processing Agreement",
		"Zoë Müller GmbH",
		"Bahnhofstrasse 12",
		"8001 Zürich",
		"Date of issue: 25 November 2026",
		dpaProcessor.LegalName,
		"All data is stored and processed in data centres in Switzerland and is never transferred outside Switzerland.",
		"penetration test by an independent firm every year",
		"breach without undue delay and at most within 48 hours",
		"Encryption in transit",
		"Encryption at rest",
		"Isolation between customers",
		"audit log",
		"Backups",
		"confidentiality",
		"For Zoë Müller GmbH",
		"Signature",
	}
	for _, p := range dpaSubProcessors {
		want = append(want, p.Name, p.Location)
	}
	for _, w := range want {
		if !strings.Contains(flat, w) {
			t.Errorf("the agreement does not say %q; its text:\n%s", w, text)
		}
	}
	if !regexp.MustCompile(`page 1 of [2-9]`).MatchString(flat) {
		t.Errorf("no page numbers in the footer:\n%s", text)
	}

	info := pdfInfo(t, pdf)
	for k, v := range map[string]string{
		"Title":     "Data Processing Agreement",
		"Author":    dpaProcessor.LegalName,
		"Subject":   "Data Processing Agreement between Zoë Müller GmbH and " + dpaProcessor.LegalName,
		"Page size": "595.28 x 841.89 pts (A4)",
	} {
		if info[k] != v {
			t.Errorf("pdfinfo %s = %q, want %q", k, info[k], v)
		}
	}
	if !strings.Contains(info["CreationDate"], "2026") {
		t.Errorf("pdfinfo CreationDate = %q, want the date of issue", info["CreationDate"])
	}
}

// TestBuildDPALongAddress checks that a long, unusual address still lays
// out: every line on the page, the characters Windows-1252 lacks folded.
func TestBuildDPALongAddress(t *testing.T) {
	lines := []string{"Dvořák & Łukasiewicz Sàrl", "c/o Fiduciaire Œuvre", "Rue de la Gare 1", "Case postale 42", "1003 Lausanne", "Switzerland"}
	pdf, err := buildDPA(strings.Repeat("Very Long Association Name ", 6), strings.Join(lines, "\n"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	flat := strings.Join(strings.Fields(pdfText(t, pdf)), " ")
	for _, w := range []string{"Dvorák & Lukasiewicz Sàrl", "c/o Fiduciaire Œuvre", "1003 Lausanne"} {
		if !strings.Contains(flat, w) {
			t.Errorf("the agreement does not say %q:\n%s", w, flat)
		}
	}
	if !strings.Contains(flat, "Data Processing Agreement – Very Long Association Name") || !strings.Contains(flat, "… – ") {
		t.Errorf("a long legal name is not shortened in the footer:\n%s", flat)
	}
}

func TestFoldToCP1252(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Zoë Müller GmbH, Zürich", "Zoë Müller GmbH, Zürich"},
		{"Œuvre – « déjà » €5", "Œuvre – « déjà » €5"},
		{"Dvořák, Łódź, Đorđević", "Dvorák, Lódz, Dordevic"},
		{"株式会社", "????"},
	}
	for _, tt := range tests {
		if got := foldToCP1252(tt.in); got != tt.want {
			t.Errorf("foldToCP1252(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDPAFileName(t *testing.T) {
	day := time.Date(2026, time.November, 25, 23, 59, 0, 0, time.UTC)
	tests := []struct{ legalName, want string }{
		{"Zoë Müller GmbH", "mailplane-dpa-zoe-muller-gmbh-2026-11-25.pdf"},
		{"Acme SA", "mailplane-dpa-acme-sa-2026-11-25.pdf"},
		{"  Straßenbau & Co. (Zürich)  ", "mailplane-dpa-strassenbau-co-zurich-2026-11-25.pdf"},
		{"株式会社", "mailplane-dpa-organization-2026-11-25.pdf"},
		{strings.Repeat("abcdefghi ", 10), "mailplane-dpa-abcdefghi-abcdefghi-abcdefghi-abcdefghi-abcdefghi-abcdefghi-2026-11-25.pdf"},
	}
	for _, tt := range tests {
		if got := dpaFileName(tt.legalName, day); got != tt.want {
			t.Errorf("dpaFileName(%q) = %q, want %q", tt.legalName, got, tt.want)
		}
	}
}

func TestAddressLines(t *testing.T) {
	got := addressLines(" Bahnhofstrasse 12 \r\n\n  8001 Zürich")
	if strings.Join(got, "|") != "Bahnhofstrasse 12|8001 Zürich" {
		t.Errorf("addressLines = %q", got)
	}
	if got := addressLines(" \n\t"); len(got) != 0 {
		t.Errorf("blank address has lines %q", got)
	}
}
