package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailplane/mailplane/services/platform/pgtest"
)

// TestRollingRestart is the short version of scripts/rolling-restart.sh:
// the whole stack as separate processes, mailboxes' two replicas restarted
// one after the other under a load of address creates and reads. No
// request may be lost and every stored address's event must reach the
// stream and its consumers exactly once.
func TestRollingRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds mailplane and runs 13 processes for about 20 s")
	}
	server := os.Getenv(pgtest.EnvURL)
	if server == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set", pgtest.EnvURL)
		}
		t.Skipf("%s is not set", pgtest.EnvURL)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "mailplane")
	build := exec.Command("go", "build", "-o", bin, "../mailplane")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build mailplane: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out bytes.Buffer
	r, err := run(ctx, config{
		Bin:          bin,
		DatabaseURL:  server,
		Restart:      []string{"mailboxes"},
		Replicas:     2,
		Rate:         10,
		Warmup:       2 * time.Second,
		Pause:        2 * time.Second,
		Dir:          filepath.Join(dir, "logs"),
		PoolMaxConns: 2,
	}, &out)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !r.ok() {
		t.Errorf("something was lost or duplicated:\n%s", out.String())
	}
	if len(r.restarts) != 2 {
		t.Errorf("%d restarts, want mailboxes' 2", len(r.restarts))
	}
	if r.load.creates.succeeded == 0 || int64(r.events.stored) != r.load.creates.succeeded {
		t.Errorf("%d creates succeeded, %d addresses stored:\n%s", r.load.creates.succeeded, r.events.stored, out.String())
	}
}
