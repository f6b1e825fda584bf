// Package service is what every Mailplane service is to the process that
// runs it: a value naming its schema and migrations, its settings, and a
// Start that registers its gRPC APIs and returns what runs beside them
// (event subscriptions, background workers). `mailplane serve`, `mailplane
// dev` and the usage text all read one list of these values.
package service

import (
	"context"
	"crypto/ed25519"
	"io/fs"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mailplane/mailplane/services/platform/config"
	"github.com/mailplane/mailplane/services/platform/dns"
	"github.com/mailplane/mailplane/services/platform/events"
	"google.golang.org/grpc"
)

// Service is one service as a process runs it.
type Service struct {
	// Name is how `mailplane serve` and the health checks name the
	// service; it is also the PostgreSQL schema it owns.
	Name string
	// Migrations are the schema's SQL migrations (goose files).
	Migrations fs.FS
	// Publishes are the subjects of the service's events (its
	// <name>events package's Subjects), relative to the event prefix.
	// Every process knows every service's, served or not: a consumer
	// whose filter matches none of them fails at start (events.Catalog).
	Publishes []string
	// Settings are the service's own settings, or nil. Every process
	// registers the settings of every service, so that `-h` lists them all
	// and a Deployment may set them in any order; only the served
	// services' settings are validated.
	Settings Settings
	// Check, when set, validates the service's settings against the
	// process's: what Settings.Validate cannot know alone.
	Check func(p Process) []error
	// Start registers the service's gRPC APIs on env.GRPC and returns
	// what runs beside them. It runs once the schema is migrated.
	Start func(ctx context.Context, env Env) (Parts, error)
}

// Settings are a service's settings: flags with MAILPLANE_* variables.
type Settings interface {
	Register(l *config.Loader)
	// Validate reports every bad setting, each naming its flag.
	Validate() []error
}

// Process is what a process tells the services it runs: the settings they
// share and which other services run beside them.
type Process struct {
	// Serves reports whether the process runs the named service.
	Serves func(name string) bool
	// Production is set by `mailplane serve`: keys made by `mailplane dev`
	// or published in the repository are refused.
	Production bool
	// TokenPublicKey verifies access tokens, which live AccessTokenTTL.
	TokenPublicKey ed25519.PublicKey
	AccessTokenTTL time.Duration
	// Addrs are the gRPC addresses of the services, by name (their
	// <name>-addr settings), for the services that call them; a service
	// missing or empty here is this process's own.
	Addrs map[string]string
	// SecretKeys encrypt the secrets services store (platform/secret's
	// ParseKeys); the services that store any check it.
	SecretKeys string
}

// CheckAddr reports, in errs, a service the process neither runs nor
// knows the address of.
func (p Process) CheckAddr(errs *[]error, name string) {
	config.Check(errs, p.Addrs[name] != "" || p.Serves(name), name+"-addr", "required when %s is not served by this process", name)
}

// Env is what a service gets when it starts.
type Env struct {
	Process
	// Pool's search_path is the service's schema, migrated.
	Pool *pgxpool.Pool
	// GRPC is the process's gRPC server; Addr, an address that dials it,
	// for a service calling another that the same process runs.
	GRPC *grpc.Server
	Addr string
	Log  *slog.Logger
	// DNS is the process's resolver (its dns-resolver setting), shared by
	// the services that read their customers' zones, cache included.
	DNS *dns.Resolver
}

// ServiceAddr is the gRPC address that reaches service name: its setting,
// or this process.
func (e Env) ServiceAddr(name string) string {
	if a := e.Addrs[name]; a != "" {
		return a
	}
	return e.Addr
}

// Parts run beside a service's gRPC APIs for as long as it serves.
type Parts struct {
	// Subscriptions are the events the service consumes; subjects
	// without the process's event prefix.
	Subscriptions []events.Subscription
	// Workers run until their context ends; an error stops the process.
	Workers []func(context.Context) error
}

// Names returns the names of services, in order.
func Names(services []Service) []string {
	names := make([]string, len(services))
	for i, s := range services {
		names[i] = s.Name
	}
	return names
}
