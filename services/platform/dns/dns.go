// Package dns asks DNS questions of one recursive resolver, with a small
// cache that honours the answers' TTLs, asks authoritative servers directly
// (to follow a change's propagation), and changes zones by RFC 2136 updates
// signed with TSIG. Services that check what customers publish in their
// zones (domain verification, the security diagnostic) share it; LocalServer
// plays those zones in tests and `mailplane dev`.
package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
	"golang.org/x/sync/singleflight"
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
	// authPort is the port of the authoritative servers Authoritatives
	// returns.
	authPort string
	// now is the clock the cache reads; tests move it.
	now func() time.Time
	// waiting, when set, is called when a Lookup waits for an exchange
	// (its own or one another Lookup started); tests count them.
	waiting func(question)

	// flights shares one exchange among concurrent identical questions.
	flights singleflight.Group

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
	return &Resolver{addr: addr, timeout: timeout, authPort: "53", now: time.Now, cache: map[question]answer{}}, nil
}

// SetAuthoritativePort sets the port of the addresses Authoritatives
// returns (53 unless set): tests and `mailplane dev` serve zones on loopback
// on another port. Set it before the resolver is used.
func (r *Resolver) SetAuthoritativePort(port string) { r.authPort = port }

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
			txts = append(txts, TXTValue(t))
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
// Concurrent identical questions share one exchange; one caller giving up
// (its ctx done) does not end it for the others. The records returned are
// shared: callers must not change them.
func (r *Resolver) Lookup(ctx context.Context, name string, qtype uint16) ([]mdns.RR, error) {
	q := question{mdns.CanonicalName(name), qtype}
	if rrs, ok := r.cached(q); ok {
		return rrs, nil
	}
	key := q.name + " " + mdns.Type(qtype).String()
	ch := r.flights.DoChan(key, func() (any, error) {
		return r.lookup(context.WithoutCancel(ctx), q)
	})
	if r.waiting != nil {
		r.waiting(q)
	}
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.([]mdns.RR), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: ask %s for %s %s: %w", ErrServer, r.addr, q.name, mdns.TypeToString[qtype], ctx.Err())
	}
}

// lookup asks the resolver q and caches the answer.
func (r *Resolver) lookup(ctx context.Context, q question) ([]mdns.RR, error) {
	m := new(mdns.Msg)
	m.SetQuestion(q.name, q.qtype)
	m.SetEdns0(4096, false)
	in, err := r.exchange(ctx, m, r.addr)
	if err != nil {
		return nil, err
	}
	switch in.Rcode {
	case mdns.RcodeSuccess:
	case mdns.RcodeNameError:
		return nil, nil
	default:
		return nil, fmt.Errorf("%w: %s answered %s for %s %s", ErrServer, r.addr, mdns.RcodeToString[in.Rcode], q.name, mdns.TypeToString[q.qtype])
	}
	rrs := ofType(in.Answer, q.qtype) // not the CNAMEs on the way
	ttl := ^uint32(0)
	for _, rr := range rrs {
		ttl = min(ttl, rr.Header().Ttl)
	}
	if len(rrs) > 0 && ttl > 0 {
		r.store(q, rrs, ttl)
	}
	return rrs, nil
}

// Signed reports whether zone is DNSSEC-signed: whether it publishes DNSKEY
// records. It does not say whether the zone validates (whether its parent
// holds a matching DS, its signatures are right and current): Secure asks a
// validating resolver that. Not cached.
func (r *Resolver) Signed(ctx context.Context, zone string) (bool, error) {
	keys, _, err := r.dnskey(ctx, zone)
	return keys, err
}

// Secure reports whether zone is signed and validates: it publishes DNSKEY
// records and the resolver vouches for them with the AD bit (RFC 4035 3.2.3,
// RFC 6840 5.7). Only a validating resolver sets AD, reached over a path
// trusted not to forge it (loopback); another one, and LocalServer, never
// does: Secure is then false for every zone. Not cached.
func (r *Resolver) Secure(ctx context.Context, zone string) (bool, error) {
	keys, ad, err := r.dnskey(ctx, zone)
	return keys && ad, err
}

// dnskey asks the resolver zone's DNSKEY records, with the DO bit (so that a
// validating resolver validates) and the AD bit (so that it says so).
func (r *Resolver) dnskey(ctx context.Context, zone string) (keys, ad bool, err error) {
	zone = mdns.CanonicalName(zone)
	m := new(mdns.Msg)
	m.SetQuestion(zone, mdns.TypeDNSKEY)
	m.AuthenticatedData = true
	m.SetEdns0(4096, true)
	in, err := r.exchange(ctx, m, r.addr)
	if err != nil {
		return false, false, err
	}
	switch in.Rcode {
	case mdns.RcodeSuccess, mdns.RcodeNameError:
	default:
		return false, false, fmt.Errorf("%w: %s answered %s for %s DNSKEY", ErrServer, r.addr, mdns.RcodeToString[in.Rcode], zone)
	}
	for _, rr := range ofType(in.Answer, mdns.TypeDNSKEY) {
		if mdns.CanonicalName(rr.Header().Name) == zone { // not a CNAME's target
			return true, in.AuthenticatedData, nil
		}
	}
	return false, false, nil
}

// Ask asks server (host:port, or a host for port 53), an authoritative
// server of name's zone, for name's records of type qtype, without
// recursion and without the cache: what that server publishes now, to follow
// a change as it reaches each of a zone's servers. No records (the name does
// not exist, or has none of the type) is no error; a server that fails, or
// that answers without authority (it does not serve the zone), gives an
// error wrapping ErrServer.
func (r *Resolver) Ask(ctx context.Context, server, name string, qtype uint16) ([]mdns.RR, error) {
	if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(server, "53")
	}
	name = mdns.CanonicalName(name)
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	m.SetEdns0(4096, false)
	in, err := r.exchange(ctx, m, server)
	if err != nil {
		return nil, err
	}
	if in.Rcode != mdns.RcodeSuccess && in.Rcode != mdns.RcodeNameError {
		return nil, fmt.Errorf("%w: %s answered %s for %s %s", ErrServer, server, mdns.RcodeToString[in.Rcode], name, mdns.TypeToString[qtype])
	}
	if !in.Authoritative {
		return nil, fmt.Errorf("%w: %s is not authoritative for %s (its answer lacks the AA bit)", ErrServer, server, name)
	}
	if in.Rcode == mdns.RcodeNameError {
		return nil, nil
	}
	return ofType(in.Answer, qtype), nil
}

// Authoritatives returns the addresses (host:port) of zone's authoritative
// servers: its NS records' names resolved, IPv4 and IPv6, sorted. A zone
// without NS records (a name that is not a zone's apex) has none, and no
// error; a zone whose NS names all lack addresses is an error. NS names with
// no address among others that have one are left out.
func (r *Resolver) Authoritatives(ctx context.Context, zone string) ([]string, error) {
	zone = mdns.CanonicalName(zone)
	nss, err := r.Lookup(ctx, zone, mdns.TypeNS)
	if err != nil {
		return nil, fmt.Errorf("authoritative servers of %s: %w", zone, err)
	}
	var addrs, names []string
	for _, rr := range nss {
		ns, ok := rr.(*mdns.NS)
		if !ok {
			continue
		}
		names = append(names, ns.Ns)
		for _, t := range []uint16{mdns.TypeA, mdns.TypeAAAA} {
			rrs, err := r.Lookup(ctx, ns.Ns, t)
			if err != nil {
				return nil, fmt.Errorf("authoritative servers of %s: %w", zone, err)
			}
			for _, rr := range rrs {
				switch a := rr.(type) {
				case *mdns.A:
					addrs = append(addrs, net.JoinHostPort(a.A.String(), r.authPort))
				case *mdns.AAAA:
					addrs = append(addrs, net.JoinHostPort(a.AAAA.String(), r.authPort))
				}
			}
		}
	}
	if len(names) > 0 && len(addrs) == 0 {
		return nil, fmt.Errorf("authoritative servers of %s: no address for %s", zone, strings.Join(names, ", "))
	}
	slices.Sort(addrs)
	return slices.Compact(addrs), nil
}

// ofType returns the records of rrs of type t.
func ofType(rrs []mdns.RR, t uint16) []mdns.RR {
	var out []mdns.RR
	for _, rr := range rrs {
		if rr.Header().Rrtype == t {
			out = append(out, rr)
		}
	}
	return out
}

// exchange sends m to server over UDP, and again over TCP when the answer
// is truncated. Its errors wrap ErrServer.
func (r *Resolver) exchange(ctx context.Context, m *mdns.Msg, server string) (*mdns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	q := m.Question[0]
	in, _, err := (&mdns.Client{Net: "udp", Timeout: r.timeout}).ExchangeContext(ctx, m, server)
	if err == nil && in.Truncated {
		in, _, err = (&mdns.Client{Net: "tcp", Timeout: r.timeout}).ExchangeContext(ctx, m, server)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: ask %s for %s %s: %v", ErrServer, server, q.Name, mdns.TypeToString[q.Qtype], err)
	}
	return in, nil
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
