package pg_test

import (
	"testing"
	"testing/fstest"

	"github.com/mailplane/mailplane/services/platform/pg"
)

// TestFingerprint: whatever changes what Migrate would apply changes the
// fingerprint, so a test never copies a template migrated otherwise.
func TestFingerprint(t *testing.T) {
	base := fstest.MapFS{"00001_init.sql": {Data: []byte("CREATE TABLE a (id int);")}}
	want, err := pg.Fingerprint("svc", base)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := pg.Fingerprint("svc", fstest.MapFS{"00001_init.sql": {Data: []byte("CREATE TABLE a (id int);")}}); again != want {
		t.Errorf("the same migrations: %s, then %s", want, again)
	}
	for _, tc := range []struct {
		name   string
		schema string
		fsys   fstest.MapFS
	}{
		{"another schema", "other", base},
		{"a changed migration", "svc", fstest.MapFS{"00001_init.sql": {Data: []byte("CREATE TABLE b (id int);")}}},
		{"a renamed migration", "svc", fstest.MapFS{"00002_init.sql": {Data: []byte("CREATE TABLE a (id int);")}}},
		{"one more migration", "svc", fstest.MapFS{
			"00001_init.sql": {Data: []byte("CREATE TABLE a (id int);")},
			"00002_more.sql": {Data: []byte("")},
		}},
		{"no migrations", "svc", fstest.MapFS{}},
	} {
		got, err := pg.Fingerprint(tc.schema, tc.fsys)
		if err != nil {
			t.Fatal(err)
		}
		if got == want {
			t.Errorf("%s: the same fingerprint", tc.name)
		}
	}
}
