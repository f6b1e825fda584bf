# Mailplane: `make run` runs everything, `make test` tests everything.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Pinned tools, installed once with `go install` into a cache shared by every
# clone on the machine (buf takes minutes to build on a cold machine).
BUF_VERSION          := v1.75.0
PROTOC_GEN_GO        := v1.36.12
PROTOC_GEN_GO_GRPC   := v1.6.2
GRPC_GATEWAY_VERSION := v2.34.0
# staticcheck's module version (honnef.co/go/tools), not its 2026.x release name.
STATICCHECK_VERSION  := v0.8.2
TOOLS ?= $(HOME)/.cache/mailplane/tools
TOOLBIN := $(TOOLS)/bin-$(BUF_VERSION)-$(PROTOC_GEN_GO)-$(PROTOC_GEN_GO_GRPC)-$(GRPC_GATEWAY_VERSION)-$(STATICCHECK_VERSION)
export PATH := $(TOOLBIN):$(PATH)

# The Kubernetes manifests' check (make k8s-check): kustomize renders, and
# kubeconform validates against schemas made here from the OpenAPI document
# of the Kubernetes release below (its Go module carries the document;
# kubeconform's own schemas are on a host these machines cannot reach). The
# schemas' folder is named after the release and the converter's source, so
# a change to either makes them again.
KUSTOMIZE_VERSION   := v5.8.1
KUBECONFORM_VERSION := v0.8.0
K8S_VERSION         := v1.36.3
K8S_TOOLBIN := $(TOOLS)/k8s-bin-$(KUSTOMIZE_VERSION)-$(KUBECONFORM_VERSION)
K8S_SCHEMAS = $(TOOLS)/k8s-schemas-$(K8S_VERSION)-$(shell cat services/cmd/k8sschema/*.go | sha256sum | cut -c1-12)
K8S_RENDER := deploy/kubernetes/base $(wildcard deploy/kubernetes/overlays/*) deploy/observability
# The Prometheus Operator's kinds (deploy/observability) have no schema in
# Kubernetes' document: kubeconform skips them by name, and TestAlertRules
# checks the PrometheusRule against alerts.yaml.
K8S_SKIP := PrometheusRule,PodMonitor

# Integration tests use this PostgreSQL server (each test makes its own database).
MAILPLANE_TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres
export MAILPLANE_TEST_DATABASE_URL

MODULES := proto services gateway
PKGS = $(shell go list -f '{{.Dir}}/...' -m)

.PHONY: help run test unit lint generate check-generated tools build bench tidy swagger-ui k8s-check k8s-tools

help:
	@echo "make run        run every service, NATS, PostgreSQL and the REST edge (:8080)"
	@echo "make test       lint, unit and integration tests (needs PostgreSQL, see README)"
	@echo "make unit       tests that need nothing running"
	@echo "make generate   regenerate Go and OpenAPI from the .proto files"
	@echo "make bench      benchmarks (see docs/benchmarks.md)"
	@echo "make k8s-check  render the kustomize base and every overlay and validate them (deploy/README.md)"

run: build
	exec bin/mailplane dev

build:
	go build -o bin/mailplane ./services/cmd/mailplane

test: lint check-generated k8s-check
	go test -race -count=1 $(PKGS)

unit:
	MAILPLANE_TEST_DATABASE_URL= go test -short $(PKGS)

lint: tools
	buf lint
	buf format --diff --exit-code
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet $(PKGS)
	staticcheck $(PKGS)
	@for m in $(MODULES); do (cd $$m && GOWORK=off go mod tidy -diff) || { echo "go mod tidy needed in $$m"; exit 1; }; done

generate: tools
	rm -f proto/mailplane/*/v1/*.pb.go
	rm -rf gateway/internal/gen gateway/internal/openapi/mailplane.swagger.json
	buf generate

# Fails when the committed generated code differs from what the .proto files
# and gateway/http.yaml produce.
check-generated: generate
	@git diff --exit-code --stat -- proto gateway/internal || { echo "generated code is stale: run make generate and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- proto gateway/internal)" || { echo "generated files not committed:"; git status --porcelain -- proto gateway/internal; exit 1; }

tools: $(TOOLBIN)/.done
$(TOOLBIN)/.done:
	mkdir -p $(TOOLBIN)
	GOBIN=$(TOOLBIN) go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	GOBIN=$(TOOLBIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO)
	GOBIN=$(TOOLBIN) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC)
	GOBIN=$(TOOLBIN) go install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$(GRPC_GATEWAY_VERSION)
	GOBIN=$(TOOLBIN) go install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@$(GRPC_GATEWAY_VERSION)
	GOBIN=$(TOOLBIN) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	touch $@

# Renders the base and every overlay and validates each object against the
# Kubernetes $(K8S_VERSION) schemas, strictly (an unknown or misspelt field
# fails). Only the custom resources in K8S_SKIP are not validated.
k8s-check: k8s-tools
	@set -euo pipefail; for d in $(K8S_RENDER); do \
		echo "k8s-check: $$d"; \
		$(K8S_TOOLBIN)/kustomize build "$$d" | $(K8S_TOOLBIN)/kubeconform -strict -summary \
			-kubernetes-version $(K8S_VERSION:v%=%) -skip $(K8S_SKIP) \
			-schema-location '$(K8S_SCHEMAS)/{{ .ResourceKind }}{{ .KindSuffix }}.json' -; \
	done

k8s-tools: $(K8S_TOOLBIN)/.done $(K8S_SCHEMAS)/.done
$(K8S_TOOLBIN)/.done:
	mkdir -p $(K8S_TOOLBIN)
	GOBIN=$(K8S_TOOLBIN) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	GOBIN=$(K8S_TOOLBIN) go install github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION)
	touch $@
$(K8S_SCHEMAS)/.done:
	@set -euo pipefail; \
	dir=$$(cd / && GOFLAGS=-mod=mod go mod download -json k8s.io/kubernetes@$(K8S_VERSION) | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p'); \
	test -n "$$dir" || { echo "k8s.io/kubernetes@$(K8S_VERSION): no module directory"; exit 1; }; \
	rm -rf $(@D).tmp; \
	go run ./services/cmd/k8sschema -spec "$$dir/api/openapi-spec/swagger.json" -out $(@D).tmp; \
	rm -rf $(@D); mv $(@D).tmp $(@D); touch $@

# go work sync can raise a module's requirements, so tidy again after it.
tidy:
	@for m in $(MODULES); do (cd $$m && GOWORK=off go mod tidy); done
	go work sync
	@for m in $(MODULES); do (cd $$m && GOWORK=off go mod tidy); done

# The API reference page's Swagger UI (gateway/internal/apidocs/README.md):
# fetched from npm once, checked against the integrity npm publishes, and
# committed, so that building and testing never need the network.
SWAGGER_UI_VERSION ?= 5.36.0
swagger-ui:
	@set -euo pipefail; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	meta=$$(curl -fsS https://registry.npmjs.org/swagger-ui-dist/$(SWAGGER_UI_VERSION)); \
	url=$$(printf '%s' "$$meta" | python3 -c 'import json,sys; print(json.load(sys.stdin)["dist"]["tarball"])'); \
	want=$$(printf '%s' "$$meta" | python3 -c 'import json,sys; print(json.load(sys.stdin)["dist"]["integrity"])'); \
	curl -fsS -o "$$tmp/ui.tgz" "$$url"; \
	got="sha512-$$(openssl dgst -sha512 -binary "$$tmp/ui.tgz" | base64 -w0)"; \
	[ "$$got" = "$$want" ] || { echo "swagger-ui-dist $(SWAGGER_UI_VERSION): integrity $$got, npm says $$want" >&2; exit 1; }; \
	tar -xzf "$$tmp/ui.tgz" -C "$$tmp"; \
	d=gateway/internal/apidocs; \
	for f in swagger-ui-bundle.js swagger-ui.css; do gzip -9 -n -c "$$tmp/package/$$f" > "$$d/assets/$$f.gz"; done; \
	cp "$$tmp/package/LICENSE" "$$d/LICENSE.swagger-ui"; cp "$$tmp/package/NOTICE" "$$d/NOTICE.swagger-ui"; \
	echo "swagger-ui-dist $(SWAGGER_UI_VERSION) ($$got): set Version in $$d/apidocs.go and its README"

bench:
	go test -run '^$$' -bench . -benchmem ./services/accounts/...
	scripts/bench-edge.sh
	scripts/bench-bulk.sh
	scripts/bench-address.sh
	scripts/bench-lists.sh
