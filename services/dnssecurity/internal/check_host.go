package dnssecurity

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"time"

	dnssecurityv1 "github.com/mailplane/mailplane/proto/mailplane/dnssecurity/v1"
	"github.com/mailplane/mailplane/services/dnssecurity/internal/spf"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/errs"
	"golang.org/x/net/idna"
)

// Calls per caller of what costs DNS questions or writes (test a sender,
// a diagnostic, a change): up to a few dozen questions about any domain
// each, so a caller gets checkBurst at once and checkRate per minute after
// that.
const (
	checkBurst = 20
	checkRate  = 60
)

// CheckHost runs check_host() for any domain.
func (s *Server) CheckHost(ctx context.Context, req *dnssecurityv1.CheckHostRequest) (*dnssecurityv1.CheckHostResponse, error) {
	c, err := access.CallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	ip, err := netip.ParseAddr(strings.TrimSpace(req.GetIp()))
	if err != nil || ip.Zone() != "" {
		return nil, errs.Field("ip", "want an IPv4 or IPv6 address, like 192.0.2.1 or 2001:db8::1")
	}
	sender, domain, err := checkedSender(req.GetMailFrom(), req.GetHelo())
	if err != nil {
		return nil, err
	}
	if err := s.checks.allow(c, "sender checks"); err != nil {
		return nil, err
	}
	r := spf.CheckHost(ctx, s.dns, ip, domain, sender, spf.Options{HELO: req.GetHelo()})
	return &dnssecurityv1.CheckHostResponse{
		Result:        spfResultProto(r.Code),
		Domain:        domain,
		MatchedTerm:   r.Matched.Term,
		MatchedDomain: r.Matched.Domain,
		Explanation:   r.Explanation,
		Problem:       r.Problem,
	}, nil
}

// checkedSender returns the sender and the domain to check: the MAIL FROM's
// domain, or the HELO name for the null sender (RFC 7208 2.4). A MAIL FROM
// without a local part is postmaster's (4.3).
func checkedSender(mailFrom, helo string) (sender, domain string, err error) {
	mailFrom, helo = strings.TrimSpace(mailFrom), strings.TrimSuffix(strings.TrimSpace(helo), ".")
	if a, err := idna.Lookup.ToASCII(helo); err == nil {
		helo = a
	}
	if helo != "" {
		if !anyDomain(helo) {
			return "", "", errs.Field("helo", "want a host name, like mail.example.com")
		}
	}
	if mailFrom == "" {
		if helo == "" {
			return "", "", errs.Field("helo", "required when mail_from is empty")
		}
		return "postmaster@" + helo, helo, nil
	}
	local, d, ok := strings.Cut(mailFrom, "@")
	if !ok {
		local, d = "", mailFrom
	}
	d = strings.TrimSuffix(d, ".")
	if a, err := idna.Lookup.ToASCII(d); err == nil {
		d = a
	}
	if !anyDomain(d) {
		return "", "", errs.Field("mail_from", "want an address like user@example.com")
	}
	if local == "" {
		local = "postmaster"
	}
	if strings.ContainsAny(local, " \t\r\n\x00") {
		return "", "", errs.Field("mail_from", "the local part must not hold spaces or control characters")
	}
	return local + "@" + d, d, nil
}

// anyDomain reports whether d is a domain SPF can be asked about: any DNS
// name of at least two labels of letters, digits, hyphens and underscores
// (as _spf.example.com), Unicode names in their ASCII form.
func anyDomain(d string) bool {
	if len(d) > 253 || !strings.Contains(d, ".") {
		return false
	}
	for _, l := range strings.Split(d, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func spfResultProto(c spf.Code) dnssecurityv1.SpfResult {
	switch c {
	case spf.None:
		return dnssecurityv1.SpfResult_SPF_RESULT_NONE
	case spf.Neutral:
		return dnssecurityv1.SpfResult_SPF_RESULT_NEUTRAL
	case spf.Pass:
		return dnssecurityv1.SpfResult_SPF_RESULT_PASS
	case spf.Fail:
		return dnssecurityv1.SpfResult_SPF_RESULT_FAIL
	case spf.SoftFail:
		return dnssecurityv1.SpfResult_SPF_RESULT_SOFTFAIL
	case spf.TempError:
		return dnssecurityv1.SpfResult_SPF_RESULT_TEMPERROR
	case spf.PermError:
		return dnssecurityv1.SpfResult_SPF_RESULT_PERMERROR
	}
	return dnssecurityv1.SpfResult_SPF_RESULT_UNSPECIFIED
}

// buckets is a token bucket per caller, in memory: a replica's share of a
// flood is refused without a database round trip.
type buckets struct {
	mu    sync.Mutex
	byKey map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxBuckets bounds the callers remembered; full buckets are forgotten
// first, as they hold nothing a new bucket would not.
const maxBuckets = 100000

// allow spends a token of c's bucket, or says when to try again.
func (b *buckets) allow(c access.Caller, what string) error {
	wait := b.take(c.Name(), time.Now())
	if wait <= 0 {
		return nil
	}
	e := errs.E(errs.ResourceExhausted, "too many %s; try again in %s", what, wait.Round(time.Second))
	e.RetryAfter = wait
	return e
}

// take spends a token of key's bucket and returns 0, or how long until one
// is there.
func (b *buckets) take(key string, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.byKey == nil {
		b.byKey = map[string]*bucket{}
	}
	k, ok := b.byKey[key]
	if !ok {
		if len(b.byKey) >= maxBuckets {
			for key, k := range b.byKey {
				if refill(k, now) >= checkBurst {
					delete(b.byKey, key)
				}
			}
		}
		k = &bucket{tokens: checkBurst, at: now}
		b.byKey[key] = k
	}
	k.tokens, k.at = refill(k, now), now
	if k.tokens < 1 {
		return time.Duration((1 - k.tokens) / checkRate * float64(time.Minute))
	}
	k.tokens--
	return 0
}

func refill(k *bucket, now time.Time) float64 {
	return min(checkBurst, k.tokens+now.Sub(k.at).Minutes()*checkRate)
}
