package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mailplane/mailplane/gateway"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	dnssecurityv1 "github.com/mailplane/mailplane/proto/mailplane/dnssecurity/v1"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/accounts"
	"github.com/mailplane/mailplane/services/platform/auth"
	"github.com/mailplane/mailplane/services/platform/config"
	"github.com/mailplane/mailplane/services/platform/dns"
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/mailplane/mailplane/services/platform/secret"
	"github.com/mailplane/mailplane/services/platform/service"
	"github.com/mailplane/mailplane/services/platform/telemetry"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// The demo account seeded by `mailplane dev`, and its organization's
// verified mail domain.
const (
	demoEmail    = "demo@mailplane.test"
	demoPassword = "mailplane-demo-password"
	demoDomain   = "mailplane.test"
)

// devSettings are the dev command's own settings, on top of settings.
type devSettings struct {
	DataDir      string
	HTTPAddr     string
	CORSOrigins  string
	PostgresPort int
}

func dev(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	l := config.NewLoader("mailplane dev", getenv, stdout)
	s := newSettings()
	s.register(l)
	var d devSettings
	l.String(&d.DataDir, "data-dir", ".data", "where dev keeps NATS, PostgreSQL and keys between runs")
	l.String(&d.HTTPAddr, "http-addr", ":8080", "REST edge listen address")
	l.String(&d.CORSOrigins, "cors-origins", "*", "browser origins the edge allows, comma-separated")
	l.Int(&d.PostgresPort, "dev-postgres-port", 54329, "port of the private PostgreSQL cluster (when no database-url)")
	if err := l.Parse(args); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	log, err := telemetry.NewLogger(stdout, s.LogLevel)
	if err != nil {
		return err
	}
	// The edge's port is bound before anything starts, as runServices does
	// with the others: a port that is taken stops dev here, named.
	httpLn, err := config.Listen("http-addr", d.HTTPAddr)
	if err != nil {
		return err
	}
	defer httpLn.Close()
	if err := os.MkdirAll(d.DataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := devSecretKeys(s, d.DataDir); err != nil {
		return err
	}
	if err := devKeys(s, d.DataDir); err != nil {
		return err
	}

	ns, err := startNATS(filepath.Join(d.DataDir, "nats"))
	if err != nil {
		return err
	}
	defer func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}()
	s.NATS = events.NATS{URL: ns.ClientURL()}

	if s.DatabaseURL == "" {
		pg, err := newDevPostgres(d.DataDir, d.PostgresPort)
		if err != nil {
			return err
		}
		if s.DatabaseURL, err = pg.Start(ctx); err != nil {
			return err
		}
		defer func() {
			if err := pg.Stop(); err != nil {
				log.Warn("stop dev PostgreSQL", "error", err)
			}
		}()
	}

	// The demo domain verifies offline: the mailboxes service asks a DNS
	// server of this process, which holds the demo domain's verification
	// record and passes every other question to the resolver configured
	// (or the system's), so real domains verify too.
	zone, err := dns.ListenLocal("127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("dev dns server: %w", err)
	}
	defer zone.Close()
	upstream := s.DNSResolver
	if upstream == "" {
		if upstream, err = dns.SystemServer(); err != nil {
			log.Warn("dev dns server answers only the demo domain", "error", err)
		}
	}
	if upstream != "" {
		zone.Forward(upstream)
	}
	s.DNSResolver = zone.Addr()
	// The demo domain's zone is hosted here too, with one SPF mistake, so
	// that the Global Security page shows a red finding that "Correct"
	// fixes, offline, through a signed update to this server.
	if err := zone.SetZone(demoZone); err != nil {
		return fmt.Errorf("dev dns zone: %w", err)
	}
	tsig, err := devTSIG(d.DataDir)
	if err != nil {
		return err
	}
	if err := zone.AllowUpdates(demoTSIGKey, "hmac-sha256", tsig); err != nil {
		return fmt.Errorf("dev dns zone: %w", err)
	}

	names := service.Names(s.services)
	if err := s.validate(names); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	origins := splitList(d.CORSOrigins)

	g, gctx := errgroup.WithContext(ctx)
	grpcReady := make(chan string, 1)
	g.Go(func() error {
		return runServices(gctx, s, names, log, func(addr string) { grpcReady <- addr })
	})
	g.Go(func() error {
		var addr string
		select {
		case addr = <-grpcReady:
		case <-gctx.Done():
			return nil
		}
		addr = loopback(addr)
		if err := seedDemo(gctx, addr, zone, tsig); err != nil {
			return fmt.Errorf("seed demo account: %w", err)
		}
		g.Go(func() error {
			return gateway.Run(gctx, gateway.Config{Addr: d.HTTPAddr, Listener: httpLn, AccountsAddr: addr, CORSOrigins: origins, ShutdownTimeout: s.ShutdownTimeout}, log)
		})
		printWelcome(stdout, httpLn.Addr().String(), addr)
		return nil
	})
	return g.Wait()
}

// devKeys loads the token key pair from the data directory, making it on
// first run, unless both keys were configured.
func devKeys(s *settings, dir string) error {
	ac := settingsOf[*accounts.Config](s.services)
	if ac.TokenSigningKey != "" {
		if s.TokenPublicKey == "" {
			k, err := auth.ParsePrivateKey(ac.TokenSigningKey)
			if err != nil {
				return fmt.Errorf("token-signing-key: %w", err)
			}
			s.TokenPublicKey = base64.StdEncoding.EncodeToString(k.Public().(ed25519.PublicKey))
		}
		return nil
	}
	path := filepath.Join(dir, "token-signing-key")
	b, err := os.ReadFile(path)
	// A key of an older dev, without the mark, is made again: serve must
	// be able to tell every dev key (the dev stack's sessions end).
	if errors.Is(err, os.ErrNotExist) || err == nil && !auth.IsDevKey(strings.TrimSpace(string(b))) {
		b = []byte(auth.NewDevKey())
		err = os.WriteFile(path, b, 0o600)
	}
	if err != nil {
		return fmt.Errorf("token signing key: %w", err)
	}
	ac.TokenSigningKey = strings.TrimSpace(string(b))
	k, err := auth.ParsePrivateKey(ac.TokenSigningKey)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	s.TokenPublicKey = base64.StdEncoding.EncodeToString(k.Public().(ed25519.PublicKey))
	return nil
}

// demoZone is the demo domain's zone as `mailplane dev` serves it at each
// start: mail comes to our MX hosts, but the SPF record misses our include
// and ends in ?all (the mistake "Correct" fixes); _spf is what our
// platform publishes (the spf-include setting's default).
const demoZone = `$ORIGIN mailplane.test.
@      0 SOA ns1.mailplane.test. hostmaster.mailplane.test. 1 3600 900 604800 0
@      0 NS  ns1.mailplane.test.
ns1    0 A   127.0.0.1
@      0 MX  10 mx1.mailplane.test.
@      0 MX  20 mx2.mailplane.test.
mx1    0 A   127.0.0.1
mx2    0 A   127.0.0.1
@      0 TXT "v=spf1 mx ?all"
_spf   0 TXT "v=spf1 ip4:127.0.0.0/8 -all"
_dmarc 0 TXT "v=DMARC1; p=none; rua=mailto:dmarc@mailplane.test"
`

// demoTSIGKey names the key signing the demo zone's updates.
const demoTSIGKey = "mailplane-dev-update."

// devTSIG loads the demo zone's TSIG secret from the data directory,
// making it on first run.
func devTSIG(dir string) (string, error) {
	path := filepath.Join(dir, "demo-zone-tsig")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key := make([]byte, 32)
		rand.Read(key)
		b = []byte(base64.StdEncoding.EncodeToString(key))
		err = os.WriteFile(path, b, 0o600)
	}
	if err != nil {
		return "", fmt.Errorf("demo zone tsig: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// devSecretKeys loads the key sealing stored secrets from the data
// directory, making it on first run, unless one was configured.
func devSecretKeys(s *settings, dir string) error {
	if s.SecretKeys != "" {
		return nil
	}
	path := filepath.Join(dir, "secret-keys")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		b = []byte(secret.NewDevKey())
		err = os.WriteFile(path, b, 0o600)
	}
	if err != nil {
		return fmt.Errorf("secret keys: %w", err)
	}
	s.SecretKeys = strings.TrimSpace(string(b))
	return nil
}

// startNATS runs an embedded NATS server with JetStream on a free loopback
// port, keeping its streams under dir.
func startNATS(dir string) (*natsserver.Server, error) {
	ns, err := natsserver.NewServer(&natsserver.Options{
		Host:      "127.0.0.1",
		Port:      natsserver.RANDOM_PORT,
		JetStream: true,
		StoreDir:  dir,
		NoSigs:    true,
		NoLog:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded nats did not start")
	}
	return ns, nil
}

// loopback turns a listen address like "[::]:9090" into one to dial.
func loopback(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || host == "::" || host == "0.0.0.0" {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// seedDemo signs the demo user up, once, and gives its organization the
// demo domain, verified through zone.
func seedDemo(ctx context.Context, grpcAddr string, zone *dns.LocalServer, tsig string) error {
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = accountsv1.NewAuthServiceClient(conn).SignUp(ctx, &accountsv1.SignUpRequest{
		Email:                   demoEmail,
		Password:                demoPassword,
		DisplayName:             "Demo Owner",
		OrganizationDisplayName: "Demo Organization",
	})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return err
	}
	ctx, org, err := signInDemo(ctx, conn)
	if err != nil {
		return err
	}
	if err := seedDemoDomain(ctx, conn, org, zone); err != nil {
		return fmt.Errorf("demo domain %s: %w", demoDomain, err)
	}
	if err := seedDemoZone(ctx, conn, org, zone, tsig); err != nil {
		return fmt.Errorf("demo zone %s: %w", demoDomain, err)
	}
	return nil
}

// signInDemo signs the demo owner in: ctx carries their access token, org
// names their organization.
func signInDemo(ctx context.Context, conn *grpc.ClientConn) (context.Context, string, error) {
	in, err := accountsv1.NewAuthServiceClient(conn).SignIn(ctx, &accountsv1.SignInRequest{Email: demoEmail, Password: demoPassword})
	if err != nil {
		return ctx, "", fmt.Errorf("sign in: %w", err)
	}
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+in.GetAccessToken())
	me, err := accountsv1.NewUserServiceClient(conn).GetCurrentUser(ctx, &accountsv1.GetCurrentUserRequest{})
	if err != nil || len(me.GetMemberships()) == 0 {
		return ctx, "", fmt.Errorf("the demo organization: %v", err)
	}
	org, _, _ := strings.Cut(me.GetMemberships()[0].GetName(), "/members/")
	return ctx, org, nil
}

// seedDemoZone registers the demo zone as one we host, at this run's
// address (the dev DNS server's port changes from run to run).
func seedDemoZone(ctx context.Context, conn *grpc.ClientConn, org string, zone *dns.LocalServer, tsig string) error {
	zones := dnssecurityv1.NewHostedZoneServiceClient(conn)
	list, err := zones.ListHostedZones(ctx, &dnssecurityv1.ListHostedZonesRequest{Parent: org})
	if err != nil {
		return fmt.Errorf("list hosted zones: %w", err)
	}
	for _, z := range list.GetHostedZones() {
		if z.GetDomain() == demoDomain {
			if _, err := zones.DeleteHostedZone(ctx, &dnssecurityv1.DeleteHostedZoneRequest{Name: z.GetName()}); err != nil {
				return fmt.Errorf("delete the last run's: %w", err)
			}
		}
	}
	_, err = zones.CreateHostedZone(ctx, &dnssecurityv1.CreateHostedZoneRequest{Parent: org, HostedZone: &dnssecurityv1.HostedZone{
		Domain: demoDomain, Primary: zone.Addr(), Servers: []string{zone.Addr()}, TsigKeyName: demoTSIGKey, TsigSecret: tsig,
	}})
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	return nil
}

// seedDemoDomain claims the demo domain for the demo organization (once)
// and, while the claim is pending, publishes its record in zone and
// verifies it, as a customer would with their DNS host.
func seedDemoDomain(ctx context.Context, conn *grpc.ClientConn, org string, zone *dns.LocalServer) error {
	services := mailboxesv1.NewMailServiceServiceClient(conn)
	list, err := services.ListMailServices(ctx, &mailboxesv1.ListMailServicesRequest{Parent: org})
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	var ms *mailboxesv1.MailService
	for _, m := range list.GetMailServices() {
		if m.GetDomain() == demoDomain {
			ms = m
		}
	}
	if ms == nil {
		resp, err := services.CreateMailService(ctx, &mailboxesv1.CreateMailServiceRequest{Parent: org, MailService: &mailboxesv1.MailService{Domain: demoDomain, DisplayName: "Demo"}})
		if err != nil {
			return fmt.Errorf("claim: %w", err)
		}
		ms = resp.GetMailService()
	}
	if ms.GetState() != mailboxesv1.MailServiceState_MAIL_SERVICE_STATE_PENDING {
		return nil
	}
	rec := ms.GetVerificationRecord()
	zone.SetTXT(rec.GetName(), 0, rec.GetValue())
	v, err := services.VerifyMailService(ctx, &mailboxesv1.VerifyMailServiceRequest{Name: ms.GetName()})
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if v.GetMailService().GetState() != mailboxesv1.MailServiceState_MAIL_SERVICE_STATE_VERIFIED {
		return fmt.Errorf("not verified: %s", v.GetMailService().GetLastCheckResult())
	}
	return nil
}

func printWelcome(w io.Writer, httpAddr, grpcAddr string) {
	edge := "http://" + loopback(httpAddr)
	fmt.Fprintf(w, `
Mailplane is running.
  REST edge  %[1]s   (OpenAPI: %[1]s/openapi.json)
  gRPC       %[2]s
Sign in as the demo owner:
  curl -s -X POST %[1]s/v1/auth:signIn -H 'Content-Type: application/json' -d '{"email":"%[3]s","password":"%[4]s"}'
then call the API with the accessToken:
  curl -s %[1]s/v1/users/me -H "Authorization: Bearer $TOKEN"
Ctrl-C stops everything; data stays in the data directory for the next run.

`, edge, grpcAddr, demoEmail, demoPassword)
}
