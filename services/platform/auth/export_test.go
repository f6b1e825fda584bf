package auth

import "time"

// SetClock makes v read the time from now when it forgets revocations.
func SetClock(v *Verifier, now func() time.Time) { v.now = now }
