#!/usr/bin/env bash
# Every benchmark, then BENCHMARKS.md from their results. One command:
#   ./dev bench            (installs what is missing, builds, runs this)
#   bench/run_all.sh [ROUNDS]   default 3; about 45 minutes on 2 cores
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
started=$(date +%s)
mkdir -p bench/results
printf 'commit=%s\ndate=%s\n' "$(git rev-parse --short HEAD)" "$(date -u +%Y-%m-%d)" >bench/results/run_all.meta
step() { echo; echo "==> $* ($(( ($(date +%s) - started) / 60 )) min in)"; }
step "1. decode limit";            bench/decode_limit.sh "$ROUNDS"
step "2. end to end into Postgres"; bench/e2e_postgres.sh "$ROUNDS"
step "2b. many tenants";           bench/e2e_tenants.sh "$ROUNDS"
step "3. latency";                 bench/latency.sh "$ROUNDS"
step "4. beside the polling design"; bench/polling.sh "$ROUNDS"
step "5. memory and restart";      bench/memory_restart.sh "$ROUNDS"
step "6. per-event cost";          bench/micro.sh
step "7. each sink kind, 1M rows"; for k in postgres_sink clickhouse webhook nats; do bench/${k}_1m.sh; done
step "8. sinks as data";          bench/registry_latency.sh 1   # 100 inserts + 1,000 at once: one round
step "report";                     bench/report.sh
echo "done in $(( ($(date +%s) - started) / 60 )) min: BENCHMARKS.md"
