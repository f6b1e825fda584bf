// Package importsevents names the subjects the imports service publishes
// its events on (proto/mailplane/imports/v1/events.proto holds the
// messages), relative to the deployment's subject prefix.
package importsevents

// Subjects of the imports service's events, each with its message.
const (
	// ImportJobCreated carries an ImportJobChanged.
	ImportJobCreated = "imports.import_job.created"
	// ImportJobEnded carries an ImportJobChanged: the job succeeded,
	// failed or was cancelled.
	ImportJobEnded = "imports.import_job.ended"
	// AuditRecorded carries an accounts AuditRecorded.
	AuditRecorded = "imports.audit.recorded"
)

// Subjects returns every subject above, for the catalog consumers check
// their filters against.
func Subjects() []string {
	return []string{ImportJobCreated, ImportJobEnded, AuditRecorded}
}
