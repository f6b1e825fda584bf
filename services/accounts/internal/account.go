// Package accounts implements the accounts service: users, organizations,
// roles and sessions.
package accounts

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/passwords"
)

// User is a person who signs in.
type User struct {
	ID           uuid.UUID
	Email        string
	DisplayName  string
	PasswordHash string
	CreateTime   time.Time
	Language     string
	PhoneNumber  string
	LoginPending bool
}

// Organization is a customer.
type Organization struct {
	ID          uuid.UUID
	DisplayName string
	CreateTime  time.Time
	UpdateTime  time.Time
	LegalName   string
	Address     string
}

// Membership is a user's role in an organization.
type Membership struct {
	OrganizationID uuid.UUID
	UserID         uuid.UUID
	Email          string
	DisplayName    string
	Role           access.Role
	CreateTime     time.Time
}

// normalizeEmail lower-cases an email so that one mailbox is one account.
func normalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// checkRoleChange applies the role rules to actor changing target's role to
// to, given the organization's number of owners.
func checkRoleChange(actor, target, to access.Role, owners int) error {
	if !actor.CanManage() {
		return errs.E(errs.PermissionDenied, "only owners and admins can change roles")
	}
	if (target == access.Owner || to == access.Owner) && actor != access.Owner {
		return errs.E(errs.PermissionDenied, "only an owner can make or unmake an owner")
	}
	if target == access.Owner && to != access.Owner && owners <= 1 {
		return errs.E(errs.FailedPrecondition, "the last owner cannot be demoted; make another member owner first").WithReason("LAST_OWNER")
	}
	return nil
}

// checkRemoval applies the rules to actor removing target from an
// organization. Anyone may leave, but the last owner cannot.
func checkRemoval(actor, target access.Role, self bool, owners int) error {
	if !self {
		if !actor.CanManage() {
			return errs.E(errs.PermissionDenied, "only owners and admins can remove members")
		}
		if target == access.Owner && actor != access.Owner {
			return errs.E(errs.PermissionDenied, "only an owner can remove an owner")
		}
	}
	if target == access.Owner && owners <= 1 {
		return errs.E(errs.FailedPrecondition, "the last owner cannot be removed; make another member owner first").WithReason("LAST_OWNER")
	}
	return nil
}

// dummyHash is checked against when the email is unknown, so that an unknown
// email takes as long to refuse as a wrong password.
var dummyHash = sync.OnceValue(func() string {
	h, err := passwords.Hash("mailplane-dummy-password")
	if err != nil {
		panic(err)
	}
	return h
})

// newRefreshToken returns a random opaque token and the hash to store.
func newRefreshToken() (string, []byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("refresh token: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	return tok, hashRefreshToken(tok), nil
}

func hashRefreshToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}
