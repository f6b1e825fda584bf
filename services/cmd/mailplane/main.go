// Command mailplane runs Mailplane's services.
//
//	mailplane serve accounts [flags]   one or more services, as in production
//	mailplane dev [flags]              every service, NATS, PostgreSQL and the
//	                                   REST edge in one process, for a laptop
//	mailplane gateway [flags]          the REST edge alone, as in production
//	mailplane mailstore [flags]        next to Dovecot: removes deleted mail
//	mailplane report spam|ham <address> Dovecot's imapsieve: a spam report
//	mailplane keygen                   new access-token keys and a secret key
//
// Every flag also reads a MAILPLANE_* environment variable; `mailplane serve
// -h` lists them.
package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/mailplane/mailplane/services/filters/filtersreport"
	"github.com/mailplane/mailplane/services/platform/secret"
	"github.com/mailplane/mailplane/services/platform/service"
)

func main() {
	if err := limitMemory(os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "mailplane:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "mailplane:", err)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

// limitMemory sets the Go runtime's soft memory limit to nine tenths of
// MAILPLANE_MEMORY_LIMIT, the container's memory limit in bytes (the
// Deployments pass it through the Downward API), unless GOMEMLIMIT is set.
// The tenth left is what the container is charged for and Go does not
// count (socket buffers, the binary's pages): with the whole limit, the
// kernel would kill the process before the collector works harder.
func limitMemory(getenv func(string) string) error {
	v := getenv("MAILPLANE_MEMORY_LIMIT")
	if v == "" || getenv("GOMEMLIMIT") != "" {
		return nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return fmt.Errorf("MAILPLANE_MEMORY_LIMIT=%q: want the memory limit in bytes", v)
	}
	debug.SetMemoryLimit(n - n/10)
	return nil
}

// usage names every service the binary runs.
var usage = `usage:
  mailplane serve <service>... [flags]   run services (` + strings.Join(service.Names(services()), ", ") + `)
  mailplane dev [flags]                  run everything locally (make run)
  mailplane gateway [flags]              run the REST edge
  mailplane mailstore [flags]            next to Dovecot: remove the mail of deleted addresses
  mailplane report [flags] spam|ham <address> < message
                                         next to Dovecot: report a message moved into or out of Spam
  mailplane keygen                       print new token keys and a secret key as MAILPLANE_* settings
  mailplane <command> -h                 list the flags and their MAILPLANE_* variables
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stdout, usage)
		return errUsage
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, stdout)
	case "dev":
		return dev(ctx, args[1:], getenv, stdout)
	case "gateway":
		return serveGateway(ctx, args[1:], getenv, stdout)
	case "mailstore":
		return serveMailstore(ctx, args[1:], getenv, stdout)
	case "report":
		// Never an error for the IMAP command that ran it: only bad flags.
		return filtersreport.Command(ctx, args[1:], getenv, os.Stdin, stdout, os.Stderr)
	case "keygen":
		return keygen(stdout)
	default:
		fmt.Fprint(stdout, usage)
		return errUsage
	}
}

// keygen prints a new Ed25519 key pair in the form the settings take (the
// signing key for the accounts service only, the public key for every
// service) and a key encrypting the secrets services store.
func keygen(stdout io.Writer) error {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "MAILPLANE_TOKEN_SIGNING_KEY=%s\nMAILPLANE_TOKEN_PUBLIC_KEY=%s\nMAILPLANE_SECRET_KEYS=%s\n",
		base64.StdEncoding.EncodeToString(priv.Seed()), base64.StdEncoding.EncodeToString(pub), secret.NewKey())
	return nil
}
