package main

import (
	"net/http"
	"testing"

	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"github.com/mailplane/mailplane/services/platform/dns"
	"github.com/mailplane/mailplane/services/platform/oteltest"
	"github.com/mailplane/mailplane/services/platform/pgtest"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// TestTraceFollowsRequest starts `mailplane dev` exporting to an OTLP
// receiver and verifies a mail service over REST: the one trace of that
// request holds the edge's HTTP span, its gRPC call, mailboxes' handling
// of it, the relay's publication of the event it wrote and the handling
// of that event by the services consuming it, each the child of the one
// before.
func TestTraceFollowsRequest(t *testing.T) {
	receiver := oteltest.Start(t)
	// Spans leave the process every 100 ms rather than every 5 s.
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
	dbURL := pgtest.NewDatabase(t)
	zone, err := dns.ListenLocal("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer zone.Close()
	c := startDev(t,
		"--database-url", dbURL,
		"--dns-resolver", zone.Addr(),
		"--otlp-endpoint", receiver.Addr,
		"--trace-sample-ratio", "1",
	)

	const pw = "twelve chars or more"
	org := str(c.want(200, "POST", "/v1/auth:signUp", "", map[string]any{
		"email": "tracer@example.com", "password": pw, "displayName": "Tracy", "organizationDisplayName": "Tracers",
	}).body, "organization", "name")
	token := str(c.want(200, "POST", "/v1/auth:signIn", "", map[string]any{"email": "tracer@example.com", "password": pw}).body, "accessToken")
	ms := c.want(200, "POST", "/v1/"+org+"/mailServices", token, map[string]any{"domain": "traced.example"})
	// Verifying the claim publishes mailboxes.mail_service.created, which
	// accounts, dnssecurity and filters consume.
	verify(c, zone, token, ms)
	verifyPath := "/v1/" + str(ms.body, "name") + ":verify"

	edge := receiver.WaitSpan(t, oteltest.Want{Kind: trace.SpanKindServer, Attrs: map[string]string{
		"http.request.method": "POST", "url.path": verifyPath,
	}})
	if edge.Parent.IsValid() {
		t.Errorf("the edge's span has a parent, want a trace begun at the edge: %v", edge)
	}
	// Named after its route, as the HTTP conventions say.
	const route = "/v1/{name=organizations/*/mailServices/*}:verify"
	if edge.Name != "POST "+route || edge.Attrs["http.route"] != route {
		t.Errorf("the edge's span is %q with http.route %q, want %q and %q", edge.Name, edge.Attrs["http.route"], "POST "+route, route)
	}
	const method = "mailplane.mailboxes.v1.MailServiceService/VerifyMailService"
	call := receiver.WaitChild(t, edge, oteltest.Want{Kind: trace.SpanKindClient, Name: method})
	handled := receiver.WaitChild(t, call, oteltest.Want{Kind: trace.SpanKindServer, Name: method})
	subject := "mailplane." + mailboxesevents.MailServiceCreated
	published := receiver.WaitChild(t, handled, oteltest.Want{Kind: trace.SpanKindProducer, Name: "publish " + subject, Attrs: map[string]string{
		"messaging.system": "nats", "messaging.destination.name": subject,
	}})
	processed := receiver.WaitChild(t, published, oteltest.Want{Kind: trace.SpanKindConsumer, Name: "process " + subject, Attrs: map[string]string{
		"messaging.message.id": published.Attrs["messaging.message.id"],
	}})
	if processed.Status == codes.Error {
		t.Errorf("the event's handling failed: %v", processed)
	}
	t.Logf("trace %s:\n%s", edge.TraceID, oteltest.Format(receiver.Trace(edge.TraceID)))

	// A client's own trace context is not continued: the edge begins a
	// trace of its own.
	const clientTrace = "0af7651916cd43dd8448eb211c80319c"
	req, err := http.NewRequest("GET", c.base+"/v1/users/me", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("traceparent", "00-"+clientTrace+"-b7ad6b7169203331-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	me := receiver.WaitSpan(t, oteltest.Want{Kind: trace.SpanKindServer, Attrs: map[string]string{
		"http.request.method": "GET", "url.path": "/v1/users/me",
	}})
	if me.TraceID.String() == clientTrace || me.Parent.IsValid() {
		t.Errorf("the edge continued the client's trace %s: %v", clientTrace, me)
	}
}
