# bench.mk: `make bench` measures tcplab's decode and annotate against
# tshark's TCP analysis and tcpdump; `make fuzz` runs every fuzz target.
# Included by the Makefile (which defines GO and build).

BENCH_PACKETS  ?= 1000000
# tshark's two-pass analysis does about 60k packets/s on the 2-core test
# machine, so a million packets take under 20s. Where it is much slower, a
# smaller file for tshark alone keeps it near a minute: rates are per
# packet, so they still compare.
TSHARK_PACKETS ?= $(BENCH_PACKETS)
BENCH_DIR      ?= $(or $(TMPDIR),/tmp)
BENCH_FILE     ?= $(BENCH_DIR)/tcplab-bench-$(BENCH_PACKETS).pcap
TSHARK_FILE    ?= $(BENCH_DIR)/tcplab-bench-$(TSHARK_PACKETS).pcap
FUZZTIME       ?= 30s

.PHONY: bench fuzz

# rate NAME PACKETS CMD...: run CMD with its output discarded, print its
# packets per second, and keep it in $(BENCH_DIR)/tcplab-bench-rates.
define rate
	@t0=$$(date +%s%N); $(3) >/dev/null 2>&1 || { echo "$(1) failed: $(3)"; exit 1; }; t1=$$(date +%s%N); \
	awk -v n="$(1)" -v p=$(2) -v ns=$$((t1 - t0)) 'BEGIN { s = ns / 1e9; printf "  %-26s %9d %9.2f %12.0f\n", n, p, s, p / s; \
		printf "%s\t%f\n", n, p / s >> "$(BENCH_DIR)/tcplab-bench-rates" }'
endef

bench: build ## benchmarks: decode/annotate in-process (-cpu 1), then tcplab, tcpdump and tshark on one capture
	@rm -f $(BENCH_DIR)/tcplab-bench-rates
	$(GO) test ./capture -run '^$$' -bench . -benchmem -cpu 1 -count 1 -benchpackets $(BENCH_PACKETS) | tee $(BENCH_DIR)/tcplab-bench-go.txt
	@awk '/^BenchmarkAnnotate[ \t]/ { for (i = 1; i < NF; i++) if ($$(i+1) == "pkts/s") printf "tcplab (in-process)\t%s\n", $$i }' \
		$(BENCH_DIR)/tcplab-bench-go.txt >$(BENCH_DIR)/tcplab-bench-rates
	@$(GO) test ./capture -run '^TestWriteBenchCapture$$' -count 1 -benchcapture $(BENCH_FILE) -benchpackets $(BENCH_PACKETS) >/dev/null
	@test "$(TSHARK_FILE)" = "$(BENCH_FILE)" || \
		$(GO) test ./capture -run '^TestWriteBenchCapture$$' -count 1 -benchcapture $(TSHARK_FILE) -benchpackets $(TSHARK_PACKETS) >/dev/null
	@n=$$(capinfos -Mc $(BENCH_FILE) | awk '/Number of packets/ { print $$NF }'); \
		m=$$(capinfos -Mc $(TSHARK_FILE) | awk '/Number of packets/ { print $$NF }'); \
		echo "$$n $$m" >$(BENCH_DIR)/tcplab-bench-counts; \
		echo; echo "capture: $$n packets in $(BENCH_FILE); tshark reads $$m in $(TSHARK_FILE)"; \
		printf '  %-26s %9s %9s %12s\n' tool packets seconds pkts/s
	@awk -F'\t' '{ printf "  %-26s %9s %9s %12.0f\n", $$1, "go test", "", $$2 }' $(BENCH_DIR)/tcplab-bench-rates
	$(call rate,tcplab annotate -json,$$(cut -d' ' -f1 $(BENCH_DIR)/tcplab-bench-counts),bin/tcplab annotate -json $(BENCH_FILE))
	$(call rate,tcplab annotate,$$(cut -d' ' -f1 $(BENCH_DIR)/tcplab-bench-counts),bin/tcplab annotate $(BENCH_FILE))
	$(call rate,tcplab annotate -o,$$(cut -d' ' -f1 $(BENCH_DIR)/tcplab-bench-counts),bin/tcplab annotate -o $(BENCH_DIR)/tcplab-bench-out.pcapng $(BENCH_FILE))
	$(call rate,tcpdump -nr,$$(cut -d' ' -f1 $(BENCH_DIR)/tcplab-bench-counts),tcpdump -nr $(BENCH_FILE))
	$(call rate,tshark -2 analysis flags,$$(cut -d' ' -f2 $(BENCH_DIR)/tcplab-bench-counts),tshark -r $(TSHARK_FILE) -2 -T fields -e frame.number -e tcp.analysis.flags)
	@awk -F'\t' '{ r[$$1] = $$2 } END { t = r["tshark -2 analysis flags"]; d = r["tcpdump -nr"]; \
		printf "\n  whole process, same file, side by side (targets: >= 50x tshark, >= 4x tcpdump):\n"; \
		printf "  %-34s %8s %10s\n", "", "/tshark", "/tcpdump"; \
		printf "  %-34s %7.1fx %9s\n", "annotator in-process (go test)", r["tcplab (in-process)"] / t, ""; \
		printf "  %-34s %7.1fx %9.2fx\n", "tcplab annotate (text)", r["tcplab annotate"] / t, r["tcplab annotate"] / d; \
		printf "  %-34s %7.1fx %9.2fx\n", "tcplab annotate -json", r["tcplab annotate -json"] / t, r["tcplab annotate -json"] / d; \
		printf "  %-34s %7.1fx %9.2fx\n", "tcplab annotate -o OUT.pcapng", r["tcplab annotate -o"] / t, r["tcplab annotate -o"] / d }' $(BENCH_DIR)/tcplab-bench-rates
	@rm -f $(BENCH_DIR)/tcplab-bench-out.pcapng

fuzz: ## run every fuzz target for FUZZTIME (default 30s) each, one after another
	@$(GO) test -list '^Fuzz' ./... | awk '/^Fuzz/ { names = names " " $$1 } /^ok/ { if (names != "") print $$2 names; names = "" }' | \
	while read -r pkg names; do for f in $$names; do \
		echo "== $$pkg $$f ($(FUZZTIME))"; \
		$(GO) test "$$pkg" -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 10s -parallel 1 || exit 1; \
	done; done

.PHONY: bench-path
bench: bench-path
bench-path: ## the delay line (lab/path, needs root): packets/s through it, and its added one-way delay (p50/p99) at 0 and 20 ms
	$(GO) test ./lab/path -run '^$$' -bench '^BenchmarkLine' -benchtime 2s -count 1 | tee $(BENCH_DIR)/tcplab-bench-path.txt
	@awk '/^BenchmarkLine-/ { for (i = 1; i < NF; i++) { if ($$(i+1) == "pkts/s") p = $$i; if ($$(i+1) == "Mbit/s") m = $$i } \
			printf "\ndelay line (TUN, delay 0, 1200-byte datagrams): %.0f pkts/s, %.0f Mbit/s\n", p, m } \
		/^BenchmarkLineLatency\// { split($$1, n, "[=-]"); for (i = 1; i < NF; i++) { if ($$(i+1) == "p50-µs") a = $$i; if ($$(i+1) == "p99-µs") b = $$i } \
			printf "delay line, one-way delay beyond the configured %-5s p50 %7.0f us, p99 %7.0f us\n", n[2] ":", a, b }' \
		$(BENCH_DIR)/tcplab-bench-path.txt

# The real-shape capture: real kernel TCP in a namespace of its own, 3,000
# bulk transfers and 12,000 short connections at snap length 128 (some 240k
# frames, 25 MB), made once (internal/annotatecmd's TestWriteRealCapture,
# as root or with user namespaces) and kept; remove it to make a new one.
REAL_FILE ?= out/bench-real.pcap
REAL_RUNS ?= 5

$(REAL_FILE):
	@mkdir -p $(@D)
	$(GO) test ./internal/annotatecmd -run '^TestWriteRealCapture$$' -count 1 -realcapture $(abspath $@)

# realrun NAME CMD: one whole-process run of CMD with its output
# discarded, as a line "NAME<tab>nanoseconds". The runs of each round go
# one after the other, so that a busy machine slows them alike; -o writes
# a new file each time (truncating the last run's 60 MB would be timed
# too).
define realrun
t0=$$(date +%s%N); $(2) >/dev/null 2>&1 || { echo "$(1) failed: $(2)" >&2; exit 1; }; t1=$$(date +%s%N); printf '%s\t%s\n' "$(1)" $$((t1 - t0));
endef

.PHONY: bench-real
bench: bench-real
bench-real: build $(REAL_FILE) ## every annotate output form, tshark and tcpdump on the real-shape capture: medians of REAL_RUNS (5) runs, side by side
	@n=$$(capinfos -Mc $(REAL_FILE) | awk '/Number of packets/ { print $$NF }'); \
	echo; echo "real-shape capture: $$n packets, $$(($$(stat -c %s $(REAL_FILE)) / 1000000)) MB in $(REAL_FILE); load average $$(cut -d' ' -f1-3 /proc/loadavg)"; \
	for i in $$(seq 1 $(REAL_RUNS)); do \
		$(call realrun,tcplab annotate,bin/tcplab annotate $(REAL_FILE)) \
		$(call realrun,tcplab annotate -json,bin/tcplab annotate -json $(REAL_FILE)) \
		rm -f $(BENCH_DIR)/tcplab-bench-real-out.pcapng; \
		$(call realrun,tcplab annotate -o OUT.pcapng,bin/tcplab annotate -o $(BENCH_DIR)/tcplab-bench-real-out.pcapng $(REAL_FILE)) \
		$(call realrun,tcplab annotate -summary,bin/tcplab annotate -summary $(REAL_FILE)) \
		$(call realrun,tcplab annotate -summary -json,bin/tcplab annotate -summary -json $(REAL_FILE)) \
		$(call realrun,tcpdump -nr,tcpdump -nr $(REAL_FILE)) \
		$(call realrun,tshark -2 analysis flags,tshark -r $(REAL_FILE) -2 -T fields -e frame.number -e tcp.analysis.flags) \
	done >$(BENCH_DIR)/tcplab-bench-real-times; \
	rm -f $(BENCH_DIR)/tcplab-bench-real-out.pcapng; \
	awk -F'\t' -v p=$$n -v runs=$(REAL_RUNS) '!($$1 in k) { k[$$1] = ++nk; name[nk] = $$1 } { t[$$1] = t[$$1] " " $$2 } \
		END { for (i = 1; i <= nk; i++) { m = split(t[name[i]], x, " "); \
				for (a = 1; a <= m; a++) for (b = a + 1; b <= m; b++) if (x[b] + 0 < x[a] + 0) { v = x[a]; x[a] = x[b]; x[b] = v }; \
				med[name[i]] = x[int((m + 1) / 2)] / 1e9 }; \
			ts = med["tshark -2 analysis flags"]; td = med["tcpdump -nr"]; \
			printf "  whole process, medians of %d runs side by side (targets: >= 50x tshark, >= 4x tcpdump):\n", runs; \
			printf "  %-32s %9s %12s %8s %9s\n", "tool", "seconds", "pkts/s", "/tshark", "/tcpdump"; \
			for (i = 1; i <= nk; i++) { s = med[name[i]]; \
				if (name[i] ~ /^tcplab/) printf "  %-32s %9.3f %12.0f %7.1fx %8.2fx%s\n", name[i], s, p / s, ts / s, td / s, \
					(ts / s >= 50 && td / s >= 4) ? "" : "  (below target)"; \
				else printf "  %-32s %9.3f %12.0f\n", name[i], s, p / s } }' $(BENCH_DIR)/tcplab-bench-real-times
