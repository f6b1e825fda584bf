package commands

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseAddress(t *testing.T) {
	tests := []struct {
		local string
		want  Robot
		ok    bool
	}{
		{"team", Robot{Kind: KindPost}, true},
		{"TEAM", Robot{Kind: KindPost}, true},
		{"team-request", Robot{Kind: KindRequest}, true},
		{"Team-Request", Robot{Kind: KindRequest}, true},
		{"team-join", Robot{Kind: KindJoin}, true},
		{"team-leave", Robot{Kind: KindLeave}, true},
		{"team-owner", Robot{Kind: KindOwner}, true},
		{"team-bounces", Robot{Kind: KindBounces}, true},
		{"team-bounces+alice=Example.org", Robot{Kind: KindBounces, Detail: "alice=Example.org"}, true},
		{"team-bounces+", Robot{Kind: KindBounces}, true},
		{"team-confirm", Robot{Kind: KindConfirm}, true},
		{"team-confirm+" + tok1, Robot{Kind: KindConfirm, Detail: tok1}, true},
		{"TEAM-CONFIRM+0123456789ABCDEFGHJKMNPQRSTVWXYZ", Robot{Kind: KindConfirm, Detail: tok1}, true},
		{"team-confirm+a+b", Robot{Kind: KindConfirm, Detail: "a+b"}, true},
		{"team+tag", Robot{}, false},
		{"team-request+tag", Robot{}, false},
		{"team-join+x", Robot{}, false},
		{"team-admin", Robot{}, false},
		{"team-requests", Robot{}, false},
		{"teams", Robot{}, false},
		{"tea", Robot{}, false},
		{"", Robot{}, false},
		{"other-request", Robot{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseAddress(tt.local, "team")
		if ok != tt.ok || got != tt.want {
			t.Errorf("ParseAddress(%q, team) = %+v, %v; want %+v, %v", tt.local, got, ok, tt.want, tt.ok)
		}
	}
	if r, ok := ParseAddress("x", ""); ok {
		t.Errorf("ParseAddress with an empty list = %+v, true", r)
	}
}

func TestRobots(t *testing.T) {
	want := []string{"team", "team-request", "team-join", "team-leave", "team-owner", "team-bounces", "team-confirm"}
	got := Robots("team")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Robots (-want +got):\n%s", diff)
	}
	// Every reserved local part is one of the list's robots, and no two the
	// same one.
	seen := map[Kind]bool{}
	for _, local := range got {
		r, ok := ParseAddress(local, "team")
		if !ok || seen[r.Kind] {
			t.Errorf("ParseAddress(%q) = %+v, %v", local, r, ok)
		}
		seen[r.Kind] = true
	}
}
