# tcplab: `make lab` runs every scenario, `make test` runs all tests.
.DEFAULT_GOAL := help
GO ?= go
export PATH := $(PATH):/usr/local/go/bin
SOAK ?= 50

.PHONY: help lab build test soak deps bench-bulk oracle

help: ## show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

deps: ## check for libpcap's headers; install libpcap-dev with apt-get when root
	@if [ -f /usr/include/pcap/pcap.h ] || [ -f /usr/include/pcap.h ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing libpcap-dev"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpcap-dev >/dev/null \
		|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpcap-dev >/dev/null; }; \
	else echo "tcplab needs libpcap's headers: sudo apt-get install libpcap-dev (Debian/Ubuntu) or dnf install libpcap-devel"; exit 1; fi

build: deps ## build bin/tcplab
	$(GO) build -o bin/tcplab ./cmd/tcplab

lab: build ## run every scenario on a private loopback; artifacts in out/
	bin/tcplab run -out out

test: deps ## run all tests (live captures included), and the examples' own
	$(GO) vet ./...
	$(GO) test -count=1 ./...
	$(GO) test -race -count=1 -run 'TestRunPeerCommandsNoRace|TestRunIgnoresPlantedLinks|TestRunLeavesNoStaleArtifacts' ./cmd/tcplab
	@for m in examples/*/go.mod; do d=$$(dirname $$m); echo "examples: $$d"; (cd $$d && $(GO) vet ./... && $(GO) test -count=1 ./...) || exit 1; done

LOAD ?= 0
SOAK_MAX ?= 7200
soak: build ## run every scenario SOAK times (SOAK=50) beside LOAD busy loops (LOAD=0), with SOAK_ARGS for run; per scenario: passes and the spread of its run time
	@rm -rf out/soak; mkdir -p out/soak; start=$$(date +%s); pids=""; \
	since=$$(cut -d' ' -f1 /proc/uptime); stalls() { dmesg 2>/dev/null | awk -v t=$$since -F'[][]' '/workqueue lockup|rcu_preempt detected stalls/ && $$2 + 0 > t + 0 { n++ } END { print n + 0 }'; }; \
	for i in $$(seq 1 $(LOAD)); do timeout $(SOAK_MAX) sh -c 'while :; do :; done' & pids="$$pids $$!"; done; \
	trap 'kill $$pids 2>/dev/null' EXIT INT TERM; failed=0; \
	for i in $$(seq 1 $(SOAK)); do \
		bin/tcplab run $(SOAK_ARGS) -out out/soak/$$i >out/soak/$$i.log 2>&1 || { failed=$$((failed + 1)); echo; echo "soak: run $$i failed (out/soak/$$i.log):"; grep -E "FAIL|step" out/soak/$$i.log | head -5; }; \
		printf '.'; done; echo; \
	cat out/soak/*/*/result.json | awk -F'[:,]' ' \
		/^  "scenario"/ { gsub(/[ "]/, "", $$2); sc = $$2 } \
		/^  "pass"/ { gsub(/ /, "", $$2); runs[sc]++; if ($$2 == "true") pass[sc]++ } \
		/^  "seconds"/ { gsub(/ /, "", $$2); t[sc] = t[sc] " " $$2 } \
		END { printf "%-18s %9s %8s %8s %8s\n", "SCENARIO", "PASSED", "MIN", "MEDIAN", "MAX"; \
			for (sc in runs) { n = split(t[sc], x, " "); for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (x[j] + 0 < x[i] + 0) { v = x[i]; x[i] = x[j]; x[j] = v }; \
				printf "%-18s %4d/%-4d %7.2fs %7.2fs %7.2fs\n", sc, pass[sc], runs[sc], x[1], x[int((n + 1) / 2)], x[n] } }' | sort; \
	echo "soak: $(SOAK) runs of every scenario beside $(LOAD) busy loops, $$failed failed, in $$(( $$(date +%s) - start ))s"; \
	echo "soak: the kernel reported $$(stalls) stalls meanwhile (workqueue lockups, RCU stalls: dmesg)"; \
	test $$failed -eq 0

ORACLE_SEEDS ?= 3
oracle: build ## as root: every scenario with data x 5 path conditions x ORACLE_SEEDS seeds (3); per label, the wire's labels against the kernel's events
	bin/tcplab oracle -out out/oracle -seeds $(ORACLE_SEEDS) -timeout 40m

-include bench.mk

RUNS ?= 5
bench-bulk: build ## 1 GiB over loopback: throughput without capture, with tcplab's (tracing the kernel, without following segments, without tracing), with tcpdump's; drops
	@echo "bulk: 1 GiB over the namespace's loopback, snap length 128, $(RUNS) runs each, interleaved; median Gbit/s"
	@echo "(tcplab-nopath: tcplab with -trace-path off; tcplab-nokernel: with -kernel samples, which a high-rate scenario takes none of: as root the others trace the kernel's events)"
	@printf '%-14s %12s %8s %10s\n' capture Gbit/s drops vs-none
	@for i in $$(seq 1 $(RUNS)); do for m in none tcplab tcplab-nopath tcplab-nokernel tcpdump; do \
		case $$m in tcplab-nopath) flags="-capture tcplab -trace-path off";; tcplab-nokernel) flags="-capture tcplab -kernel samples";; *) flags="-capture $$m";; esac; \
		bin/tcplab run bulk $$flags -out out/bench-$$m >/dev/null 2>&1 || { echo "bulk with $$flags failed: see out/bench-$$m/bulk" >&2; exit 1; }; \
		printf '%s %s %s\n' $$m \
			$$(sed -n 's/.*"gbit_per_s": \([0-9.]*\).*/\1/p' out/bench-$$m/bulk/result.json) \
			$$(sed -n 's/.*"drops": \([0-9]*\).*/\1/p' out/bench-$$m/bulk/result.json); \
	done; done | sort -k1,1 -k2,2n | awk '{ v[$$1] = v[$$1] " " $$2; d[$$1] += $$3; n[$$1]++ } \
		END { split("none tcplab tcplab-nopath tcplab-nokernel tcpdump", order, " "); for (i = 1; i <= 5; i++) { m = order[i]; split(v[m], x, " "); \
			med[m] = x[int((n[m] + 1) / 2)]; runs = ""; for (j = 1; j <= n[m]; j++) runs = runs sprintf(" %.1f", x[j]); \
			printf "%-14s %12.2f %8d %9.0f%%   (runs:%s)\n", m, med[m], d[m], 100 * med[m] / med["none"], runs } }'
bench: bench-bulk
