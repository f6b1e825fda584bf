package dns

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"time"

	mdns "github.com/miekg/dns"
)

// Updater changes the records of one zone on its primary server by RFC 2136
// dynamic updates signed with a TSIG key (RFC 8945), over TCP. Its fields
// are the customer's settings; the zero Algorithm is hmac-sha256 and the
// zero Timeout 10 s.
type Updater struct {
	Server    string // the primary's host:port, or a host for port 53
	Zone      string // the zone's apex, as in the update's zone section
	KeyName   string // the TSIG key's name, as the server knows it
	Algorithm string // hmac-sha256 (default), hmac-sha224, hmac-sha384, hmac-sha512 or hmac-sha1
	Secret    string // the key, base64-encoded
	Timeout   time.Duration
}

// UpdateError is a server's refusal of an update: its rcode and, when the
// refusal is about the TSIG signature, the TSIG error (RFC 8945 5.3.2).
type UpdateError struct {
	Server    string
	Zone      string
	Rcode     int    // mdns.RcodeNotAuth, mdns.RcodeRefused...
	TSIGError uint16 // mdns.RcodeBadKey, mdns.RcodeBadSig, mdns.RcodeBadTime, or 0
}

func (e *UpdateError) Error() string {
	what := e.explain()
	code := mdns.RcodeToString[e.Rcode]
	if e.TSIGError != 0 {
		code += ", " + mdns.RcodeToString[int(e.TSIGError)]
	}
	return fmt.Sprintf("update zone %s on %s: %s (%s)", e.Zone, e.Server, what, code)
}

func (e *UpdateError) explain() string {
	switch e.TSIGError {
	case mdns.RcodeBadKey:
		// Knot answers BADKEY too when its ACL does not let a known key
		// change the records.
		return "the server does not accept our TSIG key for this change (it does not know the key's name or algorithm, or its policy does not let the key change these records)"
	case mdns.RcodeBadSig:
		return "the server says our TSIG signature is wrong (the secret differs)"
	case mdns.RcodeBadTime:
		return "the server's clock and ours differ by more than the TSIG fudge"
	}
	switch e.Rcode {
	case mdns.RcodeNotAuth:
		return "the server refused our TSIG key, or its policy does not let the key change these records, or it does not serve the zone"
	case mdns.RcodeRefused:
		return "the server refused the update: its policy does not let this key change these records"
	case mdns.RcodeNotZone:
		return "a name updated is not in the zone"
	case mdns.RcodeServerFailure:
		return "the server failed to apply the update"
	case mdns.RcodeNotImplemented:
		return "the server does not accept dynamic updates"
	case mdns.RcodeFormatError:
		return "the server could not read the update"
	}
	return "the server refused the update"
}

// ReplaceTXT replaces name's TXT records with one record per value, each
// value being the record's strings (255 bytes at most each) in
// presentation form, as TXTStrings makes them, with ttl: it
// deletes the RRset and adds the new records in one update, applied at once
// by the server. No value deletes the records. name is absolute, in the zone.
func (u *Updater) ReplaceTXT(ctx context.Context, name string, ttl uint32, values ...[]string) error {
	name, err := u.name(name)
	if err != nil {
		return err
	}
	rrs := make([]mdns.RR, len(values))
	for i, v := range values {
		if len(v) == 0 {
			return fmt.Errorf("replace %s TXT: value %d has no string", name, i+1)
		}
		for _, s := range v {
			if n := len(TXTValue(&mdns.TXT{Txt: []string{s}})); n > 255 {
				return fmt.Errorf("replace %s TXT: value %d has a string of %d bytes, more than 255", name, i+1, n)
			}
		}
		rrs[i] = &mdns.TXT{Hdr: mdns.RR_Header{Name: name, Rrtype: mdns.TypeTXT, Class: mdns.ClassINET, Ttl: ttl}, Txt: v}
	}
	m := new(mdns.Msg)
	m.SetUpdate(mdns.Fqdn(u.Zone))
	m.RemoveRRset([]mdns.RR{&mdns.ANY{Hdr: mdns.RR_Header{Name: name, Rrtype: mdns.TypeTXT, Class: mdns.ClassINET}}})
	m.Insert(rrs)
	if err := u.send(ctx, m); err != nil {
		return fmt.Errorf("replace %s TXT: %w", name, err)
	}
	return nil
}

// DeleteTXT deletes name's TXT records.
func (u *Updater) DeleteTXT(ctx context.Context, name string) error {
	return u.ReplaceTXT(ctx, name, 0)
}

// name checks that name is absolute and in the zone.
func (u *Updater) name(name string) (string, error) {
	if _, ok := mdns.IsDomainName(name); !ok || name == "" {
		return "", fmt.Errorf("name %q is not a domain name", name)
	}
	name = mdns.Fqdn(name)
	if !mdns.IsSubDomain(mdns.Fqdn(u.Zone), name) {
		return "", fmt.Errorf("name %s is not in zone %s", name, mdns.Fqdn(u.Zone))
	}
	return name, nil
}

// algorithm is u's TSIG algorithm as miekg/dns names it.
func (u *Updater) algorithm() (string, error) {
	return tsigAlgorithm(u.Algorithm)
}

// tsigAlgorithm returns the name of a TSIG algorithm (RFC 8945 6), given
// with or without its final dot; empty: hmac-sha256.
func tsigAlgorithm(a string) (string, error) {
	if a == "" {
		return mdns.HmacSHA256, nil
	}
	switch alg := mdns.CanonicalName(a); alg {
	case mdns.HmacSHA1, mdns.HmacSHA224, mdns.HmacSHA256, mdns.HmacSHA384, mdns.HmacSHA512:
		return alg, nil
	}
	return "", fmt.Errorf("TSIG algorithm %q: want hmac-sha256, hmac-sha224, hmac-sha384, hmac-sha512 or hmac-sha1", a)
}

// send signs m, sends it over TCP and checks the answer: signed with our
// key, NOERROR.
func (u *Updater) send(ctx context.Context, m *mdns.Msg) error {
	alg, err := u.algorithm()
	if err != nil {
		return err
	}
	if u.KeyName == "" {
		return errors.New("no TSIG key name")
	}
	if _, err := base64.StdEncoding.DecodeString(u.Secret); err != nil || u.Secret == "" {
		return errors.New("the TSIG secret is not base64")
	}
	if u.Zone == "" {
		return errors.New("no zone")
	}
	server := u.Server
	if server == "" {
		return errors.New("no server")
	}
	if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(server, "53")
	}
	timeout := u.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	key := mdns.CanonicalName(u.KeyName)
	m.SetTsig(key, alg, 300, time.Now().Unix())
	c := &mdns.Client{Net: "tcp", Timeout: timeout, TsigSecret: map[string]string{key: u.Secret}}
	in, _, err := c.ExchangeContext(ctx, m, server)
	uerr := &UpdateError{Server: server, Zone: mdns.Fqdn(u.Zone)}
	if in != nil && in.Id == m.Id {
		uerr.Rcode = in.Rcode
		if t := in.IsTsig(); t != nil {
			uerr.TSIGError = t.Error
		}
		// A refusal for the key's sake is not signed (RFC 8945 5.3.2):
		// miekg/dns fails to verify it, but the answer is what to report.
		if in.Rcode != mdns.RcodeSuccess {
			return uerr
		}
	}
	if err != nil {
		if errors.Is(err, mdns.ErrSig) || errors.Is(err, mdns.ErrSecret) || errors.Is(err, mdns.ErrTime) {
			return fmt.Errorf("update zone %s on %s: the answer's TSIG signature does not verify: %v", uerr.Zone, server, err)
		}
		return fmt.Errorf("%w: update zone %s on %s: %v", ErrServer, uerr.Zone, server, err)
	}
	if in.IsTsig() == nil {
		return fmt.Errorf("update zone %s on %s: the answer is not signed with our TSIG key", uerr.Zone, server)
	}
	return nil
}
