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
echo "whsec_$(head -c 32 /dev/urandom | base64)" >"$dir/whsec"
mkdir -p bench/results
csv=bench/results/webhook_1m.csv
echo "shape,rows,rows_per_tx,batch_size,seconds,rows_per_s,requests_bad,peak_rss_mib" >"$csv"

for shape in $SHAPES; do
  case $shape in
    single) per_tx=1 ;;
    batch1k) per_tx=1000 ;;
    *) echo "unknown shape $shape (single, batch1k)" >&2; exit 2 ;;
  esac
  rm -rf "$dir/state" "$dir/port" "$dir/count"
  "${psql[@]}" -d postgres -c "TRUNCATE users" \
    -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots" >/dev/null
  [ -n "$receiver" ] && kill "$receiver" 2>/dev/null; receiver=
  "$RECEIVER" "$dir/whsec" "$dir/port" "$dir/count" &
  receiver=$!
  until [ -s "$dir/port" ]; do sleep 0.05; done
  cat >"$dir/pgfanout.yaml" <<YAML
source:
  dsn: "host=127.0.0.1 port=$port dbname=postgres user=postgres"
  slot: bench_webhook
  publication: bench_webhook
state_dir: $dir/state
http:
  listen: "off"
tables:
  - name: public.users
    tenant_column: tenant_id
sinks:
  - id: hook
    type: webhook
    tenants: ["*"]
    url: http://127.0.0.1:$(cat "$dir/port")/bench
    secret_file: $dir/whsec
    allow_private: true
    batch_size: $BATCH
YAML
  "$PGFANOUT_BIN" run --config "$dir/pgfanout.yaml" >"$dir/fanout-setup.log" 2>&1 &
  daemon=$!
  until [ "$("${psql[@]}" -d postgres -c "SELECT count(*) FROM pg_replication_slots WHERE active")" = 1 ]; do sleep 0.1; done
  kill "$daemon"; wait "$daemon" || true; daemon=
  echo "loading $ROWS rows, $per_tx per transaction…"
  "${psql[@]}" -d postgres -c "SET synchronous_commit = off" -c "CALL load($ROWS, $per_tx)"

  t0=$(now)
  "$PGFANOUT_BIN" run --config "$dir/pgfanout.yaml" >"$dir/fanout.log" 2>&1 &
  daemon=$!
  while :; do
    sleep 0.1
    got=$(cut -d' ' -f1 "$dir/count" 2>/dev/null || echo 0)
    [ "${got:-0}" -ge "$ROWS" ] && break
    kill -0 "$daemon" 2>/dev/null || { echo "pgfanout exited:"; tail -20 "$dir/fanout.log"; exit 1; }
  done
  t1=$(now)
  bad=$(cut -d' ' -f2 "$dir/count")
  rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$daemon/status")
  kill "$daemon"; wait "$daemon" || true; daemon=
  secs=$(echo "$t1 - $t0" | bc)
  rate=$(echo "$ROWS / $secs" | bc)
  echo "$shape,$ROWS,$per_tx,$BATCH,$secs,$rate,$bad,$((rss_kib / 1024))" >>"$csv"
  printf '%-8s %d rows: webhook sink %.2f s (%d rows/s), batch_size %d, %d bad requests, peak RSS %d MiB\n' \
    "$shape" "$ROWS" "$secs" "$rate" "$BATCH" "$bad" "$((rss_kib / 1024))"
done
echo "raw: $csv"
