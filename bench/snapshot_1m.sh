#!/usr/bin/env bash
# Snapshot copy speed: `pgfanout backfill` of ROWS existing rows into a Postgres sink with 1
# and with N source connections, from a plain table and from the same rows in a table
# partitioned by RANGE of its key (8 partitions, read through its root), beside
# `pg_dump -t users | psql` of the plain table, on one server, in one run.
#   bench/snapshot_1m.sh [ROWS] [N]      (defaults 1000000 and 4)
# Needs a built tree (./dev build). Prints a table and writes bench/results/snapshot_1m.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
N=${2:-4}
source bench/lib.sh
start_cluster
"${psql[@]}" -d postgres -c "
  CREATE TABLE users (id int PRIMARY KEY, tenant_id text NOT NULL, name text, score int,
                      created_at timestamptz);
  INSERT INTO users SELECT i, (i % 10)::text, 'user ' || i, i, now() FROM generate_series(1, $ROWS) i;
  CREATE TABLE users_by_range (LIKE users INCLUDING ALL) PARTITION BY RANGE (id);"
for p in 0 1 2 3 4 5 6 7; do
  "${psql[@]}" -d postgres -c "CREATE TABLE users_by_range_$p PARTITION OF users_by_range
    FOR VALUES FROM ($(( p * ROWS / 8 + 1 ))) TO ($(( (p + 1) * ROWS / 8 + 1 )))" >/dev/null
done
"${psql[@]}" -d postgres -c "INSERT INTO users_by_range SELECT * FROM users"
"${psql[@]}" -d postgres -c "VACUUM ANALYZE users" -c "VACUUM ANALYZE users_by_range"
mkdir -p bench/results
csv=bench/results/snapshot_1m.csv
echo "method,connections,rows,seconds,rows_per_s" >"$csv"

run_backfill() {  # $1: connections, $2: table (default users)
  local conns=$1 table=${2:-users} method=pgfanout_backfill
  [ "$table" = users ] || method=pgfanout_backfill_partitioned
  rm -rf "$dir/state"
  "${psql[@]}" -d postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots" >/dev/null
  "${psql[@]}" -d postgres -c "DROP DATABASE IF EXISTS target" -c "CREATE DATABASE target" >/dev/null
  cat >"$dir/pgfanout.yaml" <<YAML
source:
  dsn: "host=127.0.0.1 port=$port dbname=postgres user=postgres"
  slot: bench_snapshot
  publication: bench_snapshot
state_dir: $dir/state
tables:
  - name: public.$table
    tenant_column: tenant_id
sinks:
  - id: target
    type: postgres
    tenants: ["*"]
    dsn: "host=127.0.0.1 port=$port dbname=target user=postgres"
    create_tables: true
    backfill: false
YAML
  # The daemon creates the slot and stops; then the copy runs by hand, timed.
  "$BIN" run --config "$dir/pgfanout.yaml" >"$dir/setup.log" 2>&1 &
  daemon=$!
  until [ "$("${psql[@]}" -d postgres -c "SELECT count(*) FROM pg_replication_slots WHERE active")" = 1 ]; do sleep 0.1; done
  kill "$daemon"; wait "$daemon" || true; daemon=
  local t0 t1
  t0=$(now)
  "$BIN" backfill --config "$dir/pgfanout.yaml" --sink target --table "$table" --connections "$conns" >"$dir/backfill.log" 2>&1
  t1=$(now)
  local got
  got=$("${psql[@]}" -d target -c "SELECT count(*) FROM $table")
  [ "$got" = "$ROWS" ] || { echo "backfill copied $got rows, expected $ROWS"; cat "$dir/backfill.log"; exit 1; }
  local s
  s=$(echo "$t1 - $t0" | bc)
  echo "$method,$conns,$ROWS,$s,$(echo "$ROWS / $s" | bc)" >>"$csv"
  printf 'pgfanout backfill of %s, %d connection(s): %.2f s (%d rows/s)\n' "$table" "$conns" "$s" "$(echo "$ROWS / $s" | bc)"
}

run_backfill 1
run_backfill "$N"
run_backfill 1 users_by_range
run_backfill "$N" users_by_range

"${psql[@]}" -d postgres -c "DROP DATABASE IF EXISTS dumped" -c "CREATE DATABASE dumped" >/dev/null
t0=$(now)
pg_dump -h 127.0.0.1 -p "$port" -U postgres -d postgres -t users | \
  psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d dumped -v ON_ERROR_STOP=1 >/dev/null
t1=$(now)
s=$(echo "$t1 - $t0" | bc)
echo "pg_dump_psql,1,$ROWS,$s,$(echo "$ROWS / $s" | bc)" >>"$csv"
printf 'pg_dump -t users | psql: %.2f s (%d rows/s)\n' "$s" "$(echo "$ROWS / $s" | bc)"
echo "raw: $csv"
