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
csv=bench/results/postgres_sink_1m.csv
echo "shape,rows,rows_per_tx,jsonl_s,jsonl_rows_per_s,postgres_s,postgres_rows_per_s,peak_rss_mib" >"$csv"

for shape in $SHAPES; do
  case $shape in
    single) per_tx=1 ;;
    batch1k) per_tx=1000 ;;
    *) echo "unknown shape $shape (single, batch1k)" >&2; exit 2 ;;
  esac
  rm -rf "$dir/state" "$dir/out"
  "${psql[@]}" -d postgres -c "TRUNCATE users" \
    -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots" >/dev/null
  "${psql[@]}" -d postgres -c "DROP DATABASE IF EXISTS target" -c "CREATE DATABASE target" >/dev/null
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
  - id: postgres
    type: postgres
    tenants: ["*"]
    dsn: "host=127.0.0.1 port=$port dbname=target user=postgres"
    create_tables: true
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
  t_jsonl= t_pg=
  while [ -z "$t_jsonl" ] || [ -z "$t_pg" ]; do
    sleep 0.1
    if [ -z "$t_jsonl" ] && [ "$(wc -l <"$dir/out/events.jsonl" 2>/dev/null || echo 0)" -ge "$ROWS" ]; then
      t_jsonl=$(now)
    fi
    if [ -z "$t_pg" ] && [ "$("${psql[@]}" -d target -c "SELECT count(*) FROM users" 2>/dev/null || echo 0)" -ge "$ROWS" ]; then
      t_pg=$(now)
    fi
    kill -0 "$daemon" 2>/dev/null || { echo "pgfanout exited:"; tail -20 "$dir/fanout.log"; exit 1; }
  done
  rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$daemon/status")
  kill "$daemon"; wait "$daemon" || true; daemon=
  js=$(echo "$t_jsonl - $t0" | bc)
  pg=$(echo "$t_pg - $t0" | bc)
  js_rate=$(echo "$ROWS / $js" | bc)
  pg_rate=$(echo "$ROWS / $pg" | bc)
  echo "$shape,$ROWS,$per_tx,$js,$js_rate,$pg,$pg_rate,$((rss_kib / 1024))" >>"$csv"
  printf '%-8s %d rows: JSONL %.2f s (%d rows/s), Postgres sink %.2f s (%d rows/s), peak RSS %d MiB\n' \
    "$shape" "$ROWS" "$js" "$js_rate" "$pg" "$pg_rate" "$((rss_kib / 1024))"
done
echo "raw: $csv"
