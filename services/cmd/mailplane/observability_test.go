package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mailplane/mailplane/services/platform/freeport"
	"github.com/mailplane/mailplane/services/platform/pgtest"
	"go.yaml.in/yaml/v3"
)

// observability is deploy/observability: the dashboard, the alert rules and
// their Kubernetes objects.
const observability = "../../../deploy/observability"

var updatePrometheusRule = flag.Bool("update-prometheusrule", false,
	"rewrite deploy/observability/prometheus/prometheusrule.yaml from alerts.yaml")

// tool returns the path of a program the test needs, or skips without it
// (fails under CI=true, where .ci/run installs it).
func tool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found (Debian package prometheus): %v", name, err)
		}
		t.Skipf("%s not found (Debian package prometheus)", name)
	}
	return path
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readRules(t *testing.T) (ruleFile, []byte) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(observability, "prometheus/alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(raw, &rf); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	return rf, raw
}

// TestAlertRules checks the alert rules with promtool (syntax, and the unit
// tests in alerts_test.yaml, where each alert fires on one series and not on
// another), that each alert is documented (severity, summary, description,
// a runbook_url whose anchor is a section of docs/runbooks.md), that the
// PrometheusRule carries the same groups, and that the latency alert leaves
// out every streaming method the .proto files declare.
func TestAlertRules(t *testing.T) {
	promtool := tool(t, "promtool")
	dir := filepath.Join(observability, "prometheus")
	for _, args := range [][]string{{"check", "rules", "alerts.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	rf, raw := readRules(t)
	runbooks, err := os.ReadFile("../../../docs/runbooks.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#{2,3} (\S+)\s*$`).FindAllStringSubmatch(string(runbooks), -1) {
		anchors[strings.ToLower(m[1])] = true
	}
	const runbookURL = "https://github.com/mailplane/mailplane/blob/main/docs/runbooks.md#"
	alerts := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts[r.Alert] = true
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: no summary or description", r.Alert)
			}
			if want := runbookURL + strings.ToLower(r.Alert); r.Annotations["runbook_url"] != want {
				t.Errorf("%s: runbook_url %q, want %q", r.Alert, r.Annotations["runbook_url"], want)
			}
			if !anchors[strings.ToLower(r.Alert)] {
				t.Errorf("%s: docs/runbooks.md has no section ## %s", r.Alert, r.Alert)
			}
		}
	}
	if len(alerts) < 8 {
		t.Errorf("alerts.yaml has %d alerts: %v", len(alerts), alerts)
	}

	// The PrometheusRule is alerts.yaml's groups under spec.
	var groups any
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	groups = doc["groups"]
	want := map[string]any{
		"apiVersion": "monitoring.coreos.com/v1",
		"kind":       "PrometheusRule",
		"metadata":   map[string]any{"name": "mailplane"},
		"spec":       map[string]any{"groups": groups},
	}
	rulePath := filepath.Join(dir, "prometheusrule.yaml")
	if *updatePrometheusRule {
		var b bytes.Buffer
		b.WriteString("# Generated from alerts.yaml by\n#   go test ./services/cmd/mailplane -run TestAlertRules -update-prometheusrule\n# (TestAlertRules fails when the two differ): edit alerts.yaml, not this.\n")
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		if err := enc.Encode(want); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(rulePath, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ruleRaw, err := os.ReadFile(rulePath)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := yaml.Unmarshal(ruleRaw, &got); err != nil {
		t.Fatalf("prometheusrule.yaml: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("prometheusrule.yaml differs from alerts.yaml (run go test -run TestAlertRules -update-prometheusrule) (-want +got):\n%s", diff)
	}

	// A server stream's duration is its whole life: the gRPC latency alert
	// must leave out each one.
	protos, err := filepath.Glob("../../../proto/mailplane/*/v1/*.proto")
	if err != nil || len(protos) == 0 {
		t.Fatalf("no .proto files: %v", err)
	}
	var latency string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "MailplaneHighLatency" && r.Labels["signal"] == "grpc" {
				latency = r.Expr
			}
		}
	}
	streams := regexp.MustCompile(`rpc_method!~"\.\+/\(([A-Za-z|]+)\)"`).FindStringSubmatch(latency)
	if streams == nil {
		t.Fatalf("the gRPC MailplaneHighLatency rule leaves out no streaming method: %s", latency)
	}
	excluded := strings.Split(streams[1], "|")
	for _, p := range protos {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`rpc (\w+)\([^)]*\)\s*returns\s*\(\s*stream `).FindAllStringSubmatch(string(b), -1) {
			if !slices.Contains(excluded, m[1]) {
				t.Errorf("%s: %s streams; add it to the methods MailplaneHighLatency (gRPC) and the dashboard's duration panels leave out", filepath.Base(p), m[1])
			}
		}
	}
}

// dashboard is the part of the Grafana dashboard the tests read.
type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Type    string `json:"type"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

// grafanaVars stands for the dashboard's variables: every job and service,
// and a rate window several scrapes wide.
var grafanaVars = strings.NewReplacer("$__rate_interval", "1m", "${service}", ".+", "$service", ".+", "${job}", ".+", "$job", ".+")

// notYetSeen are the metrics a fresh dev stack does not expose because
// what they count has not happened (OpenTelemetry exports a counter from
// its first increment on), with the instrument each comes from; the test
// checks that the code still makes that instrument.
var notYetSeen = map[string]string{
	"mailplane_events_failed_total":    "mailplane.events.failed",
	"mailplane_events_dropped_total":   "mailplane.events.dropped",
	"mailplane_jobs_failed_total":      "mailplane.jobs.failed",
	"mailplane_filters_installs_total": "mailplane.filters.installs",
	"mailplane_pg_group_failed_total":  "mailplane.pg.group.failed",
}

// TestDashboardAndAlertsOnDevStack runs a real Prometheus scraping
// `mailplane dev` with alerts.yaml loaded: every metric the dashboard and
// the rules name is one the processes export, every panel's query runs
// without error, the variables find the dev stack, and every rule
// evaluates without error.
func TestDashboardAndAlertsOnDevStack(t *testing.T) {
	promBin := tool(t, "prometheus")
	dbURL := pgtest.NewDatabase(t)

	var dash dashboard
	raw, err := os.ReadFile(filepath.Join(observability, "grafana/mailplane.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("mailplane.json: %v", err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
	}
	// label_values(selector, label): the selector must find series.
	var varSelectors []string
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := regexp.MustCompile(`^label_values\((.+), \w+\)$`).FindStringSubmatch(v.Definition)
		if m == nil {
			t.Fatalf("variable %s: %q is not label_values(selector, label)", v.Name, v.Definition)
		}
		varSelectors = append(varSelectors, m[1])
	}
	rf, _ := readRules(t)
	var ruleExprs []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			ruleExprs = append(ruleExprs, r.Expr)
		}
	}
	names := map[string]bool{}
	for _, e := range slices.Concat(exprs, varSelectors, ruleExprs) {
		for _, n := range metricNames(e) {
			names[n] = true
		}
	}
	if len(names) < 20 {
		t.Fatalf("found only %d metric names in the dashboard and rules: %v", len(names), names)
	}

	// The dev stack, with a little traffic so that the edge's and the
	// services' request metrics exist.
	metricsAddr := freeport.Addr(t)
	c := startDev(t, "--database-url", dbURL, "--metrics-addr", metricsAddr)
	c.want(200, "POST", "/v1/auth:signIn", "", map[string]any{"email": demoEmail, "password": demoPassword})
	c.want(401, "GET", "/v1/users/me", "", nil)

	// Prometheus scrapes dev every second and evaluates the rules every
	// second.
	dir := t.TempDir()
	rules, err := filepath.Abs(filepath.Join(observability, "prometheus/alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [%q]
scrape_configs:
  - job_name: mailplane
    static_configs: [{targets: [%q]}]
`, rules, metricsAddr)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	promAddr := freeport.Addr(t)
	var promOut bytes.Buffer
	prom := exec.Command(promBin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+promAddr)
	prom.Stdout, prom.Stderr = &promOut, &promOut
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		prom.Process.Kill()
		prom.Wait()
		if t.Failed() {
			log := promOut.String()
			t.Logf("prometheus (last lines):\n%s", log[max(0, len(log)-4000):])
		}
	})
	api := func(path string, params url.Values, into any) error {
		resp, err := http.Get("http://" + promAddr + path + "?" + params.Encode())
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var body struct {
			Status string          `json:"status"`
			Error  string          `json:"error"`
			Data   json.RawMessage `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return fmt.Errorf("%s: %s: %w", path, resp.Status, err)
		}
		if body.Status != "success" {
			return fmt.Errorf("%s: %s", path, body.Error)
		}
		return json.Unmarshal(body.Data, into)
	}

	// Every name is scraped, except the counters of what has not happened;
	// the backlog gauges appear within a refresh (10 s for the consumers').
	var missing []string
	waitFor(t, 90*time.Second, "every metric the dashboard and the rules use scraped from dev", func() (bool, string) {
		var scraped []string
		if err := api("/api/v1/label/__name__/values", nil, &scraped); err != nil {
			return false, err.Error()
		}
		missing = missing[:0]
		for n := range names {
			if !slices.Contains(scraped, n) && notYetSeen[n] == "" {
				missing = append(missing, n)
			}
		}
		slices.Sort(missing)
		return len(missing) == 0, fmt.Sprintf("not scraped: %v", missing)
	})
	for n, instrument := range notYetSeen {
		if names[n] && !sourceHas(t, "../..", `"`+instrument+`"`) {
			t.Errorf("%s: the dashboard or the rules use it, and no code makes instrument %s", n, instrument)
		}
	}

	// The labels the panels and rules select and group by are on the
	// series, with the values they match.
	for _, sel := range []string{
		`http_server_request_duration_seconds_bucket{job="mailplane", http_route="/v1/auth:signIn", http_request_method="POST", http_response_status_code="200"}`,
		`rpc_server_call_duration_seconds_bucket{rpc_method="mailplane.accounts.v1.AuthService/SignIn", rpc_response_status_code="OK"}`,
		`rpc_client_call_duration_seconds_count{rpc_method=~"mailplane\\..+", rpc_response_status_code="UNAUTHENTICATED"}`,
		`mailplane_outbox_oldest_pending_seconds{service="accounts"}`,
		`mailplane_events_pending{consumer="accounts-audit"}`,
		`mailplane_jobs{service="mailboxes", state="discarded"}`,
		`mailplane_jobs_oldest_available_seconds{service="mailboxes"}`,
		`target_info{job="mailplane", service_name=~"mailplane.*"}`,
	} {
		var res struct {
			Result []any `json:"result"`
		}
		waitFor(t, 30*time.Second, sel, func() (bool, string) {
			if err := api("/api/v1/query", url.Values{"query": {sel}}, &res); err != nil {
				return false, err.Error()
			}
			return len(res.Result) > 0, "no series"
		})
	}

	for _, e := range exprs {
		var res any
		if err := api("/api/v1/query", url.Values{"query": {grafanaVars.Replace(e)}}, &res); err != nil {
			t.Errorf("panel query %s: %v", e, err)
		}
	}
	for _, s := range varSelectors {
		var res struct {
			Result []any `json:"result"`
		}
		if err := api("/api/v1/query", url.Values{"query": {grafanaVars.Replace(s)}}, &res); err != nil {
			t.Errorf("variable selector %s: %v", s, err)
		} else if len(res.Result) == 0 {
			t.Errorf("variable selector %s finds nothing on the dev stack", s)
		}
	}

	// Every rule evaluated, without error.
	waitFor(t, 60*time.Second, "every rule evaluated", func() (bool, string) {
		var rs struct {
			Groups []struct {
				Rules []struct {
					Name           string    `json:"name"`
					Health         string    `json:"health"`
					LastError      string    `json:"lastError"`
					LastEvaluation time.Time `json:"lastEvaluation"`
				} `json:"rules"`
			} `json:"groups"`
		}
		if err := api("/api/v1/rules", nil, &rs); err != nil {
			return false, err.Error()
		}
		n, pending := 0, 0
		for _, g := range rs.Groups {
			for _, r := range g.Rules {
				n++
				if r.Health == "err" {
					t.Fatalf("rule %s: %s", r.Name, r.LastError)
				}
				if r.Health != "ok" || r.LastEvaluation.IsZero() {
					pending++
				}
			}
		}
		return n == len(ruleExprs) && pending == 0, fmt.Sprintf("%d rules loaded of %d, %d not evaluated", n, len(ruleExprs), pending)
	})
}

// waitFor polls cond until it holds, failing with its last word after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %s", what, d, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// metricNames returns the metric names a PromQL expression selects: the
// identifiers left once strings, label matchers, grouping clauses and range
// or offset durations are cut out, that are not functions, keywords or
// numbers.
func metricNames(expr string) []string {
	for _, cut := range []string{
		`"(?:[^"\\]|\\.)*"`, // strings
		`\{[^}]*\}`,         // label matchers
		`\[[^\]]*\]`,        // ranges
		`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`, // label lists
		`\boffset\s+\w+`,
	} {
		expr = regexp.MustCompile(cut).ReplaceAllString(expr, " ")
	}
	keywords := []string{"and", "or", "unless", "bool", "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "inf", "nan"}
	var names []string
	for _, m := range regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?`).FindAllStringSubmatch(expr, -1) {
		name := strings.TrimRight(strings.TrimSuffix(strings.TrimSpace(m[0]), "("), " ")
		if m[1] != "" || slices.Contains(keywords, strings.ToLower(name)) {
			continue // a function call or a keyword
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}

// sourceHas reports whether a non-test Go file under dir contains s.
func sourceHas(t *testing.T, dir, s string) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || found || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil && bytes.Contains(b, []byte(s)) {
			found = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
