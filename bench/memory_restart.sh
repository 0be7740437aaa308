#!/usr/bin/env bash
# Memory and restart.
#   bench/memory_restart.sh [ROUNDS] [BIG_ROWS]     defaults: 3, 10000000
#   big_tx      peak RSS while pgfanout takes one BIG_ROWS-row transaction (streamed by the
#               server, spilled, moved into the log) into a discard sink
#   lagging     peak RSS while BIG_ROWS events (10k-row transactions) go into the log and
#               one sink keeps up while another (a Postgres sink whose server is down)
#               falls BIG_ROWS events behind
#   restart     kill -9 of a caught-up daemon, restarted at once: seconds until it streams
#               from the slot again; and with 1M events of backlog in the slot, seconds
#               from start until its sink has them all
# Writes bench/results/memory_restart.csv: measure,round,value,unit
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
BIG=${2:-10000000}
BACKLOG=1000000
source bench/lib.sh
start_cluster
http_port=$((port + 1))
"${psql[@]}" -d postgres <<'SQL'
CREATE TABLE items (id bigint PRIMARY KEY, tenant_id text NOT NULL, name text, qty int);
CREATE PUBLICATION bench FOR TABLE items;
CREATE PROCEDURE load(first bigint, total bigint, per_tx int) LANGUAGE plpgsql AS $$
BEGIN
  FOR start IN first..first + total - 1 BY per_tx LOOP
    INSERT INTO items SELECT i, 't' || (i % 10), 'item ' || i, 1
      FROM generate_series(start, least(start + per_tx - 1, first + total - 1)) i;
    COMMIT;
  END LOOP;
END $$;
SQL
mkdir -p bench/results
csv=bench/results/memory_restart.csv
echo "measure,round,value,unit" >"$csv"
dead_port=$(( port + 2 ))  # nothing listens there: the lagging sink's server is down

config() {  # $1: extra sinks yaml
  {
    config_head public.items
    echo "sinks:"
    cat <<YAML
  - id: out
    type: discard
    tenants: ["*"]
    batch_size: 10000
$1
YAML
  } >"$dir/pgfanout.yaml"
}
delivered() {
  { curl -s "http://127.0.0.1:$http_port/metrics" 2>/dev/null || true; } |
    awk '/^pgfanout_sink_events_delivered_total\{sink="out"\}/ {print $2 + 0}'
}
start() { "$BIN" run --config "$dir/pgfanout.yaml" >>"$dir/fanout.log" 2>&1 & daemon=$!; }
stop() { kill "$daemon"; wait "$daemon" || true; daemon=; }
wait_delivered() {  # until the discard sink has taken $1 events since this start
  local n
  while n=$(delivered); [ "${n:-0}" -lt "$1" ]; do
    kill -0 "$daemon" 2>/dev/null || { echo "pgfanout exited:"; tail -20 "$dir/fanout.log"; exit 1; }
    sleep 0.1
  done
}
# Until the slot is streamed by a walsender other than pid $1 (default: any). After a
# kill -9 the old walsender can still hold the slot for a moment: waiting only for
# "active" would stop the clock on the dead daemon's connection.
wait_streaming() {
  until [ "$("${psql[@]}" -d postgres -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'bench_fanout' AND active AND active_pid IS DISTINCT FROM ${1:-0}")" = 1 ]; do
    sleep 0.01
  done
}
walsender_pid() { "${psql[@]}" -d postgres -c "SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'bench_fanout'"; }
fresh() {
  [ -n "${daemon:-}" ] && stop
  rm -rf "$dir/state"
  "${psql[@]}" -d postgres -c "TRUNCATE items" \
    -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots" >/dev/null
}
peak() { awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$daemon/status"; }

for round in $(seq 1 "$ROUNDS"); do
  # One BIG-row transaction.
  fresh
  config ""
  start; wait_streaming; stop
  "${psql[@]}" -d postgres -c "CALL load(1, $BIG, $BIG)"
  start
  wait_delivered "$BIG"
  rss=$(peak); stop
  echo "big_tx_peak_rss,$round,$rss,MiB" >>"$csv"
  printf '  round %d: one %d-row transaction: peak RSS %d MiB\n' "$round" "$BIG" "$rss"

  # One sink BIG events behind.
  fresh
  config "  - id: lagging
    type: postgres
    tenants: [\"*\"]
    dsn: \"host=127.0.0.1 port=$dead_port dbname=postgres user=postgres connect_timeout=1\"
    backfill: false"
  start; wait_streaming
  "${psql[@]}" -d postgres -c "SET synchronous_commit = off" -c "CALL load(1, $BIG, 10000)"
  wait_delivered "$BIG"
  rss=$(peak); stop
  echo "lagging_sink_peak_rss,$round,$rss,MiB" >>"$csv"
  printf '  round %d: a sink %d events behind: peak RSS %d MiB\n' "$round" "$BIG" "$rss"

  # kill -9 and restart; then a backlog of BACKLOG events.
  fresh
  config ""
  start; wait_streaming
  "${psql[@]}" -d postgres -c "CALL load(1, 1000, 1000)"
  wait_delivered 1000
  old_walsender=$(walsender_pid)
  kill -9 "$daemon"; wait "$daemon" 2>/dev/null || true; daemon=
  t0=$(now); start; wait_streaming "$old_walsender"; t1=$(now)
  back=$(echo "$t1 - $t0" | bc)
  echo "restart_to_streaming,$round,$back,s" >>"$csv"
  kill -9 "$daemon"; wait "$daemon" 2>/dev/null || true; daemon=
  "${psql[@]}" -d postgres -c "SET synchronous_commit = off" -c "CALL load(1001, $BACKLOG, 1000)"
  t0=$(now); start; wait_delivered "$BACKLOG"; t1=$(now)
  caught=$(echo "$t1 - $t0" | bc)
  stop
  echo "restart_to_caught_up_1m,$round,$caught,s" >>"$csv"
  printf '  round %d: kill -9 to streaming again %.2f s; %d-event backlog caught up in %.2f s\n' \
    "$round" "$back" "$BACKLOG" "$caught"
done
echo "raw: $csv"
