#!/usr/bin/env bash
# The decode limit, side by side: how long each reader takes to get through the same WAL.
#   bench/decode_limit.sh [ROUNDS] [WORKLOADS]
#     ROUNDS    default 3
#     WORKLOADS default "big single batch1k mix toast"
# Per workload and round, on one throwaway cluster: a slot per reader is created, the
# workload is committed (so every reader reads the same WAL), then each reader runs alone:
#   walsender_pace      bench/walsender_pace: START_REPLICATION with pgfanout's options,
#                       payloads discarded, nothing written: the walsender's own pace, the
#                       baseline every ratio in BENCHMARKS.md is taken against
#   recvlogical         pg_recvlogical, pgoutput (proto 2, streaming on, text) -> /dev/null
#   recvlogical_binary  the same with binary 'true' (PG14+): values in binary form
#   recvlogical_wal2json pg_recvlogical, wal2json format-version 2 -> /dev/null (if installed)
#   pgfanout_discard    pgfanout run with one `discard` sink: decode, event log, delivery
#   pgfanout_jsonl      pgfanout run with one JSONL sink (formatted, written, fsynced)
# pgfanout's clock stops when its sink has taken every change (its /metrics counter).
# Writes bench/results/decode_limit.csv: workload,reader,round,changes,seconds,peak_rss_mib.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
WORKLOADS=${2:-big single batch1k mix toast}
source bench/lib.sh
start_cluster
psql+=(-d postgres)
have_wal2json=0
[ -f /usr/lib/postgresql/15/lib/wal2json.so ] && have_wal2json=1
http_port=$((port + 1))

"${psql[@]}" <<'SQL'
CREATE TABLE items (id bigint PRIMARY KEY, tenant_id text NOT NULL, name text, qty int,
                    price numeric(12,2), updated_at timestamptz, body text);
CREATE PUBLICATION bench FOR TABLE items;
-- total rows in transactions of per_tx rows (inserts)
CREATE PROCEDURE load(total int, per_tx int) LANGUAGE plpgsql AS $$
BEGIN
  FOR start IN 0..total - 1 BY per_tx LOOP
    INSERT INTO items SELECT i, 't' || (i % 10), 'item ' || i, i % 1000, i * 0.01, now(), NULL
      FROM generate_series(start + 1, least(start + per_tx, total)) i;
    COMMIT;
  END LOOP;
END $$;
-- ops single-statement transactions, 60% insert, 30% update, 10% delete
CREATE PROCEDURE mix(ops int) LANGUAGE plpgsql AS $$
DECLARE next_id bigint := 1; r float;
BEGIN
  FOR n IN 1..ops LOOP
    r := random();
    IF r < 0.6 OR next_id < 100 THEN
      INSERT INTO items VALUES (next_id, 't' || (next_id % 10), 'item', 1, 1.5, now(), NULL);
      next_id := next_id + 1;
    ELSIF r < 0.9 THEN
      UPDATE items SET qty = qty + 1, updated_at = now() WHERE id = 1 + floor(random() * (next_id - 1));
    ELSE
      DELETE FROM items WHERE id = 1 + floor(random() * (next_id - 1));
    END IF;
    COMMIT;
  END LOOP;
END $$;
-- rows with an 8 kB value that does not compress (stored out of line), 100 per transaction
CREATE PROCEDURE toast(total int) LANGUAGE plpgsql AS $$
BEGIN
  FOR start IN 0..total - 1 BY 100 LOOP
    INSERT INTO items SELECT i, 't' || (i % 10), 'big', 0, 0, now(),
        (SELECT string_agg(md5(random()::text || i || g), '') FROM generate_series(1, 256) g)
      FROM generate_series(start + 1, least(start + 100, total)) i;
    COMMIT;
  END LOOP;
END $$;
SQL

mkdir -p bench/results
csv=bench/results/decode_limit.csv
echo "workload,reader,round,changes,seconds,peak_rss_mib" >"$csv"

write_config() {  # $1: sink yaml
  { config_head public.items; echo "sinks:"; printf '%s\n' "$1"; } >"$dir/pgfanout.yaml"
}

delivered() {  # "" until the endpoint answers
  { curl -s "http://127.0.0.1:$http_port/metrics" 2>/dev/null || true; } |
    awk '/^pgfanout_sink_events_delivered_total\{sink="out"\}/ {print $2}'
}

run_pgfanout() {  # $1 reader name, $2 sink yaml, $3 expected changes; sets secs, rss
  write_config "$2"
  local t0 t1
  t0=$(now)
  start_pgfanout "$dir/fanout.log"
  while true; do
    local n
    n=$(delivered)
    [ -n "$n" ] && [ "$n" -ge "$3" ] && break
    pgfanout_alive "$dir/fanout.log"
    sleep 0.02
  done
  t1=$(now)
  rss=$(pgfanout_peak_mib)
  stop_pgfanout
  secs=$(echo "$t1 - $t0" | bc)
}

run_recvlogical() {  # $1 slot, $2 end LSN, options...; sets secs
  local slot=$1 end=$2 t0 t1
  shift 2
  t0=$(now)
  "$PG_BIN/pg_recvlogical" -h 127.0.0.1 -p "$port" -U postgres -d postgres --slot "$slot" \
    --start --endpos "$end" "$@" -f /dev/null
  t1=$(now)
  secs=$(echo "$t1 - $t0" | bc)
}

for workload in $WORKLOADS; do
  for round in $(seq 1 "$ROUNDS"); do
    rm -rf "$dir/state" "$dir/out"
    "${psql[@]}" -c "TRUNCATE items" \
      -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots" >/dev/null
    # pgfanout makes its slot (and records it in its state dir) before the load.
    write_config "  - id: out
    type: discard
    tenants: [\"*\"]"
    make_slot
    # A spare copy of its slot and state dir, so the JSONL run reads the same WAL afresh.
    cp -a "$dir/state" "$dir/state.empty"
    "${psql[@]}" -c "SELECT pg_copy_logical_replication_slot('bench_fanout', 'bench_spare')" >/dev/null
    "${psql[@]}" -c "SELECT pg_create_logical_replication_slot('bench_recv', 'pgoutput')" \
      -c "SELECT pg_create_logical_replication_slot('bench_pace', 'pgoutput')" \
      -c "SELECT pg_create_logical_replication_slot('bench_bin', 'pgoutput')" >/dev/null
    [ $have_wal2json = 1 ] && "${psql[@]}" \
      -c "SELECT pg_create_logical_replication_slot('bench_w2j', 'wal2json')" >/dev/null
    case $workload in
      big) "${psql[@]}" -c "CALL load(1000000, 1000000)"; changes=1000000 ;;
      single) "${psql[@]}" -c "SET synchronous_commit = off" -c "CALL load(100000, 1)"; changes=100000 ;;
      batch1k) "${psql[@]}" -c "SET synchronous_commit = off" -c "CALL load(1000000, 1000)"; changes=1000000 ;;
      mix) "${psql[@]}" -c "SET synchronous_commit = off" -c "CALL mix(100000)"; changes=100000 ;;
      toast) "${psql[@]}" -c "SET synchronous_commit = off" -c "CALL toast(20000)"; changes=20000 ;;
      *) echo "unknown workload $workload" >&2; exit 2 ;;
    esac
    # mix: a delete of an id already deleted changes nothing; count what the WAL holds.
    [ "$workload" = mix ] && changes=$("${psql[@]}" -c "SELECT count(*) FROM
      pg_logical_slot_peek_binary_changes('bench_bin', NULL, NULL, 'proto_version', '1',
        'publication_names', 'bench') WHERE get_byte(data, 0) IN (73, 85, 68)")
    end=$("${psql[@]}" -c "SELECT pg_current_wal_lsn()")
    common=(-o proto_version=2 -o streaming=on -o publication_names=bench)

    echo "$workload,walsender_pace,$round,$changes,$(run_pace bench_pace "$end")," >>"$csv"
    run_recvlogical bench_recv "$end" "${common[@]}"
    echo "$workload,recvlogical,$round,$changes,$secs," >>"$csv"
    run_recvlogical bench_bin "$end" "${common[@]}" -o binary=true
    echo "$workload,recvlogical_binary,$round,$changes,$secs," >>"$csv"
    if [ $have_wal2json = 1 ]; then
      run_recvlogical bench_w2j "$end" -o format-version=2
      echo "$workload,recvlogical_wal2json,$round,$changes,$secs," >>"$csv"
    fi
    run_pgfanout pgfanout_discard "  - id: out
    type: discard
    tenants: [\"*\"]
    batch_size: 10000" "$changes"
    echo "$workload,pgfanout_discard,$round,$changes,$secs,$rss" >>"$csv"
    # The JSONL run reads the same WAL again: back to the state dir from before the load.
    rm -rf "$dir/state" && cp -a "$dir/state.empty" "$dir/state"
    "${psql[@]}" -c "SELECT pg_drop_replication_slot('bench_fanout')" \
      -c "SELECT pg_copy_logical_replication_slot('bench_spare', 'bench_fanout')" >/dev/null
    run_pgfanout pgfanout_jsonl "  - id: out
    type: jsonl
    tenants: [\"*\"]
    path: $dir/out/events.jsonl
    batch_size: 10000" "$changes"
    echo "$workload,pgfanout_jsonl,$round,$changes,$secs,$rss" >>"$csv"
    rm -rf "$dir/state.empty"
    grep "$workload,[^,]*,$round," "$csv" | awk -F, '{printf "  %-8s %-22s %8d changes %7.2f s\n", $1, $2, $4, $5}'
  done
done
echo "raw: $csv"
