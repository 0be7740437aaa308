#!/usr/bin/env bash
# Sinks as data: how soon a sink registered by an INSERT into the registry table is live.
#   bench/registry_latency.sh [ROUNDS]      default 1
# One daemon with a Postgres template (a schema per tenant, t_<tenant>.items, in one of ten
# target databases on the source's cluster, the database a param of the row) and the
# registry public.pgfanout_sinks; no static sink. The tenants' rows exist before the slot:
# each new sink gets them by its snapshot copy. Per round:
#   sequential: 100 registry INSERTs one after another (tenants r0 … r99, 1,000 rows each),
#     the next once the last one's target holds its 1,000 rows. Per insert: its commit to
#     the first row's commit in its target, and to the last row's.
#   batch: 1,000 registry rows in one INSERT (tenants s0 … s999, 100 rows each). Until all
#     1,000 sinks are live (the latest of their first rows' commits) and until all are done
#     (the latest last row); also when /status first showed every one of them with a cursor
#     (polled every 100 ms).
# Times are commit timestamps (track_commit_timestamp; source and targets are one cluster,
# one clock), so nothing probes the targets while a copy runs except the loop that waits for
# the rows; ms. Target: live within 1 s of the registry row's commit.
# Writes bench/results/registry_latency.csv (and .meta: the commit and date measured):
#   phase,round,n,first_row_ms,all_rows_ms,status_live_ms
# sequential: one line per insert (n = its index); batch: one line per round (n = 1000).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-1}
SEQUENTIAL=100 SEQ_ROWS=1000
BATCH=1000 BATCH_ROWS=100
source bench/lib.sh
start_cluster
http_port=$((port + 1))
create_items
mkdir -p bench/results
csv=bench/results/registry_latency.csv
echo "phase,round,n,first_row_ms,all_rows_ms,status_live_ms" >"$csv"
printf 'commit=%s\ndate=%s\n' "$(git rev-parse --short HEAD)" "$(date -u +%Y-%m-%d)" >"${csv%.csv}.meta"

# The tenants' rows, before any slot: r0 … r99 (1,000 rows each), s0 … s999 (100 each).
"${psql[@]}" -d postgres -c "SET synchronous_commit = off" -c "
  INSERT INTO items SELECT 'r' || (g / $SEQ_ROWS), g, 'item ' || g, g % 1000, g * 0.01, now()
    FROM generate_series(0, $((SEQUENTIAL * SEQ_ROWS - 1))) g;
  INSERT INTO items SELECT 's' || (g / $BATCH_ROWS), g, 'item ' || g, g % 1000, g * 0.01, now()
    FROM generate_series(0, $((BATCH * BATCH_ROWS - 1))) g;" >/dev/null

write_config() {
  { config_head public.items
    cat <<YAML
sink_templates:
  tenant-db:
    type: postgres
    dsn: "host=127.0.0.1 port=$port dbname={database} user=postgres"
    create_tables: true
    tables:
      - source: public.items
        target: "t_{tenant}.items"
sink_registry:
  table: public.pgfanout_sinks
YAML
  } >"$dir/pgfanout.yaml"
}

# Epoch seconds of the commit of sink $1's registry row.
registry_commit() {
  "${psql[@]}" -d postgres -c "SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin))
    FROM pgfanout_sinks WHERE sink_id = '$1'"
}
# "rows first last" of tenant $1's target table in database $2 (epoch seconds of the first
# and last row's commit); "0" while the table is not there.
target_rows() {
  "${psql[@]}" -d "$2" -F ' ' -c "SELECT count(*), extract(epoch FROM min(pg_xact_commit_timestamp(xmin))),
    extract(epoch FROM max(pg_xact_commit_timestamp(xmin))) FROM t_$1.items" 2>/dev/null || echo 0
}
# "rows,live,done,tables" over every t_s* table of the ten databases: rows, the latest
# first-row commit and the latest last-row commit (epoch seconds), how many tables.
batch_rows() {
  local d
  for d in $(seq 0 9); do
    "${psql[@]}" -d "tgt_$d" -F , -c "
      SELECT coalesce(sum(n), 0), max(first), max(last), count(*) FROM (
        SELECT (xpath('/row/n/text()', q))[1]::text::bigint AS n,
               (xpath('/row/first/text()', q))[1]::text::numeric AS first,
               (xpath('/row/last/text()', q))[1]::text::numeric AS last
        FROM (SELECT query_to_xml(format('SELECT count(*) AS n,
                extract(epoch FROM min(pg_xact_commit_timestamp(xmin))) AS first,
                extract(epoch FROM max(pg_xact_commit_timestamp(xmin))) AS last FROM %I.items',
                table_schema), false, true, '') AS q
              FROM information_schema.tables
              WHERE table_name = 'items' AND table_schema LIKE 't\_s%') t) y"
  done | awk -F, '{n += $1; if ($2 > live) live = $2; if ($3 > done) done = $3; tables += $4}
                  END {printf "%d %.6f %.6f %d\n", n, live, done, tables}'
}
# Registry sinks /status lists with a cursor (of those whose id starts with $1).
with_cursor() {
  { curl -s "http://127.0.0.1:$http_port/status?per_page=10000" 2>/dev/null || echo '{}'; } |
    jq --arg p "$1" '[.sinks[]? | select((.id | startswith($p)) and .cursor != null)] | length' 2>/dev/null || echo 0
}
ms() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", (a - b) * 1000}'; }

for round in $(seq 1 "$ROUNDS"); do
  rm -rf "$dir/state"
  "${psql[@]}" -d postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots" >/dev/null
  "${psql[@]}" -d postgres -c "DROP TABLE IF EXISTS pgfanout_sinks" >/dev/null
  for d in $(seq 0 9); do
    "${psql[@]}" -d postgres -c "DROP DATABASE IF EXISTS tgt_$d" -c "CREATE DATABASE tgt_$d" >/dev/null
  done
  write_config
  start_pgfanout "$dir/fanout.log"
  # pgfanout makes the registry table at start; the slot is active once it streams.
  until [ "$("${psql[@]}" -d postgres -c "SELECT count(*) FROM pg_replication_slots WHERE active")" = 1 ] &&
        [ "$("${psql[@]}" -d postgres -c "SELECT to_regclass('public.pgfanout_sinks') IS NOT NULL")" = t ]; do
    pgfanout_alive "$dir/fanout.log"; sleep 0.1
  done

  echo "round $round: $SEQUENTIAL registry inserts one after another ($SEQ_ROWS rows each)"
  for k in $(seq 0 $((SEQUENTIAL - 1))); do
    db=tgt_$((k % 10))
    "${psql[@]}" -d postgres -c "INSERT INTO pgfanout_sinks (sink_id, template, tenants, params)
      VALUES ('r$k', 'tenant-db', ARRAY['r$k'], '{\"database\": \"$db\"}')"
    waited=0
    while :; do
      read -r n first last <<<"$(target_rows "r$k" "$db")"
      [ "$n" -ge "$SEQ_ROWS" ] && break
      pgfanout_alive "$dir/fanout.log"
      waited=$((waited + 1))
      [ "$waited" -lt 6000 ] || { echo "r$k: $n of $SEQ_ROWS rows after 60 s" >&2; exit 1; }
      sleep 0.01
    done
    [ "$n" -eq "$SEQ_ROWS" ] || { echo "r$k: $n rows, expected $SEQ_ROWS" >&2; exit 1; }
    c=$(registry_commit "r$k")
    echo "sequential,$round,$k,$(ms "$first" "$c"),$(ms "$last" "$c")," >>"$csv"
  done
  awk -F, -v r="$round" '$1 == "sequential" && $2 == r {print $4, $5}' "$csv" | sort -g -k1 |
    awk '{f[NR] = $1} END {printf "  first row: median %.1f ms, p99 %.1f ms\n", f[int((NR + 1) / 2)], f[int(NR * 0.99 + 0.999)]}'
  awk -F, -v r="$round" '$1 == "sequential" && $2 == r {print $5}' "$csv" | sort -g |
    awk '{f[NR] = $1} END {printf "  all rows:  median %.1f ms, p99 %.1f ms\n", f[int((NR + 1) / 2)], f[int(NR * 0.99 + 0.999)]}'

  echo "round $round: $BATCH registry inserts in one transaction ($BATCH_ROWS rows each)"
  "${psql[@]}" -d postgres -c "INSERT INTO pgfanout_sinks (sink_id, template, tenants, params)
    SELECT 's' || g, 'tenant-db', ARRAY['s' || g], jsonb_build_object('database', 'tgt_' || (g % 10))
    FROM generate_series(0, $((BATCH - 1))) g"
  c=$(registry_commit s0)
  status_live= waited=0 all_in=
  while :; do
    if [ -z "$status_live" ] && [ "$(with_cursor s)" -ge "$BATCH" ]; then status_live=$(now); fi
    if [ $((waited % 10)) -eq 0 ]; then
      read -r n live done tables <<<"$(batch_rows)"
      [ "$n" -ge $((BATCH * BATCH_ROWS)) ] && all_in=${all_in:-$waited}
    fi
    # Done once every row is in and /status has shown every sink with a cursor (or 5 s
    # more have passed without it: then that column stays empty).
    [ -n "$all_in" ] && { [ -n "$status_live" ] || [ $((waited - all_in)) -ge 50 ]; } && break
    pgfanout_alive "$dir/fanout.log"
    waited=$((waited + 1))
    [ "$waited" -lt 6000 ] || { echo "batch: $n of $((BATCH * BATCH_ROWS)) rows in $tables tables after 10 min" >&2; exit 1; }
    sleep 0.1
  done
  [ "$n" -eq $((BATCH * BATCH_ROWS)) ] && [ "$tables" -eq "$BATCH" ] ||
    { echo "batch: $n rows in $tables tables, expected $((BATCH * BATCH_ROWS)) in $BATCH" >&2; exit 1; }
  status_ms=
  [ -n "$status_live" ] && status_ms=$(ms "$status_live" "$c")
  echo "batch,$round,$BATCH,$(ms "$live" "$c"),$(ms "$done" "$c"),$status_ms" >>"$csv"
  echo "  all $BATCH live $(ms "$live" "$c") ms after the commit (/status: every one with a cursor: ${status_ms:-never seen} ms), all done $(ms "$done" "$c") ms"
  stop_pgfanout
done
echo "raw: $csv"
