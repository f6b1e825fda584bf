package accounts

import (
	"testing"

	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/errs"
)

func TestCheckRoleChange(t *testing.T) {
	tests := []struct {
		name              string
		actor, target, to access.Role
		owners            int
		want              errs.Kind
		wantOK            bool
	}{
		{"owner promotes member to admin", access.Owner, access.Member, access.Admin, 1, 0, true},
		{"admin promotes member to admin", access.Admin, access.Member, access.Admin, 1, 0, true},
		{"admin demotes admin", access.Admin, access.Admin, access.Member, 1, 0, true},
		{"member cannot change roles", access.Member, access.Member, access.Admin, 1, errs.PermissionDenied, false},
		{"admin cannot make an owner", access.Admin, access.Member, access.Owner, 1, errs.PermissionDenied, false},
		{"admin cannot demote an owner", access.Admin, access.Owner, access.Member, 2, errs.PermissionDenied, false},
		{"owner makes another owner", access.Owner, access.Admin, access.Owner, 1, 0, true},
		{"owner demotes one of two owners", access.Owner, access.Owner, access.Admin, 2, 0, true},
		{"last owner cannot be demoted", access.Owner, access.Owner, access.Admin, 1, errs.FailedPrecondition, false},
		{"owner to owner is a no-op", access.Owner, access.Owner, access.Owner, 1, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkRoleChange(tt.actor, tt.target, tt.to, tt.owners)
			if tt.wantOK {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			if !errs.Is(err, tt.want) {
				t.Fatalf("got %v, want kind %v", err, tt.want)
			}
		})
	}
}

func TestCheckRemoval(t *testing.T) {
	tests := []struct {
		name          string
		actor, target access.Role
		self          bool
		owners        int
		want          errs.Kind
		wantOK        bool
	}{
		{"admin removes member", access.Admin, access.Member, false, 1, 0, true},
		{"member removes member", access.Member, access.Member, false, 1, errs.PermissionDenied, false},
		{"member leaves", access.Member, access.Member, true, 1, 0, true},
		{"admin removes owner", access.Admin, access.Owner, false, 2, errs.PermissionDenied, false},
		{"owner removes one of two owners", access.Owner, access.Owner, false, 2, 0, true},
		{"last owner leaves", access.Owner, access.Owner, true, 1, errs.FailedPrecondition, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkRemoval(tt.actor, tt.target, tt.self, tt.owners)
			if tt.wantOK != (err == nil) || (!tt.wantOK && !errs.Is(err, tt.want)) {
				t.Fatalf("got %v, want ok=%v kind %v", err, tt.wantOK, tt.want)
			}
		})
	}
}
