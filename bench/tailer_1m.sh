#!/usr/bin/env bash
# Side by side, one run each per round: how long until one 1M-row INSERT transaction has
# been read by pg_recvlogical (to /dev/null: the walsender's limit) and by pgfanout (into
# its JSONL sink, fsynced, cursor stored), and pgfanout's peak RSS, through pgoutput or
# through wal2json (format-version 2, the options pgfanout sends; postgresql-15-wal2json).
#   bench/tailer_1m.sh [ROWS] [ROUNDS] [DECODER]   (defaults 1000000, 3, pgoutput)
# Needs a built tree (./dev build, or PGFANOUT_BIN=build-x/src/pgfanout). Prints a table
# and writes bench/results/tailer_1m.csv (pgoutput) or bench/results/wal2json_1m.csv.
#
# wal2json never streams an open transaction: the server spills the whole transaction and
# decodes it at commit; pgfanout's reader hands it on as a streamed one once past
# logical_decoding_work_mem (64MB here, the default), so the daemon spills it to its log
# instead of holding it. The ratio pgfanout / pg_recvlogical is what to watch: above 1 the
# daemon, not the walsender, is the limit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
ROUNDS=${2:-3}
DECODER=${3:-pgoutput}
source bench/lib.sh
start_cluster
"${psql[@]}" -d postgres -c "CREATE TABLE users (id int PRIMARY KEY, tenant_id text NOT NULL, name text, score int);
                             CREATE PUBLICATION bench FOR TABLE users;"
case $DECODER in
  pgoutput)
    csv=bench/results/tailer_1m.csv
    recv_opts=(-o proto_version=2 -o streaming=on -o publication_names=bench) ;;
  wal2json)
    csv=bench/results/wal2json_1m.csv
    # The options src/source/replication_stream.cc sends for wal2json.
    recv_opts=(-o format-version=2 -o include-xids=1 -o include-timestamp=1 -o include-lsn=1
               -o include-types=1 -o include-typmod=1 -o include-type-oids=1 -o include-pk=1
               -o include-column-positions=1 -o include-transaction=1 -o add-tables=public.users) ;;
  *) echo "unknown decoder $DECODER (pgoutput, wal2json)" >&2; exit 2 ;;
esac
mkdir -p bench/results
echo "round,rows,recvlogical_s,pgfanout_s,ratio,pgfanout_peak_rss_mib" >"$csv"

for round in $(seq 1 "$ROUNDS"); do
  rm -rf "$dir/state" "$dir/out"
  "${psql[@]}" -d postgres -c "TRUNCATE users" \
    -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots" >/dev/null
  { config_head public.users bench "$DECODER"
    printf 'sinks:\n  - id: jsonl\n    type: jsonl\n    tenants: ["*"]\n    path: %s\n    batch_size: 10000\n' \
      "$dir/out/events.jsonl"; } >"$dir/pgfanout.yaml"
  make_slot
  "${psql[@]}" -d postgres -c "SELECT pg_create_logical_replication_slot('bench_recv', '$DECODER')" >/dev/null
  "${psql[@]}" -d postgres -c "INSERT INTO users SELECT i, (i % 10)::text, 'user ' || i, i FROM generate_series(1, $ROWS) i"
  end=$("${psql[@]}" -d postgres -c "SELECT pg_current_wal_lsn()")

  t0=$(now)
  "$PG_BIN/pg_recvlogical" -h 127.0.0.1 -p "$port" -U postgres -d postgres --slot bench_recv \
    --start --endpos "$end" "${recv_opts[@]}" -f /dev/null
  recv=$(echo "$(now) - $t0" | bc)

  t0=$(now)
  start_pgfanout "$dir/fanout.log"
  while [ "$(wc -l <"$dir/out/events.jsonl" 2>/dev/null || echo 0)" -lt "$ROWS" ]; do
    pgfanout_alive "$dir/fanout.log"
    sleep 0.05
  done
  fan=$(echo "$(now) - $t0" | bc)
  rss=$(pgfanout_peak_mib)
  stop_pgfanout
  grep -h "streamed transaction" "$dir/fanout.log" | sed 's/^/    /' || true
  ratio=$(echo "scale=2; $fan / $recv" | bc)
  echo "$round,$ROWS,$recv,$fan,$ratio,$rss" >>"$csv"
  printf 'round %d: pg_recvlogical %.2f s, pgfanout %.2f s (x%s), peak RSS %d MiB\n' \
    "$round" "$recv" "$fan" "$ratio" "$rss"
done
echo "raw: $csv"
