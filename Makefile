# jwe-webhook. `make test` is what CI runs (.ci/run); `make help` lists targets.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

GO ?= go
BIN := $(CURDIR)/bin
TOOLS_DIR := test/tools
E2E_DIR := test/e2e
# The matchConditions of manifests/ evaluated by the apiserver's CEL library
# against the webhook's detection: a module of its own for k8s.io/apiserver.
MATCH_DIR := test/matchcondition
# Every Go module in the tree, for lint.
# The Helm chart, monitoring and kustomize install checks: a module of its
# own for the Helm SDK, kustomize and the Prometheus rule parser.
INSTALL_DIR := test/install
# goreleaser, pinned as a tool of its own module.
RELEASE_DIR := hack/release
MODULES := . $(E2E_DIR) $(MATCH_DIR) $(INSTALL_DIR)

# The control-plane versions are the ones test/tools/go.mod pins.
KUBE_VERSION := $(shell cd $(TOOLS_DIR) && $(GO) list -m -f '{{.Version}}' k8s.io/kubernetes)
ETCD_VERSION := $(shell cd $(TOOLS_DIR) && $(GO) list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
ifeq ($(and $(KUBE_VERSION),$(ETCD_VERSION)),)
$(error cannot read the kubernetes and etcd versions from $(TOOLS_DIR)/go.mod with `$(GO) list -m`)
endif

KUBE_APISERVER := $(BIN)/kube-apiserver-$(KUBE_VERSION)
KUBECTL := $(BIN)/kubectl-$(KUBE_VERSION)
ETCD := $(BIN)/etcd-$(ETCD_VERSION)
WEBHOOK := $(BIN)/webhook
JWE_ENCRYPT := $(BIN)/jwe-encrypt

# What `kubectl version` and the apiserver report, as Kubernetes' release
# builds stamp it (otherwise kubectl version fails to parse v0.0.0-master).
KUBE_MINOR := $(word 2,$(subst ., ,$(KUBE_VERSION)))
KUBE_LDFLAGS := $(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
	-X $(p).gitVersion=$(KUBE_VERSION) -X $(p).gitMajor=1 -X $(p).gitMinor=$(KUBE_MINOR) -X $(p).gitTreeState=clean)

# The e2e suite and the demo find every program through these.
E2E_ENV := KUBE_APISERVER=$(KUBE_APISERVER) KUBECTL=$(KUBECTL) ETCD=$(ETCD) WEBHOOK=$(WEBHOOK) JWE_ENCRYPT=$(JWE_ENCRYPT)
E2E_FLAGS ?= -v -timeout 20m

.PHONY: help build tools test test-unit test-e2e test-install test-vault interop-deps bench lint demo clean clean-tools release release-check

help:
	@echo "build        bin/webhook, bin/jwe-encrypt"
	@echo "tools        kube-apiserver $(KUBE_VERSION), kubectl $(KUBE_VERSION), etcd $(ETCD_VERSION) into bin/ (built from source once)"
	@echo "test         test-unit, test-e2e and test-install (what CI runs)"
	@echo "test-unit    go test ./... in the root module and in $(MATCH_DIR)"
	@echo "test-e2e     the suite in $(E2E_DIR) against a real etcd + kube-apiserver + webhook"
	@echo "test-install the Helm chart (lint, render, drift from manifests/), monitoring rules and dashboard, against a real apiserver and webhook"
	@echo "release      goreleaser --snapshot: archives of jwe-encrypt and webhook per OS/arch, install manifests, checksums into dist/"
	@echo "release-check release twice and compare the checksums (reproducible build)"
	@echo "test-vault   the Vault provider's cases against the Vault at VAULT_ADDR with VAULT_TOKEN (creates and deletes transit keys)"
	@echo "bench        Go benchmarks of /mutate, load runs of bin/webhook and Secret CREATEs through kube-apiserver, as ratios to baselines of the same run, into BENCHMARKS.md"
	@echo "load         load against bin/webhook (LOAD_FLAGS, see go run ./test/load -h)"
	@echo "fuzz         every fuzz target in cmd/, internal/ and $(MATCH_DIR) for FUZZTIME (5m) each, one at a time"
	@echo "lint         gofmt and go vet in every module"
	@echo "demo         a JWE Secret applied to a real control plane, seen from git, the API and etcd"
	@echo "clean        bin/webhook, bin/jwe-encrypt; clean-tools also removes the cached control plane"
	@echo "image        the webhook's container image (IMAGE, VERSION; needs a Docker engine, so not in test)"

# The version both programs print with --version, and the image's tag: the
# nearest tag, commits since and the commit (v1.2.0-3-gabcdef0), or the
# commit alone before the first tag; "-dirty" with uncommitted changes.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
VERSION_LDFLAGS := -X main.version=$(VERSION)

build:
	$(GO) build -ldflags '$(VERSION_LDFLAGS)' -o $(WEBHOOK) ./cmd/webhook
	$(GO) build -ldflags '$(VERSION_LDFLAGS)' -o $(JWE_ENCRYPT) ./cmd/jwe-encrypt

tools: $(KUBE_APISERVER) $(KUBECTL) $(ETCD)

# One rule per program, built only when missing. The recipe builds to a
# temporary name, so an interrupted build leaves nothing that looks finished.
# build-tool: output, package, name and version, first-time estimate, ldflags.
define build-tool
	@echo ">> building $(3) from source (first time: $(4); cached in bin/ afterwards)"
	@mkdir -p $(BIN)
	@start=$$SECONDS; cd $(TOOLS_DIR); $(GO) build -ldflags '$(5)' -o $(1).tmp $(2); mv $(1).tmp $(1); \
	echo ">> built $(notdir $(1)) in $$((SECONDS - start)) s"
endef

# build-tool-in: like build-tool, in another module: directory, output,
# package, name and version, first-time estimate.
define build-tool-in
	@echo ">> building $(4) (first time: $(5); cached in bin/ afterwards)"
	@mkdir -p $(BIN)
	@start=$$SECONDS; cd $(1); $(GO) build -o $(2).tmp $(3); mv $(2).tmp $(2); \
	echo ">> built $(notdir $(2)) in $$((SECONDS - start)) s"
endef

$(KUBE_APISERVER):
	$(call build-tool,$@,k8s.io/kubernetes/cmd/kube-apiserver,kube-apiserver $(KUBE_VERSION),~5 minutes on 2 cores,$(KUBE_LDFLAGS))

$(KUBECTL):
	$(call build-tool,$@,k8s.io/kubernetes/cmd/kubectl,kubectl $(KUBE_VERSION),~30 seconds after kube-apiserver,$(KUBE_LDFLAGS))

$(ETCD):
	$(call build-tool,$@,go.etcd.io/etcd/server/v3,etcd $(ETCD_VERSION),~40 seconds alone or 10 after kube-apiserver)

test: test-unit test-e2e test-install

test-unit: interop-deps
	$(GO) test ./...
	cd $(MATCH_DIR) && $(GO) test ./...

# The interoperability test runs the npm package jose (an independent JOSE
# implementation) from test/interop; npm ci installs the locked version.
INTEROP_STAMP := test/interop/node_modules/.package-lock.json
interop-deps: $(INTEROP_STAMP)
$(INTEROP_STAMP): test/interop/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix test/interop --no-audit --no-fund; \
	else echo ">> npm not found: the interop test will be skipped (it fails when CI is set)"; fi

# The Vault provider's cases against a real Vault or OpenBao at VAULT_ADDR
# (needs VAULT_TOKEN; optional VAULT_CACERT, VAULT_NAMESPACE). They create
# and delete transit keys and mounts, so they run only with -real-vault,
# never from go test ./... alone; without VAULT_ADDR or VAULT_TOKEN they fail.
test-vault:
	$(GO) test ./internal/kms/vault/ -run TestRealVault -v -count=1 -args -real-vault

# Go benchmarks of the /mutate handler, a short load run of every scenario
# against bin/webhook, and Secret CREATEs through a real kube-apiserver with
# and without the webhook, each as ratios to baselines measured in the same
# run; test/load/bench.sh writes the tables into BENCHMARKS.md.
BENCH_FLAGS ?= -benchtime 2s -count 3
BENCH_LOAD_FLAGS ?= -d 5s
BENCH_WRITEPATH_FLAGS ?= -n 50 -rounds 12
bench: tools build
	$(E2E_ENV) GO='$(GO)' BENCH_FLAGS='$(BENCH_FLAGS)' LOAD_FLAGS='$(BENCH_LOAD_FLAGS)' \
		WRITEPATH_FLAGS='$(BENCH_WRITEPATH_FLAGS)' test/load/bench.sh

# The load generator against bin/webhook, which it starts; see
# go run ./test/load -h for LOAD_FLAGS.
LOAD_FLAGS ?= -scenario cache-hit
.PHONY: load
load: build
	$(GO) run ./test/load -start -webhook $(WEBHOOK) $(LOAD_FLAGS)

# Every fuzz target in cmd/, internal/ and $(MATCH_DIR), one after another,
# FUZZTIME each. A failing target does not stop the others; its input lands
# in the package's testdata/fuzz and the target fails at the end.
FUZZTIME ?= 5m
.PHONY: fuzz
fuzz:
	@failed=(); \
	while read -r file name; do \
		pkg=./$$(dirname "$$file"); \
		echo ">> $$name in $$pkg for $(FUZZTIME)"; \
		(cd "$$pkg" && $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) .) || failed+=("$$pkg $$name"); \
	done < <(grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' cmd internal $(MATCH_DIR) | sed 's/:func / /' | sort); \
	if (( $${#failed[@]} )); then printf 'fuzz: failed: %s\n' "$${failed[@]}"; exit 1; fi

test-e2e: tools build
	cd $(E2E_DIR) && $(E2E_ENV) $(GO) test -count=1 $(E2E_FLAGS) ./...

# The chart, the monitoring rules and dashboard, and the kustomize tree,
# against a control plane and webhook of their own (test/install).
INSTALL_FLAGS ?= -timeout 15m
test-install: tools build
	cd $(INSTALL_DIR) && $(E2E_ENV) $(GO) test -count=1 $(INSTALL_FLAGS) ./...

lint:
	@unformatted=$$(gofmt -l $(wildcard cmd internal test)); \
	if [[ -n $$unformatted ]]; then echo "gofmt -l lists files to format:"; echo "$$unformatted"; exit 1; fi
	@for m in $(MODULES); do echo "go vet in $$m"; (cd $$m && $(GO) vet ./...); done

demo:
	$(E2E_ENV) MAKE=$(MAKE) hack/demo.sh

clean:
	rm -f $(WEBHOOK) $(JWE_ENCRYPT)

clean-tools: clean
	rm -rf $(BIN)

# The container image (Dockerfile): a static binary on distroless, version
# stamped. Needs a Docker engine with BuildKit, so `make test` does not run it.
IMAGE ?= ghcr.io/jwe-webhook/jwe-webhook
.PHONY: image
image:
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION) .

# Release archives with goreleaser (pinned in hack/release/go.mod, built
# from the module proxy once into bin/). RELEASE_FLAGS=--snapshot builds
# without a tag and publishes nothing; a tagged release runs with
# RELEASE_FLAGS= and GITHUB_TOKEN. Before it, one install manifest per
# overlay, its image pinned to VERSION, goes to build/release/ (checksummed
# and attached by goreleaser).
# (Read from go.mod with sed: go list -m would load goreleaser's module graph
# at every make run.)
GORELEASER_VERSION := $(shell sed -n 's|^\tgithub.com/goreleaser/goreleaser/v2 \(v[^ ]*\).*|\1|p' $(RELEASE_DIR)/go.mod)
GORELEASER := $(BIN)/goreleaser-$(GORELEASER_VERSION)
RELEASE_FLAGS ?= --snapshot
OVERLAYS := $(notdir $(wildcard manifests/overlays/*))

$(GORELEASER):
	$(call build-tool-in,$(RELEASE_DIR),$@,github.com/goreleaser/goreleaser/v2,goreleaser $(GORELEASER_VERSION),~10 minutes on 2 cores)

release: $(GORELEASER) $(KUBECTL)
	rm -rf build/release
	@for o in $(OVERLAYS); do \
		dir=build/release/kustomize/$$o; mkdir -p $$dir; \
		printf 'resources: [../../../../manifests/overlays/%s]\nimages: [{name: %s, newTag: "%s"}]\n' $$o $(IMAGE) $(VERSION) > $$dir/kustomization.yaml; \
		$(KUBECTL) kustomize $$dir > build/release/install-$$o.yaml; \
		echo ">> build/release/install-$$o.yaml"; \
	done
	RELEASE_VERSION=$(VERSION) SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct) SOURCE_DATE=$$(git log -1 --format=%cI) \
		$(GORELEASER) release --clean --parallelism 2 $(RELEASE_FLAGS)

# Two release builds of the same commit must give the same checksums.
release-check: release
	cp dist/checksums.txt build/checksums-first.txt
	$(MAKE) release
	diff build/checksums-first.txt dist/checksums.txt
	@echo ">> reproducible: $$(wc -l < dist/checksums.txt) files, the same checksums in two builds"
