package validate_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	apiv1 "github.com/mailplane/mailplane/proto/mailplane/api/v1"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/validate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
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

func TestText(t *testing.T) {
	const (
		control = "must not contain control characters (found %s)"
		bidi    = "must not contain bidirectional text controls (found %s)"
		oneLine = "must be a single line (no tab or line break, found %s)"
	)
	tests := []struct {
		in        string
		multiline bool
		want      string // with %s for the character, "" when valid
		char      string
	}{
		{in: ""},
		{in: "Ada Lovelace"},
		{in: "Zürich · 東京 · مرحبا · 😀"},
		{in: "\uFFFD is a character like any other"},
		{in: "  spaces  are fine  "},
		{in: "a\nb\r\n\tc", multiline: true},

		{in: "a\x00b", want: control, char: "U+0000"},
		{in: "a\x00b", multiline: true, want: control, char: "U+0000"},
		{in: "\x07bell", want: control, char: "U+0007"},
		{in: "esc\x1b[31m", multiline: true, want: control, char: "U+001B"},
		{in: "del\x7f", want: control, char: "U+007F"},
		{in: "c1\u0085", multiline: true, want: control, char: "U+0085"},
		{in: "c1\u009f", want: control, char: "U+009F"},
		{in: "abc\u202egnp.exe", want: bidi, char: "U+202E"},
		{in: "\u202a", multiline: true, want: bidi, char: "U+202A"},
		{in: "isolate\u2066x\u2069", want: bidi, char: "U+2066"},
		{in: "pop\u2069", want: bidi, char: "U+2069"},
		{in: "a\tb", want: oneLine, char: "U+0009"},
		{in: "a\nb", want: oneLine, char: "U+000A"},
		{in: "a\rb", want: oneLine, char: "U+000D"},
		{in: "bad \xff byte", want: "must be valid UTF-8"},
		{in: "cut \xe2\x82", multiline: true, want: "must be valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q multiline=%v", tt.in, tt.multiline), func(t *testing.T) {
			want := tt.want
			if tt.char != "" {
				want = fmt.Sprintf(tt.want, tt.char)
			}
			if got := validate.Text(tt.in, tt.multiline); got != want {
				t.Errorf("Text(%q, %v) = %q, want %q", tt.in, tt.multiline, got, want)
			}
		})
	}
}

// textRequest builds, at run time, a request holding text in every shape a
// field can take:
//
//	message Note { string body = 1 [(field).multiline = true]; string title = 2; }
//	message SaveNotesRequest {
//	  string parent = 1;
//	  Note note = 2;
//	  repeated string tags = 3;
//	  repeated Note notes = 4;
//	  map<string, string> labels = 5;
//	  map<string, Note> drafts = 6;
//	  bytes attachment = 7;
//	}
func textRequest(t *testing.T) protoreflect.MessageDescriptor {
	t.Helper()
	optional := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	repeated := descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	str := descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()
	msg := descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
	multiline := &descriptorpb.FieldOptions{}
	proto.SetExtension(multiline, apiv1.E_Field, &apiv1.FieldRules{Multiline: true})
	field := func(name string, n int32, label *descriptorpb.FieldDescriptorProto_Label, typ *descriptorpb.FieldDescriptorProto_Type, typeName string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(n), Label: label, Type: typ}
		if typeName != "" {
			f.TypeName = proto.String(typeName)
		}
		return f
	}
	entry := func(name string, value *descriptorpb.FieldDescriptorProto) *descriptorpb.DescriptorProto {
		return &descriptorpb.DescriptorProto{
			Name:    proto.String(name),
			Field:   []*descriptorpb.FieldDescriptorProto{field("key", 1, optional, str, ""), value},
			Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)},
		}
	}
	body := field("body", 1, optional, str, "")
	body.Options = multiline
	note := ".mailplane.validatetest.v1.Note"
	fdp := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("mailplane/validatetest/v1/notes.proto"),
		Package: proto.String("mailplane.validatetest.v1"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			{
				Name:  proto.String("Note"),
				Field: []*descriptorpb.FieldDescriptorProto{body, field("title", 2, optional, str, "")},
			},
			{
				Name: proto.String("SaveNotesRequest"),
				Field: []*descriptorpb.FieldDescriptorProto{
					field("parent", 1, optional, str, ""),
					field("note", 2, optional, msg, note),
					field("tags", 3, repeated, str, ""),
					field("notes", 4, repeated, msg, note),
					field("labels", 5, repeated, msg, ".mailplane.validatetest.v1.SaveNotesRequest.LabelsEntry"),
					field("drafts", 6, repeated, msg, ".mailplane.validatetest.v1.SaveNotesRequest.DraftsEntry"),
					field("attachment", 7, optional, descriptorpb.FieldDescriptorProto_TYPE_BYTES.Enum(), ""),
				},
				NestedType: []*descriptorpb.DescriptorProto{
					entry("LabelsEntry", field("value", 2, optional, str, "")),
					entry("DraftsEntry", field("value", 2, optional, msg, note)),
				},
			},
		},
	}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	return fd.Messages().ByName("SaveNotesRequest")
}

// TestCheckText checks that the text rule reaches every string of a
// request: plain, nested, repeated, map keys and values, messages in lists
// and maps; and that multiline fields may hold line breaks.
func TestCheckText(t *testing.T) {
	md := textRequest(t)
	noteMD := md.Fields().ByName("note").Message()
	newNote := func(title, body string) protoreflect.Value {
		n := dynamicpb.NewMessage(noteMD)
		n.Set(noteMD.Fields().ByName("title"), protoreflect.ValueOfString(title))
		n.Set(noteMD.Fields().ByName("body"), protoreflect.ValueOfString(body))
		return protoreflect.ValueOfMessage(n)
	}
	type request struct {
		parent     string
		note       *[2]string
		tags       []string
		notes      [][2]string
		labels     map[string]string
		drafts     map[string][2]string
		attachment []byte
	}
	build := func(r request) proto.Message {
		m := dynamicpb.NewMessage(md)
		f := md.Fields().ByName
		m.Set(f("parent"), protoreflect.ValueOfString(r.parent))
		if r.note != nil {
			m.Set(f("note"), newNote(r.note[0], r.note[1]))
		}
		for _, s := range r.tags {
			m.Mutable(f("tags")).List().Append(protoreflect.ValueOfString(s))
		}
		for _, n := range r.notes {
			m.Mutable(f("notes")).List().Append(newNote(n[0], n[1]))
		}
		for k, v := range r.labels {
			m.Mutable(f("labels")).Map().Set(protoreflect.ValueOfString(k).MapKey(), protoreflect.ValueOfString(v))
		}
		for k, v := range r.drafts {
			m.Mutable(f("drafts")).Map().Set(protoreflect.ValueOfString(k).MapKey(), newNote(v[0], v[1]))
		}
		if r.attachment != nil {
			m.Set(f("attachment"), protoreflect.ValueOfBytes(r.attachment))
		}
		return m
	}
	nul := "must not contain control characters (found U+0000)"
	lf := "must be a single line (no tab or line break, found U+000A)"

	tests := []struct {
		name string
		req  request
		want []errs.FieldViolation
	}{
		{
			name: "valid, with line breaks where allowed and any bytes in bytes",
			req: request{
				parent: "notes/1", note: &[2]string{"Title", "line one\nline two\r\n\tindented"},
				tags: []string{"a", "b"}, notes: [][2]string{{"x", "y\nz"}},
				labels: map[string]string{"k": "v"}, drafts: map[string][2]string{"d": {"t", "b\n"}},
				attachment: []byte("\x00\xff\n"),
			},
		},
		{
			name: "top-level string",
			req:  request{parent: "a\x00b"},
			want: []errs.FieldViolation{{Field: "parent", Description: nul}},
		},
		{
			name: "nested message",
			req:  request{note: &[2]string{"a\nb", "c\x00d"}},
			want: []errs.FieldViolation{
				{Field: "note.body", Description: nul},
				{Field: "note.title", Description: lf},
			},
		},
		{
			name: "repeated strings and messages by index",
			req:  request{tags: []string{"ok", "ok", "bad\u202e"}, notes: [][2]string{{"ok", "ok"}, {"ok", "\x7f"}}},
			want: []errs.FieldViolation{
				{Field: "tags[2]", Description: "must not contain bidirectional text controls (found U+202E)"},
				{Field: "notes[1].body", Description: "must not contain control characters (found U+007F)"},
			},
		},
		{
			name: "map values and messages by key",
			req:  request{labels: map[string]string{"k": "\xff"}, drafts: map[string][2]string{"d": {"\t", ""}}},
			want: []errs.FieldViolation{
				{Field: `labels["k"]`, Description: "must be valid UTF-8"},
				{Field: `drafts["d"].title`, Description: "must be a single line (no tab or line break, found U+0009)"},
			},
		},
		{
			name: "a map key",
			req:  request{labels: map[string]string{"a\x00": "v"}},
			want: []errs.FieldViolation{{Field: "labels", Description: "key " + nul}},
		},
	}
	var v validate.Validator
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := violations(t, v.Check(build(tt.req)))
			less := func(a, b errs.FieldViolation) bool { return a.Field < b.Field }
			if diff := cmp.Diff(tt.want, got, cmpopts.SortSlices(less)); diff != "" {
				t.Errorf("Check violations (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCheckTextInAPI checks the text rule on the real API: any request
// field, however deep, and the multiline fields the .proto files mark.
func TestCheckTextInAPI(t *testing.T) {
	tests := []struct {
		name string
		req  proto.Message
		want []errs.FieldViolation
	}{
		{
			name: "organization display name with NUL",
			req:  &accountsv1.UpdateOrganizationRequest{Organization: &accountsv1.Organization{DisplayName: "a\x00b"}},
			want: []errs.FieldViolation{{Field: "organization.displayName", Description: "must not contain control characters (found U+0000)"}},
		},
		{
			name: "field mask paths are text too",
			req:  &accountsv1.UpdateOrganizationRequest{Organization: &accountsv1.Organization{}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display\x00Name"}}},
			want: []errs.FieldViolation{{Field: "updateMask.paths[0]", Description: "must not contain control characters (found U+0000)"}},
		},
		{
			name: "a display name is one line",
			req:  signUp(func(r *accountsv1.SignUpRequest) { r.DisplayName = "Ada\r\nBcc: x@example.com" }),
			want: []errs.FieldViolation{{Field: "displayName", Description: "must be a single line (no tab or line break, found U+000D)"}},
		},
		{
			name: "a password may hold spaces but no controls",
			req:  signUp(func(r *accountsv1.SignUpRequest) { r.Password = "correct horse \x00battery" }),
			want: []errs.FieldViolation{{Field: "password", Description: "must not contain control characters (found U+0000)"}},
		},
		{
			name: "a signature template is multiline",
			req:  &mailboxesv1.CreateSignatureRequest{Parent: "p", Signature: &mailboxesv1.Signature{Template: "--\n{{name}}\r\n\t{{email}}"}},
		},
		{
			name: "an auto-reply message is multiline, its subject is not",
			req:  &mailboxesv1.UpdateAutoReplyRequest{AutoReply: &mailboxesv1.AutoReply{Subject: "Away\n", Message: "Away.\n\nBack Monday."}},
			want: []errs.FieldViolation{{Field: "autoReply.subject", Description: "must be a single line (no tab or line break, found U+000A)"}},
		},
		{
			name: "multiline still refuses NUL",
			req:  &mailboxesv1.CreateSignatureRequest{Parent: "p", Signature: &mailboxesv1.Signature{Template: "--\n\x00"}},
			want: []errs.FieldViolation{{Field: "signature.template", Description: "must not contain control characters (found U+0000)"}},
		},
		{
			name: "aliases by index",
			req: &mailboxesv1.CreateAddressRequest{Parent: "p", Address: &mailboxesv1.Address{
				LocalPart: "ada", Aliases: []string{"a", "b", "c", "d\u2067"}}},
			want: []errs.FieldViolation{{Field: "address.aliases[3]", Description: "must not contain bidirectional text controls (found U+2067)"}},
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
