package dns

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

// LocalServer is a small DNS server on loopback answering TXT questions
// from records set at run time, over UDP and TCP on one port, and passing
// other questions to an upstream resolver when it has one. `mailplane dev`
// runs one so that its demo domain verifies offline; tests run one to
// publish what a customer would.
type LocalServer struct {
	udp, tcp *mdns.Server

	mu       sync.Mutex
	upstream string
	txt      map[string][]string
	ttl      map[string]uint32
	hits     map[string]int
}

// ListenLocal starts a server on host:port addr ("127.0.0.1:0" picks a
// port) answering on UDP and TCP.
func ListenLocal(addr string) (*LocalServer, error) {
	pc, ln, err := listenPair(addr)
	if err != nil {
		return nil, err
	}
	s := &LocalServer{txt: map[string][]string{}, ttl: map[string]uint32{}, hits: map[string]int{}}
	h := mdns.HandlerFunc(s.answer)
	s.udp = &mdns.Server{PacketConn: pc, Handler: h}
	s.tcp = &mdns.Server{Listener: ln, Handler: h}
	var started sync.WaitGroup
	started.Add(2)
	s.udp.NotifyStartedFunc, s.tcp.NotifyStartedFunc = started.Done, started.Done
	go s.udp.ActivateAndServe() //nolint:errcheck // ends with Close
	go s.tcp.ActivateAndServe() //nolint:errcheck
	started.Wait()
	return s, nil
}

// Forward sends the questions about names the server holds no record of to
// the resolver at addr (host:port), and relays its answers.
func (s *LocalServer) Forward(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.upstream = addr
}

// Addr is the server's host:port, the same for UDP and TCP.
func (s *LocalServer) Addr() string { return s.udp.PacketConn.LocalAddr().String() }

// SetTXT publishes name's TXT records (none: name no longer exists) with
// ttl.
func (s *LocalServer) SetTXT(name string, ttl uint32, values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name = mdns.CanonicalName(name)
	s.txt[name], s.ttl[name] = values, ttl
	if len(values) == 0 {
		delete(s.txt, name)
	}
}

// Questions reports how many questions about name the server answered.
func (s *LocalServer) Questions(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[mdns.CanonicalName(name)]
}

// Close stops the server.
func (s *LocalServer) Close() error {
	return errors.Join(s.udp.Shutdown(), s.tcp.Shutdown())
}

func (s *LocalServer) answer(w mdns.ResponseWriter, req *mdns.Msg) {
	m := new(mdns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) == 1 {
		q := req.Question[0]
		name := mdns.CanonicalName(q.Name)
		s.mu.Lock()
		s.hits[name]++
		values, ok := s.txt[name]
		ttl, upstream := s.ttl[name], s.upstream
		s.mu.Unlock()
		switch {
		case !ok && upstream != "":
			forward(w, req, upstream)
			return
		case !ok:
			m.Rcode = mdns.RcodeNameError
		case q.Qtype == mdns.TypeTXT:
			for _, v := range values {
				m.Answer = append(m.Answer, &mdns.TXT{
					Hdr: mdns.RR_Header{Name: q.Name, Rrtype: mdns.TypeTXT, Class: mdns.ClassINET, Ttl: ttl},
					Txt: splitTXT(v),
				})
			}
		}
	}
	w.WriteMsg(m) //nolint:errcheck // the client asks again
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

// splitTXT cuts v into the 255-byte strings a TXT record holds.
func splitTXT(v string) []string {
	var out []string
	for len(v) > 255 {
		out = append(out, v[:255])
		v = v[255:]
	}
	return append(out, v)
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
