// Package csvcell keeps the CSV files the services hand to people from
// running as spreadsheet formulas (CSV injection, OWASP), and reads such
// files back unchanged when they are uploaded again.
//
// A spreadsheet runs a cell that starts with =, +, -, @, a tab or a
// carriage return as a formula; such text gets a leading apostrophe,
// which spreadsheets show as nothing and keep as text. Files the services
// write are read back by the same services (a corrected error file, an
// exported list imported elsewhere), so Restore takes the apostrophe
// away again.
package csvcell

import "strings"

const formulaStart = "=+-@\t\r"

// Defuse returns s as a CSV cell that a spreadsheet shows as text.
func Defuse(s string) string {
	if s != "" && strings.ContainsRune(formulaStart, rune(s[0])) {
		return "'" + s
	}
	return s
}

// Restore undoes Defuse: a cell made by Defuse comes back as it was; any
// other cell is returned unchanged.
func Restore(s string) string {
	if len(s) > 1 && s[0] == '\'' && strings.ContainsRune(formulaStart, rune(s[1])) {
		return s[1:]
	}
	return s
}
