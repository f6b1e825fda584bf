package secret

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func b64(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

func box(t testing.TB, keys ...[]byte) *Box {
	t.Helper()
	b, err := NewBox(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	b := box(t, testKey(1))
	for _, tt := range []struct {
		name      string
		plaintext []byte
		aad       []byte
	}{
		{"tsig secret", []byte("uvJAQB3hiEjGV3NP+TI7DOspVoLWiBdkc81t01bJ+jo="), []byte("dnssecurity.tsig_keys/0193")},
		{"empty", []byte{}, []byte("row")},
		{"nil aad", []byte("x"), nil},
		{"large", bytes.Repeat([]byte("dkim"), 4096), []byte("dnssecurity.dkim_keys/1")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := b.Seal(tt.plaintext, tt.aad)
			if len(s) != len(tt.plaintext)+Overhead {
				t.Errorf("sealed %d bytes, want %d + Overhead", len(s), len(tt.plaintext))
			}
			if len(tt.plaintext) > 8 && bytes.Contains(s, tt.plaintext[:8]) {
				t.Errorf("sealed form holds the plaintext")
			}
			got, err := b.Open(s, tt.aad)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil || !bytes.Equal(got, tt.plaintext) {
				t.Errorf("Open = %q, want %q", got, tt.plaintext)
			}
			if again := b.Seal(tt.plaintext, tt.aad); bytes.Equal(again, s) {
				t.Error("two seals of one plaintext are equal: the nonce repeats")
			}
		})
	}
}

func TestOpenRefuses(t *testing.T) {
	b := box(t, testKey(1))
	aad := []byte("dnssecurity.tsig_keys/1")
	s := b.Seal([]byte("secret"), aad)
	flip := func(i int) []byte {
		c := bytes.Clone(s)
		c[i] ^= 1
		return c
	}
	tests := []struct {
		name   string
		sealed []byte
		aad    []byte
		want   error
	}{
		{"another row", s, []byte("dnssecurity.tsig_keys/2"), ErrInvalid},
		{"no aad", s, nil, ErrInvalid},
		{"version changed", flip(0), aad, ErrInvalid},
		{"key id changed", flip(1), aad, ErrUnknownKey},
		{"nonce changed", flip(header), aad, ErrInvalid},
		{"ciphertext changed", flip(header + nonceLen), aad, ErrInvalid},
		{"tag changed", flip(len(s) - 1), aad, ErrInvalid},
		{"cut short", s[:len(s)-1], aad, ErrInvalid},
		{"shorter than overhead", s[:Overhead-1], aad, ErrInvalid},
		{"empty", nil, aad, ErrInvalid},
		{"another key", box(t, testKey(2)).Seal([]byte("secret"), aad), aad, ErrUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := b.Open(tt.sealed, tt.aad)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open = %q, %v; want %v", got, err, tt.want)
			}
			if got != nil {
				t.Errorf("Open returned %q with its error", got)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	old, nw := testKey(1), testKey(2)
	aad := []byte("row 1")
	sealedOld := box(t, old).Seal([]byte("kept since last year"), aad)

	rotating := box(t, nw, old)
	got, err := rotating.Open(sealedOld, aad)
	if err != nil || string(got) != "kept since last year" {
		t.Fatalf("the old key no longer opens: %q, %v", got, err)
	}
	if !rotating.Stale(sealedOld) {
		t.Error("a secret sealed with the old key is not Stale")
	}
	sealedNew := rotating.Seal(got, aad)
	if rotating.Stale(sealedNew) {
		t.Error("a secret sealed with the first key is Stale")
	}
	if _, err := box(t, old).Open(sealedNew, aad); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("the old key alone opens what the new one sealed: %v", err)
	}

	// Once every row is sealed again, the old key goes.
	done := box(t, nw)
	if got, err := done.Open(sealedNew, aad); err != nil || string(got) != "kept since last year" {
		t.Errorf("the new key alone: %q, %v", got, err)
	}
	if _, err := done.Open(sealedOld, aad); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("a row sealed with a dropped key: %v, want ErrUnknownKey", err)
	}
}

func TestBadKeys(t *testing.T) {
	tests := []struct {
		name    string
		setting string
		err     string
	}{
		{"empty", "", "no keys"},
		{"blank", "  ", "no keys"},
		{"short", b64(make([]byte, 16)), "key 1: 16 bytes, want 32 (AES-256)"},
		{"long", b64(make([]byte, 33)), "key 1: 33 bytes, want 32"},
		{"second short", b64(testKey(1)) + "," + b64(make([]byte, 24)), "key 2: 24 bytes, want 32"},
		{"not base64", "not base64!", "key 1: not base64"},
		{"raw url base64", strings.TrimRight(base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)), "="), "key 1: not base64"},
		{"empty element", b64(testKey(1)) + ",," + b64(testKey(2)), "key 2: empty"},
		{"trailing comma", b64(testKey(1)) + ",", "key 2: empty"},
		{"same key twice", b64(testKey(1)) + "," + b64(testKey(2)) + "," + b64(testKey(1)), "key 3: same id as key 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := ParseKeys(tt.setting)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("ParseKeys = %v, %v; want error with %q", b, err, tt.err)
			}
			// No error repeats key material.
			for _, k := range strings.Split(tt.setting, ",") {
				if k = strings.TrimSpace(k); len(k) > 4 && strings.Contains(err.Error(), k) {
					t.Errorf("error %q holds a key", err)
				}
			}
		})
	}
	if _, err := NewBox(); err == nil {
		t.Error("NewBox() without keys: no error")
	}
}

func TestParseKeys(t *testing.T) {
	k1, k2 := testKey(1), testKey(2)
	b, err := ParseKeys(" " + b64(k1) + " , " + b64(k2) + "\n")
	if err != nil {
		t.Fatal(err)
	}
	s := b.Seal([]byte("x"), nil)
	if _, err := box(t, k1).Open(s, nil); err != nil {
		t.Errorf("the first key of the setting does not seal: %v", err)
	}
	if _, err := b.Open(box(t, k2).Seal([]byte("x"), nil), nil); err != nil {
		t.Errorf("the second key of the setting does not open: %v", err)
	}
}

// TestRedacted: however a Box is printed or logged, its keys are not.
func TestRedacted(t *testing.T) {
	k1, k2 := testKey(0xa1), testKey(0xb2)
	b := box(t, k1, k2)
	var log bytes.Buffer
	slog.New(slog.NewJSONHandler(&log, nil)).Info("box", "box", b, "value", *b)
	slog.New(slog.NewTextHandler(&log, nil)).Info("box", "box", b)
	outs := []string{log.String()}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		outs = append(outs, fmt.Sprintf(verb, b), fmt.Sprintf(verb, *b), fmt.Sprintf(verb, []*Box{b}))
	}
	want := fmt.Sprintf("secret.Box{seal: %x, open: %x}", keyID(k1), keyID(k2))
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if got := fmt.Sprintf(verb, b); got != want {
			t.Errorf("Sprintf(%q) = %q, want %q", verb, got, want)
		}
	}
	if !strings.Contains(log.String(), `"box":"`+want+`"`) {
		t.Errorf("slog JSON lacks %q:\n%s", want, log.String())
	}
	for _, out := range outs {
		for _, k := range [][]byte{k1, k2} {
			for _, enc := range []string{b64(k), hex.EncodeToString(k), hex.EncodeToString(k[:8]), string(k[:8])} {
				if strings.Contains(strings.ToLower(out), strings.ToLower(enc)) {
					t.Errorf("output holds key material (%s):\n%s", enc, out)
				}
			}
		}
	}
}

func TestDevKey(t *testing.T) {
	dev := NewDevKey()
	if dev == NewDevKey() {
		t.Error("two development keys are equal")
	}
	if _, err := ParseKeys(dev); err != nil {
		t.Errorf("a development key is not a key: %v", err)
	}
	prod := NewKey()
	tests := []struct {
		setting string
		err     string
	}{
		{prod, ""},
		{prod + "," + NewKey(), ""},
		{dev, "key 1 is a development key"},
		{prod + ", " + dev, "key 2 is a development key"},
		// A key of the same length starting differently is not one.
		{b64(append([]byte("MPDEVSE"), make([]byte, KeySize-7)...)), ""},
	}
	for _, tt := range tests {
		err := ProductionKeys(tt.setting)
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("ProductionKeys(%q) = %v, want %q", tt.setting, err, tt.err)
		}
	}
	if !IsDevKey(dev) || IsDevKey(prod) {
		t.Errorf("IsDevKey(dev) = %v, IsDevKey(prod) = %v", IsDevKey(dev), IsDevKey(prod))
	}
}

func FuzzOpen(f *testing.F) {
	b := box(f, testKey(1), testKey(2))
	f.Add(b.Seal([]byte("secret"), []byte("row")), []byte("row"))
	f.Add(box(f, testKey(2)).Seal(nil, nil), []byte{})
	f.Add([]byte{1, 0, 0, 0, 0}, []byte("row"))
	f.Fuzz(func(t *testing.T, sealed, aad []byte) {
		p, err := b.Open(sealed, aad)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnknownKey) {
				t.Errorf("Open: %v is neither ErrInvalid nor ErrUnknownKey", err)
			}
			return
		}
		// Only what Seal made opens; sealing again must round-trip.
		if q, err := b.Open(b.Seal(p, aad), aad); err != nil || !bytes.Equal(p, q) {
			t.Errorf("round trip of %q: %q, %v", p, q, err)
		}
	})
}

func FuzzParseKeys(f *testing.F) {
	f.Add(b64(testKey(1)) + "," + b64(testKey(2)))
	f.Add("")
	f.Add(",")
	f.Add(NewDevKey())
	f.Fuzz(func(t *testing.T, setting string) {
		b, err := ParseKeys(setting)
		if err != nil {
			return
		}
		if _, err := b.Open(b.Seal([]byte("x"), nil), nil); err != nil {
			t.Errorf("box of %q does not round-trip: %v", setting, err)
		}
		ProductionKeys(setting)
	})
}
