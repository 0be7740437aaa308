#!/usr/bin/env bash
# End to end into per-tenant Postgres targets: rows/s from a backlog in the slot to every
# tenant's database holding its rows, for 1, 10 and 100 tenants (one postgres sink and one
# target database per tenant), beside pg_recvlogical reading the same WAL (the decode
# limit) in the same round.
#   bench/e2e_postgres.sh [ROUNDS] [TENANTS] [WORKLOADS]
#     defaults: 3, "1 10 100", "single batch1k"
#     single:  100k single-row transactions    batch1k: 1M rows in 1000-row transactions
# Then the targets alone, as a ceiling: the same rows written again into each tenant's
# database with the postgres sink's kind of statements (COPY into a staging table, one
# INSERT … ON CONFLICT with the version guard and a cursor-row upsert, one transaction per
# 10000 rows; not the sink's casts and move bookkeeping), one psql per tenant in parallel,
# with nothing decoding meanwhile.
# Writes bench/results/e2e_postgres.csv:
#   workload,tenants,round,rows,recvlogical_s,pgfanout_s,peak_rss_mib,targets_alone_s,pace_s
# (pace_s: the walsender's own pace over the same WAL, bench/walsender_pace)
# BENCH_WORKERS=N sets delivery.workers (default: pgfanout's own).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
TENANT_COUNTS=${2:-1 10 100}
WORKLOADS=${3:-single batch1k}
source bench/lib.sh
start_cluster
http_port=$((port + 1))
create_items
mkdir -p bench/results
csv=bench/results/e2e_postgres.csv
echo "workload,tenants,round,rows,recvlogical_s,pgfanout_s,peak_rss_mib,targets_alone_s,pace_s" >"$csv"
printf 'commit=%s\ndate=%s\n' "$(git rev-parse --short HEAD)" "$(date -u +%Y-%m-%d)" >"${csv%.csv}.meta"

delivered_total() {
  { curl -s "http://127.0.0.1:$http_port/metrics" 2>/dev/null || true; } |
    awk '/^pgfanout_sink_events_delivered_total\{/ {s += $2} END {print s + 0}'
}

# The rows each tenant's database now holds, written again by psql alone into a copy of its
# table, in the sink's batch size; sets alone (seconds, all tenants).
targets_alone() {  # $1: tenants
  local t f n pids=()
  for t in $(seq 0 $(($1 - 1))); do
    local d="$dir/alone_$t"
    rm -rf "$d" && mkdir -p "$d"
    "${psql[@]}" -d "tenant_$t" -c "COPY (SELECT * FROM items) TO STDOUT" | split -l 10000 - "$d/rows_"
    "${psql[@]}" -d "tenant_$t" -c "DROP TABLE IF EXISTS items_alone, cursor_alone" \
      -c "CREATE TABLE items_alone (LIKE items INCLUDING ALL)" \
      -c "CREATE TABLE cursor_alone (sink_id text PRIMARY KEY, batch int)"
    n=0
    { echo "CREATE TEMP TABLE stage (LIKE items) ON COMMIT DELETE ROWS;"
      for f in "$d"/rows_*; do
        n=$((n + 1))
        echo "BEGIN;"
        echo "\\copy stage FROM '$f'"
        echo "INSERT INTO items_alone AS t SELECT * FROM stage ON CONFLICT (tenant_id, id) DO UPDATE
  SET name = EXCLUDED.name, qty = EXCLUDED.qty, price = EXCLUDED.price,
      updated_at = EXCLUDED.updated_at, pgfanout_version = EXCLUDED.pgfanout_version
  WHERE t.pgfanout_version <= EXCLUDED.pgfanout_version;"
        echo "INSERT INTO cursor_alone VALUES ('alone', $n) ON CONFLICT (sink_id) DO UPDATE SET batch = EXCLUDED.batch;"
        echo "COMMIT;"
      done; } >"$d/load.sql"
  done
  local t0
  t0=$(now)
  for t in $(seq 0 $(($1 - 1))); do
    "${psql[@]}" -d "tenant_$t" -f "$dir/alone_$t/load.sql" >/dev/null &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  alone=$(echo "$(now) - $t0" | bc)
  got=0
  for t in $(seq 0 $(($1 - 1))); do
    got=$((got + $("${psql[@]}" -d "tenant_$t" -c "SELECT count(*) FROM items_alone")))
    rm -rf "$dir/alone_$t"
  done
  [ "$got" -eq "$rows" ] || { echo "the targets alone wrote $got rows, expected $rows" >&2; exit 1; }
}

for workload in $WORKLOADS; do
  case $workload in
    single) rows=100000; per_tx=1 ;;
    batch1k) rows=1000000; per_tx=1000 ;;
    *) echo "unknown workload $workload" >&2; exit 2 ;;
  esac
  for tenants in $TENANT_COUNTS; do
    for round in $(seq 1 "$ROUNDS"); do
      rm -rf "$dir/state"
      "${psql[@]}" -d postgres -c "TRUNCATE items" \
        -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots" >/dev/null
      sinks=""
      for t in $(seq 0 $((tenants - 1))); do
        "${psql[@]}" -d postgres -c "DROP DATABASE IF EXISTS tenant_$t" -c "CREATE DATABASE tenant_$t" >/dev/null
        sinks+="  - id: tenant-$t
    type: postgres
    tenants: [\"t$t\"]
    dsn: \"host=127.0.0.1 port=$port dbname=tenant_$t user=postgres\"
    create_tables: true
    batch_size: 10000
"
      done
      { config_head public.items
        [ -n "${BENCH_WORKERS:-}" ] && printf 'delivery:\n  workers: %s\n' "$BENCH_WORKERS"
        echo "sinks:"; printf '%s' "$sinks"; } >"$dir/pgfanout.yaml"
      # Slot and sinks' tables exist before the load: the sinks then stream, not backfill.
      "$BIN" run --config "$dir/pgfanout.yaml" >"$dir/fanout-setup.log" 2>&1 &
      daemon=$!
      until [ "$(grep -c 'backfill done' "$dir/fanout-setup.log" 2>/dev/null || true)" -ge "$tenants" ]; do
        kill -0 "$daemon" 2>/dev/null || { echo "pgfanout exited:"; tail -20 "$dir/fanout-setup.log"; exit 1; }
        sleep 0.2
      done
      sleep 1
      kill "$daemon"; wait "$daemon" || true; daemon=
      "${psql[@]}" -d postgres -c "SELECT pg_create_logical_replication_slot('bench_recv', 'pgoutput')" \
        -c "SELECT pg_create_logical_replication_slot('bench_pace', 'pgoutput')" >/dev/null
      "${psql[@]}" -d postgres -c "SET synchronous_commit = off" -c "CALL load($rows, $per_tx, $tenants)"
      end=$("${psql[@]}" -d postgres -c "SELECT pg_current_wal_lsn()")

      pace=$(run_pace bench_pace "$end")
      t0=$(now)
      "$PG_BIN/pg_recvlogical" -h 127.0.0.1 -p "$port" -U postgres -d postgres --slot bench_recv \
        --start --endpos "$end" -o proto_version=2 -o streaming=on -o publication_names=bench -f /dev/null
      recv=$(echo "$(now) - $t0" | bc)

      t0=$(now)
      "$BIN" run --config "$dir/pgfanout.yaml" >"$dir/fanout.log" 2>&1 &
      daemon=$!
      while [ "$(delivered_total)" -lt "$rows" ]; do
        kill -0 "$daemon" 2>/dev/null || { echo "pgfanout exited:"; tail -20 "$dir/fanout.log"; exit 1; }
        sleep 0.05
      done
      t1=$(now)
      rss=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$daemon/status")
      kill "$daemon"; wait "$daemon" || true; daemon=
      fan=$(echo "$t1 - $t0" | bc)
      # Every tenant's database holds exactly its rows.
      got=0
      for t in $(seq 0 $((tenants - 1))); do
        got=$((got + $("${psql[@]}" -d "tenant_$t" -c "SELECT count(*) FROM items WHERE tenant_id = 't$t'")))
      done
      [ "$got" -eq "$rows" ] || { echo "targets hold $got rows, expected $rows" >&2; exit 1; }
      "${psql[@]}" -d postgres -c "SELECT pg_drop_replication_slot('bench_recv')" \
        -c "SELECT pg_drop_replication_slot('bench_pace')" >/dev/null
      targets_alone "$tenants"
      echo "$workload,$tenants,$round,$rows,$recv,$fan,$rss,$alone,$pace" >>"$csv"
      printf '  %-8s %3d tenant(s) round %d: walsender pace %.2f s, pg_recvlogical %.2f s, pgfanout into the targets %.2f s (%d rows/s), peak RSS %d MiB; the targets alone %.2f s\n' \
        "$workload" "$tenants" "$round" "$pace" "$recv" "$fan" "$(echo "$rows / $fan" | bc)" "$rss" "$alone"
    done
  done
done
echo "raw: $csv"
