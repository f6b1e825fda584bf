package events

import "testing"

// TestRedacted: what logs and errors show of a NATS URL carries no secret,
// whether a password, a token or a user, in any URL of a list.
func TestRedacted(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                           "nats://127.0.0.1:4222",
		"nats://user:secret@a:4222":                       "nats://a:4222",
		"nats://s3cr3t-token@a:4222":                      "nats://a:4222",
		"tls://a:4222, nats://user:secret@b:4222":         "tls://a:4222,nats://b:4222",
		"nats://user:secret@a:4222,nats://tok@b:4222/x?y": "nats://a:4222,nats://b:4222/x?y",
	} {
		if got := redacted(in); got != want {
			t.Errorf("redacted(%q) = %q, want %q", in, got, want)
		}
	}
}
