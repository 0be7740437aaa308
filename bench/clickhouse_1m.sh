#!/usr/bin/env bash
# Rows per second delivered into one ClickHouse sink, beside a JSONL sink fed by the same
# daemon in the same run, for a backlog of ROWS inserts committed as single-row
# transactions and as 1000-row transactions.
#   bench/clickhouse_1m.sh [ROWS] [SHAPES]   (defaults 1000000 and "single batch1k")
# Needs a built tree (./dev build, or PGFANOUT_BIN=build-x/src/pgfanout) and
# /usr/sbin/clickhouse-server (Debian's clickhouse-server package). Prints a table and
# writes bench/results/clickhouse_1m.csv.
#
# Per shape: pgfanout creates its slot and stops; the load is committed; then pgfanout
# starts and the clock runs until the JSONL file holds ROWS lines and, separately, until
# the ClickHouse table holds ROWS rows (each sink reads the event log at its own pace). At
# the end the script checks that FINAL shows exactly ROWS live rows.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
SHAPES=${2:-single batch1k}
source bench/lib.sh
start_cluster

# A throwaway clickhouse-server in $dir/ch, HTTP only, on its own port.
ch_port=$(( port + 1 ))
mkdir -p "$dir/ch/log"
cat >"$dir/ch/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$dir/ch/log/server.log</log>
    <errorlog>$dir/ch/log/server.err.log</errorlog><size>100M</size><count>1</count></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>$ch_port</http_port>
  <path>$dir/ch/data/</path>
  <tmp_path>$dir/ch/tmp/</tmp_path>
  <user_files_path>$dir/ch/user_files/</user_files_path>
  <format_schema_path>$dir/ch/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
</yandex>
XML
cat >"$dir/ch/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
  </interval></default></quotas>
</yandex>
XML
/usr/sbin/clickhouse-server --config-file="$dir/ch/config.xml" >"$dir/ch/log/stdout.log" 2>&1 &
ch_pid=$!
trap 'kill "$ch_pid" 2>/dev/null || true; wait "$ch_pid" 2>/dev/null || true; cleanup_cluster' EXIT
ch() { curl -sS --fail-with-body "http://127.0.0.1:$ch_port/" --data-binary "$1"; }
until ch "SELECT 1" >/dev/null 2>&1; do sleep 0.1; done
ch_version=$(ch "SELECT version()")

create_users_table
mkdir -p bench/results
csv=bench/results/clickhouse_1m.csv
echo "shape,rows,rows_per_tx,jsonl_s,jsonl_rows_per_s,clickhouse_s,clickhouse_rows_per_s,peak_rss_mib,clickhouse_version" >"$csv"

# Without FINAL: cheap, and every row is inserted once here (no retries in a clean run).
# Until the sink has made its table the server answers with an error text, not a count.
clickhouse_rows() { ch "SELECT count() FROM bench.users"; }

for shape in $SHAPES; do
  per_tx=$(shape_rows_per_tx "$shape")
  ch "DROP DATABASE IF EXISTS bench" >/dev/null
  run_sink_shape "  - id: clickhouse
    type: clickhouse
    tenants: [\"*\"]
    url: \"http://127.0.0.1:$ch_port\"
    database: bench
    batch_size: 10000" clickhouse_rows
  live=$(ch "SELECT count() FROM bench.users FINAL WHERE pgfanout_is_deleted = 0")
  [ "$live" = "$ROWS" ] || { echo "ClickHouse shows $live live rows under FINAL, not $ROWS"; exit 1; }
  js_rate=$(echo "$ROWS / $jsonl_s" | bc)
  cs_rate=$(echo "$ROWS / $sink_s" | bc)
  echo "$shape,$ROWS,$per_tx,$jsonl_s,$js_rate,$sink_s,$cs_rate,$rss_mib,$ch_version" >>"$csv"
  printf '%-8s %d rows: JSONL %.2f s (%d rows/s), ClickHouse sink %.2f s (%d rows/s), peak RSS %d MiB\n' \
    "$shape" "$ROWS" "$jsonl_s" "$js_rate" "$sink_s" "$cs_rate" "$rss_mib"
done
echo "raw: $csv (ClickHouse $ch_version)"
