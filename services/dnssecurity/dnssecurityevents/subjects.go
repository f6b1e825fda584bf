// Package dnssecurityevents names the subjects of the DNS security
// service's events, relative to the process's event prefix. Publishers and
// consumers use these constants, never strings.
package dnssecurityevents

const (
	// DiagnosticStatusChanged carries a DiagnosticStatusChanged: a
	// diagnostic's overall status differs from the previous one's.
	DiagnosticStatusChanged = "dnssecurity.diagnostic.status_changed"
	// ChangeApplied carries a ChangeApplied: every authoritative server
	// answers with a change.
	ChangeApplied = "dnssecurity.change.applied"
	// DkimKeyPublished carries a DkimKeyChanged: a key's record is
	// answered everywhere.
	DkimKeyPublished = "dnssecurity.dkim_key.published"
	// DkimKeyRotated carries a DkimKeyChanged: a new key signs, the old
	// one retires.
	DkimKeyRotated = "dnssecurity.dkim_key.rotated"
	// AuditRecorded carries an accounts AuditRecorded.
	AuditRecorded = "dnssecurity.audit.recorded"
)

// Subjects are every subject the service publishes.
func Subjects() []string {
	return []string{DiagnosticStatusChanged, ChangeApplied, DkimKeyPublished, DkimKeyRotated, AuditRecorded}
}
