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
	rules *apiv1.FieldRules // nil when only nested messages need a look
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
	for _, fr := range v.rulesOf(m.Descriptor()) {
		fd := fr.fd
		path := prefix + fd.JSONName()
		if fr.rules != nil {
			if msg := violation(fr.rules, fd, m); msg != "" {
				*vs = append(*vs, errs.FieldViolation{Field: path, Description: msg})
				continue
			}
		}
		if fd.Kind() != protoreflect.MessageKind || !m.Has(fd) {
			continue
		}
		switch {
		case fd.IsList():
			l := m.Get(fd).List()
			for i := range l.Len() {
				v.check(l.Get(i).Message(), fmt.Sprintf("%s[%d].", path, i), vs)
			}
		case !fd.IsMap():
			v.check(m.Get(fd).Message(), path+".", vs)
		}
	}
}

// rulesOf returns the fields of md that have rules or hold messages of our
// own packages (which may have rules inside).
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
		nested := fd.Kind() == protoreflect.MessageKind && strings.HasPrefix(string(fd.Message().FullName()), "mailplane.")
		if rules != nil || nested {
			out = append(out, fieldRule{fd: fd, rules: rules})
		}
	}
	v.cache.Store(md.FullName(), out)
	return out
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
