// Package attacktest is the service-independent part of an attack review:
// it walks a service's gRPC methods by reflection, builds each request
// naming a given resource, fills every string field with hostile values,
// and says which answers are bugs. A service's attack_test.go gives the
// table (which resource each method acts on, which methods a member may
// call, what makes a request otherwise valid) and its own expectations;
// a method added to the proto without a row fails the test, so none
// escapes the review.
package attacktest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	apiv1 "github.com/mailplane/mailplane/proto/mailplane/api/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Suite is the attack on one service's API.
type Suite struct {
	// Conn reaches the service.
	Conn grpc.ClientConnInterface
	// Files are the proto files whose services are attacked.
	Files []protoreflect.FileDescriptor
	// Skip are services (by short name) not attacked here: no caller to
	// attack, or attacked by a test of their own.
	Skip []string
	// Targets: each method's (short name) resource, put in its request.
	Targets map[string]string
	// Reads are the methods an organization's member may call.
	Reads map[string]bool
	// Valid fills what a request needs besides its resource, so that a
	// refusal is the attack's doing, not a missing field's; nil: nothing.
	Valid func(proto.Message)
	// Ignored are field paths a request may carry that the service does
	// not read (output only, the resource's name on create), matched as
	// a suffix after a "." or "]", or "Method:path" for one method's
	// field only: any answer but a bug is fine.
	Ignored []string
}

// Method is one method under attack and the resource its request names.
type Method struct {
	Desc   protoreflect.MethodDescriptor
	Target string
	// Read: an organization's member may call it.
	Read bool
}

// Name is the method's short name.
func (m Method) Name() string { return string(m.Desc.Name()) }

// Methods is every method of the suite's services, each with its
// target; a method with no row in Targets is an error of t.
func (s *Suite) Methods(t testing.TB) []Method {
	t.Helper()
	var out []Method
	for _, fd := range s.Files {
		svcs := fd.Services()
		for i := range svcs.Len() {
			svc := svcs.Get(i)
			if contains(s.Skip, string(svc.Name())) {
				continue
			}
			ms := svc.Methods()
			for j := range ms.Len() {
				m := ms.Get(j)
				target, ok := s.Targets[string(m.Name())]
				if !ok {
					t.Errorf("%s has no row in the attack table", m.FullName())
					continue
				}
				out = append(out, Method{Desc: m, Target: target, Read: s.Reads[string(m.Name())]})
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no method to attack")
	}
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// Request builds m's request naming target: its name or parent, or the
// name of the resource it carries (an update's), then made valid.
func (s *Suite) Request(t testing.TB, m Method, target string) proto.Message {
	t.Helper()
	mt, err := protoregistry.GlobalTypes.FindMessageByName(m.Desc.Input().FullName())
	if err != nil {
		t.Fatal(err)
	}
	msg := mt.New()
	if !name(msg, target) {
		t.Fatalf("%s: no field to name %s in", m.Desc.FullName(), target)
	}
	req := msg.Interface()
	if s.Valid != nil {
		s.Valid(req)
	}
	return req
}

// name sets m's name or parent to target, or its resource's name.
func name(m protoreflect.Message, target string) bool {
	fields := m.Descriptor().Fields()
	for _, n := range []protoreflect.Name{"name", "parent"} {
		if fd := fields.ByName(n); fd != nil && fd.Kind() == protoreflect.StringKind && !fd.IsList() {
			m.Set(fd, protoreflect.ValueOfString(target))
			return true
		}
	}
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap() {
			if nfd := fd.Message().Fields().ByName("name"); nfd != nil {
				m.Mutable(fd).Message().Set(nfd, protoreflect.ValueOfString(target))
				return true
			}
		}
	}
	return false
}

// Call invokes m with req as ctx's caller and returns its error; a
// server-streaming method's error is its first message's.
func (s *Suite) Call(ctx context.Context, m Method, req proto.Message) error {
	full := "/" + string(m.Desc.Parent().FullName()) + "/" + string(m.Desc.Name())
	resp, err := protoregistry.GlobalTypes.FindMessageByName(m.Desc.Output().FullName())
	if err != nil {
		return err
	}
	if m.Desc.IsStreamingServer() {
		st, err := s.Conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, full)
		if err != nil {
			return err
		}
		if err := st.SendMsg(req); err != nil {
			return err
		}
		if err := st.CloseSend(); err != nil {
			return err
		}
		return st.RecvMsg(resp.New().Interface())
	}
	return s.Conn.Invoke(ctx, full, req, resp.New().Interface())
}

// Never fails t when err is a code an attack must not get: a bug, not an
// answer.
func Never(t testing.TB, what string, err error) {
	t.Helper()
	switch status.Code(err) {
	case codes.Internal, codes.Unknown, codes.Unavailable, codes.DataLoss:
		t.Errorf("%s: %v", what, err)
	}
}

// Named reports whether err's message or one of its field violations
// mentions field.
func Named(err error, field string) bool {
	st := status.Convert(err)
	text := st.Message()
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				text += " " + v.GetField()
			}
		}
	}
	return strings.Contains(text, field)
}

// WantCode fails t unless err has code want and, when field is not
// empty, names it.
func WantCode(t testing.TB, err error, want codes.Code, field string) {
	t.Helper()
	if status.Code(err) != want {
		t.Errorf("got %v, want %v", err, want)
		return
	}
	if field != "" && !Named(err, field) {
		t.Errorf("error %v does not name %s", err, field)
	}
}

// Hostile are values no text field takes ("header feed" only the fields
// annotated multiline do).
var Hostile = map[string]string{
	"NUL":         "a\x00b",
	"escape":      "a\x1b[31mb",
	"C1":          "a\u0085b",
	"bidi":        "a\u202eb",
	"DEL":         "a\x7fb",
	"a megabyte":  strings.Repeat("x", 1<<20),
	"header feed": "x\r\nBcc: victim@example.org",
}

// Strings gives every string field of every request, at any depth (the
// resource names too), each hostile value, as ctx's caller (an admin):
// each must be refused with InvalidArgument naming the field by its JSON
// path; nothing may answer Internal.
func (s *Suite) Strings(t *testing.T, ctx context.Context) {
	t.Helper()
	for _, m := range s.Methods(t) {
		for _, path := range StringFields(m.Desc.Input()) {
			for what, v := range Hostile {
				req := s.Request(t, m, m.Target)
				SetPath(req.ProtoReflect(), path, v)
				err := s.Call(ctx, m, req)
				Never(t, fmt.Sprintf("%s %s %s", m.Name(), path, what), err)
				if s.ignored(m, path) || (what == "header feed" && Multiline(m.Desc.Input(), path)) {
					continue
				}
				json := JSONPath(m.Desc.Input(), path)
				if status.Code(err) != codes.InvalidArgument || !Named(err, json) {
					t.Errorf("%s with %s in %s: %.300v, want InvalidArgument naming %s", m.Name(), what, path, err, json)
				}
			}
		}
	}
}

func (s *Suite) ignored(m Method, path string) bool {
	for _, p := range s.Ignored {
		if method, field, ok := strings.Cut(p, ":"); ok {
			if method == m.Name() && field == path {
				return true
			}
			continue
		}
		if path == p || strings.HasSuffix(path, "."+p) || strings.HasSuffix(path, "]"+p) {
			return true
		}
	}
	return false
}

// PageTokens gives every method with a page_token forged tokens (and the
// tokens given, say one of another query's pages, altered): each must be
// InvalidArgument; absurd page sizes must not be a bug.
func (s *Suite) PageTokens(t *testing.T, ctx context.Context, tokens ...string) {
	t.Helper()
	forged := []string{"garbage", "AAAA", strings.Repeat("A", 4096)}
	for _, tok := range tokens {
		forged = append(forged, tok+"x")
	}
	for _, m := range s.Methods(t) {
		fields := m.Desc.Input().Fields()
		tok, size := fields.ByName("page_token"), fields.ByName("page_size")
		if tok == nil {
			continue
		}
		for _, f := range forged {
			req := s.Request(t, m, m.Target)
			req.ProtoReflect().Set(tok, protoreflect.ValueOfString(f))
			if err := s.Call(ctx, m, req); status.Code(err) != codes.InvalidArgument {
				t.Errorf("%s with page token %.20q: %v, want InvalidArgument", m.Name(), f, err)
			}
		}
		if size == nil {
			continue
		}
		for _, n := range []int32{-1, 1 << 30} {
			req := s.Request(t, m, m.Target)
			req.ProtoReflect().Set(size, protoreflect.ValueOfInt32(n))
			Never(t, fmt.Sprintf("%s page size %d", m.Name(), n), s.Call(ctx, m, req))
		}
	}
}

// StringFields lists the string fields of md as dotted paths of field
// names (a list's first element "[0]"), two messages deep, well-known
// types left out.
func StringFields(md protoreflect.MessageDescriptor) []string {
	return stringFields(md, "", 0)
}

func stringFields(md protoreflect.MessageDescriptor, prefix string, depth int) []string {
	var out []string
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		switch {
		case fd.IsMap():
		case fd.IsList() && fd.Kind() == protoreflect.StringKind:
			out = append(out, prefix+string(fd.Name())+"[0]")
		case fd.IsList() && fd.Kind() == protoreflect.MessageKind && depth < 2:
			out = append(out, stringFields(fd.Message(), prefix+string(fd.Name())+"[0].", depth+1)...)
		case fd.IsList():
		case fd.Kind() == protoreflect.StringKind:
			out = append(out, prefix+string(fd.Name()))
		case fd.Kind() == protoreflect.MessageKind && depth < 2 && !strings.HasPrefix(string(fd.Message().FullName()), "google.protobuf"):
			out = append(out, stringFields(fd.Message(), prefix+string(fd.Name())+".", depth+1)...)
		}
	}
	return out
}

// SetPath sets the string at path ("list.moderators[0].email") to v; a
// list gets one element.
func SetPath(m protoreflect.Message, path, v string) {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		name, isList := strings.CutSuffix(p, "[0]")
		fd := m.Descriptor().Fields().ByName(protoreflect.Name(name))
		if isList {
			// The first element, made when the request has none.
			l := m.Mutable(fd).List()
			if l.Len() == 0 {
				l.Append(l.NewElement())
			}
			m = l.Get(0).Message()
			continue
		}
		m = m.Mutable(fd).Message()
	}
	name, isList := strings.CutSuffix(parts[len(parts)-1], "[0]")
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(name))
	if isList {
		l := m.Mutable(fd).List()
		l.Truncate(0)
		l.Append(protoreflect.ValueOfString(v))
		return
	}
	m.Set(fd, protoreflect.ValueOfString(v))
}

// field is the descriptor of path's last field.
func field(md protoreflect.MessageDescriptor, path string) protoreflect.FieldDescriptor {
	var fd protoreflect.FieldDescriptor
	for _, p := range strings.Split(path, ".") {
		name, _ := strings.CutSuffix(p, "[0]")
		fd = md.Fields().ByName(protoreflect.Name(name))
		if fd.Kind() == protoreflect.MessageKind {
			md = fd.Message()
		}
	}
	return fd
}

// JSONPath is path as errors name it: JSON names.
func JSONPath(md protoreflect.MessageDescriptor, path string) string {
	var out []string
	for _, p := range strings.Split(path, ".") {
		name, isList := strings.CutSuffix(p, "[0]")
		fd := md.Fields().ByName(protoreflect.Name(name))
		if isList {
			out = append(out, fd.JSONName()+"[0]")
		} else {
			out = append(out, fd.JSONName())
		}
		if fd.Kind() == protoreflect.MessageKind {
			md = fd.Message()
		}
	}
	return strings.Join(out, ".")
}

// Multiline reports whether the field at path is annotated to take line
// breaks ((mailplane.api.v1.field).multiline).
func Multiline(md protoreflect.MessageDescriptor, path string) bool {
	opts := field(md, path).Options()
	if opts == nil || !proto.HasExtension(opts, apiv1.E_Field) {
		return false
	}
	return proto.GetExtension(opts, apiv1.E_Field).(*apiv1.FieldRules).GetMultiline()
}
