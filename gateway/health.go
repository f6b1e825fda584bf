package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// readyTimeout bounds how long /readyz waits for the backends.
const readyTimeout = time.Second

// healthz answers 200 while the process runs (Kubernetes liveness).
func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok"))
}

// readiness is the body of /readyz.
type readiness struct {
	Ready bool `json:"ready"`
	// Failing maps each backend that is not serving to a short reason (a
	// gRPC code or health status). The full error goes to the log only:
	// /readyz may be reachable from outside, and the error names
	// internal addresses.
	Failing map[string]string `json:"failing,omitempty"`
}

// readyz answers 200 when every backend's gRPC health check reports
// SERVING for its service ("accounts", "mailboxes": a service is SERVING
// while its database answers), and 503 otherwise, so that Kubernetes sends
// traffic only to an edge that can serve it.
func readyz(backends []backend, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		// Ask all at once: a slow backend must not eat another's time.
		errs := make([]error, len(backends))
		var wg sync.WaitGroup
		for i, b := range backends {
			wg.Go(func() { errs[i] = checkHealth(ctx, b.conn, b.name) })
		}
		wg.Wait()

		res := readiness{Ready: true}
		for i, err := range errs {
			if err == nil {
				continue
			}
			name := backends[i].name
			log.LogAttrs(r.Context(), slog.LevelWarn, "backend not ready", slog.String("backend", name), slog.Any("error", err))
			if res.Failing == nil {
				res.Failing = make(map[string]string)
			}
			res.Ready = false
			res.Failing[name] = reason(err)
		}
		w.Header().Set("Content-Type", "application/json")
		if !res.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(res)
	}
}

// notServingError is a health check answered with a status other than SERVING.
type notServingError struct {
	status grpc_health_v1.HealthCheckResponse_ServingStatus
}

func (e notServingError) Error() string { return "health status " + e.status.String() }

func checkHealth(ctx context.Context, conn *grpc.ClientConn, service string) error {
	resp, err := grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: service})
	if err != nil {
		return fmt.Errorf("health check %s: %w", conn.Target(), err)
	}
	if s := resp.GetStatus(); s != grpc_health_v1.HealthCheckResponse_SERVING {
		return fmt.Errorf("health check %s: %w", conn.Target(), notServingError{s})
	}
	return nil
}

// reason names why a health check failed without revealing details.
func reason(err error) string {
	var ns notServingError
	if errors.As(err, &ns) {
		return ns.status.String()
	}
	return status.Code(err).String()
}
