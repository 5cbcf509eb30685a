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
	./autoip:FuzzEngine \
	./dhcp:FuzzDecode \
	./dhcp:FuzzDecodeVsGopacket \
	./dhcp:FuzzClient \
	./internal/hardening:FuzzDaemonParse \
	./internal/hardening:FuzzScenarioParse \
	./internal/hardening:FuzzPersistLoad

.PHONY: help all build test unit race vet fmt-check tidy-check fuzz bench bench-tap bench-sim demo sim-demo golden-update ci clean

help: ## show this help
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z_-]+:.*## /{printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

all: build test ## build and test

build: ## build every package and command
	$(GO) build $(PKGS)

test: fmt-check vet race ## the project's test command: gofmt, vet, all tests with -race (privileged ones run as root)

unit: ## all tests without the race detector
	$(GO) test -count=1 $(PKGS)

race: ## all tests with the race detector
	$(GO) test -race -count=1 -timeout=30m $(PKGS)

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

bench: ## one markdown table of measured figures (engine, TAP, claim, sim, daemon); root for TAP/daemon rows; BENCH_QUICK=1 for CI
	@GO="$(GO)" bash bench/run.sh

bench-tap: ## (root) ARP flood through a real TAP: frames/s and conflict-detection latency
	$(GO) test -run='^$$' -bench=TAPFlood -benchtime=1x ./internal/integration/

bench-sim: ## simulator boot storms of 1,000 and 10,000 hosts: wall, sim/wall, memory per host
	$(GO) test -run='^$$' -bench=BootStorm -benchtime=1x ./sim/

demo: ## see it work: autoipd claims an address on a TAP in a throw-away namespace (root); else four simulated hosts
	bash cmd/autoipd/demo.sh

sim-demo: ## simulate a partition and merge of 8 netstack hosts; writes sim-demo.svg and sim-demo.pcap
	$(GO) run ./cmd/autoip-sim -scenario sim/testdata/scenarios/partition-merge.json -svg sim-demo.svg -pcap sim-demo.pcap

golden-update: ## rewrite golden files (candidate sequence vectors)
	$(GO) test ./autoip/ -run Golden -update

ci: ## what .ci/run runs after installing dependencies
	$(MAKE) test
	$(MAKE) tidy-check
	$(MAKE) fuzz FUZZTIME=$(or $(CI_FUZZTIME),15s)

clean: ## remove build and test caches of this module
	$(GO) clean -testcache

.PHONY: hardening
hardening: ## (root) hardening suite at full size, no -race: 1M-frame flood, real 60 s rate limits, 50x kill -9, 50x TAP cycles, 24 h 1,000-host sim soak
	AIP_HARDEN_FULL=1 $(GO) test -count=1 -v -timeout 60m ./internal/hardening/
