#!/usr/bin/env bash
# pgfanout beside the polling design it replaces (bench/polling/: triggers, sequencer,
# tombstones, sync engine), on the same table, tenants and machine, in one run:
#   1. primary write TPS: pgbench, single-row UPDATEs of random rows, 4 clients, for
#      SECONDS, with no capture / with pgfanout streaming into 10 tenant databases / with
#      the polling design syncing the same 10; and, to split pgfanout's cost into its
#      parts, with only pg_recvlogical reading the slot (pgoutput to /dev/null: the
#      walsender's decoding alone) and with pgfanout delivering to a `discard` sink (the
#      walsender, pgfanout's decode and event log, no targets);
#   2. latency at a fixed 500 updates/s: per updated row, its commit time in the tenant's
#      database minus the time the application wrote it (`ts = clock_timestamp()` in the
#      UPDATE: the same for both designs, since the sequencer rewrites rows on the source);
#   3. rows/s: a backlog of 100k single-row updates committed with the consumer stopped,
#      then the time until every tenant's database has them.
#   bench/polling.sh [ROUNDS] [SECONDS]      defaults: 3, 30
#   DESIGNS="none pgfanout" bench/polling.sh 1 15   only those designs (a quick look)
# Writes bench/results/polling.csv: measure,design,round,value
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
SECONDS_EACH=${2:-30}
ROWS=100000
TENANTS=10
BACKLOG=100000
source bench/lib.sh
build_dir=${BIN%/src/pgfanout}
ninja -C "$build_dir" bench/polling_driver >/dev/null
DRIVER=$build_dir/bench/polling_driver
start_cluster
http_port=$((port + 1))
mkdir -p bench/results
csv=bench/results/polling.csv
echo "measure,design,round,value" >"$csv"
cat >"$dir/update.sql" <<SQL
\set id random(1, $ROWS)
UPDATE items SET qty = qty + 1, updated_at = now(), ts = clock_timestamp()
  WHERE tenant_id = 't' || (:id % $TENANTS) AND id = :id;
SQL
driver=

reset_tables() {  # $1: none | pgfanout | polling
  [ -n "$driver" ] && { kill "$driver"; wait "$driver" || true; driver=; }
  "${psql[@]}" -d postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots" \
    -c "DROP TABLE IF EXISTS items, deleted_items CASCADE" -c "DROP SEQUENCE IF EXISTS items_sequence" \
    -c "DROP PUBLICATION IF EXISTS bench" -c "DROP FUNCTION IF EXISTS items_flag, items_tombstone" >/dev/null
  "${psql[@]}" -d postgres -c "CREATE TABLE items (tenant_id text NOT NULL, id bigint NOT NULL,
      name text, qty int, price numeric(12,2), updated_at timestamptz, ts timestamptz,
      PRIMARY KEY (tenant_id, id));
    INSERT INTO items SELECT 't' || (i % $TENANTS), i, 'item ' || i, 0, i * 0.01, now(), clock_timestamp()
      FROM generate_series(1, $ROWS) i;
    CREATE PUBLICATION bench FOR TABLE items" -c "VACUUM ANALYZE items" >/dev/null
  [ "$1" = polling ] && "${psql[@]}" -d postgres -f bench/polling/schema.sql >/dev/null
  for t in $(seq 0 $((TENANTS - 1))); do
    "${psql[@]}" -d postgres -c "DROP DATABASE IF EXISTS tenant_t$t" -c "CREATE DATABASE tenant_t$t" >/dev/null
  done
  rm -rf "$dir/state"
}

pgfanout_config() {  # $1: postgres (one sink per tenant, the default) | discard
  local sinks=""
  if [ "${1:-postgres}" = discard ]; then
    sinks="  - id: out
    type: discard
    tenants: [\"*\"]
"
  fi
  for t in $(seq 0 $((TENANTS - 1))); do
    [ "${1:-postgres}" = discard ] && break
    sinks+="  - id: tenant-$t
    type: postgres
    tenants: [\"t$t\"]
    dsn: \"host=127.0.0.1 port=$port dbname=tenant_t$t user=postgres\"
    create_tables: true
"
  done
  { config_head public.items; echo "sinks:"; printf '%s' "$sinks"; } >"$dir/pgfanout.yaml"
}

start_consumer() {  # $1: design; returns once the targets hold the source's rows
  if [ "$1" = recvlogical ]; then
    "${psql[@]}" -d postgres -c "SELECT pg_create_logical_replication_slot('bench_recv', 'pgoutput')" >/dev/null
    "$PG_BIN/pg_recvlogical" -h 127.0.0.1 -p "$port" -U postgres -d postgres --slot bench_recv \
      --start -o proto_version=2 -o publication_names=bench -f /dev/null &
    driver=$!
    wait_slot_active
  elif [ "$1" = discard ]; then
    pgfanout_config discard
    "$BIN" run --config "$dir/pgfanout.yaml" >>"$dir/fanout.log" 2>&1 &
    daemon=$!
    wait_slot_active
  elif [ "$1" = pgfanout ]; then
    pgfanout_config
    # The log is appended to across phases: count only this start's "backfill done" lines.
    local done_before
    done_before=$(grep -c 'backfill done' "$dir/fanout.log" 2>/dev/null || true)
    "$BIN" run --config "$dir/pgfanout.yaml" >>"$dir/fanout.log" 2>&1 &
    daemon=$!
    until [ "$(grep -c 'backfill done' "$dir/fanout.log" 2>/dev/null || true)" -ge $((${done_before:-0} + TENANTS)) ]; do
      sleep 0.2
    done
  else
    targets=()
    for t in $(seq 0 $((TENANTS - 1))); do targets+=("t$t"); done
    "$DRIVER" "host=127.0.0.1 port=$port dbname=postgres user=postgres" \
      "host=127.0.0.1 port=$port dbname=tenant_%t user=postgres" "${targets[@]}" \
      >>"$dir/driver.log" 2>&1 &
    driver=$!
    wait_synced polling
  fi
}

stop_consumer() {
  [ -n "${daemon:-}" ] && { kill "$daemon"; wait "$daemon" || true; daemon=; }
  [ -n "$driver" ] && { kill "$driver"; wait "$driver" || true; driver=; }
  return 0
}

wait_slot_active() {
  until [ "$("${psql[@]}" -d postgres -c "SELECT count(*) FROM pg_replication_slots WHERE active")" = 1 ]; do
    sleep 0.1
  done
}

# Polls until every tenant database reflects the source: pgfanout's counter of delivered
# events reached $2 (events since it started), or, for polling, no row is flagged and
# every tenant's position covers its rows' sequence ids.
wait_synced() {
  if [ "$1" = pgfanout ]; then
    until [ "$({ curl -s "http://127.0.0.1:$http_port/metrics" 2>/dev/null || true; } |
              awk '/^pgfanout_sink_events_delivered_total\{/ {s += $2} END {print s + 0}')" -ge "$2" ]; do
      sleep 0.05
    done
  else
    while true; do
      kill -0 "$driver" 2>/dev/null || { echo "the polling driver exited: $(tail -n 3 "$dir/driver.log")" >&2; exit 1; }
      local flagged behind=0
      flagged=$("${psql[@]}" -d postgres -c "SELECT count(*) FROM items WHERE should_update_sequence_id")
      if [ "$flagged" = 0 ]; then
        for t in $(seq 0 $((TENANTS - 1))); do
          local want have
          want=$("${psql[@]}" -d postgres -c "SELECT coalesce(max(sequence_id), 0) FROM items WHERE tenant_id = 't$t'")
          have=$("${psql[@]}" -d "tenant_t$t" -c "SELECT coalesce(max(last_sequence_id), 0) FROM sync_state" 2>/dev/null || echo 0)
          [ "$have" -ge "$want" ] || behind=1
        done
        [ $behind = 0 ] && break
      fi
      sleep 0.05
    done
  fi
}

for round in $(seq 1 "$ROUNDS"); do
  for design in ${DESIGNS:-none recvlogical discard pgfanout polling}; do
    reset_tables "$design"
    [ "$design" != none ] && start_consumer "$design"
    out=$("$PG_BIN/pgbench" -n -h 127.0.0.1 -p "$port" -U postgres -c 4 -j 2 -T "$SECONDS_EACH" \
      -f "$dir/update.sql" postgres 2>&1)
    tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -n 1)
    echo "tps,$design,$round,$tps" >>"$csv"
    printf '  round %d %-8s primary TPS %s\n' "$round" "$design" "$tps"
    stop_consumer

    # The split designs measure only the primary's TPS.
    case $design in none | recvlogical | discard) continue ;; esac
    # Latency at 500 updates/s, measured from the rows afterwards.
    reset_tables "$design"
    start_consumer "$design"
    before=$(date +%s.%N)
    "$PG_BIN/pgbench" -n -h 127.0.0.1 -p "$port" -U postgres -c 4 -j 2 -R 500 -T "$SECONDS_EACH" \
      -f "$dir/update.sql" postgres >/dev/null 2>&1
    sleep 2
    stop_consumer
    "${psql[@]}" -d postgres -c "DROP TABLE IF EXISTS lat" \
      -c "CREATE UNLOGGED TABLE lat (tenant_id text, id bigint, ts timestamptz, dst timestamptz)" >/dev/null
    for t in $(seq 0 $((TENANTS - 1))); do
      "${psql[@]}" -d "tenant_t$t" -c "COPY (SELECT tenant_id, id, ts, pg_xact_commit_timestamp(xmin)
          FROM items WHERE ts > to_timestamp($before)) TO STDOUT" |
        "${psql[@]}" -d postgres -c "COPY lat FROM STDIN" >/dev/null
    done
    read -r n p50 p99 < <("${psql[@]}" -d postgres -F ' ' -c "
      SELECT count(*),
        round(1000 * extract(epoch FROM percentile_cont(0.50) WITHIN GROUP (ORDER BY dst - ts))::numeric, 2),
        round(1000 * extract(epoch FROM percentile_cont(0.99) WITHIN GROUP (ORDER BY dst - ts))::numeric, 2)
      FROM lat")
    echo "latency_p50_ms,$design,$round,$p50" >>"$csv"
    echo "latency_p99_ms,$design,$round,$p99" >>"$csv"
    printf '  round %d %-8s latency at 500/s over %d rows: p50 %s ms, p99 %s ms\n' "$round" "$design" "$n" "$p50" "$p99"

    # Throughput: a backlog with the consumer stopped, then the time to sync it.
    reset_tables "$design"
    start_consumer "$design"
    stop_consumer
    "${psql[@]}" -d postgres -c "CREATE PROCEDURE backlog(n int) LANGUAGE plpgsql AS \$\$
      BEGIN FOR i IN 1..n LOOP
        UPDATE items SET qty = qty + 1, ts = clock_timestamp()
          WHERE tenant_id = 't' || (i % $TENANTS) AND id = i;
        COMMIT; END LOOP; END \$\$" -c "SET synchronous_commit = off" -c "CALL backlog($BACKLOG)" >/dev/null
    t0=$(date +%s.%N)
    if [ "$design" = pgfanout ]; then
      "$BIN" run --config "$dir/pgfanout.yaml" >>"$dir/fanout.log" 2>&1 &
      daemon=$!
      wait_synced pgfanout "$BACKLOG"
    else
      start_consumer polling
    fi
    t1=$(date +%s.%N)
    stop_consumer
    "${psql[@]}" -d postgres -c "DROP PROCEDURE backlog" >/dev/null
    rate=$(echo "$BACKLOG / ($t1 - $t0)" | bc)
    echo "rows_per_s,$design,$round,$rate" >>"$csv"
    printf '  round %d %-8s %d-update backlog synced in %.2f s (%d rows/s)\n' "$round" "$design" \
      "$BACKLOG" "$(echo "$t1 - $t0" | bc)" "$rate"
  done
done
echo "raw: $csv"
