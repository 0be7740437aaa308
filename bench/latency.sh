#!/usr/bin/env bash
# Commit-to-visible latency into per-tenant Postgres targets at fixed offered rates.
#   bench/latency.sh [ROUNDS] [RATES] [SECONDS]     defaults: 3, "500 2000 5000", 60
# pgbench inserts single-row transactions into `orders` (10 tenants) at each rate for
# SECONDS, while pgfanout streams them into 10 tenant databases. Nothing probes during
# the load: afterwards each row's latency is its commit time in the target database minus
# its commit time on the source (track_commit_timestamp, one clock: same server), and the
# percentiles are taken over every row. Also reports the rate pgbench achieved.
# Writes bench/results/latency.csv: rate,round,rows,achieved_tps,p50_ms,p95_ms,p99_ms,max_ms
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
RATES=${2:-500 2000 5000}
SECONDS_EACH=${3:-60}
TENANTS=10
source bench/lib.sh
start_cluster
http_port=$((port + 1))
"${psql[@]}" -d postgres <<'SQL'
CREATE TABLE orders (tenant_id text NOT NULL, id bigserial, amount int,
                     created_at timestamptz DEFAULT clock_timestamp(), PRIMARY KEY (tenant_id, id));
CREATE PUBLICATION bench FOR TABLE orders;
SQL
cat >"$dir/insert.sql" <<'SQL'
\set t random(0, 9)
INSERT INTO orders (tenant_id, amount) VALUES ('t' || :t, 1);
SQL
mkdir -p bench/results
csv=bench/results/latency.csv
echo "rate,round,rows,achieved_tps,p50_ms,p95_ms,p99_ms,max_ms" >"$csv"

delivered_total() {
  { curl -s "http://127.0.0.1:$http_port/metrics" 2>/dev/null || true; } |
    awk '/^pgfanout_sink_events_delivered_total\{/ {s += $2} END {print s + 0}'
}

for rate in $RATES; do
  for round in $(seq 1 "$ROUNDS"); do
    rm -rf "$dir/state"
    "${psql[@]}" -d postgres -c "TRUNCATE orders" \
      -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots" >/dev/null
    sinks=""
    for t in $(seq 0 $((TENANTS - 1))); do
      "${psql[@]}" -d postgres -c "DROP DATABASE IF EXISTS tenant_$t" -c "CREATE DATABASE tenant_$t" >/dev/null
      sinks+="  - id: tenant-$t
    type: postgres
    tenants: [\"t$t\"]
    dsn: \"host=127.0.0.1 port=$port dbname=tenant_$t user=postgres\"
    create_tables: true
"
    done
    { config_head public.orders; echo "sinks:"; printf '%s' "$sinks"; } >"$dir/pgfanout.yaml"
    "$BIN" run --config "$dir/pgfanout.yaml" >"$dir/fanout.log" 2>&1 &
    daemon=$!
    until [ "$(grep -c 'backfill done' "$dir/fanout.log" 2>/dev/null || true)" -ge "$TENANTS" ]; do
      kill -0 "$daemon" 2>/dev/null || { echo "pgfanout exited:"; tail -20 "$dir/fanout.log"; exit 1; }
      sleep 0.2
    done
    out=$("$PG_BIN/pgbench" -n -h 127.0.0.1 -p "$port" -U postgres -c 4 -j 2 -R "$rate" \
      -T "$SECONDS_EACH" -f "$dir/insert.sql" postgres 2>&1)
    tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -n 1)
    rows=$("${psql[@]}" -d postgres -c "SELECT count(*) FROM orders")
    while [ "$(delivered_total)" -lt "$rows" ]; do sleep 0.1; done
    rss=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$daemon/status")
    kill "$daemon"; wait "$daemon" || true; daemon=
    # One table of (tenant, id, source commit, target commit) in a scratch database.
    "${psql[@]}" -d postgres -c "DROP TABLE IF EXISTS lat" \
      -c "CREATE UNLOGGED TABLE lat (tenant_id text, id bigint, src timestamptz, dst timestamptz)" \
      -c "INSERT INTO lat SELECT tenant_id, id, pg_xact_commit_timestamp(xmin), NULL FROM orders" >/dev/null
    for t in $(seq 0 $((TENANTS - 1))); do
      "${psql[@]}" -d "tenant_$t" -c "COPY (SELECT tenant_id, id, pg_xact_commit_timestamp(xmin) FROM orders) TO STDOUT" |
        "${psql[@]}" -d postgres -c "CREATE TEMP TABLE d (tenant_id text, id bigint, dst timestamptz);
          COPY d FROM STDIN; UPDATE lat SET dst = d.dst FROM d WHERE lat.tenant_id = d.tenant_id AND lat.id = d.id" >/dev/null
    done
    read -r n p50 p95 p99 max missing < <("${psql[@]}" -d postgres -F ' ' -c "
      SELECT count(dst),
             round(1000 * extract(epoch FROM percentile_cont(0.50) WITHIN GROUP (ORDER BY dst - src))::numeric, 2),
             round(1000 * extract(epoch FROM percentile_cont(0.95) WITHIN GROUP (ORDER BY dst - src))::numeric, 2),
             round(1000 * extract(epoch FROM percentile_cont(0.99) WITHIN GROUP (ORDER BY dst - src))::numeric, 2),
             round(1000 * extract(epoch FROM max(dst - src))::numeric, 2),
             count(*) - count(dst) FROM lat")
    [ "$missing" = 0 ] || { echo "$missing rows never reached their target" >&2; exit 1; }
    echo "$rate,$round,$n,$tps,$p50,$p95,$p99,$max" >>"$csv"
    printf '  %5d tx/s offered (%s achieved), round %d, %d rows: p50 %s ms, p95 %s ms, p99 %s ms, max %s ms, peak RSS %d MiB\n' \
      "$rate" "$tps" "$round" "$n" "$p50" "$p95" "$p99" "$max" "$rss"
  done
done
echo "raw: $csv"
