#!/usr/bin/env bash
# Many tenants on one daemon: rows/s from a backlog in the slot to every tenant's sink
# holding its rows, at 1, 100, 1,000 and 10,000 tenants (one JSONL sink of one tenant each:
# no target server, so what is measured is pgfanout's own cost per tenant: reading
# through the tenant index, waking sinks, the delivery pool), beside pg_recvlogical
# reading the same WAL (the decode limit) in the same round. Same rows at every count.
#   bench/e2e_tenants.sh [ROUNDS] [TENANTS] [WORKLOADS]
#     defaults: 2, "1 100 1000 10000", "single batch1k"
#     single:  100k single-row transactions    batch1k: 1M rows in 1000-row transactions
# Per run also: peak RSS, the most threads seen, and how long after start all sinks were
# open and idle (the sinks start with backfill: false; the slot exists before the load).
# BENCH_WORKERS=N sets delivery.workers (default: pgfanout's own, 4 per core, 16 to 64).
# Writes bench/results/e2e_tenants.csv (and .meta: the commit and date measured):
#   workload,tenants,round,rows,recvlogical_s,pgfanout_s,peak_rss_mib,max_threads,workers,ready_s
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-2}
TENANT_COUNTS=${2:-1 100 1000 10000}
WORKLOADS=${3:-single batch1k}
source bench/lib.sh
start_cluster
http_port=$((port + 1))
create_items
mkdir -p bench/results
csv=bench/results/e2e_tenants.csv
echo "workload,tenants,round,rows,recvlogical_s,pgfanout_s,peak_rss_mib,max_threads,workers,ready_s" >"$csv"
printf 'commit=%s\ndate=%s\n' "$(git rev-parse --short HEAD)" "$(date -u +%Y-%m-%d)" >"${csv%.csv}.meta"

metric() {  # the sum of a /metrics series over its labels
  { curl -s "http://127.0.0.1:$http_port/metrics" 2>/dev/null || true; } |
    awk -v name="$1" 'index($0, name) == 1 {s += $NF} END {print s + 0}'
}
threads() { awk '/^Threads:/ {print $2}' "/proc/$daemon/status" 2>/dev/null || echo 0; }

for workload in $WORKLOADS; do
  case $workload in
    single) rows=100000; per_tx=1 ;;
    batch1k) rows=1000000; per_tx=1000 ;;
    *) echo "unknown workload $workload" >&2; exit 2 ;;
  esac
  for tenants in $TENANT_COUNTS; do
    for round in $(seq 1 "$ROUNDS"); do
      rm -rf "$dir/state" "$dir/out" && mkdir -p "$dir/out"
      "${psql[@]}" -d postgres -c "TRUNCATE items" \
        -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots" >/dev/null
      { config_head public.items
        [ -n "${BENCH_WORKERS:-}" ] && printf 'delivery:\n  workers: %s\n' "$BENCH_WORKERS"
        echo "sinks:"
        awk -v n="$tenants" -v d="$dir/out" 'BEGIN {
          for (t = 0; t < n; t++)
            printf "  - id: t%d\n    type: jsonl\n    tenants: [\"t%d\"]\n    backfill: false\n    path: %s/t%d.jsonl\n    batch_size: 10000\n", t, t, d, t
        }'
      } >"$dir/pgfanout.yaml"
      make_slot
      "${psql[@]}" -d postgres -c "SELECT pg_create_logical_replication_slot('bench_recv', 'pgoutput')" >/dev/null
      "${psql[@]}" -d postgres -c "SET synchronous_commit = off" -c "CALL load($rows, $per_tx, $tenants)"
      end=$("${psql[@]}" -d postgres -c "SELECT pg_current_wal_lsn()")
      t0=$(now)
      "$PG_BIN/pg_recvlogical" -h 127.0.0.1 -p "$port" -U postgres -d postgres --slot bench_recv \
        --start --endpos "$end" -o proto_version=2 -o streaming=on -o publication_names=bench -f /dev/null
      recv=$(echo "$(now) - $t0" | bc)

      t0=$(now)
      start_pgfanout "$dir/fanout.log"
      max_threads=0 ready=""
      while [ "$(metric pgfanout_sink_events_delivered_total)" -lt "$rows" ]; do
        pgfanout_alive "$dir/fanout.log"
        th=$(threads); [ "$th" -gt "$max_threads" ] && max_threads=$th
        sleep 0.05
      done
      t1=$(now)
      fan=$(echo "$t1 - $t0" | bc)
      rss=$(pgfanout_peak_mib)
      workers=$(metric pgfanout_delivery_workers)
      # Caught up, every sink goes idle (one more look each, then no turn).
      until [ "$(metric 'pgfanout_delivery_sinks{state="idle"}')" -ge "$tenants" ]; do
        pgfanout_alive "$dir/fanout.log"; sleep 0.1
      done
      ready=$(echo "$(now) - $t0" | bc)
      stop_pgfanout
      # Every tenant's file holds exactly its rows, and no other tenant's.
      got=$(cat "$dir"/out/t*.jsonl | wc -l)
      [ "$got" -eq "$rows" ] || { echo "the sinks hold $got rows, expected $rows" >&2; exit 1; }
      for t in 0 $((tenants / 2)) $((tenants - 1)); do
        if grep -v "\"tenant_id\":\"t$t\"" "$dir/out/t$t.jsonl" | grep -q .; then
          echo "sink t$t holds another tenant's row" >&2; exit 1
        fi
      done
      "${psql[@]}" -d postgres -c "SELECT pg_drop_replication_slot('bench_recv')" >/dev/null
      echo "$workload,$tenants,$round,$rows,$recv,$fan,$rss,$max_threads,$workers,$ready" >>"$csv"
      printf '  %-8s %5d tenant(s) round %d: pg_recvlogical %.2f s, pgfanout %.2f s (%d rows/s), peak RSS %d MiB, %d threads (%d workers)\n' \
        "$workload" "$tenants" "$round" "$recv" "$fan" "$(echo "$rows / $fan" | bc)" "$rss" "$max_threads" "$workers"
    done
  done
done
echo "raw: $csv"
