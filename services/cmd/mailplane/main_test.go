package main

import (
	"math"
	"runtime/debug"
	"strings"
	"testing"
)

// TestLimitMemory: the Go memory limit is nine tenths of the container's
// (MAILPLANE_MEMORY_LIMIT, as the Deployments pass it), GOMEMLIMIT wins,
// and a limit that is no number of bytes is refused by name.
func TestLimitMemory(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}

	debug.SetMemoryLimit(math.MaxInt64)
	if err := limitMemory(env("MAILPLANE_MEMORY_LIMIT", "268435456")); err != nil {
		t.Fatal(err)
	}
	if got, want := debug.SetMemoryLimit(-1), int64(268435456-268435456/10); got != want {
		t.Errorf("limit with 256 MiB = %d, want %d", got, want)
	}

	for _, e := range []func(string) string{env(), env("MAILPLANE_MEMORY_LIMIT", "268435456", "GOMEMLIMIT", "100MiB")} {
		debug.SetMemoryLimit(math.MaxInt64)
		if err := limitMemory(e); err != nil {
			t.Fatal(err)
		}
		if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
			t.Errorf("limit set to %d, want it left to Go (GOMEMLIMIT or none)", got)
		}
	}

	for _, bad := range []string{"256Mi", "-1", "0"} {
		err := limitMemory(env("MAILPLANE_MEMORY_LIMIT", bad))
		if err == nil || !strings.Contains(err.Error(), "MAILPLANE_MEMORY_LIMIT") {
			t.Errorf("MAILPLANE_MEMORY_LIMIT=%s: %v, want an error naming it", bad, err)
		}
	}
}
