package imports

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	importsv1 "github.com/mailplane/mailplane/proto/mailplane/imports/v1"
	"github.com/mailplane/mailplane/services/imports/importsevents"
	"github.com/mailplane/mailplane/services/imports/internal/imapcopy"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/riverqueue/river"
)

// checkTimeout bounds the login to one source before a job is accepted.
const checkTimeout = 30 * time.Second

// plan is a job checked and ready to be stored: its sources with their
// passwords and logins, its destination.
type plan struct {
	sources   []source
	passwords []string
	// logins are the Dovecot logins of hosted sources (empty otherwise).
	logins []string
	dest   *address
}

// hosts are the plan's source servers, for the limit per server.
func (p *plan) hosts() []string {
	var hs []string
	for _, s := range p.sources {
		hs = append(hs, s.server())
	}
	return hs
}

// checkSources checks a job's sources (field "importJob.sources").
func checkSources(field string, in []*importsv1.Source) ([]source, []string, error) {
	if len(in) == 0 {
		return nil, nil, errs.Field(field, "at least one source is required")
	}
	if len(in) > maxSources {
		return nil, nil, errs.Field(field, fmt.Sprintf("at most %d sources", maxSources))
	}
	var srcs []source
	var pws []string
	var v []errs.FieldViolation
	for i, p := range in {
		s, pw, err := checkSource(fmt.Sprintf("%s[%d]", field, i), p)
		var e *errs.Error
		if errors.As(err, &e) {
			v = append(v, e.Fields...)
			continue
		}
		srcs, pws = append(srcs, s), append(pws, pw)
	}
	if len(v) > 0 {
		return nil, nil, errs.Fields(v...)
	}
	return srcs, pws, nil
}

// prepare checks what needs I/O: hosted sources exist, no source is the
// destination, hosts are allowed, and every source's login is accepted
// (logged in to, in parallel). fields name each source's fields
// ("importJob.sources[0]").
func (s *Server) prepare(ctx context.Context, srcs []source, pws []string, dest *address, fields []string) (*plan, error) {
	if s.hosted.Host == "" {
		return nil, errs.E(errs.FailedPrecondition, "imports are not set up on this platform: its IMAP server is not configured")
	}
	// Counted before anything is looked up: a hosted address unknown
	// here is refused at once, without a login, and would otherwise let
	// anyone test which addresses are hosted, as often as they like.
	if err := s.countChecks(ctx, dest.org, len(srcs)); err != nil {
		return nil, err
	}
	p := &plan{sources: srcs, passwords: pws, logins: make([]string, len(srcs)), dest: dest}
	for i, src := range srcs {
		f := fields[i]
		if src.HostedEmail != "" {
			var login string
			err := s.pool.QueryRow(ctx, `SELECT login FROM addresses WHERE lower(email) = $1`, src.HostedEmail).Scan(&login)
			if errors.Is(err, pgx.ErrNoRows) {
				// The same answer as a wrong password: nobody learns which
				// addresses are hosted here.
				return nil, errs.Field(f+".password", "the login was refused: check the address and its device password")
			}
			if err != nil {
				return nil, fmt.Errorf("find hosted source: %w", err)
			}
			if src.Login != "" && !strings.EqualFold(src.Login, login) && !strings.EqualFold(src.Login, src.HostedEmail) {
				return nil, errs.Field(f+".login", "a hosted address logs in as itself: leave login empty")
			}
			p.logins[i] = login
			if login == dest.login {
				return nil, errs.Field(f+".hostedEmail", "is the destination: an address cannot be imported into itself")
			}
			continue
		}
		if (strings.EqualFold(src.Host, s.hosted.Host)) && (strings.EqualFold(src.Login, dest.login) || strings.EqualFold(src.Login, dest.email)) {
			return nil, errs.Field(f+".login", "is the destination: an address cannot be imported into itself")
		}
		if !s.limits.PrivateSources {
			if err := publicHost(ctx, src.Host); err != nil {
				return nil, errs.Field(f+".host", err.Error())
			}
		}
	}
	for i := range srcs {
		for k := range i {
			if srcs[i].server() == srcs[k].server() && strings.EqualFold(srcs[i].Login+p.logins[i], srcs[k].Login+p.logins[k]) {
				return nil, errs.Field(fields[i], "is the same account as "+fields[k])
			}
		}
	}
	errc := make([]error, len(srcs))
	var wg sync.WaitGroup
	for i, src := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, checkTimeout)
			defer cancel()
			errc[i] = s.copier.Check(cctx, s.account(src, p.logins[i], pws[i]))
		}()
	}
	wg.Wait()
	var v []errs.FieldViolation
	unreachable := false
	for i, err := range errc {
		if err == nil {
			continue
		}
		f, src := fields[i], srcs[i]
		switch {
		case errors.Is(err, imapcopy.ErrLogin):
			v = append(v, errs.FieldViolation{Field: f + ".password", Description: "the server refused this login and password"})
		case errors.Is(err, imapcopy.ErrPrivate):
			v = append(v, errs.FieldViolation{Field: f + ".host", Description: src.Host + " is on a private or local network: only public servers can be imported from"})
		case errors.Is(err, imapcopy.ErrTLS):
			d := fmt.Sprintf("the certificate of %s is not trusted (%v)", src.hostPort(), err)
			if src.Pin == "" {
				d += "; if your provider is known to use this certificate, set certificateSha256 to its SHA-256 fingerprint"
			}
			v = append(v, errs.FieldViolation{Field: f + ".host", Description: d})
		default:
			unreachable = true
			where := src.hostPort()
			if src.HostedEmail != "" {
				where = "the platform's IMAP server"
			}
			s.log.WarnContext(ctx, "import source unreachable", "source", where, "error", err)
			v = append(v, errs.FieldViolation{Field: f + ".host", Description: where + " does not answer: check the host and port, or try again later"})
		}
	}
	if len(v) > 0 {
		e := errs.Fields(v...)
		if unreachable {
			// Not the request's fault: the same one may succeed later.
			e.Kind = errs.FailedPrecondition
		}
		return nil, e
	}
	return p, nil
}

// countChecks counts n logins to source servers for org in this hour and
// refuses them past the cap, so that the service cannot be looped on to
// try passwords against someone's IMAP server. The count is in
// PostgreSQL, so that every replica agrees; the organization's past hours
// are pruned as it goes.
func (s *Server) countChecks(ctx context.Context, org uuid.UUID, n int) error {
	var count int
	err := s.pool.QueryRow(ctx, `WITH pruned AS (DELETE FROM source_checks WHERE organization_id = $1 AND hour < date_trunc('hour', now()))
INSERT INTO source_checks (organization_id, hour, count) VALUES ($1, date_trunc('hour', now()), $2)
ON CONFLICT (organization_id, hour) DO UPDATE SET count = source_checks.count + $2 RETURNING count`, org, n).Scan(&count)
	if err != nil {
		return fmt.Errorf("count source logins: %w", err)
	}
	if count > s.limits.ChecksPerHour {
		return errs.E(errs.ResourceExhausted, "the organization's imports tried %d source logins this hour, at most %d: try again next hour", count-n, s.limits.ChecksPerHour)
	}
	return nil
}

// publicHost refuses a host that is, or resolves to, an address of
// loopback, a private network or a link-local one: a customer must not
// make the service reach into the cluster's network. It names the
// address for the customer; the connections themselves are held to it
// too (imapcopy's PublicOnly), whatever the name resolves to by then.
func publicHost(ctx context.Context, host string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return fmt.Errorf("%s does not resolve", host)
	}
	for _, ip := range ips {
		if !imapcopy.Public(ip.IP) {
			return fmt.Errorf("%s is on a private or local network (%s): only public servers can be imported from", host, ip.IP)
		}
	}
	return nil
}

// person is who a job's confirmation goes to besides the destination,
// and in which language.
type person struct{ email, language string }

// whoami asks accounts for a person's email and language; an API token
// gets none (the destination alone is told, in English).
func (s *Server) whoami(ctx context.Context, c access.Caller) person {
	p := person{language: "en"}
	if c.IsToken() {
		return p
	}
	u, err := s.users.GetCurrentUser(access.Forward(ctx), &accountsv1.GetCurrentUserRequest{})
	if err != nil {
		s.log.WarnContext(ctx, "no confirmation to the creator: user unknown", "user", c.Name(), "error", err)
		return p
	}
	p.email = u.GetUser().GetEmail()
	if l := u.GetUser().GetLanguage(); l != "" {
		p.language = l
	}
	return p
}

// copyAttempts is how many runs a job may fail in a row (an unreachable
// server, a lost connection) before it is failed; a run that copies
// hands over to the next with a snooze, which is not a failure.
const copyAttempts = 12

const (
	insertJob = `
INSERT INTO jobs (id, organization_id, parent_id, bulk, position, creator, creator_user_id, creator_email, language,
                  destination, destination_email, destination_login, sources, passwords, hosts)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`
	// countActive counts an organization's jobs that have not ended; the
	// advisory lock makes two creations take turns at the cap.
	lockOrg     = `SELECT pg_advisory_xact_lock(hashtextextended('imports.jobs/' || $1::text, 0))`
	countActive = `SELECT count(*) FROM jobs WHERE organization_id = $1 AND NOT bulk AND state IN ('pending', 'running')`
)

// insert stores a job of p (a row of parent at position when parent is
// set) with its River job, in tx.
func (s *Server) insert(ctx context.Context, tx pgx.Tx, id, org uuid.UUID, parent *uuid.UUID, pos int, c access.Caller, who person, p *plan) error {
	srcs, err := json.Marshal(p.sources)
	if err != nil {
		return err
	}
	sealed := make([][]byte, len(p.passwords))
	for i, pw := range p.passwords {
		sealed[i] = s.box.Seal([]byte(pw), passwordAD(id, i))
	}
	var user *uuid.UUID
	if !c.IsToken() {
		user = &c.UserID
	}
	if _, err := tx.Exec(ctx, insertJob, id, org, parent, false, pos, c.Name(), user, who.email, who.language,
		p.dest.name(), p.dest.email, p.dest.login, srcs, sealed, p.hosts()); err != nil {
		return fmt.Errorf("insert import job: %w", err)
	}
	if _, err := s.jobs.InsertTx(ctx, tx, copyArgs{Job: id}, &river.InsertOpts{MaxAttempts: copyAttempts}); err != nil {
		return fmt.Errorf("queue import job: %w", err)
	}
	return nil
}

// passwordAD binds a sealed password to its job and source.
func passwordAD(job uuid.UUID, i int) []byte {
	return []byte("imports.jobs/" + job.String() + "/" + strconv.Itoa(i))
}

// reserve takes n places of org's active jobs in tx, or refuses.
func (s *Server) reserve(ctx context.Context, tx pgx.Tx, org uuid.UUID, n int) error {
	if _, err := tx.Exec(ctx, lockOrg, org); err != nil {
		return fmt.Errorf("lock organization's jobs: %w", err)
	}
	var active int
	if err := tx.QueryRow(ctx, countActive, org).Scan(&active); err != nil {
		return fmt.Errorf("count active jobs: %w", err)
	}
	if active+n > s.limits.ActiveJobs {
		return errs.E(errs.ResourceExhausted, "the organization has %d imports running or waiting, at most %d: wait for some to end", active, s.limits.ActiveJobs)
	}
	return nil
}

// CreateImportJob checks the sources by logging in to them and answers
// the job at once; the copy runs in the background.
func (s *Server) CreateImportJob(ctx context.Context, req *importsv1.CreateImportJobRequest) (*importsv1.CreateImportJobResponse, error) {
	org, err := parseOrg("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	c, role, err := s.roles.Access(ctx, org)
	if err != nil {
		return nil, err
	}
	in := req.GetImportJob()
	if in.GetDestination() == "" {
		return nil, errs.Field("importJob.destination", "is required")
	}
	dest, err := s.destination(ctx, c, role, org, "importJob.destination", in.GetDestination(), false)
	if err != nil {
		return nil, err
	}
	srcs, pws, err := checkSources("importJob.sources", in.GetSources())
	if err != nil {
		return nil, err
	}
	fields := make([]string, len(srcs))
	for i := range srcs {
		fields[i] = fmt.Sprintf("importJob.sources[%d]", i)
	}
	p, err := s.prepare(ctx, srcs, pws, dest, fields)
	if err != nil {
		return nil, err
	}
	who := s.whoami(ctx, c)
	id := uuid.Must(uuid.NewV7())
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.reserve(ctx, tx, org, 1); err != nil {
			return err
		}
		if err := s.insert(ctx, tx, id, org, nil, 0, c, who, p); err != nil {
			return err
		}
		return s.created(ctx, tx, org, id, c)
	})
	if err != nil {
		return nil, err
	}
	j, err := s.getJob(ctx, org, id)
	if err != nil {
		return nil, err
	}
	return &importsv1.CreateImportJobResponse{ImportJob: j.proto()}, nil
}

// created publishes a new job and records it in the audit log, in tx.
func (s *Server) created(ctx context.Context, tx pgx.Tx, org, id uuid.UUID, c access.Caller) error {
	rows, _ := tx.Query(ctx, jobColumns+` WHERE id = $1`, id)
	j, err := pgx.CollectExactlyOneRow(rows, scanJob)
	if err != nil {
		return fmt.Errorf("read new job: %w", err)
	}
	if err := s.fill(ctx, tx, j); err != nil {
		return err
	}
	if err := outbox.Write(ctx, tx, importsevents.ImportJobCreated, &importsv1.ImportJobChanged{ImportJob: j.proto(), Actor: c.Name()}); err != nil {
		return err
	}
	return audit(ctx, tx, org, c, "imports.import_job.create", jobName(org, id), map[string]string{"destination": j.destinationEmail})
}
