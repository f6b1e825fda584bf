package mailboxes

import (
	"log/slog"
	"net"
	"sync"
	"time"
)

// ConnLimits bound the connections one of the servers Postfix talks to
// (socketmap, policy, milter) holds, so that a client that opens many and
// sends nothing cannot take them all.
//
// Postfix keeps a connection per process: each smtpd, cleanup and
// trivial-rewrite process has one to the socketmap (closed after ipc_idle,
// 5 s idle by default), each smtpd one to the policy service (closed after
// smtpd_policy_service_max_idle, 300 s) and one to the milter per SMTP
// session. With default_process_limit at 100, one Postfix host needs a few
// hundred at its busiest: hence 256 per client address and 1024 in all.
type ConnLimits struct {
	// Total caps the open connections; PerClient, those of one client IP
	// address. A connection over either is closed at once.
	Total, PerClient int
	// Idle is how long a connection may wait for its next request before
	// it is closed.
	Idle time.Duration
}

// Default connection limits.
const (
	DefaultConnTotal     = 1024
	DefaultConnPerClient = 256
	// Postfix closes its socketmap connections after 5 s idle; the
	// policy and milter connections live as long as an SMTP session,
	// which waits up to smtpd_timeout (300 s) for the client.
	DefaultSocketmapIdle = time.Minute
	DefaultSessionIdle   = 6 * time.Minute
)

// or returns l with idle, and the default caps, where l has zero.
func (l ConnLimits) or(idle time.Duration) ConnLimits {
	if l.Total <= 0 {
		l.Total = DefaultConnTotal
	}
	if l.PerClient <= 0 {
		l.PerClient = DefaultConnPerClient
	}
	if l.Idle <= 0 {
		l.Idle = idle
	}
	return l
}

// connCounter counts a server's open connections, in all and per client.
type connCounter struct {
	limits ConnLimits
	log    *slog.Logger
	name   string

	mu        sync.Mutex
	total     int
	perClient map[string]int
	// warned is when a refusal was last logged: a flood logs once a
	// minute, not once a connection.
	warned time.Time
}

func newConnCounter(name string, limits ConnLimits, log *slog.Logger) *connCounter {
	return &connCounter{name: name, limits: limits, log: log, perClient: map[string]int{}}
}

// acquire counts c and returns its client's key, or reports false (and
// counts nothing) when c is over a cap.
func (cc *connCounter) acquire(c net.Conn) (string, bool) {
	host := c.RemoteAddr().String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.total >= cc.limits.Total || cc.perClient[host] >= cc.limits.PerClient {
		if now := time.Now(); now.Sub(cc.warned) > time.Minute {
			cc.warned = now
			cc.log.Warn(cc.name+": refusing connections over the cap", "client", host, "open", cc.total,
				"openByClient", cc.perClient[host], "total", cc.limits.Total, "perClient", cc.limits.PerClient)
		}
		return "", false
	}
	cc.total++
	cc.perClient[host]++
	return host, true
}

// release uncounts a connection of host.
func (cc *connCounter) release(host string) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.total--
	if cc.perClient[host]--; cc.perClient[host] <= 0 {
		delete(cc.perClient, host)
	}
}
