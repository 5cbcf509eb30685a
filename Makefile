# autoip: userspace IPv4 link-local autoconfiguration (RFC 3927 / RFC 5227).
# `make help` lists the targets.

GO       ?= go
FUZZTIME ?= 30s
PKGS     := ./...

# Fuzz targets as package:Target pairs; `make fuzz` runs each for FUZZTIME.
FUZZ_TARGETS := \
	./autoip/acd:FuzzDecodeFrame \
	./autoip/acd:FuzzPacketRoundTrip \
	./autoip/acd:FuzzDecodeVsGopacket \
	./autoip/acd:FuzzDetector \
	./autoip:FuzzEngine

.PHONY: help all build test unit race vet fmt-check tidy-check fuzz bench demo golden-update ci clean

help: ## show this help
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z_-]+:.*## /{printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

all: build test ## build and test

build: ## build every package and command
	$(GO) build $(PKGS)

test: fmt-check vet race ## the project's test command: gofmt, vet, all tests with -race (privileged ones run as root)

unit: ## all tests without the race detector
	$(GO) test -count=1 $(PKGS)

race: ## all tests with the race detector
	$(GO) test -race -count=1 $(PKGS)

vet: ## go vet
	$(GO) vet $(PKGS)

fmt-check: ## fail if any file is not gofmt-clean
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "not gofmt-clean:"; echo "$$out"; exit 1; fi

tidy-check: ## fail if go.mod/go.sum are not tidy
	$(GO) mod tidy -diff

fuzz: ## run every fuzz target for FUZZTIME (default 30s)
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== fuzz $$pkg $$name for $(FUZZTIME)"; \
		$(GO) test $$pkg -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME); \
	done

bench: ## engine micro-benchmarks (ns/op and allocs per ARP frame)
	$(GO) test -run='^$$' -bench=. -benchmem ./autoip/...

demo: ## show the engine at work: four hosts start on one address and sort it out
	$(GO) run ./cmd/autoip-trace -hosts 4 -same-initial 169.254.20.20

golden-update: ## rewrite golden files (candidate sequence vectors)
	$(GO) test ./autoip/ -run Golden -update

ci: ## what .ci/run runs after installing dependencies
	$(MAKE) test
	$(MAKE) tidy-check
	$(MAKE) fuzz FUZZTIME=$(or $(CI_FUZZTIME),15s)

clean: ## remove build and test caches of this module
	$(GO) clean -testcache
