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

create_users_table
mkdir -p bench/results
csv=bench/results/nats_1m.csv
echo "shape,rows,rows_per_tx,jsonl_s,jsonl_rows_per_s,nats_s,nats_rows_per_s,peak_rss_mib,nats_server_rss_mib" >"$csv"

for shape in $SHAPES; do
  per_tx=$(shape_rows_per_tx "$shape")
  start_nats
  run_sink_shape "  - id: nats
    type: nats
    tenants: [\"*\"]
    url: \"nats://127.0.0.1:$nats_port\"
    stream: BENCH
    subject_prefix: bench
    batch_size: 10000" stream_messages
  nats_mib=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$nats/status")
  got=$(stream_messages)
  [ "$got" -eq "$ROWS" ] || { echo "the stream holds $got messages, not $ROWS"; exit 1; }
  js_rate=$(echo "$ROWS / $jsonl_s" | bc)
  ns_rate=$(echo "$ROWS / $sink_s" | bc)
  echo "$shape,$ROWS,$per_tx,$jsonl_s,$js_rate,$sink_s,$ns_rate,$rss_mib,$nats_mib" >>"$csv"
  printf '%-8s %d rows: JSONL %.2f s (%d rows/s), NATS sink %.2f s (%d rows/s), peak RSS %d MiB (nats-server %d MiB)\n' \
    "$shape" "$ROWS" "$jsonl_s" "$js_rate" "$sink_s" "$ns_rate" "$rss_mib" "$nats_mib"
done
stop_nats
echo "raw: $csv"
