package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mailplane/mailplane/services/mailboxes"
	"github.com/mailplane/mailplane/services/platform/config"
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/mailplane/mailplane/services/platform/telemetry"
	"golang.org/x/sync/errgroup"
)

// serveMailstore runs next to Dovecot, as the user owning the mail: it
// ends the sessions of revoked device passwords and deleted addresses, and
// removes the mail of deleted addresses and purged mail services. It needs
// NATS only; the services create the event stream.
func serveMailstore(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	l := config.NewLoader("mailplane mailstore", getenv, stdout)
	var root, doveadm, stream, prefix, durable, logLevel, metricsAddr string
	var cluster events.NATS
	l.String(&root, "mail-root", "", "absolute path of the directory holding Dovecot's homes (/srv/vmail in deploy/mail/dovecot)")
	l.String(&doveadm, "doveadm", "doveadm", "command running doveadm, to end sessions (\"doveadm -c /etc/dovecot/dovecot.conf\"); empty: sessions are not ended")
	cluster.Register(l)
	l.String(&stream, "event-stream", "MAILPLANE", "JetStream stream holding every service's events")
	l.String(&prefix, "event-prefix", "mailplane", "first token of every event subject")
	l.String(&durable, "mailstore-consumer", mailboxes.MailstoreConsumer, "durable consumer name; each Dovecot host needs its own (sessions end on the host that runs doveadm)")
	l.String(&logLevel, "log-level", "info", "debug, info, warn or error")
	l.String(&metricsAddr, "metrics-addr", ":9464", "Prometheus /metrics listen address; empty disables it")
	if err := l.Parse(args); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if len(l.Args()) > 0 {
		return fmt.Errorf("unexpected arguments %q", l.Args())
	}
	errs := cluster.Validate()
	if err := checkMailRoot(root); err != nil {
		errs = append(errs, fmt.Errorf("mail-root (--mail-root, MAILPLANE_MAIL_ROOT): %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	log, err := telemetry.NewLogger(stdout, logLevel)
	if err != nil {
		return err
	}
	store := &mailboxes.Mailstore{Root: root, Doveadm: strings.Fields(doveadm), Log: log}
	if err := store.Check(ctx); err != nil {
		return fmt.Errorf("configuration: doveadm (--doveadm, MAILPLANE_DOVEADM) cannot end sessions: %w "+
			"(as a user other than root it needs Dovecot's anvil socket, see deploy/mail/dovecot/README.md; empty turns ending sessions off)", err)
	}
	metrics, err := listenHTTP("metrics", "metrics-addr", metricsAddr)
	if err != nil {
		return err
	}
	defer metrics.close()
	tel, err := telemetry.Setup(ctx, "mailplane-mailstore", telemetry.Traces{})
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.WithoutCancel(ctx))
	conn, js, err := events.Connect(cluster, "mailplane-mailstore", log)
	if err != nil {
		return err
	}
	defer conn.Close()
	catalog, err := eventCatalog(prefix, services())
	if err != nil {
		return err
	}
	sub := store.Subscription()
	c := &events.Consumer{JS: js, Stream: stream, Durable: durable, Catalog: catalog, Handle: sub.Handle, Log: log}
	for _, s := range sub.Subjects {
		c.Subjects = append(c.Subjects, prefix+"."+s)
	}
	log.Info("looking after the mail store", "mailRoot", root, "doveadm", doveadm, "consumer", durable)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return c.Run(gctx) })
	metrics.serve(gctx, g, metricsHandler(tel), 10*time.Second)
	return g.Wait()
}

// checkMailRoot refuses a root that could make the mail store remove the
// wrong files: it must be an absolute path to an existing directory.
func checkMailRoot(root string) error {
	if root == "" {
		return fmt.Errorf("required")
	}
	if !filepath.IsAbs(root) {
		return fmt.Errorf("%q is not an absolute path", root)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", root)
	}
	return nil
}
