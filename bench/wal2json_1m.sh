#!/usr/bin/env bash
# Side by side, one run each per round: how long until one 1M-row INSERT transaction has
# been read through wal2json (format-version 2, the options pgfanout uses) by pg_recvlogical
# (to /dev/null: the walsender's limit) and by pgfanout with source.decoder wal2json (into
# its JSONL sink, fsynced, cursor stored), and pgfanout's peak RSS. bench/tailer_1m.sh is
# the same with pgoutput.
#   bench/wal2json_1m.sh [ROWS] [ROUNDS]      (defaults 1000000 and 3)
# Needs a built tree (./dev build, or PGFANOUT_BIN=build-x/src/pgfanout) and wal2json
# (postgresql-15-wal2json). Prints a table and writes bench/results/wal2json_1m.csv.
#
# wal2json never streams an open transaction: the server spills the whole transaction
# and decodes it at commit; pgfanout's reader hands it on as a streamed one once past
# logical_decoding_work_mem (64MB here, the default), so the daemon spills it to its log
# instead of holding it. The ratio pgfanout / pg_recvlogical is what to watch: above 1 the
# daemon, not the walsender, is the limit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
ROUNDS=${2:-3}
source bench/lib.sh
start_cluster
psql+=(-d postgres)
"${psql[@]}" -c "CREATE TABLE users (id int PRIMARY KEY, tenant_id text NOT NULL, name text, score int);"
mkdir -p bench/results
csv=bench/results/wal2json_1m.csv
echo "round,rows,recvlogical_s,pgfanout_s,ratio,pgfanout_peak_rss_mib" >"$csv"

# The options src/source/replication_stream.cc sends for wal2json.
w2j_opts=(-o format-version=2 -o include-xids=1 -o include-timestamp=1 -o include-lsn=1
          -o include-types=1 -o include-typmod=1 -o include-type-oids=1 -o include-pk=1
          -o include-column-positions=1 -o include-transaction=1 -o add-tables=public.users)

for round in $(seq 1 "$ROUNDS"); do
  rm -rf "$dir/state" "$dir/out"
  "${psql[@]}" -c "TRUNCATE users" \
    -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots" >/dev/null
  cat >"$dir/pgfanout.yaml" <<YAML
source:
  dsn: "host=127.0.0.1 port=$port dbname=postgres user=postgres"
  slot: bench_fanout
  decoder: wal2json
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
YAML
  # pgfanout creates its slot (and records it) before the load, then stops.
  "$BIN" run --config "$dir/pgfanout.yaml" >"$dir/fanout-setup.log" 2>&1 &
  daemon=$!
  until [ "$("${psql[@]}" -c "SELECT count(*) FROM pg_replication_slots WHERE active")" = 1 ]; do sleep 0.1; done
  kill "$daemon"; wait "$daemon" || true; daemon=
  "${psql[@]}" -c "SELECT pg_create_logical_replication_slot('bench_recv', 'wal2json')" >/dev/null
  "${psql[@]}" -c "INSERT INTO users SELECT i, (i % 10)::text, 'user ' || i, i FROM generate_series(1, $ROWS) i"
  end=$("${psql[@]}" -c "SELECT pg_current_wal_lsn()")

  t0=$(now)
  "$PG_BIN/pg_recvlogical" -h 127.0.0.1 -p "$port" -U postgres -d postgres --slot bench_recv \
    --start --endpos "$end" "${w2j_opts[@]}" -f /dev/null
  t1=$(now)
  recv=$(echo "$t1 - $t0" | bc)

  t0=$(now)
  "$BIN" run --config "$dir/pgfanout.yaml" >"$dir/fanout.log" 2>&1 &
  daemon=$!
  lines=0
  while [ "$lines" -lt "$ROWS" ]; do
    sleep 0.05
    lines=$(wc -l <"$dir/out/events.jsonl" 2>/dev/null || echo 0)
  done
  t1=$(now)
  rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$daemon/status")
  kill "$daemon"; wait "$daemon" || true; daemon=
  grep -h "streamed transaction" "$dir/fanout.log" | sed 's/^/    /' || true
  fan=$(echo "$t1 - $t0" | bc)
  ratio=$(echo "scale=2; $fan / $recv" | bc)
  echo "$round,$ROWS,$recv,$fan,$ratio,$((rss_kib / 1024))" >>"$csv"
  printf 'round %d: pg_recvlogical %.2f s, pgfanout %.2f s (x%s), peak RSS %d MiB\n' \
    "$round" "$recv" "$fan" "$ratio" "$((rss_kib / 1024))"
done
echo "raw: $csv"
