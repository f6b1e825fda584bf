// Command loadgrpc is the benchmark driver for direct gRPC calls: it keeps
// -c concurrent callers on one GetCurrentUser RPC for -d and prints the
// throughput and latency percentiles, the peer of wrk's run through the edge
// (ghz is built on an old grpc-go and eats a core of its own).
//
//	loadgrpc -addr 127.0.0.1:9090 -token $TOKEN -c 50 -d 20s
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9090", "gRPC address")
	token := flag.String("token", "", "access token")
	conc := flag.Int("c", 50, "concurrent callers")
	conns := flag.Int("conns", 2, "HTTP/2 connections the callers share (wrk uses one per caller; gRPC multiplexes)")
	dur := flag.Duration("d", 20*time.Second, "duration")
	flag.Parse()
	if err := run(*addr, *token, *conc, *conns, *dur); err != nil {
		fmt.Fprintln(os.Stderr, "loadgrpc:", err)
		os.Exit(1)
	}
}

func run(addr, token string, conc, nconns int, dur time.Duration) error {
	clients := make([]accountsv1.UserServiceClient, nconns)
	for i := range clients {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		defer conn.Close()
		clients[i] = accountsv1.NewUserServiceClient(conn)
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
	// Warm up, and fail early on a bad token.
	if _, err := clients[0].GetCurrentUser(ctx, &accountsv1.GetCurrentUserRequest{}); err != nil {
		return err
	}
	deadline := time.Now().Add(dur)
	var mu sync.Mutex
	var all []time.Duration
	var errs int
	var wg sync.WaitGroup
	for i := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clients[i%nconns]
			lat := make([]time.Duration, 0, 1<<16)
			failed := 0
			for time.Now().Before(deadline) {
				start := time.Now()
				if _, err := c.GetCurrentUser(ctx, &accountsv1.GetCurrentUserRequest{}); err != nil {
					failed++
					continue
				}
				lat = append(lat, time.Since(start))
			}
			mu.Lock()
			all = append(all, lat...)
			errs += failed
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(all)
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[int(float64(len(all)-1)*p)]
	}
	fmt.Printf("requests %d  errors %d  rps %.0f  p50 %v  p90 %v  p99 %v\n",
		len(all), errs, float64(len(all))/dur.Seconds(), pct(0.50), pct(0.90), pct(0.99))
	return nil
}
