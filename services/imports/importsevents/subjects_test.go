package importsevents_test

import (
	"testing"

	"github.com/mailplane/mailplane/services/platform/events/eventstest"
)

func TestSubjectsListsEveryConstant(t *testing.T) {
	eventstest.CheckSubjects(t, "subjects.go")
}
