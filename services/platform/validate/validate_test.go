package validate_test

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	apiv1 "github.com/mailplane/mailplane/proto/mailplane/api/v1"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/validate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

const (
	badEmail = "must be an email address like name@example.com"
	badPhone = "must be a phone number in E.164 form, like +41791234567"
)

// label returns s shortened for a subtest name.
func label(s string) string {
	if len(s) > 40 {
		return s[:20] + "..." + s[len(s)-10:]
	}
	if s == "" {
		return "empty"
	}
	return s
}

func TestEmail(t *testing.T) {
	local64 := strings.Repeat("a", 64)
	// A domain of labels (each at most 63 bytes) of the given total length.
	domain := func(n int) string {
		var b strings.Builder
		for b.Len() < n-4 {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(strings.Repeat("d", min(60, n-4-b.Len())))
		}
		b.WriteString(".com")
		return b.String()
	}
	longest := local64 + "@" + domain(254-65)
	if len(longest) != 254 {
		t.Fatalf("test setup: longest address is %d bytes, want 254", len(longest))
	}
	tooLong := local64 + "@" + domain(255-65)

	tests := []struct {
		in   string
		want string // "" when valid
	}{
		{"ada@example.com", ""},
		{"ada.lovelace+newsletter@mail.example.co.uk", ""},
		{"O'Brien@example.ie", ""},
		{"ADA@EXAMPLE.COM", ""},
		{"ädä@exämple.ch", ""},
		{local64 + "@example.com", ""},
		{longest, ""},

		{"", badEmail},
		{"ada", badEmail},
		{"ada@", badEmail},
		{"@example.com", badEmail},
		{"ada@example", badEmail},      // no TLD
		{"ada@localhost", badEmail},    // no TLD
		{"ada@example.com.", badEmail}, // trailing dot
		{"ada@example..com", badEmail},
		{"ada@.example.com", badEmail},
		{"ada.@example.com", badEmail},
		{"ada@@example.com", badEmail},
		{"Ada Lovelace <ada@example.com>", badEmail}, // display name
		{`"Ada" <ada@example.com>`, badEmail},
		{"<ada@example.com>", badEmail},
		{"ada@example.com (work)", badEmail},
		{`"ada lovelace"@example.com`, badEmail},
		{" ada@example.com", badEmail},
		{"ada@example.com ", badEmail},
		{"ada@example.com\n", badEmail},
		{"ada@exa mple.com", badEmail},
		{"ada@[192.168.0.1]", badEmail},
		{"ada@example.com, bob@example.com", badEmail},
		{strings.Repeat("a", 65) + "@example.com", badEmail}, // local part > 64
		{tooLong, "must be an email address of at most 254 bytes"},
	}
	for _, tt := range tests {
		t.Run(label(tt.in), func(t *testing.T) {
			got := ""
			if err := validate.Email(tt.in); err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Email(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestE164(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"+41791234567", true},
		{"+12025550123", true},
		{"+12345678", true},          // 8 digits, the fewest
		{"+123456789012345", true},   // 15 digits, the most
		{"+1234567", false},          // 7 digits
		{"+1234567890123456", false}, // 16 digits
		{"", false},
		{"+", false},
		{"41791234567", false},   // no +
		{"0041791234567", false}, // international prefix instead of +
		{"+041791234567", false}, // leading 0
		{"++41791234567", false},
		{"+41 79 123 45 67", false},
		{"+41-79-123-45-67", false},
		{"+4179123456a", false},
		{"+41791234567 ", false},
		{"+CALLME12345", false},
		{"+٤١٧٩١٢٣٤٥٦٧", false}, // Arabic-Indic digits
	}
	for _, tt := range tests {
		t.Run(label(tt.in), func(t *testing.T) {
			err := validate.E164(tt.in)
			if got := err == nil; got != tt.want {
				t.Fatalf("E164(%q) = %v, want valid %v", tt.in, err, tt.want)
			}
			if err != nil && err.Error() != badPhone {
				t.Errorf("E164(%q) = %q, want %q", tt.in, err, badPhone)
			}
		})
	}
}

func validSignUp() *accountsv1.SignUpRequest {
	return &accountsv1.SignUpRequest{
		Email:                   "ada@example.com",
		Password:                "correct horse battery staple",
		DisplayName:             "Ada Lovelace",
		OrganizationDisplayName: "Analytical Engines",
	}
}

func signUp(edit func(r *accountsv1.SignUpRequest)) *accountsv1.SignUpRequest {
	r := validSignUp()
	edit(r)
	return r
}

// violations returns the field violations of an error from Check, failing
// the test when the error is not a field error.
func violations(t *testing.T, err error) []errs.FieldViolation {
	t.Helper()
	if err == nil {
		return nil
	}
	var e *errs.Error
	if !errors.As(err, &e) {
		t.Fatalf("Check returned %T (%v), want *errs.Error", err, err)
	}
	if e.Kind != errs.InvalidArgument {
		t.Errorf("kind = %v, want %v", e.Kind, errs.InvalidArgument)
	}
	return e.Fields
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		req  proto.Message
		want []errs.FieldViolation
	}{
		{
			name: "valid sign-up",
			req:  validSignUp(),
		},
		{
			name: "empty sign-up reports every field at once, by JSON name",
			req:  &accountsv1.SignUpRequest{},
			want: []errs.FieldViolation{
				{Field: "email", Description: "is required"},
				{Field: "password", Description: "is required"},
				{Field: "displayName", Description: "is required"},
				{Field: "organizationDisplayName", Description: "is required"},
			},
		},
		{
			name: "several different violations",
			req: &accountsv1.SignUpRequest{
				Email:                   "Ada <ada@example.com>",
				Password:                "hunter2",
				DisplayName:             " \t ",
				OrganizationDisplayName: strings.Repeat("x", 201),
			},
			want: []errs.FieldViolation{
				{Field: "email", Description: badEmail},
				{Field: "password", Description: "must be at least 12 characters"},
				{Field: "displayName", Description: "must not be blank"},
				{Field: "organizationDisplayName", Description: "must be at most 200 characters"},
			},
		},
		{
			name: "email without TLD",
			req:  signUp(func(r *accountsv1.SignUpRequest) { r.Email = "ada@example" }),
			want: []errs.FieldViolation{{Field: "email", Description: badEmail}},
		},
		{
			name: "min_chars counts characters, not bytes",
			req:  signUp(func(r *accountsv1.SignUpRequest) { r.Password = strings.Repeat("é", 11) }), // 22 bytes
			want: []errs.FieldViolation{{Field: "password", Description: "must be at least 12 characters"}},
		},
		{
			name: "12 two-byte characters are enough",
			req:  signUp(func(r *accountsv1.SignUpRequest) { r.Password = strings.Repeat("é", 12) }),
		},
		{
			name: "max_bytes counts bytes",
			req:  signUp(func(r *accountsv1.SignUpRequest) { r.Password = strings.Repeat("é", 513) }), // 1026 bytes
			want: []errs.FieldViolation{{Field: "password", Description: "must be at most 1024 bytes"}},
		},
		{
			name: "max_chars counts characters",
			req:  signUp(func(r *accountsv1.SignUpRequest) { r.DisplayName = strings.Repeat("é", 200) }), // 400 bytes
		},
		{
			name: "invalid UTF-8",
			req:  signUp(func(r *accountsv1.SignUpRequest) { r.DisplayName = "Ada \xff" }),
			want: []errs.FieldViolation{{Field: "displayName", Description: "must be valid UTF-8"}},
		},
		{
			name: "required nested message missing",
			req:  &accountsv1.UpdateOrganizationRequest{},
			want: []errs.FieldViolation{{Field: "organization", Description: "is required"}},
		},
		{
			name: "nested field named by its JSON path",
			req: &accountsv1.UpdateOrganizationRequest{
				Organization: &accountsv1.Organization{Name: "organizations/acme", Address: strings.Repeat("x", 501)},
			},
			want: []errs.FieldViolation{{Field: "organization.address", Description: "must be at most 500 characters"}},
		},
		{
			name: "nested field too long",
			req: &accountsv1.UpdateOrganizationRequest{
				Organization: &accountsv1.Organization{Name: "organizations/acme", DisplayName: strings.Repeat("x", 201)},
			},
			want: []errs.FieldViolation{{Field: "organization.displayName", Description: "must be at most 200 characters"}},
		},
		{
			name: "valid update",
			req: &accountsv1.UpdateOrganizationRequest{
				Organization: &accountsv1.Organization{Name: "organizations/acme", DisplayName: "Acme"},
			},
		},
		{
			name: "required resource name",
			req:  &accountsv1.ListMembersRequest{PageSize: 10},
			want: []errs.FieldViolation{{Field: "parent", Description: "is required"}},
		},
		{
			name: "message without rules",
			req:  &accountsv1.GetCurrentUserRequest{},
		},
	}
	var v validate.Validator
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := violations(t, v.Check(tt.req))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Check violations (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckMessage(t *testing.T) {
	var v validate.Validator
	err := v.Check(&accountsv1.SignUpRequest{Email: "ada@example.com"})
	want := "password: is required (and 2 more)"
	if err == nil || err.Error() != want {
		t.Errorf("Check error = %v, want %q", err, want)
	}
}

// TestCheckConcurrent checks that the zero Validator, with its cache, is safe
// for the concurrent calls of a gRPC server (run with -race).
func TestCheckConcurrent(t *testing.T) {
	var v validate.Validator
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if err := v.Check(validSignUp()); err != nil {
					t.Errorf("Check(valid) = %v", err)
				}
				err := v.Check(&accountsv1.UpdateOrganizationRequest{Organization: &accountsv1.Organization{LegalName: strings.Repeat("x", 201)}})
				if got := violations(t, err); len(got) != 1 || got[0].Field != "organization.legalName" {
					t.Errorf("Check(blank organization) = %v", got)
				}
			}
		})
	}
	wg.Wait()
}

// contactsRequest builds, at run time, a request type using rules that the
// accounts API does not: E.164 phone numbers, a repeated nested message and
// a required non-string field.
//
//	message Contact { string phone_number = 1 [(field) = {format: FORMAT_E164}]; }
//	message ImportContactsRequest {
//	  repeated Contact contacts = 1 [(field).required = true];
//	  int32 priority = 2 [(field).required = true];
//	}
func contactsRequest(t *testing.T) protoreflect.MessageDescriptor {
	t.Helper()
	rules := func(r *apiv1.FieldRules) *descriptorpb.FieldOptions {
		o := &descriptorpb.FieldOptions{}
		proto.SetExtension(o, apiv1.E_Field, r)
		return o
	}
	optional := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	fdp := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("mailplane/validatetest/v1/contacts.proto"),
		Package: proto.String("mailplane.validatetest.v1"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			{
				Name: proto.String("Contact"),
				Field: []*descriptorpb.FieldDescriptorProto{{
					Name: proto.String("phone_number"), Number: proto.Int32(1), Label: optional,
					Type:    descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(),
					Options: rules(&apiv1.FieldRules{Format: apiv1.Format_FORMAT_E164}),
				}},
			},
			{
				Name: proto.String("ImportContactsRequest"),
				Field: []*descriptorpb.FieldDescriptorProto{{
					Name: proto.String("contacts"), Number: proto.Int32(1),
					Label:    descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum(),
					Type:     descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum(),
					TypeName: proto.String(".mailplane.validatetest.v1.Contact"),
					Options:  rules(&apiv1.FieldRules{Required: true}),
				}, {
					Name: proto.String("priority"), Number: proto.Int32(2), Label: optional,
					Type:    descriptorpb.FieldDescriptorProto_TYPE_INT32.Enum(),
					Options: rules(&apiv1.FieldRules{Required: true}),
				}},
			},
		},
	}
	fd, err := protodesc.NewFile(fdp, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fd.Messages().ByName("ImportContactsRequest")
}

func TestCheckListsAndPhoneNumbers(t *testing.T) {
	md := contactsRequest(t)
	contactMD := md.Fields().ByName("contacts").Message()
	request := func(priority int32, phones ...string) proto.Message {
		m := dynamicpb.NewMessage(md)
		if priority != 0 {
			m.Set(md.Fields().ByName("priority"), protoreflect.ValueOfInt32(priority))
		}
		list := m.Mutable(md.Fields().ByName("contacts")).List()
		for _, p := range phones {
			c := dynamicpb.NewMessage(contactMD)
			c.Set(contactMD.Fields().ByName("phone_number"), protoreflect.ValueOfString(p))
			list.Append(protoreflect.ValueOfMessage(c))
		}
		return m
	}

	tests := []struct {
		name string
		req  proto.Message
		want []errs.FieldViolation
	}{
		{
			name: "valid",
			req:  request(1, "+41791234567", "+12025550123"),
		},
		{
			name: "an unset optional phone number is fine",
			req:  request(1, ""),
		},
		{
			name: "nothing set",
			req:  request(0),
			want: []errs.FieldViolation{
				{Field: "contacts", Description: "is required"},
				{Field: "priority", Description: "is required"},
			},
		},
		{
			name: "list elements named by index",
			req:  request(1, "+41791234567", "079 123 45 67", "+41791234567", "+0791234567"),
			want: []errs.FieldViolation{
				{Field: "contacts[1].phoneNumber", Description: badPhone},
				{Field: "contacts[3].phoneNumber", Description: badPhone},
			},
		},
	}
	var v validate.Validator
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := violations(t, v.Check(tt.req))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Check violations (-want +got):\n%s", diff)
			}
		})
	}
}
