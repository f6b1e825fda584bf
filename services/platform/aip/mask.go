package aip

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mailplane/mailplane/services/platform/errs"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// UpdatePaths returns the fields of resource an Update changes, as proto
// field names in the order of updatable. It is the one rule every Update
// follows (AIP-134):
//   - no mask, or one without paths: the updatable fields the request sets
//     (non-zero), so a client sends only what it changes;
//   - "*": every updatable field, so a client can reset one to zero;
//   - otherwise the paths named, in proto ("display_name") or JSON
//     ("displayName") form; any other path is InvalidArgument.
//
// Fields that are not updatable (name, output-only fields) are ignored when
// the mask is absent. An update that changes nothing is InvalidArgument
// naming updateMask.
func UpdatePaths(mask *fieldmaskpb.FieldMask, resource proto.Message, updatable ...string) ([]string, error) {
	paths := mask.GetPaths()
	var set []string
	switch {
	case len(paths) == 0:
		m := resource.ProtoReflect()
		fields := m.Descriptor().Fields()
		for _, f := range updatable {
			if fd := fields.ByName(protoreflect.Name(f)); fd != nil && m.Has(fd) {
				set = append(set, f)
			}
		}
	case len(paths) == 1 && paths[0] == "*":
		set = slices.Clone(updatable)
	default:
		named := map[string]bool{}
		for _, p := range paths {
			p = snakeCase(p)
			if !slices.Contains(updatable, p) {
				return nil, errs.Field("updateMask", fmt.Sprintf("field %q cannot be updated; updatable: %s", p, jsonNames(updatable)))
			}
			named[p] = true
		}
		for _, f := range updatable {
			if named[f] {
				set = append(set, f)
			}
		}
	}
	if len(set) == 0 {
		return nil, errs.Field("updateMask", "names no field to change; updatable: "+jsonNames(updatable))
	}
	return set, nil
}

func jsonNames(fields []string) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = camelCase(f)
	}
	return strings.Join(names, ", ")
}

// camelCase turns a proto field name ("legal_name") into its JSON name.
func camelCase(f string) string {
	parts := strings.Split(f, "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}

// snakeCase turns a JSON name ("legalName") into its proto form
// ("legal_name"); gRPC callers send the latter, REST callers the former.
func snakeCase(p string) string {
	var b strings.Builder
	for _, r := range p {
		if 'A' <= r && r <= 'Z' {
			b.WriteByte('_')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
