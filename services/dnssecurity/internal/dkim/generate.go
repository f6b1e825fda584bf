package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
)

// Algorithm is a DKIM key type, named as in k=.
type Algorithm string

const (
	// RSA keys are 2048 bits: the size receivers expect today, and the
	// largest whose record most DNS hosting panels take.
	RSA     Algorithm = "rsa"
	Ed25519 Algorithm = "ed25519"
)

// rsaBits is the size of the RSA keys Generate makes.
const rsaBits = 2048

// PrivateKey is a signing key with its algorithm.
type PrivateKey struct {
	Algorithm Algorithm
	Signer    crypto.Signer
}

// Public returns the key's public half, what its record publishes.
func (k *PrivateKey) Public() crypto.PublicKey { return k.Signer.Public() }

// Generate makes a new signing key; the zero Algorithm means RSA.
func Generate(alg Algorithm) (*PrivateKey, error) {
	switch alg {
	case "", RSA:
		k, err := rsa.GenerateKey(rand.Reader, rsaBits)
		if err != nil {
			return nil, fmt.Errorf("generate rsa key: %w", err)
		}
		return &PrivateKey{RSA, k}, nil
	case Ed25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate ed25519 key: %w", err)
		}
		return &PrivateKey{Ed25519, k}, nil
	}
	return nil, fmt.Errorf("unknown key algorithm %q (rsa or ed25519)", alg)
}

// Marshal encodes the key as PKCS #8 DER, for storage.
func (k *PrivateKey) Marshal() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.Signer)
	if err != nil {
		return nil, fmt.Errorf("marshal %s key: %w", k.Algorithm, err)
	}
	return der, nil
}

// ParsePrivateKey decodes a key Marshal encoded.
func ParsePrivateKey(der []byte) (*PrivateKey, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return &PrivateKey{RSA, k}, nil
	case ed25519.PrivateKey:
		return &PrivateKey{Ed25519, k}, nil
	}
	return nil, fmt.Errorf("parse private key: a %T is no DKIM key (rsa or ed25519)", k)
}

// TXT returns the key record publishing pub: "v=DKIM1; k=rsa; p=..." with
// the SubjectPublicKeyInfo for RSA, the raw 32 bytes for Ed25519 (RFC
// 8463 §4).
func TXT(pub crypto.PublicKey) (string, error) {
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return "", fmt.Errorf("marshal rsa public key: %w", err)
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der), nil
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub), nil
	}
	return "", fmt.Errorf("a %T is no DKIM public key (rsa or ed25519)", pub)
}

// Strings cuts txt into the strings of at most 255 bytes one TXT record
// holds; receivers join them again (RFC 6376 §3.6.2.2).
func Strings(txt string) []string {
	var out []string
	for len(txt) > 255 {
		out = append(out, txt[:255])
		txt = txt[255:]
	}
	return append(out, txt)
}
