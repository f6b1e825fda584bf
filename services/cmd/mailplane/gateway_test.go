package main

import (
	"bytes"
	"context"
	"github.com/mailplane/mailplane/services/platform/freeport"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestGatewayCommand runs `mailplane gateway` with no backend up: it serves
// its probes and metrics, says it is not ready, and stops on Ctrl-C.
func TestGatewayCommand(t *testing.T) {
	httpAddr, metricsAddr := freeport.Addr(t), freeport.Addr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"gateway", "--http-addr", httpAddr, "--metrics-addr", metricsAddr, "--accounts-addr", freeport.Addr(t)},
			func(string) string { return "" }, &out)
	}()
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for code, _ := get("http://" + httpAddr + "/healthz"); code != 200; code, _ = get("http://" + httpAddr + "/healthz") {
		if time.Now().After(deadline) {
			t.Fatalf("gateway did not come up:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body := get("http://" + httpAddr + "/readyz"); code != 503 || !strings.Contains(body, "accounts") {
		t.Errorf("readyz with accounts down = %d %s, want 503 naming accounts", code, body)
	}
	if code, body := get("http://" + metricsAddr + "/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Errorf("metrics = %d", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("gateway stopped with %v", err)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("gateway did not stop")
	}
}
