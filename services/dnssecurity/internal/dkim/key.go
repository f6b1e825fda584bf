// Package dkim checks the DKIM key records a domain publishes (RFC 6376
// §3.6.1, Ed25519 keys of RFC 8463) and makes the keys Mailplane signs
// with.
package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"
)

// Key is a parsed DKIM key record.
type Key struct {
	// Version is "DKIM1", or empty when the record has no v= tag.
	Version string
	// Hashes are the h= algorithms; empty means any.
	Hashes []string
	// Type is the k= key type: "rsa" (the default) or "ed25519".
	Type string
	// Notes is the n= text.
	Notes string
	// Services are the s= service types; empty means "*".
	Services []string
	// Flags are the t= flags ("y": testing, "s": no subdomains).
	Flags []string
	// Public is the key of p=, nil when revoked (p= empty): an
	// *rsa.PublicKey or an ed25519.PublicKey.
	Public crypto.PublicKey
	// Bits is the RSA modulus size, 256 for Ed25519, 0 when revoked.
	Bits int
}

// Revoked reports whether the record withdraws its key (empty p=).
func (k *Key) Revoked() bool { return k.Public == nil }

// Testing reports whether the t=y flag asks verifiers not to treat a
// failure differently from no signature.
func (k *Key) Testing() bool { return k.hasFlag("y") }

func (k *Key) hasFlag(f string) bool {
	for _, x := range k.Flags {
		if x == f {
			return true
		}
	}
	return false
}

// ParseKey parses a DKIM key record: its tag-list (RFC 6376 §3.2) and
// the tags of §3.6.1. Errors name the tag at fault.
func ParseKey(txt string) (*Key, error) {
	tags, err := parseTags(txt)
	if err != nil {
		return nil, err
	}
	k := &Key{Type: "rsa"}
	var p *string
	for i, t := range tags {
		switch t.name {
		case "v":
			if i != 0 {
				return nil, fmt.Errorf("v= must be the first tag, it is number %d", i+1)
			}
			if t.value != "DKIM1" {
				return nil, fmt.Errorf("v=%s: the version must be DKIM1", t.value)
			}
			k.Version = t.value
		case "h":
			k.Hashes = splitList(t.value, ":")
			if len(k.Hashes) == 0 {
				return nil, fmt.Errorf("h= is empty: list hash algorithms (sha256) or remove the tag")
			}
		case "k":
			switch t.value {
			case "rsa", "ed25519":
				k.Type = t.value
			default:
				return nil, fmt.Errorf("k=%s: unknown key type (rsa or ed25519)", t.value)
			}
		case "n":
			k.Notes = t.value
		case "p":
			v := t.value
			p = &v
		case "s":
			k.Services = splitList(t.value, ":")
		case "t":
			k.Flags = splitList(t.value, ":")
		}
		// Unknown tags are ignored (§3.6.1).
	}
	if p == nil {
		return nil, fmt.Errorf("p= is missing: the record holds no key")
	}
	b64 := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, *p)
	if b64 == "" {
		return k, nil // revoked
	}
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("p= is not valid base64: %v", err)
	}
	switch k.Type {
	case "ed25519":
		// RFC 8463 §4: the raw 32-byte key, not a SubjectPublicKeyInfo.
		if len(der) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("p= holds %d bytes; an ed25519 key is %d raw bytes", len(der), ed25519.PublicKeySize)
		}
		k.Public, k.Bits = ed25519.PublicKey(der), 256
	default:
		pub, err := parseRSA(der)
		if err != nil {
			return nil, err
		}
		k.Public, k.Bits = pub, pub.N.BitLen()
	}
	return k, nil
}

// parseRSA reads an RSA key as a SubjectPublicKeyInfo (what RFC 6376
// asks for) or as a bare RSAPublicKey, which some signers publish and
// most verifiers accept.
func parseRSA(der []byte) (*rsa.PublicKey, error) {
	if pub, err := x509.ParsePKIXPublicKey(der); err == nil {
		rp, ok := pub.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("p= holds a %T key, but k= says rsa", pub)
		}
		return rp, nil
	}
	rp, err := x509.ParsePKCS1PublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("p= is not an RSA public key (neither SubjectPublicKeyInfo nor RSAPublicKey)")
	}
	return rp, nil
}

func splitList(s, sep string) []string {
	var out []string
	for _, x := range strings.Split(s, sep) {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

type tag struct{ name, value string }

// parseTags parses a tag-list (RFC 6376 §3.2). Tag names are
// case-sensitive; a name given twice invalidates the list. Empty
// entries (";;") are skipped, as common verifiers do.
func parseTags(s string) ([]tag, error) {
	var tags []tag
	seen := map[string]bool{}
	for i, spec := range strings.Split(s, ";") {
		spec = strings.Trim(spec, " \t\r\n")
		if spec == "" {
			continue
		}
		name, value, ok := strings.Cut(spec, "=")
		if !ok {
			return nil, fmt.Errorf("%q (entry %d) is not a tag=value pair", spec, i+1)
		}
		name = strings.Trim(name, " \t\r\n")
		value = strings.Trim(value, " \t\r\n")
		if !validTagName(name) {
			return nil, fmt.Errorf("%q is not a tag name (a letter, then letters, digits or _)", name)
		}
		for _, r := range value {
			// VALCHAR or folding white space inside the value.
			if (r < 0x21 || r > 0x7e) && r != ' ' && r != '\t' && r != '\r' && r != '\n' {
				return nil, fmt.Errorf("%s= holds the character %q, not allowed in a tag value", name, r)
			}
		}
		if seen[name] {
			return nil, fmt.Errorf("%s= appears twice", name)
		}
		seen[name] = true
		tags = append(tags, tag{name, value})
	}
	return tags, nil
}

func validTagName(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !(c >= '0' && c <= '9') && c != '_' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// ValidSelector checks a selector's syntax: dot-separated sub-domains
// (RFC 6376 §3.1, RFC 5321 sub-domain) of letters, digits and inner
// hyphens, each 1 to 63 characters.
func ValidSelector(s string) error {
	if s == "" {
		return fmt.Errorf("the selector is empty")
	}
	// selector._domainkey.<domain> must still fit in 253 characters.
	if len(s) > 200 {
		return fmt.Errorf("the selector is %d characters long; keep it under 200", len(s))
	}
	for _, l := range strings.Split(s, ".") {
		switch {
		case l == "":
			return fmt.Errorf("selector %q has an empty label (two dots, or a dot at an end)", s)
		case len(l) > 63:
			return fmt.Errorf("selector label %q is %d characters; at most 63", l, len(l))
		case l[0] == '-' || l[len(l)-1] == '-':
			return fmt.Errorf("selector label %q starts or ends with a hyphen", l)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !isAlpha(c) && !(c >= '0' && c <= '9') && c != '-' {
				return fmt.Errorf("selector label %q holds %q; only letters, digits and hyphens are allowed", l, c)
			}
		}
	}
	return nil
}

// RecordName is where the key of selector for domain is published:
// <selector>._domainkey.<domain>, without a final dot.
func RecordName(selector, domain string) string {
	return selector + "._domainkey." + strings.TrimSuffix(domain, ".")
}
