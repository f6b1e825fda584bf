package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mailplane/mailplane/services/platform/service"
	"go.yaml.in/yaml/v3"
)

// base is the kustomize base every overlay builds on.
const base = "../../../deploy/kubernetes/base"

// TestDeployCallGraph checks the base's NetworkPolicies against the code:
// each service's gRPC egress goes to exactly the services it needs an
// address of (its Check asks for <name>-addr when another process serves
// them), and its gRPC ingress comes from exactly those that need it, and
// the gateway. A new call between services fails here until the policies
// allow it, rather than in a cluster that enforces them.
func TestDeployCallGraph(t *testing.T) {
	svcs := services()
	// The gateway routes to every service.
	calls := map[string][]string{"gateway": slices.Sorted(slices.Values(service.Names(svcs)))}
	for _, svc := range svcs {
		calls[svc.Name] = callees(svc, service.Names(svcs))
	}
	objs := baseObjects(t)
	for caller, want := range calls {
		np := find(t, objs, "NetworkPolicy", "mailplane-"+caller)
		got := peers(np.Spec.Egress, "9090")
		if !slices.Equal(got, want) {
			t.Errorf("NetworkPolicy mailplane-%s: gRPC egress to %v, the code calls %v", caller, got, want)
		}
	}
	for _, svc := range svcs {
		var want []string
		for caller, callees := range calls {
			if slices.Contains(callees, svc.Name) {
				want = append(want, caller)
			}
		}
		slices.Sort(want)
		np := find(t, objs, "NetworkPolicy", "mailplane-"+svc.Name)
		got := peers(np.Spec.Ingress, "grpc")
		if !slices.Equal(got, want) {
			t.Errorf("NetworkPolicy mailplane-%s: gRPC ingress from %v, called by %v", svc.Name, got, want)
		}
	}
}

// TestDeployCoversEveryService checks that the base runs every service the
// binary has, with what the platform needs of each.
func TestDeployCoversEveryService(t *testing.T) {
	objs := baseObjects(t)
	names := append(service.Names(services()), "gateway")
	for _, name := range names {
		for _, kind := range []string{"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy"} {
			find(t, objs, kind, "mailplane-"+name)
		}
	}
	find(t, objs, "NetworkPolicy", "mailplane-default-deny")
}

// callees are the services svc needs the address of when it runs alone.
func callees(svc service.Service, names []string) []string {
	p := service.Process{Serves: func(n string) bool { return n == svc.Name }, Addrs: map[string]string{}}
	var out []string
	if svc.Check == nil {
		return nil
	}
	for _, err := range svc.Check(p) {
		for _, n := range names {
			if strings.HasPrefix(err.Error(), n+"-addr ") {
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return out
}

type object struct {
	Kind     string
	Metadata struct{ Name string }
	Spec     struct {
		Ingress []rule
		Egress  []rule
	}
}

type rule struct {
	From, To []struct {
		PodSelector *struct {
			MatchLabels      map[string]string `yaml:"matchLabels"`
			MatchExpressions []struct {
				Key      string
				Operator string
				Values   []string
			} `yaml:"matchExpressions"`
		} `yaml:"podSelector"`
	}
	Ports []struct{ Port string }
}

// peers are the Mailplane components the rules admit on port.
func peers(rules []rule, port string) []string {
	var out []string
	for _, r := range rules {
		if !slices.ContainsFunc(r.Ports, func(p struct{ Port string }) bool { return p.Port == port }) {
			continue
		}
		for _, peer := range append(r.From, r.To...) {
			s := peer.PodSelector
			if s == nil || s.MatchLabels["app.kubernetes.io/name"] != "mailplane" {
				continue
			}
			if c, ok := s.MatchLabels["app.kubernetes.io/component"]; ok {
				out = append(out, c)
			}
			for _, e := range s.MatchExpressions {
				if e.Key == "app.kubernetes.io/component" && e.Operator == "In" {
					out = append(out, e.Values...)
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func baseObjects(t *testing.T) []object {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(base, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", base, err)
	}
	var objs []object
	for _, f := range files {
		if strings.HasSuffix(f, ".example.yaml") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var o object
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			objs = append(objs, o)
		}
	}
	return objs
}

func find(t *testing.T, objs []object, kind, name string) object {
	t.Helper()
	for _, o := range objs {
		if o.Kind == kind && o.Metadata.Name == name {
			return o
		}
	}
	t.Errorf("the base has no %s %s", kind, name)
	return object{}
}
