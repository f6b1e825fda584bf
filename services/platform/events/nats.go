package events

import (
	"net/url"
	"os"
	"strings"

	"github.com/mailplane/mailplane/services/platform/config"
	"github.com/nats-io/nats.go"
)

// NATS is how a process reaches the NATS cluster: its URL and, for a
// secured cluster, the credentials and TLS files.
type NATS struct {
	URL string
	// CredsFile is a NATS credentials file (a user JWT and its NKey seed),
	// as `nsc` makes for a cluster in operator mode.
	CredsFile string
	// CAFile is the PEM file of the CA the servers' certificates chain to,
	// when it is not one of the system's.
	CAFile string
	// CertFile and KeyFile are a client certificate and its key, for a
	// cluster that requires one (mutual TLS).
	CertFile, KeyFile string
}

// Register adds the settings to l.
func (c *NATS) Register(l *config.Loader) {
	l.String(&c.URL, "nats-url", "nats://127.0.0.1:4222", "NATS server URL (JetStream enabled); tls:// for TLS")
	l.String(&c.CredsFile, "nats-creds-file", "", "NATS credentials file (user JWT and NKey seed); empty: none, or what the URL carries")
	l.String(&c.CAFile, "nats-ca-file", "", "PEM file of the CA of the NATS servers' certificates; empty: the system's roots")
	l.String(&c.CertFile, "nats-cert-file", "", "PEM client certificate for NATS (mutual TLS); with nats-key-file")
	l.String(&c.KeyFile, "nats-key-file", "", "PEM key of nats-cert-file")
}

// Validate reports every bad setting.
func (c *NATS) Validate() []error {
	var errs []error
	config.Check(&errs, c.URL != "", "nats-url", "required")
	for _, f := range []struct{ name, path string }{
		{"nats-creds-file", c.CredsFile}, {"nats-ca-file", c.CAFile}, {"nats-cert-file", c.CertFile}, {"nats-key-file", c.KeyFile},
	} {
		if f.path != "" {
			_, err := os.Stat(f.path)
			config.Check(&errs, err == nil, f.name, "%v", err)
		}
	}
	config.Check(&errs, (c.CertFile == "") == (c.KeyFile == ""), "nats-cert-file", "set with nats-key-file, or neither")
	return errs
}

// options are the nats.go options the settings ask for.
func (c *NATS) options() []nats.Option {
	var opts []nats.Option
	if c.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if c.CAFile != "" {
		opts = append(opts, nats.RootCAs(c.CAFile))
	}
	if c.CertFile != "" {
		opts = append(opts, nats.ClientCert(c.CertFile, c.KeyFile))
	}
	return opts
}

// redacted is urls (one or several, comma-separated, as nats.Connect takes
// them) without the user, password or token they may carry.
func redacted(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			parts[i] = "(an unparsable URL)"
			continue
		}
		u.User = nil
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}
