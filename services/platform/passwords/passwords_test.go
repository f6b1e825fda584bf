package passwords

import (
	"strings"
	"testing"
)

func TestPasswordHash(t *testing.T) {
	h, err := Hash("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q does not record the OWASP parameters", h)
	}
	for _, tt := range []struct {
		password string
		want     bool
	}{
		{"correct horse battery", true},
		{"correct horse batterY", false},
		{"", false},
	} {
		ok, err := Check(h, tt.password)
		if err != nil || ok != tt.want {
			t.Errorf("Check(%q) = %v, %v; want %v", tt.password, ok, err, tt.want)
		}
	}
	if h2, _ := Hash("correct horse battery"); h2 == h {
		t.Error("two hashes of one password are equal: salt not random")
	}
	if _, err := Check("$bcrypt$whatever", "x"); err == nil {
		t.Error("malformed hash accepted")
	}
}

// BenchmarkCheckPassword measures the argon2id verification alone.
func BenchmarkCheckPassword(b *testing.B) {
	h, err := Hash("correct horse battery")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, _ := Check(h, "correct horse battery"); !ok {
			b.Fatal("mismatch")
		}
	}
}
