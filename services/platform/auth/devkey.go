package auth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"slices"
)

// devKeyMark starts the seed of every token-signing key `mailplane dev`
// makes, so that `mailplane serve` knows one when it sees it: a dev key
// lies in a directory anyone with the laptop (or the repository, once) can
// read, and whoever holds it signs access tokens for any user. The 24
// bytes after it are random.
var devKeyMark = []byte("MPDEVKEY")

// PublishedKeys are signing keys that were made public, so that anyone can
// forge tokens with them: the development key committed in services/.data
// until December 2026.
var PublishedKeys = []string{"Da1EGgRP8ePBsvne5GGeFksnLyc4UyznIEoPz3gsOuM="}

// NewDevKey returns a new development signing key (a base64 seed).
func NewDevKey() string {
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, devKeyMark)
	rand.Read(seed[len(devKeyMark):])
	return base64.StdEncoding.EncodeToString(seed)
}

// IsDevKey reports whether the base64 seed key was made by `mailplane dev`.
func IsDevKey(key string) bool {
	seed, err := base64.StdEncoding.DecodeString(key)
	return err == nil && len(seed) == ed25519.SeedSize && bytes.HasPrefix(seed, devKeyMark)
}

var (
	errDevKey       = errors.New("is a development key (made by mailplane dev): make one with mailplane keygen")
	errPublishedKey = errors.New("was published (committed to the repository): anyone can forge tokens with it; make one with mailplane keygen")
)

// ProductionSigningKey checks that key may sign tokens in production.
func ProductionSigningKey(key string) error {
	switch {
	case slices.Contains(PublishedKeys, key):
		return errPublishedKey
	case IsDevKey(key):
		return errDevKey
	}
	return nil
}

// ProductionPublicKey checks that key, a base64 public key, is not the
// half of a published signing key: tokens it verifies could be forged.
func ProductionPublicKey(key string) error {
	for _, k := range PublishedKeys {
		priv, err := ParsePrivateKey(k)
		if err != nil {
			continue
		}
		if base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey)) == key {
			return errPublishedKey
		}
	}
	return nil
}
