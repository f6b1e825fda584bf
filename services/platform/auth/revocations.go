package auth

import (
	"fmt"

	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"google.golang.org/protobuf/proto"
)

// RevocationSubject is the subject, after the deployment's prefix, on which
// the accounts service publishes the sessions it revokes.
const RevocationSubject = "accounts.session.revoked"

// ApplyRevocation applies a SessionsRevoked event (its payload) to v.
func (v *Verifier) ApplyRevocation(payload []byte) error {
	var ev accountsv1.SessionsRevoked
	if err := proto.Unmarshal(payload, &ev); err != nil {
		return fmt.Errorf("sessions revoked: %w", err)
	}
	until := ev.GetExpireTime().AsTime()
	for _, sid := range ev.GetSessionIds() {
		v.Revoke(sid, until)
	}
	return nil
}
