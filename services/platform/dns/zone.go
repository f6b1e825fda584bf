package dns

import (
	"fmt"
	"slices"
	"strings"

	mdns "github.com/miekg/dns"
)

// zone holds the records of one zone (origin and the names below it, its SOA
// at the origin), or, with an empty origin, the records a LocalServer holds
// outside every zone.
type zone struct {
	origin string
	names  map[string]map[uint16][]mdns.RR
}

func newZone(origin string) *zone {
	return &zone{origin: origin, names: map[string]map[uint16][]mdns.RR{}}
}

// soa is the zone's SOA record, nil for the records outside every zone.
func (z *zone) soa() *mdns.SOA {
	if rrs := z.names[z.origin][mdns.TypeSOA]; len(rrs) > 0 {
		return rrs[0].(*mdns.SOA)
	}
	return nil
}

// negative is the SOA record of a negative answer, whose TTL is the smaller
// of the SOA's and its minimum (RFC 2308 3); nil outside every zone.
func (z *zone) negative() mdns.RR {
	soa := z.soa()
	if soa == nil {
		return nil
	}
	rr := mdns.Copy(soa)
	rr.Header().Ttl = min(soa.Hdr.Ttl, soa.Minttl)
	return rr
}

// bump increments the SOA serial, as a primary server does on each change so
// that secondaries and whoever watches the zone see it.
func (z *zone) bump() {
	if soa := z.soa(); soa != nil {
		soa.Serial++ // RFC 1982 arithmetic: wrapping is allowed
	}
}

// add stores rr (owner in canonical form, class IN) unless it is there
// already, in which case its TTL is updated. It reports whether the zone
// changed.
func (z *zone) add(rr mdns.RR) bool {
	h := rr.Header()
	node := z.names[h.Name]
	if node == nil {
		node = map[uint16][]mdns.RR{}
		z.names[h.Name] = node
	}
	for i, old := range node[h.Rrtype] {
		if mdns.IsDuplicate(old, rr) {
			if old.Header().Ttl == h.Ttl {
				return false
			}
			node[h.Rrtype][i] = rr
			return true
		}
	}
	node[h.Rrtype] = append(node[h.Rrtype], rr)
	return true
}

// set replaces name's records of type t with rrs (none: deletes them).
func (z *zone) set(name string, t uint16, rrs []mdns.RR) {
	node := z.names[name]
	if len(rrs) == 0 {
		delete(node, t)
		if len(node) == 0 {
			delete(z.names, name)
		}
		return
	}
	if node == nil {
		node = map[uint16][]mdns.RR{}
		z.names[name] = node
	}
	node[t] = rrs
}

// remove deletes the record equal to rr (its TTL aside) and reports whether
// there was one.
func (z *zone) remove(rr mdns.RR) bool {
	h := rr.Header()
	rrs := z.names[h.Name][h.Rrtype]
	i := slices.IndexFunc(rrs, func(old mdns.RR) bool { return mdns.IsDuplicate(old, rr) })
	if i < 0 {
		return false
	}
	z.set(h.Name, h.Rrtype, slices.Delete(slices.Clone(rrs), i, i+1))
	return true
}

// exists reports whether name has records, or names below it do (an empty
// non-terminal exists too: RFC 8020).
func (z *zone) exists(name string) bool {
	if len(z.names[name]) > 0 {
		return true
	}
	for n := range z.names {
		if n != name && mdns.IsSubDomain(name, n) {
			return true
		}
	}
	return false
}

// node returns name's records, synthesised from a wildcard when name does not
// exist and its closest encloser has a "*" child (RFC 4592), nil when
// there are none.
func (z *zone) node(name string) map[uint16][]mdns.RR {
	if node := z.names[name]; len(node) > 0 {
		return node
	}
	if z.origin == "" || z.exists(name) {
		return nil
	}
	for off, end := mdns.NextLabel(name, 0); !end; off, end = mdns.NextLabel(name, off) {
		encloser := name[off:]
		if !mdns.IsSubDomain(z.origin, encloser) {
			return nil
		}
		if !z.exists(encloser) {
			continue
		}
		wild := z.names["*."+encloser]
		if len(wild) == 0 {
			return nil
		}
		node := make(map[uint16][]mdns.RR, len(wild))
		for t, rrs := range wild {
			for _, rr := range rrs {
				rr = mdns.Copy(rr)
				rr.Header().Name = name
				node[t] = append(node[t], rr)
			}
		}
		return node
	}
	return nil
}

// parseZones reads zone-file text: each SOA record starts a zone at its
// owner, and every other record must belong to one of them (the closest).
func parseZones(text string) (map[string]*zone, error) {
	zp := mdns.NewZoneParser(strings.NewReader(text), "", "zone")
	var rrs []mdns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		return nil, err
	}
	zones := map[string]*zone{}
	for _, rr := range rrs {
		if rr.Header().Rrtype != mdns.TypeSOA {
			continue
		}
		origin := mdns.CanonicalName(rr.Header().Name)
		if zones[origin] != nil {
			return nil, fmt.Errorf("zone %s has two SOA records", origin)
		}
		zones[origin] = newZone(origin)
	}
	if len(zones) == 0 {
		return nil, fmt.Errorf("no SOA record: a zone starts with one")
	}
	for _, rr := range rrs {
		h := rr.Header()
		if h.Class != mdns.ClassINET {
			return nil, fmt.Errorf("%s: class %s: only IN is served", h.Name, mdns.ClassToString[h.Class])
		}
		rr = canonical(rr)
		z := closest(zones, rr.Header().Name)
		if z == nil {
			return nil, fmt.Errorf("%s is in none of the zones (no SOA record above it)", h.Name)
		}
		z.add(rr)
	}
	return zones, nil
}

// closest returns the zone of zones name belongs to, nil if none.
func closest(zones map[string]*zone, name string) *zone {
	for off, end := 0, false; !end; off, end = mdns.NextLabel(name, off) {
		if z := zones[name[off:]]; z != nil {
			return z
		}
	}
	return zones["."]
}

// canonical returns a copy of rr whose owner name is in canonical form, so
// that the zone's maps are keyed alike.
func canonical(rr mdns.RR) mdns.RR {
	rr = mdns.Copy(rr)
	rr.Header().Name = mdns.CanonicalName(rr.Header().Name)
	return rr
}
