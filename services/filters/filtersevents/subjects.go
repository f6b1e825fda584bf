// Package filtersevents names the subjects the filters service publishes
// its events on (proto/mailplane/filters/v1/events.proto holds the
// messages), relative to the deployment's subject prefix.
package filtersevents

// Subjects of the filters service's events, each with its message.
const (
	// RuleCreated carries a RuleChanged.
	RuleCreated = "filters.rule.created"
	// RuleUpdated carries a RuleChanged.
	RuleUpdated = "filters.rule.updated"
	// RuleMoved carries a RuleChanged: the rule at its new position.
	RuleMoved = "filters.rule.moved"
	// RuleDeleted carries a RuleChanged.
	RuleDeleted = "filters.rule.deleted"
	// FilterSettingsUpdated carries a FilterSettingsChanged.
	FilterSettingsUpdated = "filters.filter_settings.updated"
	// SpamReportRecorded carries a SpamReported: a message moved into or
	// out of Spam, for learning.
	SpamReportRecorded = "filters.spam_report.recorded"
	// AuditRecorded carries an accounts AuditRecorded.
	AuditRecorded = "filters.audit.recorded"
)

// Subjects returns every subject above, for the catalog consumers check
// their filters against.
func Subjects() []string {
	return []string{RuleCreated, RuleUpdated, RuleMoved, RuleDeleted, FilterSettingsUpdated, SpamReportRecorded, AuditRecorded}
}
