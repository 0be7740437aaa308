#!/usr/bin/env bash
# Many tenants on one daemon: rows/s from a backlog in the slot to every tenant's sink
# holding its rows, at 1, 100, 1,000 and 10,000 tenants, beside pg_recvlogical reading the
# same WAL (the decode limit) in the same round. Same rows at every count.
#   bench/e2e_tenants.sh [ROUNDS] [TENANTS] [WORKLOADS]
#     defaults: 2, "1 100 1000 10000", "single batch1k"
#     single:  100k single-row transactions    batch1k: 1M rows in 1000-row transactions
# BENCH_SINK=jsonl (default): one JSONL sink of one tenant each. No target server shares
#   the cores, so what grows with the tenants is pgfanout's own cost (the tenant index,
#   the wake-ups, the delivery pool).
# BENCH_SINK=postgres: one postgres sink of one tenant each into ten target databases on
#   the source's cluster (tgt_0 … tgt_9, a schema per tenant through the mapping, its table
#   made before the run), capped at delivery.max_connections (pgfanout's default, 256,
#   unless BENCH_MAX_CONNECTIONS says); the most target connections the server counted
#   during the run is recorded too.
# Per run also: peak RSS, the most threads seen, and how long after start all sinks were
# idle again (the sinks start with backfill: false; the slot exists before the load).
# BENCH_WORKERS=N sets delivery.workers (default: pgfanout's own, 4 per core, 16 to 64).
# Writes bench/results/e2e_tenants.csv, or e2e_tenants_postgres.csv (and .meta: the commit
# and date measured):
#   workload,tenants,round,rows,recvlogical_s,pgfanout_s,peak_rss_mib,max_threads,workers,ready_s,target_conns
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-2}
TENANT_COUNTS=${2:-1 100 1000 10000}
WORKLOADS=${3:-single batch1k}
SINK=${BENCH_SINK:-jsonl}
case $SINK in
  jsonl) csv=bench/results/e2e_tenants.csv ;;
  postgres) csv=bench/results/e2e_tenants_postgres.csv ;;
  *) echo "BENCH_SINK: expected jsonl or postgres" >&2; exit 2 ;;
esac
source bench/lib.sh
start_cluster
http_port=$((port + 1))
create_items
mkdir -p bench/results
echo "workload,tenants,round,rows,recvlogical_s,pgfanout_s,peak_rss_mib,max_threads,workers,ready_s,target_conns" >"$csv"
printf 'commit=%s\ndate=%s\n' "$(git rev-parse --short HEAD)" "$(date -u +%Y-%m-%d)" >"${csv%.csv}.meta"

# The config of $1 one-tenant sinks, backfill $2 (default false).
write_config() {
  local n=$1 backfill=${2:-false}
  { config_head public.items
    printf 'delivery:\n  idle_close: 60s\n'
    [ -n "${BENCH_WORKERS:-}" ] && printf '  workers: %s\n' "$BENCH_WORKERS"
    [ -n "${BENCH_MAX_CONNECTIONS:-}" ] && printf '  max_connections: %s\n' "$BENCH_MAX_CONNECTIONS"
    echo "sinks:"
    if [ "$SINK" = postgres ]; then
      awk -v n="$n" -v port="$port" -v b="$backfill" 'BEGIN {
        for (t = 0; t < n; t++)
          printf "  - id: t%d\n    type: postgres\n    tenants: [\"t%d\"]\n    backfill: %s\n    dsn: \"host=127.0.0.1 port=%d dbname=tgt_%d user=postgres\"\n    create_tables: true\n    batch_size: 10000\n    tables:\n      - source: public.items\n        target: t%d.items\n", t, t, b, port, t % 10, t
      }'
    else
      awk -v n="$n" -v d="$dir/out" 'BEGIN {
        for (t = 0; t < n; t++)
          printf "  - id: t%d\n    type: jsonl\n    tenants: [\"t%d\"]\n    backfill: false\n    path: %s/t%d.jsonl\n    batch_size: 10000\n", t, t, d, t
      }'
    fi
  } >"$dir/pgfanout.yaml"
}

# Postgres sinks: the ten target databases, new, with each tenant's schema and table made
# before the run (10,000 tables made by the sinks would be measured as delivery): the sinks
# of t0 … t9 make theirs in a setup run (which also makes the slot), the others are copies
# of those. Then the config of all $1 sinks.
make_target_tables() {
  local n=$1 d first
  for d in $(seq 0 9); do
    "${psql[@]}" -d postgres -c "DROP DATABASE IF EXISTS tgt_$d" -c "CREATE DATABASE tgt_$d" >/dev/null
  done
  first=$((n < 10 ? n : 10))
  write_config "$first" true
  start_pgfanout "$dir/fanout-setup.log"
  until [ "$(grep -c 'backfill done' "$dir/fanout-setup.log" 2>/dev/null || true)" -ge "$first" ]; do
    pgfanout_alive "$dir/fanout-setup.log"; sleep 0.2
  done
  stop_pgfanout
  for d in $(seq 0 $((first - 1))); do
    "${psql[@]}" -d "tgt_$d" -c "DO \$\$ BEGIN
      FOR i IN $((d + 10))..$((n - 1)) BY 10 LOOP
        EXECUTE format('CREATE SCHEMA t%s; CREATE TABLE t%s.items (LIKE t$d.items INCLUDING ALL)', i, i);
      END LOOP; END \$\$" >/dev/null
  done
  write_config "$n"
}

# Connections pgfanout holds to the target databases now, as the server counts them.
target_conns() {
  "${psql[@]}" -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgfanout' AND datname LIKE 'tgt\_%'"
}

# Every tenant's sink holds exactly its rows (all $rows together) and, for the first,
# middle and last tenant, no other tenant's.
check_tenant_rows() {
  local n=$1 got=0 d t
  if [ "$SINK" = postgres ]; then
    for d in $(seq 0 $((n < 10 ? n - 1 : 9))); do
      got=$((got + $("${psql[@]}" -d "tgt_$d" -c "SELECT coalesce(sum((xpath('/row/c/text()',
        query_to_xml(format('SELECT count(*) AS c FROM %I.items', table_schema), false, true, '')))[1]::text::bigint), 0)
        FROM information_schema.tables WHERE table_name = 'items'")))
    done
    for t in 0 $((n / 2)) $((n - 1)); do
      if [ "$("${psql[@]}" -d "tgt_$((t % 10))" -c "SELECT count(*) FROM t$t.items WHERE tenant_id <> 't$t'")" != 0 ]; then
        echo "sink t$t holds another tenant's row" >&2; exit 1
      fi
    done
  else
    got=$(cat "$dir"/out/t*.jsonl | wc -l)
    for t in 0 $((n / 2)) $((n - 1)); do
      if grep -v "\"tenant_id\":\"t$t\"" "$dir/out/t$t.jsonl" | grep -q .; then
        echo "sink t$t holds another tenant's row" >&2; exit 1
      fi
    done
  fi
  [ "$got" -eq "$rows" ] || { echo "the sinks hold $got rows, expected $rows" >&2; exit 1; }
}

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
      if [ "$SINK" = postgres ]; then
        make_target_tables "$tenants"
      else
        write_config "$tenants"
        make_slot
      fi
      "${psql[@]}" -d postgres -c "SELECT pg_create_logical_replication_slot('bench_recv', 'pgoutput')" >/dev/null
      "${psql[@]}" -d postgres -c "SET synchronous_commit = off" -c "CALL load($rows, $per_tx, $tenants)"
      end=$("${psql[@]}" -d postgres -c "SELECT pg_current_wal_lsn()")
      t0=$(now)
      "$PG_BIN/pg_recvlogical" -h 127.0.0.1 -p "$port" -U postgres -d postgres --slot bench_recv \
        --start --endpos "$end" -o proto_version=2 -o streaming=on -o publication_names=bench -f /dev/null
      recv=$(echo "$(now) - $t0" | bc)

      t0=$(now)
      start_pgfanout "$dir/fanout.log"
      max_threads=0 conns=0
      while [ "$(metric pgfanout_sink_events_delivered_total)" -lt "$rows" ]; do
        pgfanout_alive "$dir/fanout.log"
        th=$(threads); [ "$th" -gt "$max_threads" ] && max_threads=$th
        if [ "$SINK" = postgres ]; then c=$(target_conns); [ "$c" -gt "$conns" ] && conns=$c; fi
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
      check_tenant_rows "$tenants"
      "${psql[@]}" -d postgres -c "SELECT pg_drop_replication_slot('bench_recv')" >/dev/null
      echo "$workload,$tenants,$round,$rows,$recv,$fan,$rss,$max_threads,$workers,$ready,$conns" >>"$csv"
      printf '  %-8s %5d %s sink(s) round %d: pg_recvlogical %.2f s, pgfanout %.2f s (%d rows/s), peak RSS %d MiB, %d threads (%d workers), %d target connections\n' \
        "$workload" "$tenants" "$SINK" "$round" "$recv" "$fan" "$(echo "$rows / $fan" | bc)" "$rss" "$max_threads" "$workers" "$conns"
    done
  done
done
echo "raw: $csv"
