package imapcopy

import (
	"bytes"
	"crypto/sha256"
	"hash"
	"strings"
)

// A message's identity, for duplicates (docs/imports.md, "Duplicates"):
// the chosen header fields below, unfolded, and its body with line ends
// ignored. Trace fields (Received, Delivered-To, Return-Path, ...) are
// not in it: the same message delivered to two addresses, or copied by
// another tool, is the same message; a message whose Message-ID is reused
// with another subject, date or body is another.
//
// The identity is in two parts so that a destination folder is indexed
// by its header fields alone (a FETCH of a few hundred bytes a message):
// only a message whose header key matches one there has its body hashed.

// identityFields are the header fields of the header key, in this order.
var identityFields = []string{"Message-Id", "Date", "From", "To", "Cc", "Subject"}

// identityFetch is the FETCH section of the identity fields.
const identityFetch = "MESSAGE-ID DATE FROM TO CC SUBJECT"

// headerKey is the hash of a message's identity fields.
type headerKey [16]byte

// identity is a message's whole identity: its header key and body hash.
type identity struct {
	header headerKey
	body   [16]byte
}

// keyOfHeader returns the header key of a header section (the raw bytes
// up to the blank line, or only the identity fields: the same either way).
func keyOfHeader(header []byte) headerKey {
	values := make([][]string, len(identityFields))
	for _, f := range splitFields(header) {
		name, value, ok := bytes.Cut(f, []byte(":"))
		if !ok {
			continue
		}
		n := strings.TrimSpace(string(name))
		for i, want := range identityFields {
			if strings.EqualFold(n, want) {
				values[i] = append(values[i], strings.Join(strings.Fields(string(value)), " "))
			}
		}
	}
	h := sha256.New()
	for i, vs := range values {
		h.Write([]byte(identityFields[i]))
		for _, v := range vs {
			h.Write([]byte{0})
			h.Write([]byte(v))
		}
		h.Write([]byte{1})
	}
	var k headerKey
	copy(k[:], h.Sum(nil))
	return k
}

// splitFields splits a header section into its fields, each with its
// continuation lines.
func splitFields(header []byte) [][]byte {
	var fields [][]byte
	for len(header) > 0 {
		line, rest, _ := bytes.Cut(header, []byte("\n"))
		header = rest
		if len(bytes.TrimRight(line, "\r")) == 0 {
			break // the blank line: the body starts
		}
		if (line[0] == ' ' || line[0] == '\t') && len(fields) > 0 {
			last := len(fields) - 1
			fields[last] = append(append(fields[last], ' '), line...)
			continue
		}
		fields = append(fields, bytes.Clone(line))
	}
	return fields
}

// splitMessage splits a raw message into its header section (with the
// blank line) and body, as IMAP's BODY[HEADER] and BODY[TEXT] do.
func splitMessage(raw []byte) (header, body []byte) {
	for i := 0; i < len(raw); {
		j := bytes.IndexByte(raw[i:], '\n')
		if j < 0 {
			return raw, nil
		}
		line := raw[i : i+j]
		i += j + 1
		if len(bytes.TrimRight(line, "\r")) == 0 {
			return raw[:i], raw[i:]
		}
	}
	return raw, nil
}

// bodyHash hashes a body, line ends ignored: a store may turn bare LF
// into CRLF.
type bodyHash struct{ h hash.Hash }

func newBodyHash() bodyHash { return bodyHash{sha256.New()} }

func (b bodyHash) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\r')
		if i < 0 {
			b.h.Write(p)
			break
		}
		b.h.Write(p[:i])
		p = p[i+1:]
	}
	return n, nil
}

func (b bodyHash) sum() [16]byte {
	var s [16]byte
	copy(s[:], b.h.Sum(nil))
	return s
}

// identityOf is the identity of a raw message.
func identityOf(raw []byte) identity {
	header, body := splitMessage(raw)
	h := newBodyHash()
	h.Write(body)
	return identity{header: keyOfHeader(header), body: h.sum()}
}
