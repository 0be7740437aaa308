#!/usr/bin/env bash
# Rows per second delivered into one NATS JetStream sink (a local `nats-server -js`, file
# storage, one replica), beside a JSONL sink fed by the same daemon in the same run, for a
# backlog of ROWS inserts committed as single-row transactions and as 1000-row
# transactions.
#   bench/nats_1m.sh [ROWS] [SHAPES]   (defaults 1000000 and "single batch1k")
# Needs a built tree (./dev build; PGFANOUT_BIN=… for another build dir) and nats-server
# (/usr/sbin/nats-server). Prints a table and writes bench/results/nats_1m.csv.
#
# Per shape: pgfanout creates its slot and stops; the load is committed; then pgfanout
# starts and the clock runs until the JSONL file holds ROWS lines and, separately, until
# the stream holds ROWS messages (read from the server's /jsz monitoring endpoint; every
# message is acknowledged before pgfanout moves on, so this is the acknowledged rate).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
SHAPES=${2:-single batch1k}
NATS_SERVER=${NATS_SERVER:-/usr/sbin/nats-server}
source bench/lib.sh
start_cluster
nats_port=$((port + 1))
nats_mon=$((port + 2))
nats=
stop_nats() { [ -n "$nats" ] && kill "$nats" 2>/dev/null && wait "$nats" 2>/dev/null || true; nats=; }
trap 'stop_nats; cleanup_cluster' EXIT
start_nats() {
  stop_nats
  rm -rf "$dir/nats"
  "$NATS_SERVER" -js -a 127.0.0.1 -p "$nats_port" -m "$nats_mon" -sd "$dir/nats" \
    >"$dir/nats-server.log" 2>&1 &
  nats=$!
  until curl -sf "http://127.0.0.1:$nats_mon/jsz" >/dev/null; do sleep 0.1; done
}
stream_messages() {
  curl -sf "http://127.0.0.1:$nats_mon/jsz" | grep -o '"messages": *[0-9]*' | head -1 | grep -o '[0-9]*$' || echo 0
}

"${psql[@]}" -d postgres -c "
  CREATE TABLE users (id int PRIMARY KEY, tenant_id text NOT NULL, name text, score int);
  CREATE PROCEDURE load(total int, per_tx int) LANGUAGE plpgsql AS \$\$
  BEGIN
    FOR start IN 0..total - 1 BY per_tx LOOP
      INSERT INTO users SELECT i, (i % 10)::text, 'user ' || i, i
        FROM generate_series(start + 1, least(start + per_tx, total)) i;
      COMMIT;
    END LOOP;
  END \$\$;"
mkdir -p bench/results
csv=bench/results/nats_1m.csv
echo "shape,rows,rows_per_tx,jsonl_s,jsonl_rows_per_s,nats_s,nats_rows_per_s,peak_rss_mib,nats_server_rss_mib" >"$csv"

for shape in $SHAPES; do
  case $shape in
    single) per_tx=1 ;;
    batch1k) per_tx=1000 ;;
    *) echo "unknown shape $shape (single, batch1k)" >&2; exit 2 ;;
  esac
  rm -rf "$dir/state" "$dir/out"
  start_nats
  "${psql[@]}" -d postgres -c "TRUNCATE users" \
    -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots" >/dev/null
  cat >"$dir/pgfanout.yaml" <<YAML
source:
  dsn: "host=127.0.0.1 port=$port dbname=postgres user=postgres"
  slot: bench_fanout
  publication: bench_fanout
state_dir: $dir/state
tables:
  - name: public.users
    tenant_column: tenant_id
sinks:
  - id: jsonl
    type: jsonl
    tenants: ["*"]
    path: $dir/out/events.jsonl
    batch_size: 10000
  - id: nats
    type: nats
    tenants: ["*"]
    url: "nats://127.0.0.1:$nats_port"
    stream: BENCH
    subject_prefix: bench
    batch_size: 10000
YAML
  "$BIN" run --config "$dir/pgfanout.yaml" >"$dir/fanout-setup.log" 2>&1 &
  daemon=$!
  until [ "$("${psql[@]}" -d postgres -c "SELECT count(*) FROM pg_replication_slots WHERE active")" = 1 ]; do sleep 0.1; done
  kill "$daemon"; wait "$daemon" || true; daemon=
  echo "loading $ROWS rows, $per_tx per transaction…"
  "${psql[@]}" -d postgres -c "SET synchronous_commit = off" -c "CALL load($ROWS, $per_tx)"

  t0=$(now)
  "$BIN" run --config "$dir/pgfanout.yaml" >"$dir/fanout.log" 2>&1 &
  daemon=$!
  t_jsonl= t_nats=
  while [ -z "$t_jsonl" ] || [ -z "$t_nats" ]; do
    sleep 0.1
    if [ -z "$t_jsonl" ] && [ "$(wc -l <"$dir/out/events.jsonl" 2>/dev/null || echo 0)" -ge "$ROWS" ]; then
      t_jsonl=$(now)
    fi
    if [ -z "$t_nats" ] && [ "$(stream_messages)" -ge "$ROWS" ]; then
      t_nats=$(now)
    fi
    kill -0 "$daemon" 2>/dev/null || { echo "pgfanout exited:"; tail -20 "$dir/fanout.log"; exit 1; }
  done
  rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$daemon/status")
  nats_kib=$(awk '/VmHWM/ {print $2}' "/proc/$nats/status")
  kill "$daemon"; wait "$daemon" || true; daemon=
  got=$(stream_messages)
  [ "$got" -eq "$ROWS" ] || { echo "the stream holds $got messages, not $ROWS"; exit 1; }
  js=$(echo "$t_jsonl - $t0" | bc)
  ns=$(echo "$t_nats - $t0" | bc)
  js_rate=$(echo "$ROWS / $js" | bc)
  ns_rate=$(echo "$ROWS / $ns" | bc)
  echo "$shape,$ROWS,$per_tx,$js,$js_rate,$ns,$ns_rate,$((rss_kib / 1024)),$((nats_kib / 1024))" >>"$csv"
  printf '%-8s %d rows: JSONL %.2f s (%d rows/s), NATS sink %.2f s (%d rows/s), peak RSS %d MiB (nats-server %d MiB)\n' \
    "$shape" "$ROWS" "$js" "$js_rate" "$ns" "$ns_rate" "$((rss_kib / 1024))" "$((nats_kib / 1024))"
done
stop_nats
echo "raw: $csv"
