package lists

import (
	"fmt"
	"time"

	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"github.com/mailplane/mailplane/services/platform/errs"
)

// bounceSettings are a list's BounceSettings as stored; Mailman 3's
// defaults (bounce_score_threshold 5, bounce_info_stale_after 7 days,
// bounce_you_are_disabled_warnings 3, ..._interval 7 days).
type bounceSettings struct {
	threshold, staleDays, warnings, intervalDays int32
}

var defaultBounceSettings = bounceSettings{threshold: 5, staleDays: 7, warnings: 3, intervalDays: 7}

// The bounds of each setting: a threshold of 100 days is already a
// member nobody reads; the rest keep a disabled member's fate within a
// quarter of a year.
var bounceBounds = []struct {
	field    string
	min, max int32
	get      func(*listsv1.BounceSettings) int32
	set      func(*bounceSettings, int32)
}{
	{"scoreThreshold", 1, 100, (*listsv1.BounceSettings).GetScoreThreshold, func(b *bounceSettings, v int32) { b.threshold = v }},
	{"infoStaleDays", 1, 365, (*listsv1.BounceSettings).GetInfoStaleDays, func(b *bounceSettings, v int32) { b.staleDays = v }},
	{"warnings", 1, 10, (*listsv1.BounceSettings).GetWarnings, func(b *bounceSettings, v int32) { b.warnings = v }},
	{"warningIntervalDays", 1, 90, (*listsv1.BounceSettings).GetWarningIntervalDays, func(b *bounceSettings, v int32) { b.intervalDays = v }},
}

// parseBounceSettings checks in, each zero field taking its default;
// violations name the field under prefix ("list.bounceSettings.").
func parseBounceSettings(in *listsv1.BounceSettings, prefix string) (bounceSettings, []errs.FieldViolation) {
	b := defaultBounceSettings
	var v []errs.FieldViolation
	for _, f := range bounceBounds {
		n := f.get(in)
		switch {
		case n == 0:
		case n < f.min || n > f.max:
			v = append(v, errs.FieldViolation{Field: prefix + f.field, Description: fmt.Sprintf("want %d to %d (0: the default)", f.min, f.max)})
		default:
			f.set(&b, n)
		}
	}
	return b, v
}

func (b bounceSettings) proto() *listsv1.BounceSettings {
	return &listsv1.BounceSettings{ScoreThreshold: b.threshold, InfoStaleDays: b.staleDays, Warnings: b.warnings, WarningIntervalDays: b.intervalDays}
}

// day is the bounce score's unit: one count per member per UTC day.
const day = 24 * time.Hour

// bounceState is what scoring reads and writes of a member.
type bounceState struct {
	score       int32
	first, last *time.Time // nil before any bounce
	disabled    bool
}

// score applies a permanent failure at now to st, as Mailman's bounce
// score does: the first bounce of a (UTC) day counts one, later ones
// that day are recorded but do not count; a bounce more than staleDays
// after the previous one starts a new score. counted says whether this
// one counted; disable, whether it is the one that reached the threshold
// (delivery, once disabled, stays so until a moderator enables it).
func (b bounceSettings) score(st bounceState, now time.Time) (next bounceState, counted, disable bool) {
	next = st
	today := now.UTC().Truncate(day)
	switch {
	case st.last == nil || now.Sub(*st.last) > time.Duration(b.staleDays)*day:
		next.score, next.first, counted = 1, &now, true
	case st.last.UTC().Truncate(day).Before(today):
		next.score++
		counted = true
	}
	next.last = &now
	if !st.disabled && next.score >= b.threshold {
		next.disabled, disable = true, true
	}
	return next, counted, disable
}

// sweepStep is what the bounce sweep does to a member whose delivery is
// disabled.
type sweepStep int

const (
	sweepWait   sweepStep = iota // not yet
	sweepWarn                    // mail the next warning
	sweepRemove                  // the warnings are spent: remove them
)

// step says what is due at now for a disabled member who was sent sent
// warnings, the last at lastWarning (nil: none yet). The first warning is
// due at once; each next one, and then removal, intervalDays after the
// previous warning.
func (b bounceSettings) step(sent int32, lastWarning *time.Time, now time.Time) sweepStep {
	if lastWarning != nil && now.Sub(*lastWarning) < time.Duration(b.intervalDays)*day {
		return sweepWait
	}
	if sent < b.warnings {
		return sweepWarn
	}
	return sweepRemove
}
