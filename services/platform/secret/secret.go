// Package secret encrypts the secrets services keep in their databases
// (TSIG secrets, DKIM private keys, mailbox passwords of other servers), so
// that a copy of the database, a backup or a dump alone does not give them
// away.
//
// A Box holds AES-256-GCM keys, configured as one setting: base64 keys
// separated by commas (by convention --secret-keys, MAILPLANE_SECRET_KEYS).
// The first key seals; every key opens, so keys rotate without a flag day:
// put a new key first, keep the old ones after it until every row is sealed
// again (Box.Stale tells which), then drop them.
//
// Seal binds a ciphertext to additional data, which should name the row it
// belongs in (table and id): the same ciphertext copied to another row, or
// another column, does not open there.
package secret

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// KeySize is the length of a key in bytes (AES-256).
const KeySize = 32

// The sealed form is version, key id, nonce, then GCM's ciphertext and tag.
// The version and key id are authenticated with the caller's aad.
const (
	version  = 1
	idSize   = 4
	header   = 1 + idSize
	nonceLen = 12
	tagLen   = 16
	// Overhead is how many bytes Seal adds to a plaintext.
	Overhead = header + nonceLen + tagLen
)

var (
	// ErrUnknownKey is returned by Open when none of the box's keys sealed
	// the secret: a key was dropped from the setting while rows still
	// needed it, or the row came from another installation.
	ErrUnknownKey = errors.New("sealed with a key this box does not hold")
	// ErrInvalid is returned by Open when the bytes are not a sealed secret
	// of this package, were changed, or were sealed with other aad (for
	// another row).
	ErrInvalid = errors.New("not a valid sealed secret (changed, or sealed for another row)")
)

// Box seals and opens secrets with its keys. Its zero value holds none and
// panics on Seal; make one with NewBox or ParseKeys.
//
// A Box prints as its key ids only (fmt, slog), never its keys.
type Box struct {
	keys []key
}

type key struct {
	id   [idSize]byte
	aead cipher.AEAD
}

// keyID is a fingerprint of k, stored with each secret to find the key
// that opens it: a hash, so that it says nothing of the key.
func keyID(k []byte) [idSize]byte {
	h := sha256.New()
	h.Write([]byte("mailplane secret key id\x00"))
	h.Write(k)
	var id [idSize]byte
	copy(id[:], h.Sum(nil))
	return id
}

// NewBox returns a box sealing with the first of keys and opening with all
// of them. Each key is KeySize random bytes.
func NewBox(keys ...[]byte) (*Box, error) {
	if len(keys) == 0 {
		return nil, errors.New("no keys: want at least one")
	}
	b := &Box{keys: make([]key, 0, len(keys))}
	for i, k := range keys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("key %d: %d bytes, want %d (AES-256)", i+1, len(k), KeySize)
		}
		id := keyID(k)
		for j, o := range b.keys {
			if o.id == id {
				// The same key twice, or (one chance in 2^32) two keys
				// with one id, which Open could not tell apart.
				return nil, fmt.Errorf("key %d: same id as key %d; is it the same key? if not, make another", i+1, j+1)
			}
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		b.keys = append(b.keys, key{id: id, aead: aead})
	}
	return b, nil
}

// ParseKeys returns the box of a setting: base64 (standard, padded) keys
// separated by commas, the sealing key first. Errors name a key by its
// position, never by its value.
func ParseKeys(setting string) (*Box, error) {
	keys, err := decode(setting)
	if err != nil {
		return nil, err
	}
	return NewBox(keys...)
}

func decode(setting string) ([][]byte, error) {
	if strings.TrimSpace(setting) == "" {
		return nil, errors.New("no keys: want one or more base64 keys of 32 bytes, separated by commas")
	}
	var keys [][]byte
	for i, s := range strings.Split(setting, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, fmt.Errorf("key %d: empty", i+1)
		}
		k, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			// Not err itself: it is harmless (a byte offset) but says
			// nothing more.
			return nil, fmt.Errorf("key %d: not base64", i+1)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// NewKey returns a new random key, base64, for the setting.
func NewKey() string {
	k := make([]byte, KeySize)
	rand.Read(k)
	return base64.StdEncoding.EncodeToString(k)
}

// Seal encrypts plaintext with the box's first key, bound to aad: Open
// needs the same aad. aad should name where the secret is kept
// ("dnssecurity.tsig_keys/<id>"), so that it cannot be moved elsewhere.
//
// Each call draws a random nonce: a key may seal about 2^32 secrets before
// it should be rotated.
func (b Box) Seal(plaintext, aad []byte) []byte {
	if len(b.keys) == 0 {
		panic("secret: Seal on a Box without keys (use NewBox or ParseKeys)")
	}
	k := b.keys[0]
	out := make([]byte, header+nonceLen, header+nonceLen+len(plaintext)+tagLen)
	out[0] = version
	copy(out[1:header], k.id[:])
	rand.Read(out[header:])
	return k.aead.Seal(out, out[header:], plaintext, ad(out[:header], aad))
}

// ad is what GCM authenticates besides the plaintext: the header, so that a
// secret's key id or version cannot be changed, then the caller's aad. The
// header's length is fixed, so the two cannot be confused.
func ad(head, aad []byte) []byte {
	return append(bytes.Clone(head), aad...)
}

// Open decrypts sealed, made by Seal with one of the box's keys and the
// same aad. Its errors are ErrUnknownKey or ErrInvalid, wrapped.
func (b Box) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("%w: %d bytes, shorter than any (%d)", ErrInvalid, len(sealed), Overhead)
	}
	if sealed[0] != version {
		return nil, fmt.Errorf("%w: format version %d, want %d", ErrInvalid, sealed[0], version)
	}
	k, ok := b.key(sealed)
	if !ok {
		return nil, fmt.Errorf("%w: key id %x", ErrUnknownKey, sealed[1:header])
	}
	nonce, ct := sealed[header:header+nonceLen], sealed[header+nonceLen:]
	p, err := k.aead.Open(nil, nonce, ct, ad(sealed[:header], aad))
	if err != nil {
		return nil, fmt.Errorf("%w: key id %x: does not authenticate", ErrInvalid, k.id)
	}
	if p == nil {
		p = []byte{}
	}
	return p, nil
}

func (b Box) key(sealed []byte) (key, bool) {
	for _, k := range b.keys {
		if bytes.Equal(k.id[:], sealed[1:header]) {
			return k, true
		}
	}
	return key{}, false
}

// Stale reports whether sealed was not sealed with the box's first key,
// so that a rotation re-seals it (Open, then Seal). Bytes that are not a
// sealed secret are not stale: Open reports them.
func (b Box) Stale(sealed []byte) bool {
	if len(b.keys) == 0 || len(sealed) < Overhead || sealed[0] != version {
		return false
	}
	return !bytes.Equal(b.keys[0].id[:], sealed[1:header])
}

// String describes the box by its key ids, which are in every sealed
// secret anyway: "secret.Box{seal: 1a2b3c4d, open: 5e6f7a8b}".
func (b Box) String() string {
	var s strings.Builder
	s.WriteString("secret.Box{")
	for i, k := range b.keys {
		switch i {
		case 0:
			s.WriteString("seal: ")
		case 1:
			s.WriteString(", open: ")
		default:
			s.WriteString(", ")
		}
		fmt.Fprintf(&s, "%x", k.id)
	}
	s.WriteString("}")
	return s.String()
}

// GoString is String, so that %#v does not print the ciphers' key
// schedules.
func (b Box) GoString() string { return b.String() }

// LogValue is String, for log/slog.
func (b Box) LogValue() slog.Value { return slog.StringValue(b.String()) }

// devKeyMark starts every key NewDevKey makes, so that IsDevKey knows one:
// a development key lies in a data directory on a laptop, and whoever
// reads it opens every secret sealed with it. The bytes after it are
// random.
var devKeyMark = []byte("MPDEVSEC")

// NewDevKey returns a new development key, base64, for `mailplane dev` to
// keep in its data directory. Production refuses it (ProductionKeys).
func NewDevKey() string {
	k := make([]byte, KeySize)
	copy(k, devKeyMark)
	rand.Read(k[len(devKeyMark):])
	return base64.StdEncoding.EncodeToString(k)
}

// IsDevKey reports whether the base64 key was made by NewDevKey.
func IsDevKey(k string) bool {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(k))
	return err == nil && len(b) == KeySize && bytes.HasPrefix(b, devKeyMark)
}

// ProductionKeys checks that the keys of setting may be used in
// production: none of them is a development key. Call it after ParseKeys
// has accepted setting.
func ProductionKeys(setting string) error {
	for i, s := range strings.Split(setting, ",") {
		if IsDevKey(s) {
			return fmt.Errorf("key %d is a development key (made by mailplane dev): make one with mailplane keygen", i+1)
		}
	}
	return nil
}
