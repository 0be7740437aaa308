#!/usr/bin/env bash
# Rows per second delivered into one Postgres sink, beside a JSONL sink fed by the same
# daemon in the same run, for a backlog of ROWS inserts committed as single-row
# transactions and as 1000-row transactions.
#   bench/postgres_sink_1m.sh [ROWS] [SHAPES]   (defaults 1000000 and "single batch1k")
# Needs a built tree (./dev build). Prints a table and writes
# bench/results/postgres_sink_1m.csv.
#
# Per shape: pgfanout creates its slot and stops; the load is committed; then pgfanout
# starts and the clock runs until the JSONL file holds ROWS lines and, separately, until
# the target table holds ROWS rows (each sink reads the event log at its own pace).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
SHAPES=${2:-single batch1k}
source bench/lib.sh
start_cluster
create_users_table
mkdir -p bench/results
csv=bench/results/postgres_sink_1m.csv
echo "shape,rows,rows_per_tx,jsonl_s,jsonl_rows_per_s,postgres_s,postgres_rows_per_s,peak_rss_mib" >"$csv"

target_rows() { "${psql[@]}" -d target -c "SELECT count(*) FROM users"; }

for shape in $SHAPES; do
  per_tx=$(shape_rows_per_tx "$shape")
  "${psql[@]}" -d postgres -c "DROP DATABASE IF EXISTS target" -c "CREATE DATABASE target" >/dev/null
  run_sink_shape "  - id: postgres
    type: postgres
    tenants: [\"*\"]
    dsn: \"host=127.0.0.1 port=$port dbname=target user=postgres\"
    create_tables: true
    batch_size: 10000" target_rows
  js_rate=$(echo "$ROWS / $jsonl_s" | bc)
  pg_rate=$(echo "$ROWS / $sink_s" | bc)
  echo "$shape,$ROWS,$per_tx,$jsonl_s,$js_rate,$sink_s,$pg_rate,$rss_mib" >>"$csv"
  printf '%-8s %d rows: JSONL %.2f s (%d rows/s), Postgres sink %.2f s (%d rows/s), peak RSS %d MiB\n' \
    "$shape" "$ROWS" "$jsonl_s" "$js_rate" "$sink_s" "$pg_rate" "$rss_mib"
done
echo "raw: $csv"
