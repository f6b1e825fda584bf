package aip

import "testing"

func TestSeek(t *testing.T) {
	got := Seek("u.email", "text", "m.user_id", true, 6, 5)
	want := `
  AND ($6::text IS NULL OR (u.email, m.user_id) < ($6, $7::uuid))
ORDER BY u.email DESC, m.user_id DESC LIMIT $5`
	if got != want {
		t.Errorf("Seek desc =%s\nwant%s", got, want)
	}
	got = Seek("a.create_time", "timestamptz", "a.id", false, 7, 6)
	want = `
  AND ($7::timestamptz IS NULL OR (a.create_time, a.id) > ($7, $8::uuid))
ORDER BY a.create_time, a.id LIMIT $6`
	if got != want {
		t.Errorf("Seek asc =%s\nwant%s", got, want)
	}
}
