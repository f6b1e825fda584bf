package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
)

// consumers are the durable consumers of mailboxes.address.created whose
// applications are counted, with the schema recording them. Only creates
// happen during a run, so every address event they applied is a create.
var consumers = []struct{ schema, durable string }{
	{"imports", "imports-addresses"},
	{"filters", "filters-addresses"},
}

// eventCounts compare the addresses stored with their events.
type eventCounts struct {
	// stored: addresses in mailboxes' table; answered: creates the client
	// saw succeed; unanswered: stored addresses whose create the client
	// gave up (the work was done, the answer lost); missing: answered
	// creates whose address is not stored.
	stored, answered, unanswered, missing int
	// outbox: events still waiting in mailboxes' outbox.
	outbox int
	// events: address.created messages in the stream; eventsLost: stored
	// addresses without one; eventsDup: addresses with more than one.
	events, eventsLost, eventsDup int
	// applied: events applied by each consumer; copied: addresses in
	// imports' local copy; audit: accounts' audit entries of the creates.
	applied map[string]int
	copied  int
	audit   int
	settled bool
}

// settleTimeout bounds the wait for the relays and consumers to catch up
// after the load.
const settleTimeout = 2 * time.Minute

// countEvents waits until every stored address's event reached the stream
// and its consumers (or settleTimeout), then counts.
func (st *stack) countEvents(ctx context.Context, l *load) (eventCounts, error) {
	deadline := time.Now().Add(settleTimeout)
	for {
		ec, err := st.countOnce(ctx, l)
		if err != nil {
			return ec, err
		}
		if ec.settledNow() || time.Now().After(deadline) {
			return ec, nil
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return ec, err
		}
	}
}

func (ec *eventCounts) settledNow() bool {
	ec.settled = ec.outbox == 0 && ec.events == ec.stored && ec.copied == ec.stored && ec.audit == ec.stored
	for _, n := range ec.applied {
		ec.settled = ec.settled && n == ec.events
	}
	return ec.settled
}

func (st *stack) countOnce(ctx context.Context, l *load) (eventCounts, error) {
	ec := eventCounts{applied: map[string]int{}}
	msID := l.ms[strings.LastIndex(l.ms, "/")+1:]
	stored, err := st.names(ctx, `SELECT id::text FROM mailboxes.addresses WHERE mail_service_id = $1`, msID)
	if err != nil {
		return ec, fmt.Errorf("stored addresses: %w", err)
	}
	ec.stored = len(stored)
	l.mu.Lock()
	ec.answered = len(l.made)
	for _, name := range l.made {
		if !stored[lastID(name)] {
			ec.missing++
		}
	}
	answeredIDs := map[string]bool{}
	for _, name := range l.made {
		answeredIDs[lastID(name)] = true
	}
	l.mu.Unlock()
	for id := range stored {
		if !answeredIDs[id] {
			ec.unanswered++
		}
	}
	if err := st.pool.QueryRow(ctx, `SELECT count(*) FROM mailboxes.outbox`).Scan(&ec.outbox); err != nil {
		return ec, fmt.Errorf("outbox: %w", err)
	}

	published, err := st.createdEvents(ctx)
	if err != nil {
		return ec, err
	}
	for _, n := range published {
		ec.events += n
		if n > 1 {
			ec.eventsDup += n - 1
		}
	}
	for id := range stored {
		if published[id] == 0 {
			ec.eventsLost++
		}
	}

	for _, c := range consumers {
		var n int
		q := fmt.Sprintf(`SELECT count(*) FROM %s.applied_events WHERE consumer = $1`, pgx.Identifier{c.schema}.Sanitize())
		if err := st.pool.QueryRow(ctx, q, c.durable).Scan(&n); err != nil {
			return ec, fmt.Errorf("%s applied: %w", c.durable, err)
		}
		ec.applied[c.durable] = n
	}
	copied, err := st.names(ctx, `SELECT id::text FROM imports.addresses WHERE mail_service_id = $1`, msID)
	if err != nil {
		return ec, fmt.Errorf("imports' copy: %w", err)
	}
	for id := range copied {
		if stored[id] {
			ec.copied++
		}
	}
	if err := st.pool.QueryRow(ctx, `SELECT count(DISTINCT target) FROM accounts.audit_entries WHERE action = 'mailboxes.address.create' AND target LIKE $1 || '/addresses/%'`, l.ms).Scan(&ec.audit); err != nil {
		return ec, fmt.Errorf("audit entries: %w", err)
	}
	return ec, nil
}

// names runs q and returns the set of its one text column.
func (st *stack) names(ctx context.Context, q string, args ...any) (map[string]bool, error) {
	rows, err := st.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, id := range ids {
		set[id] = true
	}
	return set, nil
}

// createdEvents reads every address.created message of the stream and
// counts them by address id.
func (st *stack) createdEvents(ctx context.Context) (map[string]int, error) {
	subject := st.prefix + ".mailboxes.address.created"
	s, err := st.js.Stream(ctx, st.stream)
	if err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return nil, fmt.Errorf("stream info: %w", err)
	}
	want := int(info.State.Subjects[subject])
	out := map[string]int{}
	if want == 0 {
		return out, nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		return nil, fmt.Errorf("read the stream: %w", err)
	}
	for got := 0; got < want; {
		batch, err := c.Fetch(min(want-got, 500), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("read the stream: %w", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var ev mailboxesv1.AddressChanged
			if err := proto.Unmarshal(m.Data(), &ev); err != nil {
				return nil, fmt.Errorf("decode an address event: %w", err)
			}
			out[lastID(ev.GetAddress().GetName())]++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("read the stream: %w", err)
		}
		if n == 0 {
			return nil, fmt.Errorf("read the stream: %d of %d messages, then none", got, want)
		}
		got += n
	}
	return out, nil
}

// lastID is a resource name's last segment.
func lastID(name string) string { return name[strings.LastIndex(name, "/")+1:] }

// report is one run's outcome.
type report struct {
	config   config
	took     time.Duration
	restarts []restart
	load     loadCounts
	events   eventCounts
}

// ok is true when nothing was lost or duplicated.
func (r *report) ok() bool {
	c, e := r.load.creates, r.events
	lost := c.lost + c.exhausted + c.duplicates + r.load.reads.lost + r.load.reads.exhausted
	if lost > 0 || e.missing > 0 || e.eventsLost > 0 || e.eventsDup > 0 || !e.settled {
		return false
	}
	return len(r.restarts) > 0
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "\nrolling restart: %d services × %d replicas and a gateway; %.0f creates/s and %.0f reads/s for %s\n",
		len(allServices), r.config.Replicas, r.config.Rate, r.config.Rate, r.took.Round(time.Second))
	fmt.Fprintf(w, "\n%-16s %8s %8s %12s\n", "process", "stop", "ready", "exit")
	for _, rs := range r.restarts {
		fmt.Fprintf(w, "%-16s %7.1fs %7.1fs %12s\n", rs.name, rs.stop.Seconds(), rs.ready.Seconds(), rs.exit)
	}
	fmt.Fprintf(w, "\n%-8s %8s %9s %8s %10s %6s %10s %10s\n", "requests", "sent", "attempts", "retried", "succeeded", "lost", "exhausted", "duplicate")
	for _, row := range []struct {
		name string
		c    counts
	}{{"create", r.load.creates}, {"read", r.load.reads}} {
		c := row.c
		fmt.Fprintf(w, "%-8s %8d %9d %8d %10d %6d %10d %10d\n", row.name, c.sent, c.attempts, c.retried, c.succeeded, c.lost, c.exhausted, c.duplicates)
	}
	e := r.events
	fmt.Fprintf(w, "\nevents (mailboxes.address.created)\n")
	fmt.Fprintf(w, "  addresses stored                 %8d\n", e.stored)
	fmt.Fprintf(w, "  creates answered                 %8d  (answered, not stored: %d; stored, answer lost: %d)\n", e.answered, e.missing, e.unanswered)
	fmt.Fprintf(w, "  events in the stream             %8d  (stored without one: %d; duplicates: %d)\n", e.events, e.eventsLost, e.eventsDup)
	fmt.Fprintf(w, "  left in the outbox               %8d\n", e.outbox)
	names := make([]string, 0, len(e.applied))
	for n := range e.applied {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(w, "  applied by %-21s %8d\n", n, e.applied[n])
	}
	fmt.Fprintf(w, "  in imports' copy                 %8d\n", e.copied)
	fmt.Fprintf(w, "  accounts' audit entries          %8d\n", e.audit)
	if !e.settled {
		fmt.Fprintf(w, "  NOT SETTLED within %s: the counts above disagree\n", settleTimeout)
	}
	if len(r.load.failures) > 0 {
		fmt.Fprintf(w, "\nfailures (first %d):\n", len(r.load.failures))
		for _, f := range r.load.failures {
			fmt.Fprintf(w, "  %s\n", f)
		}
	}
	if r.ok() {
		fmt.Fprintln(w, "\nOK: no request lost, no event lost or duplicated")
	} else {
		fmt.Fprintln(w, "\nFAILED: something was lost or duplicated (see above)")
	}
}
