package access

import "time"

// SetClock makes r read the time from now.
func (r *Roles) SetClock(now func() time.Time) { r.now = now }

// OnJoin makes r call f once each lookup waits for the source's answer.
func (r *Roles) OnJoin(f func()) { r.joined = f }
