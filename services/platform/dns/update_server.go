package dns

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"time"

	mdns "github.com/miekg/dns"
)

// tsigKey is the key a LocalServer accepts updates signed with.
type tsigKey struct {
	name, algorithm string
	secret          []byte
}

// AllowUpdates makes the server accept RFC 2136 updates to its zones signed
// with the TSIG key keyName (algorithm as Updater.Algorithm; secret
// base64-encoded), and only those: an unsigned update, or one signed with
// another key, is refused with NOTAUTH. Updates may hold prerequisites
// (RFC 2136 2.4); each applied update bumps the zone's SOA serial.
func (s *LocalServer) AllowUpdates(keyName, algorithm, secret string) error {
	alg, err := tsigAlgorithm(algorithm)
	if err != nil {
		return fmt.Errorf("allow updates: %w", err)
	}
	raw, err := base64.StdEncoding.DecodeString(secret)
	if err != nil || len(raw) == 0 {
		return errors.New("allow updates: the TSIG secret is not base64")
	}
	if _, ok := mdns.IsDomainName(keyName); !ok || keyName == "" {
		return fmt.Errorf("allow updates: bad TSIG key name %q", keyName)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.key = &tsigKey{name: mdns.CanonicalName(keyName), algorithm: alg, secret: raw}
	return nil
}

// serverKeys gives miekg/dns the server's TSIG key, which AllowUpdates may
// set while the server runs.
type serverKeys struct{ s *LocalServer }

// Generate signs msg with the server's key; the errors are miekg/dns's, which
// the server reports as TSIG errors (ErrSecret: BADKEY, ErrSig: BADSIG).
func (k serverKeys) Generate(msg []byte, t *mdns.TSIG) ([]byte, error) {
	k.s.mu.Lock()
	key := k.s.key
	k.s.mu.Unlock()
	if key == nil || mdns.CanonicalName(t.Hdr.Name) != key.name || mdns.CanonicalName(t.Algorithm) != key.algorithm {
		return nil, mdns.ErrSecret // RFC 8945 5.2.1: an unknown key, or algorithm, is BADKEY
	}
	var h func() hash.Hash
	switch key.algorithm {
	case mdns.HmacSHA1:
		h = sha1.New
	case mdns.HmacSHA224:
		h = sha256.New224
	case mdns.HmacSHA256:
		h = sha256.New
	case mdns.HmacSHA384:
		h = sha512.New384
	case mdns.HmacSHA512:
		h = sha512.New
	}
	mac := hmac.New(h, key.secret)
	mac.Write(msg)
	return mac.Sum(nil), nil
}

// Verify checks t's MAC of msg.
func (k serverKeys) Verify(msg []byte, t *mdns.TSIG) error {
	want, err := k.Generate(msg, t)
	if err != nil {
		return err
	}
	got, err := hex.DecodeString(t.MAC)
	if err != nil || !hmac.Equal(got, want) {
		return mdns.ErrSig
	}
	return nil
}

// update answers an RFC 2136 update: applied when signed with the key given
// to AllowUpdates, refused otherwise.
func (s *LocalServer) update(w mdns.ResponseWriter, req *mdns.Msg) {
	m := new(mdns.Msg)
	m.SetReply(req)
	s.mu.Lock()
	key := s.key
	s.mu.Unlock()
	t := req.IsTsig()
	switch {
	case key == nil:
		m.Rcode = mdns.RcodeRefused
	case t == nil:
		m.Rcode = mdns.RcodeNotAuth
	case w.TsigStatus() != nil:
		// RFC 8945 5.3.2: NOTAUTH, and the TSIG error in the answer's TSIG
		// record, unsigned for BADKEY and BADSIG.
		m.Rcode = mdns.RcodeNotAuth
		m.SetTsig(t.Hdr.Name, t.Algorithm, t.Fudge, time.Now().Unix())
		switch err := w.TsigStatus(); {
		case errors.Is(err, mdns.ErrSecret):
			m.IsTsig().Error = mdns.RcodeBadKey
		case errors.Is(err, mdns.ErrTime):
			m.IsTsig().Error = mdns.RcodeBadTime
		default:
			m.IsTsig().Error = mdns.RcodeBadSig
		}
	default:
		s.mu.Lock()
		m.Rcode = s.apply(req)
		s.mu.Unlock()
		m.SetTsig(key.name, key.algorithm, 300, time.Now().Unix())
	}
	w.WriteMsg(m) //nolint:errcheck // the client sends it again
}

// apply checks req's prerequisites and applies its updates (RFC 2136 3.2
// to 3.4) to the zone it names, all or none, and returns the rcode. s.mu
// is held.
func (s *LocalServer) apply(req *mdns.Msg) int {
	zq := req.Question[0]
	if zq.Qtype != mdns.TypeSOA || zq.Qclass != mdns.ClassINET {
		return mdns.RcodeFormatError
	}
	z := s.zones[mdns.CanonicalName(zq.Name)]
	if z == nil {
		return mdns.RcodeNotAuth
	}
	if rcode := prerequisites(z, req.Answer); rcode != mdns.RcodeSuccess {
		return rcode
	}
	updates := make([]mdns.RR, len(req.Ns))
	for i, rr := range req.Ns {
		if rcode := prescan(z, rr); rcode != mdns.RcodeSuccess {
			return rcode
		}
		updates[i] = canonical(rr)
	}
	changed := false
	for _, rr := range updates {
		changed = applyOne(z, rr) || changed
	}
	if changed {
		z.bump()
	}
	return mdns.RcodeSuccess
}

// prerequisites checks an update's prerequisite section (RFC 2136 3.2).
func prerequisites(z *zone, prereqs []mdns.RR) int {
	wanted := map[question][]mdns.RR{} // value-dependent RRsets
	for _, rr := range prereqs {
		h := rr.Header()
		name := mdns.CanonicalName(h.Name)
		if h.Ttl != 0 {
			return mdns.RcodeFormatError
		}
		if !mdns.IsSubDomain(z.origin, name) {
			return mdns.RcodeNotZone
		}
		node := z.names[name]
		switch h.Class {
		case mdns.ClassANY:
			if h.Rdlength != 0 {
				return mdns.RcodeFormatError
			}
			if h.Rrtype == mdns.TypeANY && len(node) == 0 {
				return mdns.RcodeNameError
			}
			if h.Rrtype != mdns.TypeANY && len(node[h.Rrtype]) == 0 {
				return mdns.RcodeNXRrset
			}
		case mdns.ClassNONE:
			if h.Rdlength != 0 {
				return mdns.RcodeFormatError
			}
			if h.Rrtype == mdns.TypeANY && len(node) > 0 {
				return mdns.RcodeYXDomain
			}
			if h.Rrtype != mdns.TypeANY && len(node[h.Rrtype]) > 0 {
				return mdns.RcodeYXRrset
			}
		case mdns.ClassINET:
			q := question{name, h.Rrtype}
			wanted[q] = append(wanted[q], canonical(rr))
		default:
			return mdns.RcodeFormatError
		}
	}
	for q, want := range wanted {
		have := z.names[q.name][q.qtype]
		if len(have) != len(want) {
			return mdns.RcodeNXRrset
		}
		for _, w := range want {
			found := false
			for _, h := range have {
				found = found || mdns.IsDuplicate(h, w)
			}
			if !found {
				return mdns.RcodeNXRrset
			}
		}
	}
	return mdns.RcodeSuccess
}

// prescan checks one record of an update section (RFC 2136 3.4.1).
func prescan(z *zone, rr mdns.RR) int {
	h := rr.Header()
	if !mdns.IsSubDomain(z.origin, mdns.CanonicalName(h.Name)) {
		return mdns.RcodeNotZone
	}
	meta := h.Rrtype == mdns.TypeANY || h.Rrtype == mdns.TypeAXFR || h.Rrtype == mdns.TypeIXFR ||
		h.Rrtype == mdns.TypeMAILA || h.Rrtype == mdns.TypeMAILB || h.Rrtype == mdns.TypeOPT || h.Rrtype == mdns.TypeTSIG
	switch h.Class {
	case mdns.ClassINET:
		if meta || h.Rdlength == 0 {
			return mdns.RcodeFormatError
		}
	case mdns.ClassANY:
		if h.Ttl != 0 || h.Rdlength != 0 || (meta && h.Rrtype != mdns.TypeANY) {
			return mdns.RcodeFormatError
		}
	case mdns.ClassNONE:
		if h.Ttl != 0 || meta {
			return mdns.RcodeFormatError
		}
	default:
		return mdns.RcodeFormatError
	}
	return mdns.RcodeSuccess
}

// applyOne applies one checked update record (RFC 2136 3.4.2) and reports
// whether the zone changed. The apex keeps its SOA and NS records but by
// replacement.
func applyOne(z *zone, rr mdns.RR) bool {
	h := rr.Header()
	apex := h.Name == z.origin
	switch h.Class {
	case mdns.ClassINET:
		node := z.names[h.Name]
		switch {
		case h.Rrtype == mdns.TypeSOA:
			soa := z.soa()
			if !apex || int32(rr.(*mdns.SOA).Serial-soa.Serial) <= 0 {
				return false
			}
			z.set(h.Name, mdns.TypeSOA, []mdns.RR{rr})
			return true
		case h.Rrtype == mdns.TypeCNAME && len(node) > 0 && len(node[mdns.TypeCNAME]) == 0,
			h.Rrtype != mdns.TypeCNAME && len(node[mdns.TypeCNAME]) > 0:
			return false // CNAME and other data do not mix
		case h.Rrtype == mdns.TypeCNAME && len(node[mdns.TypeCNAME]) > 0:
			z.set(h.Name, mdns.TypeCNAME, []mdns.RR{rr})
			return true
		}
		return z.add(rr)
	case mdns.ClassANY:
		changed := false
		for t := range z.names[h.Name] {
			if (h.Rrtype == mdns.TypeANY || h.Rrtype == t) && !(apex && (t == mdns.TypeSOA || t == mdns.TypeNS)) {
				z.set(h.Name, t, nil)
				changed = true
			}
		}
		return changed
	default: // ClassNONE: one record
		if h.Rrtype == mdns.TypeSOA || (apex && h.Rrtype == mdns.TypeNS && len(z.names[h.Name][mdns.TypeNS]) == 1) {
			return false
		}
		rr = mdns.Copy(rr)
		rr.Header().Class = mdns.ClassINET
		return z.remove(rr)
	}
}
