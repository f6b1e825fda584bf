package dns

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

// LocalServer is a small authoritative DNS server on loopback, over UDP and
// TCP on one port. It serves the zones loaded with SetZone and the records
// set at run time (SetRecords, SetTXT), accepts RFC 2136 updates signed with
// the TSIG key given to AllowUpdates, and passes the questions about names
// it holds nothing of to an upstream resolver when it has one. `mailplane
// dev` runs one as the demo customer's zone so that domain verification and
// the security diagnostic work offline; tests run one to publish what a
// customer would, or to play a server that fails.
//
// It is not a general-purpose server: no delegations (NS records below an
// apex are served as data, not referrals), no DNSSEC signing (DNSKEY and DS
// records are served as data), no zone transfers.
type LocalServer struct {
	udp, tcp *mdns.Server
	closed   chan struct{}
	close    sync.Once

	mu       sync.Mutex
	upstream string
	zones    map[string]*zone // by origin
	loose    *zone            // records outside every zone
	hits     map[string]int
	held     map[string]chan struct{}
	fail     map[string]int
	key      *tsigKey // of updates; nil: none accepted
}

// ListenLocal starts a server on host:port addr ("127.0.0.1:0" picks a
// port) answering on UDP and TCP.
func ListenLocal(addr string) (*LocalServer, error) {
	pc, ln, err := listenPair(addr)
	if err != nil {
		return nil, err
	}
	s := &LocalServer{
		closed: make(chan struct{}),
		zones:  map[string]*zone{},
		loose:  newZone(""),
		hits:   map[string]int{},
		held:   map[string]chan struct{}{},
		fail:   map[string]int{},
	}
	h := mdns.HandlerFunc(s.serve)
	keys := serverKeys{s}
	s.udp = &mdns.Server{PacketConn: pc, Handler: h, MsgAcceptFunc: accept, TsigProvider: keys}
	s.tcp = &mdns.Server{Listener: ln, Handler: h, MsgAcceptFunc: accept, TsigProvider: keys}
	var started sync.WaitGroup
	started.Add(2)
	s.udp.NotifyStartedFunc, s.tcp.NotifyStartedFunc = started.Done, started.Done
	go s.udp.ActivateAndServe() //nolint:errcheck // ends with Close
	go s.tcp.ActivateAndServe() //nolint:errcheck
	started.Wait()
	return s, nil
}

// accept is miekg/dns's default filter of requests, letting updates through
// too (their sections hold any number of records).
func accept(dh mdns.Header) mdns.MsgAcceptAction {
	const qr, opcodeShift = 1 << 15, 11
	if dh.Bits&qr != 0 {
		return mdns.MsgIgnore
	}
	if int(dh.Bits>>opcodeShift)&0xF == mdns.OpcodeUpdate {
		if dh.Qdcount != 1 {
			return mdns.MsgReject
		}
		return mdns.MsgAccept
	}
	return mdns.DefaultMsgAcceptFunc(dh)
}

// Forward sends the questions about names the server holds nothing of (in
// no zone it serves, and set by no SetTXT or SetRecords) to the resolver at
// addr (host:port), and relays its answers.
func (s *LocalServer) Forward(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.upstream = addr
}

// Addr is the server's host:port, the same for UDP and TCP.
func (s *LocalServer) Addr() string { return s.udp.PacketConn.LocalAddr().String() }

// SetZone loads zone-file text (RFC 1035 5, with $ORIGIN and $TTL; names
// are absolute unless an $ORIGIN precedes them). Each SOA record in it starts
// a zone at its owner name, every other record must be below one of them, and
// each zone replaces the one the server served at that origin, if any. Other
// zones are kept.
func (s *LocalServer) SetZone(text string) error {
	zones, err := parseZones(text)
	if err != nil {
		return fmt.Errorf("load zone: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for origin, z := range zones {
		s.zones[origin] = z
	}
	return nil
}

// SetRecords replaces name's records of type qtype with rrs (none: deletes
// them). The records are copied with name as their owner; each must be of
// type qtype. A name in a zone the server serves changes that zone, and bumps
// its SOA serial; another one is served as it is, with no SOA. A SOA record
// can only replace a zone's own, at its origin: SetZone makes zones.
func (s *LocalServer) SetRecords(name string, qtype uint16, rrs ...mdns.RR) error {
	name = mdns.CanonicalName(name)
	if _, ok := mdns.IsDomainName(name); !ok {
		return fmt.Errorf("set records: bad name %q", name)
	}
	set := make([]mdns.RR, 0, len(rrs))
	for _, rr := range rrs {
		if t := rr.Header().Rrtype; t != qtype {
			return fmt.Errorf("set %s %s records: a %s record is among them", name, mdns.TypeToString[qtype], mdns.TypeToString[t])
		}
		rr = mdns.Copy(rr)
		rr.Header().Name, rr.Header().Class = name, mdns.ClassINET
		set = append(set, rr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.put(name, qtype, set)
}

// put replaces name's records of type qtype with rrs. s.mu is held.
func (s *LocalServer) put(name string, qtype uint16, rrs []mdns.RR) error {
	z := s.zoneFor(name)
	if qtype == mdns.TypeSOA && (name != z.origin || len(rrs) != 1) {
		return fmt.Errorf("set %s SOA: a zone has one SOA record, at its origin (SetZone makes zones)", name)
	}
	z.set(name, qtype, rrs)
	if qtype != mdns.TypeSOA {
		z.bump()
	}
	return nil
}

// SetTXT publishes name's TXT records (none: deletes them) with ttl, each
// value cut into strings of 255 bytes.
func (s *LocalServer) SetTXT(name string, ttl uint32, values ...string) {
	name = mdns.CanonicalName(name)
	rrs := make([]mdns.RR, len(values))
	for i, v := range values {
		rrs[i] = &mdns.TXT{Hdr: mdns.RR_Header{Name: name, Rrtype: mdns.TypeTXT, Class: mdns.ClassINET, Ttl: ttl}, Txt: TXTStrings(v)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.put(name, mdns.TypeTXT, rrs) //nolint:errcheck // only SOA records fail
}

// Records returns name's records of type qtype as the server holds them
// (none: nil).
func (s *LocalServer) Records(name string, qtype uint16) []mdns.RR {
	name = mdns.CanonicalName(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []mdns.RR
	for _, rr := range s.zoneFor(name).names[name][qtype] {
		out = append(out, mdns.Copy(rr))
	}
	return out
}

// Serial returns the SOA serial of the zone at origin, and false when the
// server serves no such zone.
func (s *LocalServer) Serial(origin string) (uint32, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	z := s.zones[mdns.CanonicalName(origin)]
	if z == nil {
		return 0, false
	}
	return z.soa().Serial, true
}

// Questions reports how many questions about name the server received.
func (s *LocalServer) Questions(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[mdns.CanonicalName(name)]
}

// Hold keeps the questions about name (this exact name) unanswered until
// release is called; then they, and the next ones, are answered.
func (s *LocalServer) Hold(name string) (release func()) {
	name = mdns.CanonicalName(name)
	gate := make(chan struct{})
	s.mu.Lock()
	s.held[name] = gate
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			if s.held[name] == gate {
				delete(s.held, name)
			}
			s.mu.Unlock()
			close(gate)
		})
	}
}

// Drop makes the server never answer questions about name, as a server that
// is down or a firewall that drops packets: a resolver asking it times out.
func (s *LocalServer) Drop(name string) { s.Hold(name) }

// Fail makes the server answer every question about name with rcode
// (mdns.RcodeServerFailure, mdns.RcodeRefused...); RcodeSuccess undoes it.
func (s *LocalServer) Fail(name string, rcode int) {
	name = mdns.CanonicalName(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if rcode == mdns.RcodeSuccess {
		delete(s.fail, name)
		return
	}
	s.fail[name] = rcode
}

// Close stops the server. Questions held are never answered.
func (s *LocalServer) Close() error {
	s.close.Do(func() { close(s.closed) })
	return errors.Join(s.udp.Shutdown(), s.tcp.Shutdown())
}

// zoneFor returns the zone name belongs to, or the records outside every
// zone. s.mu is held.
func (s *LocalServer) zoneFor(name string) *zone {
	if z := closest(s.zones, name); z != nil {
		return z
	}
	return s.loose
}

func (s *LocalServer) serve(w mdns.ResponseWriter, req *mdns.Msg) {
	if req.Opcode == mdns.OpcodeUpdate {
		s.update(w, req)
		return
	}
	m := new(mdns.Msg)
	if req.Opcode != mdns.OpcodeQuery || len(req.Question) != 1 {
		m.SetRcode(req, mdns.RcodeNotImplemented)
		w.WriteMsg(m) //nolint:errcheck // the client asks again
		return
	}
	name := mdns.CanonicalName(req.Question[0].Name)
	s.mu.Lock()
	s.hits[name]++
	gate := s.held[name]
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-s.closed:
			return
		}
	}
	s.mu.Lock()
	upstream := s.upstream
	m, ok := s.answer(req)
	s.mu.Unlock()
	if !ok && upstream != "" {
		forward(w, req, upstream)
		return
	}
	w.WriteMsg(m) //nolint:errcheck // the client asks again
}

// maxChain bounds the CNAME chain an answer follows within the server.
const maxChain = 8

// answer answers req's question from the server's records, following CNAMEs
// to names it holds. It reports false when the name is none it holds
// anything of (for forwarding). s.mu is held.
func (s *LocalServer) answer(req *mdns.Msg) (*mdns.Msg, bool) {
	m := new(mdns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	q := req.Question[0]
	name := mdns.CanonicalName(q.Name)
	if rcode, ok := s.fail[name]; ok {
		m.Rcode, m.Authoritative = rcode, false
		return m, true
	}
	if q.Qclass != mdns.ClassINET && q.Qclass != mdns.ClassANY {
		m.Rcode = mdns.RcodeRefused
		return m, true
	}
	z := s.zoneFor(name)
	if z == s.loose && !z.exists(name) {
		m.Rcode = mdns.RcodeNameError
		return m, false
	}
	owner := q.Name // answers keep the case of the question (0x20)
	for range maxChain {
		node := z.node(name)
		if node == nil {
			if !z.exists(name) {
				m.Rcode = mdns.RcodeNameError
			}
			break
		}
		if rrs := records(node, q.Qtype); len(rrs) > 0 {
			m.Answer = append(m.Answer, withOwner(rrs, owner)...)
			return m, true
		}
		cname := node[mdns.TypeCNAME]
		if len(cname) == 0 {
			break // NODATA
		}
		m.Answer = append(m.Answer, withOwner(cname, owner)...)
		name = mdns.CanonicalName(cname[0].(*mdns.CNAME).Target)
		owner = name
		if z = s.zoneFor(name); z == s.loose && !z.exists(name) {
			return m, true // outside what the server holds: the resolver follows it
		}
	}
	if soa := z.negative(); soa != nil {
		m.Ns = append(m.Ns, soa)
	}
	return m, true
}

// records are node's records answering a question of type t.
func records(node map[uint16][]mdns.RR, t uint16) []mdns.RR {
	if t != mdns.TypeANY {
		return node[t]
	}
	var all []mdns.RR
	for _, rrs := range node {
		all = append(all, rrs...)
	}
	return all
}

func withOwner(rrs []mdns.RR, owner string) []mdns.RR {
	out := make([]mdns.RR, len(rrs))
	for i, rr := range rrs {
		out[i] = mdns.Copy(rr)
		out[i].Header().Name = owner
	}
	return out
}

// forward asks upstream req and relays its answer.
func forward(w mdns.ResponseWriter, req *mdns.Msg, upstream string) {
	network := "udp"
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		network = "tcp"
	}
	c := &mdns.Client{Net: network, Timeout: 5 * time.Second}
	in, _, err := c.Exchange(req, upstream)
	if err != nil {
		m := new(mdns.Msg)
		m.SetRcode(req, mdns.RcodeServerFailure)
		w.WriteMsg(m) //nolint:errcheck
		return
	}
	w.WriteMsg(in) //nolint:errcheck
}

// listenPair binds one port for UDP and TCP. When the port is the kernel's
// choice (":0"), the UDP port it picked may be taken for TCP by another
// process: pick again, a few times.
func listenPair(addr string) (net.PacketConn, net.Listener, error) {
	_, port, _ := net.SplitHostPort(addr)
	for try := 0; ; try++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dns server on udp %s: %w", addr, err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if port != "0" || try == 10 {
			return nil, nil, fmt.Errorf("dns server on tcp %s: %w", pc.LocalAddr(), err)
		}
	}
}
