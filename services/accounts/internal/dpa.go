package accounts

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/go-pdf/fpdf"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/platform/errs"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/unicode/norm"
)

// Who Mailplane is and whom it hands data to, as every agreement states it.
// Legal changes them here; the tests read them from here too.
var (
	dpaProcessor = dpaParty{
		LegalName: "Mailplane",
		Address:   []string{"Switzerland"},
	}

	dpaSubProcessors = []dpaSubProcessor{
		{"Swiss data-centre operator", "Colocation: premises, power, cooling and physical security of Mailplane's servers", "Switzerland"},
		{"Swiss backup provider", "Storage of encrypted off-site backups", "Switzerland"},
		{"Swiss SMS gateway provider", "Delivery of SMS notices (phone number and message text only)", "Switzerland"},
	}
)

type dpaParty struct {
	LegalName string
	Address   []string
}

type dpaSubProcessor struct {
	Name, Service, Location string
}

// dpaSection is one numbered section of the agreement: paragraphs, then a
// bulleted list, then (for sub-processors) a table.
type dpaSection struct {
	Title         string
	Paragraphs    []string
	Bullets       []string
	SubProcessors []dpaSubProcessor
}

// dpaSections is the body of the agreement. It names no customer: the
// parties, the date and the signatures are laid out around it.
var dpaSections = []dpaSection{
	{
		Title: "Subject and duration",
		Paragraphs: []string{
			"This agreement governs the processing of personal data by Mailplane on behalf of the Customer in providing the Mailplane mail hosting service under the service agreement between the parties (the \"Service Agreement\"). Mailplane processes personal data only on the Customer's documented instructions, which are the Service Agreement, this agreement and the Customer's use and configuration of the service.",
			"This agreement takes effect on the date of issue and remains in force for as long as Mailplane processes personal data on behalf of the Customer. When the Service Agreement ends, Mailplane returns the Customer's data on request and then deletes it, including from backups as they expire, unless the law requires it to be kept.",
		},
	},
	{
		Title:      "Nature and purpose of the processing",
		Paragraphs: []string{"Mailplane hosts the Customer's email and the services around it, and processes personal data for no other purpose:"},
		Bullets: []string{
			"receiving, storing and delivering email for the Customer's domains and mailboxes;",
			"email addresses, including addresses shared by several people, and aliases;",
			"discussion and distribution lists and their subscribers;",
			"filters: spam and virus filtering and the rules the Customer sets up;",
			"imports of mailboxes from the Customer's previous providers, at the Customer's request;",
			"administration of the Customer's organization: users, members and roles, sign-in, the audit log, and notices by email or SMS.",
		},
	},
	{
		Title:      "Categories of data subjects and personal data",
		Paragraphs: []string{"Data subjects: the Customer's users and members (for example employees and contractors); people who exchange email with the Customer's addresses and lists; subscribers to the Customer's lists.", "Personal data:"},
		Bullets: []string{
			"identification and contact data: names, email addresses, and phone numbers used for SMS notices;",
			"the content of email messages and attachments, and their metadata (senders, recipients, dates, subjects);",
			"account data: sign-in credentials (passwords stored only as hashes), roles, and audit log entries including IP addresses;",
			"configuration: domains, addresses, lists, filters and imports.",
		},
	},
	{
		Title: "Location of the processing",
		Paragraphs: []string{
			"All data is stored and processed in data centres in Switzerland and is never transferred outside Switzerland. This applies to backups and to every sub-processor listed in this agreement.",
		},
	},
	{
		Title:         "Sub-processors",
		Paragraphs:    []string{"The Customer authorises the following sub-processors. Mailplane binds each of them by written contract to obligations that protect the data no less than this agreement, remains responsible for them, and informs the Customer before adding or replacing one, so that the Customer can object."},
		SubProcessors: dpaSubProcessors,
	},
	{
		Title:      "Technical and organisational measures",
		Paragraphs: []string{"Mailplane maintains at least the following measures and keeps them in line with the state of the art:"},
		Bullets: []string{
			"Encryption in transit: TLS on every connection to the service and between its components, and for email exchanged with other mail servers that support it.",
			"Encryption at rest: data and backups are stored encrypted.",
			"Isolation between customers: each customer's data is kept apart, and every request is checked against the organization it concerns.",
			"Access control and audit log: access follows the roles the Customer assigns (owner, admin, member); Mailplane staff access customer data only where operating the service requires it; every administrative action, allowed or refused, is recorded in an audit log that cannot be altered.",
			"Penetration tests: a penetration test by an independent firm every year; findings are fixed according to their severity.",
			"Breach notification: Mailplane notifies the Customer of a personal data breach without undue delay and at most within 48 hours of becoming aware of it, with what is known of its nature, its likely consequences and the measures taken.",
			"Backups: regular backups, encrypted and kept in Switzerland, from which the service can be restored.",
			"Staff confidentiality: everyone at Mailplane and at its sub-processors who may access customer data is bound to confidentiality.",
		},
	},
}

// GetDataProcessingAgreement returns the organization's Data Processing
// Agreement as a PDF. Owners and admins only, and only once the legal name
// and address are set: an agreement without them is not valid.
func (s *Server) GetDataProcessingAgreement(ctx context.Context, req *accountsv1.GetDataProcessingAgreementRequest) (*accountsv1.GetDataProcessingAgreementResponse, error) {
	org, role, c, err := s.access(ctx, "name", req.GetName())
	if err != nil {
		return nil, err
	}
	entry := auditEntry(c, org, "accounts.dpa.download", req.GetName(), nil)
	if !role.CanManage() {
		err := errs.E(errs.PermissionDenied, "only owners and admins can download the data processing agreement")
		s.auditRefusal(ctx, entry, err)
		return nil, err
	}
	o, err := s.store.Organization(ctx, org)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(o.LegalName) == "" || len(addressLines(o.Address)) == 0 {
		err := errs.E(errs.FailedPrecondition, "set the organization's legal name and address first; the agreement names them").WithReason("LEGAL_DETAILS_MISSING")
		s.auditRefusal(ctx, entry, err)
		return nil, err
	}
	issued := time.Now().UTC()
	pdf, err := buildDPA(o.LegalName, o.Address, issued)
	if err != nil {
		return nil, fmt.Errorf("data processing agreement of %s: %w", req.GetName(), err)
	}
	if err := s.store.RecordAudit(ctx, entry); err != nil {
		return nil, err
	}
	return &accountsv1.GetDataProcessingAgreementResponse{Pdf: pdf, FileName: dpaFileName(o.LegalName, issued)}, nil
}

// dpaFileName is "mailplane-dpa-<legal name as a slug>-<date>.pdf".
func dpaFileName(legalName string, issued time.Time) string {
	return "mailplane-dpa-" + slug(legalName) + "-" + issued.Format(time.DateOnly) + ".pdf"
}

// slug is s in lower-case ASCII letters and digits joined by dashes:
// "Zoë Müller GmbH" is "zoe-muller-gmbh".
func slug(s string) string {
	const maxLen = 60
	var b strings.Builder
	dash := false
	for _, r := range norm.NFD.String(strings.ToLower(s)) {
		switch {
		case 'a' <= r && r <= 'z', '0' <= r && r <= '9':
			b.WriteRune(r)
			dash = false
		case r == 'ß':
			b.WriteString("ss")
			dash = false
		case unicode.Is(unicode.Mn, r): // accents, split off by NFD
		case b.Len() > 0 && !dash:
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.TrimSuffix(b.String(), "-")
	if len(out) > maxLen {
		out = strings.TrimSuffix(out[:maxLen], "-")
	}
	if out == "" {
		return "organization"
	}
	return out
}

// addressLines splits a postal address into its non-blank lines.
func addressLines(address string) []string {
	var lines []string
	for l := range strings.Lines(address) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// Page layout, in millimetres and points.
const (
	dpaMargin     = 22.0
	dpaLineHeight = 5.0
	dpaBodySize   = 10.0
)

// dpaWriter lays text out on an A4 page in Helvetica. The PDF core fonts
// only have Windows-1252 glyphs, so every string goes through tr.
type dpaWriter struct {
	pdf *fpdf.Fpdf
	tr  func(string) string
}

// buildDPA renders the agreement between the customer named legalName at
// address and Mailplane, issued on the given day.
func buildDPA(legalName, address string, issued time.Time) ([]byte, error) {
	pdf := fpdf.New("P", "mm", "A4", "")
	cp1252 := pdf.UnicodeTranslatorFromDescriptor("")
	w := &dpaWriter{pdf: pdf, tr: func(s string) string { return cp1252(foldToCP1252(s)) }}
	date := issued.Format("2 January 2006")

	pdf.SetTitle("Data Processing Agreement", true)
	pdf.SetSubject("Data Processing Agreement between "+legalName+" and "+dpaProcessor.LegalName, true)
	pdf.SetAuthor(dpaProcessor.LegalName, true)
	pdf.SetCreator(dpaProcessor.LegalName, true)
	pdf.SetLang("en")
	pdf.SetCreationDate(issued)
	pdf.SetModificationDate(issued)
	pdf.SetMargins(dpaMargin, 20, dpaMargin)
	pdf.SetAutoPageBreak(true, 20)
	pdf.AliasNbPages("")
	pdf.SetFooterFunc(func() {
		pdf.SetY(-14)
		pdf.SetFont("Helvetica", "", 8)
		pdf.SetTextColor(110, 110, 110)
		pdf.CellFormat(0, 4, w.footer(legalName, date), "", 0, "C", false, 0, "")
		pdf.SetTextColor(0, 0, 0)
	})
	pdf.AddPage()

	pdf.SetFont("Helvetica", "B", 20)
	pdf.CellFormat(0, 10, w.tr("Data Processing Agreement"), "", 1, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 9)
	pdf.SetTextColor(80, 80, 80)
	pdf.MultiCell(0, 4.5, w.tr("On the processing of personal data on behalf of the Customer, under Art. 9 of the Swiss Federal Act on Data Protection (FADP) and, where it applies, Art. 28 of the EU General Data Protection Regulation (GDPR)."), "", "L", false)
	pdf.SetTextColor(0, 0, 0)
	pdf.Ln(4)
	w.labelled("Date of issue", date)
	pdf.Ln(3)

	w.text("between", "I")
	w.party(dpaParty{LegalName: legalName, Address: addressLines(address)}, `the "Customer", controller`)
	w.text("and", "I")
	w.party(dpaProcessor, `"Mailplane", processor`)

	for i, sec := range dpaSections {
		w.heading(fmt.Sprintf("%d. %s", i+1, sec.Title))
		for _, p := range sec.Paragraphs {
			w.paragraph(p)
		}
		for _, b := range sec.Bullets {
			w.bullet(b)
		}
		if len(sec.SubProcessors) > 0 {
			w.subProcessors(sec.SubProcessors)
		}
	}
	w.signatures(legalName)

	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, fmt.Errorf("render pdf: %w", err)
	}
	return buf.Bytes(), nil
}

// footer names the agreement on every page, shortening a legal name too
// long for one line.
func (w *dpaWriter) footer(legalName, date string) string {
	left, _, right, _ := w.pdf.GetMargins()
	pageWidth, _ := w.pdf.GetPageSize()
	name := []rune(legalName)
	for {
		s := w.tr(fmt.Sprintf("Data Processing Agreement – %s – %s – page %d of {nb}", string(name), date, w.pdf.PageNo()))
		if w.pdf.GetStringWidth(s) < pageWidth-left-right-10 || len(name) < 10 {
			return s
		}
		name = append(name[:len(name)-10], '…')
	}
}

func (w *dpaWriter) text(s, style string) {
	w.pdf.SetFont("Helvetica", style, dpaBodySize)
	w.pdf.MultiCell(0, dpaLineHeight, w.tr(s), "", "L", false)
	w.pdf.Ln(1.5)
}

func (w *dpaWriter) labelled(label, value string) {
	w.pdf.SetFont("Helvetica", "B", dpaBodySize)
	w.pdf.CellFormat(w.pdf.GetStringWidth(w.tr(label+": "))+1, dpaLineHeight, w.tr(label+":"), "", 0, "L", false, 0, "")
	w.pdf.SetFont("Helvetica", "", dpaBodySize)
	w.pdf.CellFormat(0, dpaLineHeight, w.tr(value), "", 1, "L", false, 0, "")
}

// party prints a legal name in bold, its address lines, and its role in the
// agreement, indented.
func (w *dpaWriter) party(p dpaParty, role string) {
	const indent = 8
	left, _, _, _ := w.pdf.GetMargins()
	w.pdf.SetFont("Helvetica", "B", 11)
	w.pdf.SetX(left + indent)
	w.pdf.MultiCell(0, 5.5, w.tr(p.LegalName), "", "L", false)
	w.pdf.SetFont("Helvetica", "", dpaBodySize)
	for _, l := range p.Address {
		w.pdf.SetX(left + indent)
		w.pdf.MultiCell(0, dpaLineHeight, w.tr(l), "", "L", false)
	}
	w.pdf.SetFont("Helvetica", "I", dpaBodySize)
	w.pdf.SetX(left + indent)
	w.pdf.MultiCell(0, dpaLineHeight, w.tr("("+role+")"), "", "L", false)
	w.pdf.Ln(3)
}

func (w *dpaWriter) heading(s string) {
	w.pdf.Ln(3)
	// Keep a heading with at least two lines of what follows it.
	_, pageHeight := w.pdf.GetPageSize()
	if w.pdf.GetY()+20 > pageHeight-20 {
		w.pdf.AddPage()
	}
	w.pdf.SetFont("Helvetica", "B", 12)
	w.pdf.MultiCell(0, 6.5, w.tr(s), "", "L", false)
	w.pdf.Ln(1)
}

func (w *dpaWriter) paragraph(s string) {
	w.pdf.SetFont("Helvetica", "", dpaBodySize)
	w.pdf.MultiCell(0, dpaLineHeight, w.tr(s), "", "L", false)
	w.pdf.Ln(2)
}

func (w *dpaWriter) bullet(s string) {
	const indent, gap = 4, 5
	left, _, _, _ := w.pdf.GetMargins()
	w.pdf.SetFont("Helvetica", "", dpaBodySize)
	w.pdf.SetX(left + indent)
	w.pdf.CellFormat(gap, dpaLineHeight, w.tr("•"), "", 0, "L", false, 0, "")
	w.pdf.MultiCell(0, dpaLineHeight, w.tr(s), "", "L", false)
	w.pdf.Ln(1)
}

// subProcessors prints a table, wrapping long cells and starting a new page
// rather than splitting a row.
func (w *dpaWriter) subProcessors(ps []dpaSubProcessor) {
	const lineHeight, pad = 4.5, 1.5
	left, _, right, _ := w.pdf.GetMargins()
	pageWidth, pageHeight := w.pdf.GetPageSize()
	width := pageWidth - left - right
	cols := []float64{width * 0.30, width * 0.50, width * 0.20}

	row := func(cells []string, style string) {
		w.pdf.SetFont("Helvetica", style, 9)
		texts := make([][]byte, len(cells))
		lines := 1
		for i, c := range cells {
			texts[i] = []byte(w.tr(c))
			lines = max(lines, len(w.pdf.SplitLines(texts[i], cols[i])))
		}
		h := float64(lines)*lineHeight + 2*pad
		if w.pdf.GetY()+h > pageHeight-20 {
			w.pdf.AddPage()
		}
		x, y := left, w.pdf.GetY()
		for i, text := range texts {
			if style == "B" {
				w.pdf.Rect(x, y, cols[i], h, "FD")
			} else {
				w.pdf.Rect(x, y, cols[i], h, "D")
			}
			w.pdf.SetXY(x, y+pad)
			w.pdf.MultiCell(cols[i], lineHeight, string(text), "", "L", false)
			x += cols[i]
		}
		w.pdf.SetXY(left, y+h)
	}
	w.pdf.SetDrawColor(170, 170, 170)
	w.pdf.SetFillColor(232, 236, 241)
	row([]string{"Name", "Service", "Location"}, "B")
	for _, p := range ps {
		row([]string{p.Name, p.Service, p.Location}, "")
	}
	w.pdf.SetDrawColor(0, 0, 0)
	w.pdf.Ln(2)
}

// signatures prints a block for each party to sign, side by side.
func (w *dpaWriter) signatures(legalName string) {
	const gutter = 12
	left, _, right, _ := w.pdf.GetMargins()
	pageWidth, pageHeight := w.pdf.GetPageSize()
	if w.pdf.GetY()+65 > pageHeight-20 {
		w.pdf.AddPage()
	}
	w.heading("Signatures")
	colWidth := (pageWidth - left - right - gutter) / 2
	column := func(i int) float64 { return left + float64(i)*(colWidth+gutter) }

	top, y := w.pdf.GetY(), 0.0
	w.pdf.SetFont("Helvetica", "B", dpaBodySize)
	for i, name := range []string{legalName, dpaProcessor.LegalName} {
		w.pdf.SetXY(column(i), top)
		w.pdf.MultiCell(colWidth, dpaLineHeight, w.tr("For "+name), "", "L", false)
		y = max(y, w.pdf.GetY())
	}
	w.pdf.SetFont("Helvetica", "", 8)
	for _, label := range []string{"Place and date", "Name and function", "Signature"} {
		y += 12
		for i := range 2 {
			w.pdf.Line(column(i), y, column(i)+colWidth, y)
			w.pdf.SetXY(column(i), y+0.5)
			w.pdf.CellFormat(colWidth, 4, w.tr(label), "", 0, "L", false, 0, "")
		}
		y += 4
	}
	w.pdf.SetXY(left, y)
}

// foldToCP1252 replaces the characters Windows-1252 lacks with their base
// letters ("Dvořák" becomes "Dvorak") and anything else with "?", so that
// a name prints as near as the core fonts allow rather than fpdf's dots.
func foldToCP1252(s string) string {
	var b strings.Builder
	for _, r := range s {
		if _, ok := charmap.Windows1252.EncodeRune(r); ok {
			b.WriteRune(r)
			continue
		}
		if f, ok := unaccented[r]; ok {
			b.WriteString(f)
			continue
		}
		n := b.Len()
		for _, d := range norm.NFD.String(string(r)) {
			if _, ok := charmap.Windows1252.EncodeRune(d); ok && !unicode.Is(unicode.Mn, d) {
				b.WriteRune(d)
			}
		}
		if b.Len() == n {
			b.WriteByte('?')
		}
	}
	return b.String()
}

// unaccented holds the letters with a stroke, which do not decompose.
var unaccented = map[rune]string{'ł': "l", 'Ł': "L", 'đ': "d", 'Đ': "D", 'ħ': "h", 'Ħ': "H", 'ı': "i"}
