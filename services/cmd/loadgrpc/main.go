// Command loadgrpc is the benchmark driver for direct gRPC calls: it keeps
// -c concurrent callers on one RPC for -d and prints the throughput and
// latency percentiles, the peer of wrk's run through the edge (ghz is built
// on an old grpc-go and eats a core of its own).
//
// -call chooses the RPC:
//
//	read            UserService.GetCurrentUser
//	create-address  AddressService.CreateAddress in -parent, a new local
//	                part each call
//
//	loadgrpc -addr 127.0.0.1:9090 -token $TOKEN -c 50 -d 20s
//	loadgrpc -call create-address -parent organizations/o/mailServices/m -token $TOKEN
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9090", "gRPC address")
	token := flag.String("token", "", "access token")
	call := flag.String("call", "read", "RPC to load: read (GetCurrentUser) or create-address (CreateAddress in -parent)")
	parent := flag.String("parent", "", "mail service the addresses are created in (organizations/{org}/mailServices/{ms}), for -call create-address")
	conc := flag.Int("c", 50, "concurrent callers")
	conns := flag.Int("conns", 2, "HTTP/2 connections the callers share (wrk uses one per caller; gRPC multiplexes)")
	dur := flag.Duration("d", 20*time.Second, "duration")
	flag.Parse()
	if err := run(*addr, *token, *call, *parent, *conc, *conns, *dur); err != nil {
		fmt.Fprintln(os.Stderr, "loadgrpc:", err)
		os.Exit(1)
	}
}

// rpcFunc makes one call of the RPC under load.
type rpcFunc func(ctx context.Context) error

// newCall returns the RPC -call names, on conn.
func newCall(call, parent string, conn grpc.ClientConnInterface) (rpcFunc, error) {
	switch call {
	case "read":
		c := accountsv1.NewUserServiceClient(conn)
		return func(ctx context.Context) error {
			_, err := c.GetCurrentUser(ctx, &accountsv1.GetCurrentUserRequest{})
			return err
		}, nil
	case "create-address":
		if parent == "" {
			return nil, errors.New("-call create-address needs -parent")
		}
		c := mailboxesv1.NewAddressServiceClient(conn)
		return func(ctx context.Context) error {
			_, err := c.CreateAddress(ctx, &mailboxesv1.CreateAddressRequest{
				Parent:  parent,
				Address: &mailboxesv1.Address{LocalPart: nextLocalPart()},
			})
			return err
		}, nil
	}
	return nil, fmt.Errorf("unknown -call %q (read, create-address)", call)
}

// runID and created make every local part new, across callers and across
// runs against the same mail service: "g" + a random run id + a counter,
// like wrk's Lua script's "u" + random + counter on the edge side.
var (
	runID   = strings.ToLower(rand.Text()[:8])
	created atomic.Int64
)

func nextLocalPart() string {
	return fmt.Sprintf("g%s-%d", runID, created.Add(1))
}

func run(addr, token, call, parent string, conc, nconns int, dur time.Duration) error {
	calls := make([]rpcFunc, nconns)
	for i := range calls {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return fmt.Errorf("dial %s: %w", addr, err)
		}
		defer conn.Close()
		if calls[i], err = newCall(call, parent, conn); err != nil {
			return err
		}
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
	// Warm up, and fail early on a bad token or parent.
	if err := calls[0](ctx); err != nil {
		return fmt.Errorf("first %s call: %w", call, err)
	}
	deadline := time.Now().Add(dur)
	var mu sync.Mutex
	var all []time.Duration
	var errs int
	var firstErr error
	var wg sync.WaitGroup
	for i := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := calls[i%nconns]
			lat := make([]time.Duration, 0, 1<<16)
			failed := 0
			var failure error
			for time.Now().Before(deadline) {
				start := time.Now()
				if err := c(ctx); err != nil {
					failed++
					failure = err
					continue
				}
				lat = append(lat, time.Since(start))
			}
			mu.Lock()
			all = append(all, lat...)
			errs += failed
			if firstErr == nil {
				firstErr = failure
			}
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
	if firstErr != nil {
		fmt.Fprintln(os.Stderr, "loadgrpc: an error:", firstErr)
	}
	return nil
}
