#!/usr/bin/env bash
# Per-event cost on one core: Google Benchmark throughput of decoding, decoding plus
# assembling, and JSONL formatting; callgrind instructions per decoded-and-assembled event.
#   bench/micro.sh      (needs libbenchmark-dev and valgrind; ./dev bench installs them)
# Writes bench/results/micro.csv: measure,value,unit
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
ninja -C "$build" bench/decoder_bench >/dev/null
bin=$build/bench/decoder_bench
mkdir -p bench/results
csv=bench/results/micro.csv
echo "measure,value,unit" >"$csv"
"$bin" --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
  --benchmark_format=csv 2>/dev/null |
  awk -F, '/_median"?,/ {
    name = $1; gsub(/"/, "", name); sub(/_median$/, "", name); sub(/^BM_/, "", name)
    for (i = 1; i <= NF; ++i) if (hdr[i] == "items_per_second") printf "%s (median of 3),%.0f,events/s\n", name, $i
  }
  NR == 1 { for (i = 1; i <= NF; ++i) { h = $i; gsub(/"/, "", h); hdr[i] = h } }' >>"$csv"
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" --count "$1" 2>&1 |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
n=100000
a=$(count $n)
b=$(count $((2 * n)))
echo "decode + assemble,$(( (b - a) / n )),instructions/event (callgrind)" >>"$csv"
cat "$csv"
