package dkim

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	mdns "github.com/miekg/dns"

	"github.com/mailplane/mailplane/services/dnssecurity/internal/finding"
)

// rfc8463Key is the Ed25519 key record of RFC 8463 Appendix A.2.
const rfc8463Key = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="

// fakeRSA returns an RSA public key of bits bits. Only its size matters
// to the checks, and crypto/rsa refuses to generate keys under 1024 bits.
func fakeRSA(bits int) *rsa.PublicKey {
	n := new(big.Int).SetBit(new(big.Int), bits-1, 1)
	n.SetBit(n, 0, 1)
	n.SetBit(n, bits/2, 1)
	return &rsa.PublicKey{N: n, E: 65537}
}

func spki(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

func TestValidSelector(t *testing.T) {
	for _, tc := range []struct {
		sel     string
		wantErr string // "" when valid
	}{
		{"mp1", ""},
		{"brisbane", ""},
		{"2026-05.mailplane", ""},
		{"a-b", ""},
		{"", "empty"},
		{"mp..1", "empty label"},
		{".mp", "empty label"},
		{"-mp", "hyphen"},
		{"mp-", "hyphen"},
		{"mp_1", `holds '_'`},
		{"mp 1", `holds ' '`},
		{strings.Repeat("a", 64), "at most 63"},
		{strings.Repeat("abcdefghi.", 21), "under 200"},
	} {
		err := ValidSelector(tc.sel)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("ValidSelector(%q) = %v, want nil", tc.sel, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("ValidSelector(%q) = %v, want an error with %q", tc.sel, err, tc.wantErr)
		}
	}
}

func TestRecordName(t *testing.T) {
	if got := RecordName("brisbane", "football.example.com."); got != "brisbane._domainkey.football.example.com" {
		t.Errorf("RecordName = %q", got)
	}
}

func TestParseKey(t *testing.T) {
	rsa2048 := fakeRSA(2048)
	pkcs1 := base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PublicKey(rsa2048))
	_, edPriv, _ := ed25519.GenerateKey(nil)
	edSPKI := spki(t, edPriv.Public())
	edPub, _ := base64.StdEncoding.DecodeString("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
	for _, tc := range []struct {
		name, txt string
		want      *Key
		wantErr   string
	}{
		{name: "RFC 8463 ed25519", txt: rfc8463Key,
			want: &Key{Version: "DKIM1", Type: "ed25519", Public: ed25519.PublicKey(edPub), Bits: 256}},
		{name: "rsa spki, no v", txt: "p=" + spki(t, rsa2048),
			want: &Key{Type: "rsa", Public: rsa2048, Bits: 2048}},
		{name: "rsa pkcs1", txt: "v=DKIM1; k=rsa; p=" + pkcs1,
			want: &Key{Version: "DKIM1", Type: "rsa", Public: rsa2048, Bits: 2048}},
		{name: "all tags, folded p", txt: "v=DKIM1; h=sha1:sha256; k=rsa; n=a note; s=email; t=y:s; p=" +
			spki(t, rsa2048)[:40] + " \t" + spki(t, rsa2048)[40:] + ";",
			want: &Key{Version: "DKIM1", Hashes: []string{"sha1", "sha256"}, Type: "rsa", Notes: "a note",
				Services: []string{"email"}, Flags: []string{"y", "s"}, Public: rsa2048, Bits: 2048}},
		{name: "revoked", txt: "v=DKIM1; p=", want: &Key{Version: "DKIM1", Type: "rsa"}},
		{name: "unknown tags ignored, empty entries skipped", txt: "v=DKIM1;; x_y=1; p=;",
			want: &Key{Version: "DKIM1", Type: "rsa"}},
		{name: "v not first", txt: "k=rsa; v=DKIM1; p=", wantErr: "v= must be the first tag"},
		{name: "v wrong", txt: "v=DKIM2; p=", wantErr: "v=DKIM2"},
		{name: "unknown key type", txt: "v=DKIM1; k=dsa; p=", wantErr: "k=dsa: unknown key type"},
		{name: "no p", txt: "v=DKIM1; k=rsa", wantErr: "p= is missing"},
		{name: "bad base64", txt: "v=DKIM1; p=not*base64", wantErr: "p= is not valid base64"},
		{name: "not a key", txt: "v=DKIM1; p=AAAA", wantErr: "p= is not an RSA public key"},
		{name: "ed25519 key as spki", txt: "v=DKIM1; k=ed25519; p=" + edSPKI, wantErr: "p= holds 44 bytes"},
		{name: "ed25519 spki under k=rsa", txt: "v=DKIM1; k=rsa; p=" + edSPKI, wantErr: "but k= says rsa"},
		{name: "duplicate tag", txt: "v=DKIM1; p=; p=", wantErr: "p= appears twice"},
		{name: "no equals", txt: "v=DKIM1; rsa", wantErr: `"rsa" (entry 2) is not a tag=value pair`},
		{name: "bad tag name", txt: "v=DKIM1; 1k=rsa; p=", wantErr: `"1k" is not a tag name`},
		{name: "empty h", txt: "v=DKIM1; h=; p=", wantErr: "h= is empty"},
		{name: "control character", txt: "v=DKIM1; n=a\x00b; p=", wantErr: "n= holds the character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseKey(tc.txt)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseKey = %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b *big.Int) bool { return a.Cmp(b) == 0 })); diff != "" {
				t.Errorf("ParseKey (-want +got):\n%s", diff)
			}
		})
	}
}

func TestKeyFlags(t *testing.T) {
	k, err := ParseKey("v=DKIM1; t=s:y; p=")
	if err != nil {
		t.Fatal(err)
	}
	if !k.Testing() || !k.Revoked() {
		t.Errorf("t=s:y, p=: Testing %v, Revoked %v; want both", k.Testing(), k.Revoked())
	}
	k, _ = ParseKey(rfc8463Key)
	if k.Testing() || k.Revoked() {
		t.Errorf("RFC 8463 key: Testing %v, Revoked %v; want neither", k.Testing(), k.Revoked())
	}
}

// A generated key survives storage, and its record parses back to its
// public half.
func TestGenerate(t *testing.T) {
	for _, tc := range []struct {
		alg      Algorithm
		wantAlg  Algorithm
		wantBits int
	}{
		{"", RSA, 2048},
		{RSA, RSA, 2048},
		{Ed25519, Ed25519, 256},
	} {
		t.Run(string(tc.wantAlg), func(t *testing.T) {
			k, err := Generate(tc.alg)
			if err != nil {
				t.Fatal(err)
			}
			der, err := k.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParsePrivateKey(der)
			if err != nil {
				t.Fatal(err)
			}
			if back.Algorithm != tc.wantAlg || !sameKey(back.Public(), k.Public()) {
				t.Errorf("ParsePrivateKey: %s key, same public key %v; want %s, true", back.Algorithm, sameKey(back.Public(), k.Public()), tc.wantAlg)
			}
			txt, err := TXT(k.Public())
			if err != nil {
				t.Fatal(err)
			}
			if want := "v=DKIM1; k=" + string(tc.wantAlg) + "; p="; !strings.HasPrefix(txt, want) {
				t.Errorf("TXT = %q, want it to start with %q", txt, want)
			}
			parsed, err := ParseKey(strings.Join(Strings(txt), ""))
			if err != nil {
				t.Fatal(err)
			}
			if !sameKey(k.Public(), parsed.Public) || parsed.Bits != tc.wantBits {
				t.Errorf("ParseKey(TXT): same key %v, %d bits; want true, %d", sameKey(k.Public(), parsed.Public), parsed.Bits, tc.wantBits)
			}
		})
	}
	if _, err := Generate("dsa"); err == nil || !strings.Contains(err.Error(), `"dsa"`) {
		t.Errorf("Generate(dsa) = %v, want an error naming it", err)
	}
	if _, err := ParsePrivateKey([]byte("junk")); err == nil {
		t.Error("ParsePrivateKey(junk) = nil error")
	}
	if _, err := TXT("a string"); err == nil {
		t.Error("TXT(string) = nil error")
	}
}

func TestStrings(t *testing.T) {
	for _, n := range []int{0, 1, 255, 256, 510, 511, 1000} {
		txt := strings.Repeat("x", n)
		got := Strings(txt)
		if strings.Join(got, "") != txt {
			t.Errorf("Strings(%d bytes) joined differs", n)
		}
		wantN := max(1, (n+254)/255)
		if len(got) != wantN {
			t.Errorf("Strings(%d bytes): %d strings, want %d", n, len(got), wantN)
		}
		for _, s := range got {
			if len(s) > 255 {
				t.Errorf("Strings(%d bytes): a string of %d bytes", n, len(s))
			}
		}
	}
}

// txtLine is a zone-file TXT record of name holding txt, cut into 255-byte
// strings.
func txtLine(name, txt string) string {
	var q []string
	for _, s := range Strings(txt) {
		q = append(q, fmt.Sprintf("%q", s))
	}
	return name + " 300 IN TXT " + strings.Join(q, " ")
}

type codeSev struct {
	Code     string
	Severity finding.Severity
}

func codes(fs []finding.Finding) []codeSev {
	var out []codeSev
	for _, f := range fs {
		out = append(out, codeSev{f.Code, f.Severity})
	}
	return out
}

func TestLint(t *testing.T) {
	ours, err := Generate(Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	oursTXT, _ := TXT(ours.Public())
	other, _ := Generate(Ed25519)
	otherTXT, _ := TXT(other.Public())
	z := strings.Join([]string{
		txtLine("mp1._domainkey.example.com.", oursTXT),
		txtLine("other._domainkey.example.com.", otherTXT),
		txtLine("rsa2048._domainkey.example.com.", "v=DKIM1; k=rsa; p="+spki(t, fakeRSA(2048))),
		txtLine("rsa1024._domainkey.example.com.", "v=DKIM1; k=rsa; p="+spki(t, fakeRSA(1024))),
		txtLine("rsa512._domainkey.example.com.", "v=DKIM1; k=rsa; p="+spki(t, fakeRSA(512))),
		txtLine("gone._domainkey.example.com.", "v=DKIM1; p="),
		txtLine("test._domainkey.example.com.", "v=DKIM1; t=y; "+rfc8463Key[len("v=DKIM1; "):]),
		txtLine("bad._domainkey.example.com.", "v=DKIM1; k=dsa; p=AAAA"),
		txtLine("two._domainkey.example.com.", rfc8463Key),
		txtLine("two._domainkey.example.com.", oursTXT),
		txtLine("down._domainkey.example.com.", rfc8463Key),
	}, "\n")
	r, srv := serveZone(t, z)
	srv.Fail("down._domainkey.example.com", mdns.RcodeServerFailure)
	for _, tc := range []struct {
		name, selector string
		held           crypto.PublicKey
		want           []codeSev
	}{
		{"ours", "mp1", ours.Public(), []codeSev{{"dkim.ok", finding.OK}}},
		{"customer's", "rsa2048", nil, []codeSev{{"dkim.ok", finding.OK}}},
		{"ours replaced", "other", ours.Public(), []codeSev{{"dkim.mismatch", finding.Error}}},
		{"missing", "nope", nil, []codeSev{{"dkim.missing", finding.Error}}},
		{"1024 bits", "rsa1024", nil, []codeSev{{"dkim.rsa_short", finding.Warning}}},
		{"512 bits", "rsa512", nil, []codeSev{{"dkim.rsa_too_short", finding.Error}}},
		{"revoked customer's", "gone", nil, []codeSev{{"dkim.revoked", finding.Warning}}},
		{"revoked ours", "gone", ours.Public(), []codeSev{{"dkim.revoked", finding.Error}}},
		{"testing", "test", nil, []codeSev{{"dkim.testing", finding.Warning}}},
		{"syntax", "bad", nil, []codeSev{{"dkim.syntax", finding.Error}}},
		{"bad selector", "a_b", nil, []codeSev{{"dkim.syntax", finding.Error}}},
		{"multiple", "two", nil, []codeSev{{"dkim.multiple", finding.Error}}},
		{"servfail", "down", nil, []codeSev{{"dkim.dns_failure", finding.Unknown}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := Lint(context.Background(), r, "example.com", tc.selector, tc.held)
			if diff := cmp.Diff(tc.want, codes(fs)); diff != "" {
				t.Errorf("Lint codes (-want +got):\n%s\n%+v", diff, fs)
			}
			for _, f := range fs {
				if f.Message == "" {
					t.Errorf("%s has no message", f.Code)
				}
				if f.Severity != finding.OK && f.Severity != finding.Unknown && f.Fix == "" {
					t.Errorf("%s has no fix", f.Code)
				}
			}
		})
	}

	t.Run("missing ours says what to publish", func(t *testing.T) {
		fs := Lint(context.Background(), r, "example.com", "nope", ours.Public())
		if len(fs) != 1 || !strings.Contains(fs[0].Fix, oursTXT) {
			t.Errorf("Lint = %+v, want a fix holding %q", fs, oursTXT)
		}
	})
	t.Run("record as seen", func(t *testing.T) {
		fs := Lint(context.Background(), r, "example.com", "rsa2048", nil)
		if len(fs) != 1 || !strings.HasPrefix(fs[0].Record, "v=DKIM1; k=rsa; p=") || len(fs[0].Record) < 256 {
			t.Errorf("Record = %q, want the whole record joined", fs[0].Record)
		}
	})
}

// A server that never answers leaves the check unknown, not failed.
func TestLintSilentServer(t *testing.T) {
	r, srv := serveZone(t, "")
	srv.Drop("mp1._domainkey.example.com")
	fs := Lint(context.Background(), r, "example.com", "mp1", nil)
	if diff := cmp.Diff([]codeSev{{"dkim.dns_failure", finding.Unknown}}, codes(fs)); diff != "" {
		t.Errorf("Lint (-want +got):\n%s", diff)
	}
}

func FuzzParseKey(f *testing.F) {
	f.Add(rfc8463Key)
	f.Add("v=DKIM1; p=")
	f.Add("v=DKIM1; h=sha256; k=rsa; s=email; t=y:s; p=" + spki(f, fakeRSA(1024)))
	f.Add("p=" + base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PublicKey(fakeRSA(2048))))
	f.Add("v=DKIM1;; k=ed25519; p=AAAA")
	f.Add("v=DKIM1; p= ; p=")
	f.Fuzz(func(t *testing.T, txt string) {
		k, err := ParseKey(txt)
		if err != nil {
			return
		}
		if k.Revoked() {
			return
		}
		if k.Bits <= 0 {
			t.Fatalf("ParseKey(%q): a key of %d bits", txt, k.Bits)
		}
		// A key read can be written again, and reads back the same.
		again, err := TXT(k.Public)
		if err != nil {
			t.Fatalf("TXT of a parsed %s key: %v", k.Type, err)
		}
		k2, err := ParseKey(again)
		if err != nil || !sameKey(k.Public, k2.Public) {
			t.Fatalf("ParseKey(TXT(ParseKey(%q))) = %v, same key %v", txt, err, err == nil && sameKey(k.Public, k2.Public))
		}
	})
}
