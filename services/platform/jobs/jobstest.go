package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ForTest returns c set for tests: jobs are fetched every few milliseconds
// rather than every second, and the maintenance services start at once.
func ForTest(c Config) Config {
	c.test = true
	return c
}

// StartForTest starts a client of c (ForTest) working jobs through pool
// until t ends, and returns it.
func StartForTest(t testing.TB, pool *pgxpool.Pool, c Config) *Client {
	t.Helper()
	client, err := New(pool, ForTest(c))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, client) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("jobs: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("jobs did not stop")
		}
	})
	return client
}
