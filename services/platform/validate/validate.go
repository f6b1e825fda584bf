// Package validate checks requests against the field rules declared in the
// .proto files ((mailplane.api.v1.field) options), so the API contract and its
// checks live in one place. Violations name fields by their JSON names
// ("organization.displayName"), as a REST client sent them.
package validate

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"sync"
	"unicode/utf8"

	apiv1 "github.com/mailplane/mailplane/proto/mailplane/api/v1"
	"github.com/mailplane/mailplane/services/platform/errs"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Validator checks messages. It caches each message type's rules; the zero
// value is ready to use and safe for concurrent use.
type Validator struct {
	cache sync.Map // protoreflect.FullName -> []fieldRule
}

type fieldRule struct {
	fd    protoreflect.FieldDescriptor
	rules *apiv1.FieldRules // nil when the field has none of its own
}

// Check returns an InvalidArgument *errs.Error listing every violation in m,
// or nil.
func (v *Validator) Check(m proto.Message) error {
	var vs []errs.FieldViolation
	v.check(m.ProtoReflect(), "", &vs)
	if len(vs) > 0 {
		return errs.Fields(vs...)
	}
	return nil
}

func (v *Validator) check(m protoreflect.Message, prefix string, vs *[]errs.FieldViolation) {
	add := func(path, msg string) {
		*vs = append(*vs, errs.FieldViolation{Field: path, Description: msg})
	}
	for _, fr := range v.rulesOf(m.Descriptor()) {
		fd := fr.fd
		path := prefix + fd.JSONName()
		multiline := fr.rules.GetMultiline()
		if fr.rules != nil {
			if msg := violation(fr.rules, fd, m); msg != "" {
				add(path, msg)
				continue
			}
		}
		if fd.Kind() == protoreflect.StringKind && !fd.IsList() && !fd.IsMap() && m.Has(fd) {
			if msg := Text(m.Get(fd).String(), multiline); msg != "" {
				add(path, msg)
				continue
			}
		}
		if !m.Has(fd) {
			continue
		}
		switch {
		case fd.IsList():
			l := m.Get(fd).List()
			for i := range l.Len() {
				elem := fmt.Sprintf("%s[%d]", path, i)
				if fd.Kind() == protoreflect.StringKind {
					if msg := Text(l.Get(i).String(), multiline); msg != "" {
						add(elem, msg)
					}
					continue
				}
				v.check(l.Get(i).Message(), elem+".", vs)
			}
		case fd.IsMap():
			kd, vd := fd.MapKey(), fd.MapValue()
			m.Get(fd).Map().Range(func(k protoreflect.MapKey, val protoreflect.Value) bool {
				key := k.String()
				if kd.Kind() == protoreflect.StringKind {
					if msg := Text(key, false); msg != "" {
						// The key itself is bad: name the map, not the key.
						add(path, "key "+msg)
						return true
					}
				}
				elem := fmt.Sprintf("%s[%q]", path, key)
				switch vd.Kind() {
				case protoreflect.StringKind:
					if msg := Text(val.String(), multiline); msg != "" {
						add(elem, msg)
					}
				case protoreflect.MessageKind, protoreflect.GroupKind:
					v.check(val.Message(), elem+".", vs)
				}
				return true
			})
		case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
			v.check(m.Get(fd).Message(), path+".", vs)
		}
	}
}

// rulesOf returns the fields of md that need a look: those with rules, and
// every string field and message field (every text a request carries is
// checked, however deep).
func (v *Validator) rulesOf(md protoreflect.MessageDescriptor) []fieldRule {
	if r, ok := v.cache.Load(md.FullName()); ok {
		return r.([]fieldRule)
	}
	var out []fieldRule
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		var rules *apiv1.FieldRules
		if opts := fd.Options(); opts != nil && proto.HasExtension(opts, apiv1.E_Field) {
			rules = proto.GetExtension(opts, apiv1.E_Field).(*apiv1.FieldRules)
		}
		if rules != nil || holdsText(fd) {
			out = append(out, fieldRule{fd: fd, rules: rules})
		}
	}
	v.cache.Store(md.FullName(), out)
	return out
}

// holdsText reports whether fd is, or may hold, a string.
func holdsText(fd protoreflect.FieldDescriptor) bool {
	if fd.IsMap() {
		return holdsText(fd.MapKey()) || holdsText(fd.MapValue())
	}
	switch fd.Kind() {
	case protoreflect.StringKind, protoreflect.MessageKind, protoreflect.GroupKind:
		return true
	}
	return false
}

// Text checks s against the rule every text field follows, and returns what
// is wrong with it or "". Text must be valid UTF-8 without NUL, control
// characters (C0 other than tab, line feed and carriage return; DEL; C1) or
// the bidi overrides and isolates that make text display in another order
// than it is stored (U+202A-U+202E, U+2066-U+2069). Unless multiline, it
// must also be one line: no tab, line feed or carriage return.
//
// PostgreSQL refuses NUL in text, so without this rule such a field would
// reach the database and answer a 500; the other controls would end up in
// mail headers, logs and the manager's screens.
func Text(s string, multiline bool) string {
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			// U+FFFD itself is fine; a byte that decodes to nothing is not.
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return "must be valid UTF-8"
			}
		case r == '\t' || r == '\n' || r == '\r':
			if !multiline {
				return fmt.Sprintf("must be a single line (no tab or line break, found %U)", r)
			}
		case r < 0x20 || r >= 0x7f && r <= 0x9f:
			return fmt.Sprintf("must not contain control characters (found %U)", r)
		case r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069:
			return fmt.Sprintf("must not contain bidirectional text controls (found %U)", r)
		}
	}
	return ""
}

// violation describes what is wrong with field fd of m, or returns "".
func violation(r *apiv1.FieldRules, fd protoreflect.FieldDescriptor, m protoreflect.Message) string {
	if fd.Kind() != protoreflect.StringKind || fd.IsList() {
		if r.GetRequired() && !m.Has(fd) {
			return "is required"
		}
		return ""
	}
	s := m.Get(fd).String()
	switch {
	case s == "" && (r.GetRequired() || r.GetNotBlank()):
		return "is required"
	case r.GetNotBlank() && strings.TrimSpace(s) == "":
		return "must not be blank"
	case !utf8.ValidString(s):
		return "must be valid UTF-8"
	case r.GetMaxBytes() > 0 && len(s) > int(r.GetMaxBytes()):
		return fmt.Sprintf("must be at most %d bytes", r.GetMaxBytes())
	}
	n := utf8.RuneCountInString(s)
	switch {
	case r.GetMinChars() > 0 && n < int(r.GetMinChars()) && s != "":
		return fmt.Sprintf("must be at least %d characters", r.GetMinChars())
	case r.GetMaxChars() > 0 && n > int(r.GetMaxChars()):
		return fmt.Sprintf("must be at most %d characters", r.GetMaxChars())
	}
	if s == "" {
		return ""
	}
	switch r.GetFormat() {
	case apiv1.Format_FORMAT_EMAIL:
		if err := Email(s); err != nil {
			return err.Error()
		}
	case apiv1.Format_FORMAT_E164:
		if err := E164(s); err != nil {
			return err.Error()
		}
	}
	return ""
}

// Email checks that s is a bare email address (local@domain.tld), as people
// type them in sign-up forms: no display name, no angle brackets.
func Email(s string) error {
	bad := errors.New("must be an email address like name@example.com")
	if len(s) > 254 {
		return errors.New("must be an email address of at most 254 bytes")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return bad
	}
	at := strings.LastIndexByte(s, '@')
	local, domain := s[:at], s[at+1:]
	if len(local) > 64 || !strings.Contains(domain, ".") || strings.HasSuffix(domain, ".") || strings.HasPrefix(domain, "[") {
		return bad
	}
	return nil
}

// E164 checks that s is a phone number in E.164 form: "+", then 8 to 15
// digits, the first not 0.
func E164(s string) error {
	bad := errors.New("must be a phone number in E.164 form, like +41791234567")
	if len(s) < 9 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return bad
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return bad
		}
	}
	return nil
}
