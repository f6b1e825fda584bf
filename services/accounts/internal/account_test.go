package accounts

import (
	"strings"
	"testing"

	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/passwords"
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

func TestPasswordHash(t *testing.T) {
	h, err := passwords.Hash("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q does not record the OWASP parameters", h)
	}
	for _, tt := range []struct {
		password string
		want     bool
	}{
		{"correct horse battery", true},
		{"correct horse batterY", false},
		{"", false},
	} {
		ok, err := passwords.Check(h, tt.password)
		if err != nil || ok != tt.want {
			t.Errorf("passwords.Check(%q) = %v, %v; want %v", tt.password, ok, err, tt.want)
		}
	}
	if h2, _ := passwords.Hash("correct horse battery"); h2 == h {
		t.Error("two hashes of one password are equal: salt not random")
	}
	if _, err := passwords.Check("$bcrypt$whatever", "x"); err == nil {
		t.Error("malformed hash accepted")
	}
}

// BenchmarkCheckPassword measures the argon2id verification alone.
func BenchmarkCheckPassword(b *testing.B) {
	h, err := passwords.Hash("correct horse battery")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, _ := passwords.Check(h, "correct horse battery"); !ok {
			b.Fatal("mismatch")
		}
	}
}
