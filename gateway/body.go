package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// Request bodies are JSON, and only JSON: a field or enum name the API does
// not know is refused rather than dropped (a dropped one can make a request
// do something else than asked, e.g. a device password for every protocol
// when the one named was misspelt), and so is text after the document.

// jsonMarshaler is protojson with unknown fields and enum names refused.
func jsonMarshaler() runtime.Marshaler {
	return &runtime.HTTPBodyMarshaler{Marshaler: &strictJSON{JSONPb: runtime.JSONPb{
		// grpc-gateway's default marshaler emits every unset field; answer
		// with the fields that are set, as protojson does by default.
		MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: false},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}}}
}

// strictJSON decodes with runtime.JSONPb and, when it refuses a body, finds
// the member at fault.
type strictJSON struct {
	runtime.JSONPb
}

// Unmarshal decodes data, one JSON document, into v.
func (m *strictJSON) Unmarshal(data []byte, v any) error {
	if err := checkJSON(data); err != nil {
		return err
	}
	if err := m.JSONPb.Unmarshal(data, v); err != nil {
		return explain(data, v, err)
	}
	return nil
}

// NewDecoder returns a decoder of the whole of r as one JSON document. An
// empty body decodes as io.EOF, which the generated handlers take as an
// empty message.
func (m *strictJSON) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		data, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(data)) == 0 {
			return io.EOF
		}
		return m.Unmarshal(data, v)
	})
}

// inputError is a part of a request the edge refused: a member of the body,
// a query parameter, a header. The generated handlers turn a decoding error
// into a status with its text (status.Errorf("%v")), so the field travels in
// the text and errorHandler takes it out again (parseInputError) to answer a
// google.rpc.BadRequest naming it.
type inputError struct {
	// field is the JSON path in the body ("address.kind"), the query
	// parameter or the header; empty: the body as a whole.
	field string
	desc  string
	// query tells that field is a query parameter.
	query bool
}

const (
	bodyErrorPrefix      = "request body: "
	bodyFieldErrorPrefix = "request body field "
	queryErrorPrefix     = "query parameter "
)

func (e *inputError) Error() string {
	switch {
	case e.query:
		return queryErrorPrefix + strconv.Quote(e.field) + ": " + e.desc
	case e.field == "":
		return bodyErrorPrefix + e.desc
	}
	return bodyFieldErrorPrefix + strconv.Quote(e.field) + ": " + e.desc
}

// parseInputError returns the inputError whose text msg is.
func parseInputError(msg string) (*inputError, bool) {
	if desc, ok := strings.CutPrefix(msg, bodyErrorPrefix); ok {
		return &inputError{desc: desc}, true
	}
	rest, ok := strings.CutPrefix(msg, bodyFieldErrorPrefix)
	query := false
	if !ok {
		if rest, ok = strings.CutPrefix(msg, queryErrorPrefix); !ok {
			return nil, false
		}
		query = true
	}
	q, err := strconv.QuotedPrefix(rest)
	if err != nil {
		return nil, false
	}
	desc, ok := strings.CutPrefix(rest[len(q):], ": ")
	field, err := strconv.Unquote(q)
	if !ok || err != nil {
		return nil, false
	}
	return &inputError{field: field, desc: desc, query: query}, true
}

// strictQuery is grpc-gateway's query parser with unknown parameters
// refused (a misspelt filter would otherwise list everything).
type strictQuery struct {
	runtime.DefaultQueryParser
}

// Parse sets msg's fields from the query parameters in values, except those
// in filter (bound from the path or the body).
func (p *strictQuery) Parse(msg proto.Message, values url.Values, filter *utilities.DoubleArray) error {
	// One parameter at a time, so that an error names its parameter.
	seen := make(map[string]bool, len(values))
	for _, key := range slices.Sorted(maps.Keys(values)) {
		name, entry := key, ""
		if i := strings.IndexByte(key, '['); i > 0 && strings.HasSuffix(key, "]") {
			name, entry = key[:i], key[i:] // a map entry: labels[key]=value
		}
		md := msg.ProtoReflect().Descriptor()
		var path []string
		for seg := range strings.SplitSeq(name, ".") {
			var fd protoreflect.FieldDescriptor
			if md != nil {
				if fd = md.Fields().ByName(protoreflect.Name(seg)); fd == nil {
					fd = md.Fields().ByJSONName(seg)
				}
			}
			if fd == nil {
				return &inputError{field: key, desc: "unknown query parameter", query: true}
			}
			path = append(path, string(fd.Name()))
			md = nil
			if fd.Message() != nil && !fd.IsList() && !fd.IsMap() && !wellKnown(fd.Message()) {
				md = fd.Message()
			}
		}
		// Its proto name and its JSON name both set a field: refuse
		// both at once rather than keep either.
		field := strings.Join(path, ".") + entry
		if seen[field] {
			return &inputError{field: key, desc: "sets a field another parameter sets", query: true}
		}
		seen[field] = true
		for _, v := range values[key] {
			if !utf8.ValidString(v) {
				// A proto string must be UTF-8: the call would fail as
				// an internal error.
				return &inputError{field: key, desc: "must be valid UTF-8", query: true}
			}
		}
		if err := p.DefaultQueryParser.Parse(msg, url.Values{key: values[key]}, filter); err != nil {
			return &inputError{field: key, desc: err.Error(), query: true}
		}
	}
	return nil
}

// checkJSON refuses data unless it is exactly one JSON document.
func checkJSON(data []byte) error {
	d := json.NewDecoder(bytes.NewReader(data))
	var v json.RawMessage
	if err := d.Decode(&v); err != nil {
		return &inputError{desc: "not valid JSON: " + strings.TrimPrefix(err.Error(), "json: ")}
	}
	if _, err := d.Token(); err != io.EOF {
		return &inputError{desc: "text after the JSON document"}
	}
	return nil
}

// explain describes why protojson refused data for v: the first member, in
// key order, that it refuses on its own, found by decoding one member at a
// time. Failing that, protojson's own words.
func explain(data []byte, v any, err error) error {
	if md := descriptorOf(v); md != nil {
		if be := badMember(md, data, ""); be != nil {
			return be
		}
	}
	// protojson's errors start with "proto:" and a space or a no-break
	// space, chosen at random per build so that nobody matches on them.
	msg := strings.TrimLeft(strings.TrimPrefix(err.Error(), "proto:"), " \u00a0")
	return &inputError{desc: msg}
}

// descriptorOf returns the message descriptor of v, a message or a pointer
// to a message pointer (a body that is one field of the request).
func descriptorOf(v any) protoreflect.MessageDescriptor {
	if m, ok := v.(proto.Message); ok {
		return m.ProtoReflect().Descriptor()
	}
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Pointer {
		return nil
	}
	if m, ok := reflect.New(t.Elem().Elem()).Interface().(proto.Message); ok {
		return m.ProtoReflect().Descriptor()
	}
	return nil
}

// badMember returns the first member of the JSON object data that protojson
// refuses for md, or nil if it finds none.
func badMember(md protoreflect.MessageDescriptor, data []byte, path string) *inputError {
	if wellKnown(md) {
		return &inputError{field: path, desc: "must be " + wellKnownForm(md)}
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return &inputError{field: path, desc: "must be a JSON object"}
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		v := obj[k]
		p := joinPath(path, k)
		fd := md.Fields().ByJSONName(k)
		if fd == nil {
			fd = md.Fields().ByName(protoreflect.Name(k))
		}
		if fd == nil {
			return &inputError{field: p, desc: "unknown field"}
		}
		if accepts(md, k, v) {
			continue
		}
		switch {
		case fd.IsList():
			var elems []json.RawMessage
			if json.Unmarshal(v, &elems) != nil {
				return &inputError{field: p, desc: "must be a JSON array"}
			}
			for i, e := range elems {
				if i == maxExplainedElements {
					return &inputError{field: p, desc: "holds a value that is not valid"}
				}
				ep := p + "[" + strconv.Itoa(i) + "]"
				if be := badValue(fd, e, ep, func() bool { return accepts(md, k, listOf(e)) }); be != nil {
					return be
				}
			}
		case fd.IsMap():
			var m map[string]json.RawMessage
			if json.Unmarshal(v, &m) != nil {
				return &inputError{field: p, desc: "must be a JSON object"}
			}
			for i, key := range slices.Sorted(maps.Keys(m)) {
				if i == maxExplainedElements {
					return &inputError{field: p, desc: "holds a value that is not valid"}
				}
				e := m[key]
				ep := p + "[" + strconv.Quote(key) + "]"
				one, _ := json.Marshal(map[string]json.RawMessage{key: e})
				if be := badValue(fd.MapValue(), e, ep, func() bool { return accepts(md, k, one) }); be != nil {
					return be
				}
			}
		default:
			if be := badValue(fd, v, p, func() bool { return false }); be != nil {
				return be
			}
		}
	}
	return nil
}

// badValue describes what is wrong with v, a value of a field (one element
// of a list or map field) that ok reports whether protojson accepts.
func badValue(fd protoreflect.FieldDescriptor, v []byte, path string, ok func() bool) *inputError {
	if fd.Message() != nil && !wellKnown(fd.Message()) {
		return badMember(fd.Message(), v, path)
	}
	if fd.Kind() == protoreflect.EnumKind {
		// The usual case, answered without decoding again: an enum name
		// must be one of the enum's (a number is taken as it is).
		var name string
		if json.Unmarshal(v, &name) == nil {
			if fd.Enum().Values().ByName(protoreflect.Name(name)) != nil {
				return nil
			}
			return &inputError{field: path, desc: describe(fd, v)}
		}
	}
	if ok() {
		return nil
	}
	return &inputError{field: path, desc: describe(fd, v)}
}

// accepts reports whether protojson takes {"key": v} as a message of md.
func accepts(md protoreflect.MessageDescriptor, key string, v []byte) bool {
	one, err := json.Marshal(map[string]json.RawMessage{key: v})
	if err != nil {
		return false
	}
	return protojson.Unmarshal(one, dynamicpb.NewMessage(md)) == nil
}

func listOf(v []byte) []byte {
	return append(append([]byte("["), v...), ']')
}

func joinPath(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// maxExplainedElements bounds the elements of a list (entries of a map)
// checked one by one for the culprit, which may cost a decoding each: a
// 4 MiB body holds a million.
const maxExplainedElements = 1000

// maxEnumNames bounds the values an unknown enum name's error lists.
const maxEnumNames = 20

// describe says what a value of fd must be.
func describe(fd protoreflect.FieldDescriptor, v []byte) string {
	switch fd.Kind() {
	case protoreflect.EnumKind:
		var names []string
		values := fd.Enum().Values()
		for i := range values.Len() {
			if n := string(values.Get(i).Name()); !strings.HasSuffix(n, "_UNSPECIFIED") && len(names) < maxEnumNames {
				names = append(names, n)
			}
		}
		return fmt.Sprintf("unknown value %s; one of %s", v, strings.Join(names, ", "))
	case protoreflect.BoolKind:
		return "must be true or false"
	case protoreflect.StringKind:
		return "must be a string"
	case protoreflect.BytesKind:
		return "must be a base64 string"
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return "must be a number"
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return "must be " + wellKnownForm(fd.Message())
	default:
		return "must be an integer"
	}
}

// wellKnown reports whether protojson gives md a JSON form of its own.
func wellKnown(md protoreflect.MessageDescriptor) bool {
	return md.ParentFile() != nil && md.ParentFile().Package() == "google.protobuf"
}

func wellKnownForm(md protoreflect.MessageDescriptor) string {
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		return `an RFC 3339 time, e.g. "2026-01-02T15:04:05Z"`
	case "google.protobuf.Duration":
		return `a duration in seconds, e.g. "1.5s"`
	case "google.protobuf.FieldMask":
		return `field names separated by commas, e.g. "displayName,legalName"`
	}
	if wellKnown(md) {
		return "a valid " + string(md.Name())
	}
	return "a JSON object"
}

// jsonContentType reports whether a request body of content type ct is
// JSON: application/json or application/*+json, in UTF-8.
func jsonContentType(ct string) bool {
	typ, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	sub, ok := strings.CutPrefix(typ, "application/")
	if !ok || sub != "json" && !strings.HasSuffix(sub, "+json") {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8") || strings.EqualFold(cs, "utf8")
}

// checkBody is the mux middleware that refuses a request body that is not
// JSON (415), too large (413) or not exactly one JSON document (400) before
// the route's handler sees it. Requests without a body pass, whatever their
// Content-Type, and so do GET and DELETE, whose routes take no body and
// never read one; the CSV upload checks its own body.
func checkBody(mux *runtime.ServeMux) runtime.Middleware {
	return func(next runtime.HandlerFunc) runtime.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
			takesBody := r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch
			if !takesBody || r.Body == nil || r.Body == http.NoBody || strings.HasSuffix(r.URL.Path, bulkCreateVerb) {
				next(w, r, params)
				return
			}
			_, out := runtime.MarshalerForRequest(mux, r)
			body, err := io.ReadAll(r.Body)
			if err != nil {
				runtime.HTTPError(r.Context(), mux, out, w, r, bodyReadError(err))
				return
			}
			if len(body) > 0 {
				if !jsonContentType(r.Header.Get("Content-Type")) {
					runtime.HTTPError(r.Context(), mux, out, w, r, notJSONError())
					return
				}
				if err := checkJSON(body); err != nil {
					runtime.HTTPError(r.Context(), mux, out, w, r, status.Error(codes.InvalidArgument, err.Error()))
					return
				}
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			next(w, r, params)
		}
	}
}

// checkPathParams refuses a path parameter that is not UTF-8 once
// unescaped (/v1/organizations/o%FF/...), 400 naming it: a proto string
// must be UTF-8, so the call would fail as an internal error.
func checkPathParams(mux *runtime.ServeMux) runtime.Middleware {
	return func(next runtime.HandlerFunc) runtime.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
			for k, v := range params {
				if !utf8.ValidString(v) {
					_, out := runtime.MarshalerForRequest(mux, r)
					err := &inputError{field: k, desc: "must be valid UTF-8"}
					runtime.HTTPError(r.Context(), mux, out, w, r, err.status())
					return
				}
			}
			next(w, r, params)
		}
	}
}

// notJSONError is the 415 of a body that is not JSON.
func notJSONError() error {
	return &runtime.HTTPStatusError{
		HTTPStatus: http.StatusUnsupportedMediaType,
		Err:        status.Error(codes.InvalidArgument, "send the request body as JSON with Content-Type: application/json"),
	}
}

// bodyReadError is the error of a request body that could not be read:
// 413 when it is larger than the edge takes.
func bodyReadError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return &runtime.HTTPStatusError{
			HTTPStatus: http.StatusRequestEntityTooLarge,
			Err:        status.Errorf(codes.InvalidArgument, "the request body is larger than %d MiB", tooBig.Limit>>20),
		}
	}
	return &runtime.HTTPStatusError{
		HTTPStatus: http.StatusBadRequest,
		Err:        status.Error(codes.InvalidArgument, "could not read the request body"),
	}
}
