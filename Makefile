# kube-rotate: `make demo` runs the main job on a local cluster; `make test` runs every test.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

GO        ?= go
BIN       := $(CURDIR)/bin
PKG       := github.com/kube-rotate/kube-rotate
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE      ?= $(shell git log -1 --format=%cI 2>/dev/null)
LDFLAGS   := -s -w -X $(PKG)/pkg/version.version=$(VERSION) -X $(PKG)/pkg/version.commit=$(COMMIT) -X $(PKG)/pkg/version.date=$(DATE)
# One set of build flags for tests, builds and the kops CLI, so they share one
# build cache: the kOps libraries take minutes to compile. Release archives
# (issue 8) add -trimpath.
export CGO_ENABLED := 0
GOBUILD   := $(GO) build -ldflags '$(LDFLAGS)'

# The local control plane: state (pids, kubeconfig, logs) and cached binaries.
CLUSTER_STATE ?= $(or $(TMPDIR),/tmp)/kube-rotate-cluster-$(shell id -u)/local
CLUSTER       := $(BIN)/e2e-cluster --state-dir=$(CLUSTER_STATE) --real-node
E2E_FLAGS     ?= -count=1 -timeout=20m

.PHONY: build generate verify-generated unit e2e e2e-kubeconfig test lint krew-check dist krew demo bench cluster-up cluster-env cluster-down cluster-build clean

build: ## Build kubectl-rotate, kops-rotate (also as kubectl-kops_rotate) and the Action binary into bin/
	@mkdir -p $(BIN)
	$(GOBUILD) -o $(BIN)/kubectl-rotate ./plugins/kubectl-rotate
	$(GOBUILD) -o $(BIN)/kops-rotate ./plugins/kops-rotate
	$(GOBUILD) -o $(BIN)/kube-rotate-action ./action
	@ln -sf kops-rotate $(BIN)/kubectl-kops_rotate

APIS := ./pkg/apis/rotate/v1alpha1

generate: ## Regenerate the deepcopy functions of pkg/apis (deepcopy-gen, a Go tool of go.mod)
	$(GO) tool deepcopy-gen --go-header-file hack/boilerplate.go.txt --output-file zz_generated.deepcopy.go $(APIS)

verify-generated: ## Fail when pkg/apis' generated code is not what deepcopy-gen makes of the types
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; cp -r pkg/apis "$$tmp/"; \
	$(GO) tool deepcopy-gen --go-header-file hack/boilerplate.go.txt --output-file zz_generated.deepcopy.go $(APIS); \
	if ! diff -ru "$$tmp/apis" pkg/apis; then rm -rf pkg/apis && cp -r "$$tmp/apis" pkg/; echo "pkg/apis: generated code is stale: run make generate"; exit 1; fi

$(BIN)/e2e-cluster: $(shell find e2e/cluster e2e/cmd e2e/eso e2e/internal e2e/images -name '*.go' ! -name '*_test.go') go.mod
	@mkdir -p $(BIN)
	$(GO) build -o $@ ./e2e/cmd/cluster

unit: ## Unit tests (no cluster needed)
	$(GO) test -count=1 ./...

e2e: build $(BIN)/e2e-cluster ## Start a private local cluster, run the e2e suite (harness, kOps interop and the real ESO controller included), stop it (also on failure or Ctrl-C)
	@$(BIN)/e2e-cluster eso >/dev/null # a failed build stops here, not as an empty ESO in the tests
	KOPS=$$($(BIN)/e2e-cluster kops | sed -n 's/^KOPS=//p') \
	ESO=$$($(BIN)/e2e-cluster eso | sed -n 's/^ESO=//p') \
	ESO_CRDS=$$($(BIN)/e2e-cluster eso | sed -n 's/^ESO_CRDS=//p') \
	KOPS_CHANNEL=$$($(GO) list -m -f '{{.Dir}}' k8s.io/kops)/channels/stable \
	PATH="$(BIN):$$PATH" $(BIN)/e2e-cluster --state-dir=$(CLUSTER_STATE)-e2e --real-node run -- \
		$(GO) test -tags e2e $(E2E_FLAGS) ./e2e/...

e2e-kubeconfig: build $(BIN)/e2e-cluster ## Run the whole e2e suite, every ./e2e/... package as make e2e runs them (real ESO controller, kOps interop with the kops CLI, the packages that start local control planes of their own), against the cluster KUBECONFIG points at (kind in the e2e-kind workflow)
	@test -n "$${KUBECONFIG:-}" || { echo "KUBECONFIG is not set: point it at a test cluster" >&2; exit 2; }
	@$(BIN)/e2e-cluster eso >/dev/null # a failed build stops here, not as an empty ESO in the tests
	@$(BIN)/e2e-cluster kops >/dev/null # the same for the kops CLI (e2e/kops, e2e/encryption)
	@$(BIN)/e2e-cluster build >/dev/null # control-plane binaries for e2e/encryption and e2e/cmd/cluster: built here, not inside the test timeout
	KOPS=$$($(BIN)/e2e-cluster kops | sed -n 's/^KOPS=//p') \
	ESO=$$($(BIN)/e2e-cluster eso | sed -n 's/^ESO=//p') \
	ESO_CRDS=$$($(BIN)/e2e-cluster eso | sed -n 's/^ESO_CRDS=//p') \
	KOPS_CHANNEL=$$($(GO) list -m -f '{{.Dir}}' k8s.io/kops)/channels/stable \
	PATH="$(BIN):$$PATH" $(GO) test -tags e2e $(E2E_FLAGS) ./e2e/...

lint: verify-generated ## gofmt, go vet, generated code up to date, actionlint, krew manifests (validated and installed offline)
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./e2e/...
	$(GO) tool actionlint -color=false .github/workflows/*.yml examples/workflows/*.yml
	@VERSION="$(VERSION)" DATE="$(DATE)" hack/krew-check.sh

krew-check: ## Render and validate the krew manifests, install both plugins offline with krew, run them through kubectl
	@VERSION="$(VERSION)" DATE="$(DATE)" hack/krew-check.sh

dist: ## Release archives for every krew platform and checksums.txt into dist/ (stripped, -trimpath, stamped)
	@VERSION="$(VERSION)" DATE="$(DATE)" LDFLAGS="$(LDFLAGS)" DIST="$(CURDIR)/dist" hack/dist.sh

krew: dist ## krew manifests for VERSION into dist/krew/, hashes from the archives in dist/
	$(GO) run ./hack/krewmanifest -tag "$(VERSION)" -dist dist -out dist/krew krew/rotate.krew.yaml krew/kops-rotate.krew.yaml

test: unit e2e lint ## Every test: unit, e2e on the local control plane, lint

demo: build $(BIN)/e2e-cluster ## Start the local cluster, deploy the sample app and walk through a rotation
	@PATH="$(BIN):$$PATH" CLUSTER="$(CLUSTER)" hack/demo.sh

bench: build $(BIN)/e2e-cluster ## Go benchmarks, then scripted runs on the local cluster side by side with plain kubectl
	$(GO) test -run '^$$' -bench . -benchmem ./...
	@PATH="$(BIN):$$PATH" CLUSTER="$(CLUSTER)" hack/bench.sh

cluster-build: $(BIN)/e2e-cluster ## Build the control-plane binaries into the cache (first time: ~15 min)
	@$(CLUSTER) build

cluster-up: $(BIN)/e2e-cluster ## Start the local cluster; the last line printed is KUBECONFIG=<path>
	@$(CLUSTER) up

cluster-env: $(BIN)/e2e-cluster ## Print KUBECONFIG=<path> of the running local cluster
	@$(CLUSTER) env

cluster-down: $(BIN)/e2e-cluster ## Stop the local cluster started by cluster-up
	@$(CLUSTER) down

clean:
	rm -rf $(BIN) dist
