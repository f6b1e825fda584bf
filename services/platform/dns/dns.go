// Package dns asks DNS questions of one recursive resolver, with a small
// cache that honours the answers' TTLs. Services that check what customers
// publish in their zones (domain verification, the security diagnostic)
// share it.
package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

// ResolvConf is where the system's resolver is read from when none is set.
const ResolvConf = "/etc/resolv.conf"

// maxCached caps the cache: when full, expired answers are dropped, and if
// that is not enough, all of them.
const maxCached = 10000

// Resolver sends questions to one recursive resolver over UDP (TCP when the
// answer is truncated).
type Resolver struct {
	addr    string
	timeout time.Duration
	// now is the clock the cache reads; tests move it.
	now func() time.Time

	mu    sync.Mutex
	cache map[question]answer
}

type question struct {
	name  string
	qtype uint16
}

type answer struct {
	rrs     []mdns.RR
	expires time.Time
}

// ErrServer is a resolver's failure to answer (timeout, SERVFAIL, REFUSED):
// it says nothing about the name.
var ErrServer = errors.New("dns server failure")

// SystemServer returns the first nameserver of /etc/resolv.conf as
// host:port.
func SystemServer() (string, error) {
	c, err := mdns.ClientConfigFromFile(ResolvConf)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", ResolvConf, err)
	}
	if len(c.Servers) == 0 {
		return "", fmt.Errorf("%s names no nameserver", ResolvConf)
	}
	return net.JoinHostPort(c.Servers[0], c.Port), nil
}

// NewResolver returns a resolver asking addr (host:port, or a host for port
// 53); empty addr: the system's resolver. Each question waits at most
// timeout (5 s when 0).
func NewResolver(addr string, timeout time.Duration) (*Resolver, error) {
	if addr == "" {
		var err error
		if addr, err = SystemServer(); err != nil {
			return nil, err
		}
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "53")
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &Resolver{addr: addr, timeout: timeout, now: time.Now, cache: map[question]answer{}}, nil
}

// Addr is the resolver's address.
func (r *Resolver) Addr() string { return r.addr }

// TXT returns the TXT strings of name, each record's strings joined (RFC
// 7208 3.3). A name that does not exist or has no TXT record has none, and
// no error.
func (r *Resolver) TXT(ctx context.Context, name string) ([]string, error) {
	rrs, err := r.Lookup(ctx, name, mdns.TypeTXT)
	if err != nil {
		return nil, err
	}
	var txts []string
	for _, rr := range rrs {
		if t, ok := rr.(*mdns.TXT); ok {
			txts = append(txts, strings.Join(t.Txt, ""))
		}
	}
	return txts, nil
}

// Lookup returns the records of type qtype answering for name (following
// CNAMEs, as the recursive resolver does). A name that does not exist, or
// has no such record, has none, and no error; a server that fails to answer
// gives an error wrapping ErrServer.
//
// Answers are cached for their smallest TTL; a TTL of 0 is not cached, nor
// is the absence of records, so a record just published is seen at the
// next question the resolver itself does not answer from its cache.
func (r *Resolver) Lookup(ctx context.Context, name string, qtype uint16) ([]mdns.RR, error) {
	q := question{mdns.CanonicalName(name), qtype}
	if rrs, ok := r.cached(q); ok {
		return rrs, nil
	}
	m := new(mdns.Msg)
	m.SetQuestion(q.name, qtype)
	m.SetEdns0(4096, false)
	in, err := r.exchange(ctx, m, "udp")
	if err == nil && in.Truncated {
		in, err = r.exchange(ctx, m, "tcp")
	}
	if err != nil {
		return nil, fmt.Errorf("%w: ask %s for %s %s: %v", ErrServer, r.addr, q.name, mdns.TypeToString[qtype], err)
	}
	switch in.Rcode {
	case mdns.RcodeSuccess:
	case mdns.RcodeNameError:
		return nil, nil
	default:
		return nil, fmt.Errorf("%w: %s answered %s for %s %s", ErrServer, r.addr, mdns.RcodeToString[in.Rcode], q.name, mdns.TypeToString[qtype])
	}
	var rrs []mdns.RR
	ttl := ^uint32(0)
	for _, rr := range in.Answer {
		if rr.Header().Rrtype != qtype {
			continue // the CNAMEs on the way
		}
		ttl = min(ttl, rr.Header().Ttl)
		rrs = append(rrs, rr)
	}
	if len(rrs) > 0 && ttl > 0 {
		r.store(q, rrs, ttl)
	}
	return rrs, nil
}

func (r *Resolver) exchange(ctx context.Context, m *mdns.Msg, network string) (*mdns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	c := &mdns.Client{Net: network, Timeout: r.timeout}
	in, _, err := c.ExchangeContext(ctx, m, r.addr)
	return in, err
}

func (r *Resolver) cached(q question) ([]mdns.RR, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.cache[q]
	if !ok {
		return nil, false
	}
	if !r.now().Before(a.expires) {
		delete(r.cache, q)
		return nil, false
	}
	return a.rrs, true
}

func (r *Resolver) store(q question, rrs []mdns.RR, ttl uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if len(r.cache) >= maxCached {
		for k, a := range r.cache {
			if !now.Before(a.expires) {
				delete(r.cache, k)
			}
		}
		if len(r.cache) >= maxCached {
			clear(r.cache)
		}
	}
	r.cache[q] = answer{rrs: rrs, expires: now.Add(time.Duration(ttl) * time.Second)}
}
