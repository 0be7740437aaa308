#!/usr/bin/env bash
# Rows per second delivered through one webhook sink into a local receiver that verifies
# every signature and parses every body, for a backlog of ROWS inserts committed as
# 1000-row transactions (and, with SHAPES="batch1k single", as one-row transactions).
#   bench/webhook_1m.sh [ROWS] [SHAPES] [BATCH]   (defaults 1000000, "batch1k", 1000)
# Needs a built tree; the bench receiver is built when missing (ninja -C build bench_receiver)
# (BUILD=build-x picks another build dir). Prints a table and writes
# bench/results/webhook_1m.csv.
#
# Per shape: pgfanout creates its slot and stops; the load is committed; then pgfanout
# starts and the clock runs until the receiver has counted ROWS events (each acknowledged
# request is one batch of BATCH events, signed with HMAC-SHA256 and verified).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
SHAPES=${2:-batch1k}
BATCH=${3:-1000}
BUILD=${BUILD:-build}
PGFANOUT_BIN=${PGFANOUT_BIN:-$PWD/$BUILD/src/pgfanout}
RECEIVER=${RECEIVER:-$PWD/$BUILD/test/integration/webhook/bench_receiver}
[ -x "$RECEIVER" ] || ninja -C "$BUILD" test/integration/webhook/bench_receiver >/dev/null ||
  { echo "build the receiver first: ninja -C $BUILD bench_receiver" >&2; exit 2; }
source bench/lib.sh
start_cluster
receiver=
stop_receiver() { [ -n "$receiver" ] && kill "$receiver" 2>/dev/null || true; cleanup_cluster; }
trap stop_receiver EXIT
create_users_table
echo "whsec_$(head -c 32 /dev/urandom | base64)" >"$dir/whsec"
mkdir -p bench/results
csv=bench/results/webhook_1m.csv
echo "shape,rows,rows_per_tx,batch_size,seconds,rows_per_s,requests_bad,peak_rss_mib" >"$csv"

received() { cut -d' ' -f1 "$dir/count"; }

for shape in $SHAPES; do
  per_tx=$(shape_rows_per_tx "$shape")
  rm -f "$dir/port" "$dir/count"
  [ -n "$receiver" ] && kill "$receiver" 2>/dev/null; receiver=
  "$RECEIVER" "$dir/whsec" "$dir/port" "$dir/count" &
  receiver=$!
  until [ -s "$dir/port" ]; do sleep 0.05; done
  run_sink_shape "  - id: hook
    type: webhook
    tenants: [\"*\"]
    url: http://127.0.0.1:$(cat "$dir/port")/bench
    secret_file: $dir/whsec
    allow_private: true
    batch_size: $BATCH" received no-jsonl
  bad=$(cut -d' ' -f2 "$dir/count")
  rate=$(echo "$ROWS / $sink_s" | bc)
  echo "$shape,$ROWS,$per_tx,$BATCH,$sink_s,$rate,$bad,$rss_mib" >>"$csv"
  printf '%-8s %d rows: webhook sink %.2f s (%d rows/s), batch_size %d, %d bad requests, peak RSS %d MiB\n' \
    "$shape" "$ROWS" "$sink_s" "$rate" "$BATCH" "$bad" "$rss_mib"
done
echo "raw: $csv"
