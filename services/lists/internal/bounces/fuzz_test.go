package bounces

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that no input makes Parse panic, and that whatever it
// returns is well formed: an address, a status of the failure's class.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.eml")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("Content-Type: message/global-delivery-status\n\nFinal-Recipient: utf-8; \\x{110000}@x.example\nAction: failed\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		fs, err := Parse(msg)
		if err != nil && fs != nil {
			t.Fatalf("failures %v with error %v", fs, err)
		}
		for _, x := range fs {
			if cleanAddress(x.Recipient) == "" {
				t.Errorf("recipient %q is not an address", x.Recipient)
			}
			if x.Permanent && x.Status[0] != '5' || !x.Permanent && x.Status[0] != '4' {
				t.Errorf("permanent=%v with status %q", x.Permanent, x.Status)
			}
		}
	})
}
