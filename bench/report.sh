#!/usr/bin/env bash
# Writes BENCHMARKS.md from bench/results/*.csv (as left by bench/run_all.sh). Every figure
# is the median of its rounds with [min – max]; ratios are of medians measured in the
# same run. No number here is typed by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
R=bench/results
out=BENCHMARKS.md

# stats FILE AWK-CONDITION COLUMN -> "median [min – max]" (or "-" when no row matches)
stats() {
  awk -F, -v col="$3" "NR > 1 && ($2) {print \$col}" "$1" | sort -g | awk '
    {v[NR] = $1}
    END {
      if (NR == 0) { print "-"; exit }
      m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%s [%s – %s]", fmt(m), fmt(v[1]), fmt(v[NR])
    }
    function fmt(x) { return (x >= 100) ? sprintf("%.0f", x) : sprintf("%.2f", x) }'
}
# median FILE AWK-CONDITION COLUMN -> the median alone (a number)
median() {
  awk -F, -v col="$3" "NR > 1 && ($2) {print \$col}" "$1" | sort -g | awk '
    {v[NR] = $1} END { if (NR == 0) print ""; else print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# percentile FILE AWK-CONDITION COLUMN P -> the P-th percentile (nearest rank; a number)
percentile() {
  awk -F, -v col="$3" "NR > 1 && ($2) {print \$col}" "$1" | sort -g | awk -v p="$4" '
    {v[NR] = $1} END { if (NR == 0) print ""; else { i = int(NR * p / 100); if (i < NR * p / 100) i++; if (i < 1) i = 1; print v[i] } }'
}
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}' || echo "-"; }
rounds() { awk -F, 'NR > 1 {print $3}' "$1" | sort -u | wc -l; }
# The rows of the many-tenants tables (bench/e2e_tenants.sh's CSV $1); with $2 = postgres,
# also the cost per extra tenant and the target connections.
tenant_rows() {
  local f=$1 w t one cond rows p extra
  for w in single batch1k; do
    one=$(median "$f" "\$1 == \"$w\" && \$2 == 1" 6)
    for t in $(awk -F, -v w="$w" 'NR > 1 && $1 == w {print $2}' "$f" | sort -n -u); do
      cond="\$1 == \"$w\" && \$2 == $t"
      rows=$(median "$f" "$cond" 4)
      p=$(median "$f" "$cond" 6)
      extra=""
      [ "${2:-}" = postgres ] && extra=" $(awk -v p="$p" -v o="$one" -v t="$t" 'BEGIN {if (t > 1 && o != "") printf "%.1f", (p - o) * 1000 / (t - 1); else print "-"}') |"
      echo -n "| $w | $t | $rows | $(stats "$f" "$cond" 5) | $(stats "$f" "$cond" 6) | $(awk -v n="$rows" -v s="$p" 'BEGIN {printf "%.0f", n / s}') | $(ratio "$one" "$p") | $(ratio "$(median "$f" "$cond" 5)" "$p") |$extra"
      echo -n " $(stats "$f" "$cond" 7) | $(median "$f" "$cond" 8) ($(median "$f" "$cond" 9)) |"
      [ "${2:-}" = postgres ] && echo -n " $(median "$f" "$cond" 11) |"
      echo
    done
  done
}

{
  echo "# Benchmarks"
  echo
  echo "Measured on $(uname -m), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo),"
  echo "$(. /etc/os-release && echo "$PRETTY_NAME"), PostgreSQL $("${PG_BIN:-/usr/lib/postgresql/15/bin}/postgres" --version | awk '{print $3}'),"
  # Which commit the figures measured: each script's .meta when it wrote one (a section run
  # alone later says so), else run_all.sh's.
  meta() { sed -n "s/^$2=//p" "$R/$1.meta" 2>/dev/null; }
  echo "pgfanout $(meta run_all commit || true), by \`bench/run_all.sh\` ($(meta run_all date || true));"
  echo "a section measured later by its script alone names its own commit."
  echo "Every figure is the median of its rounds, with [min – max]; raw numbers in"
  echo "\`bench/results/*.csv\`. Everything runs on this one machine: the source, its walsender,"
  echo "pgfanout and the targets share two cores."
  echo

  # The issue's targets, each checked against this run's medians (computed below from the
  # same CSVs as the sections).
  echo "## Against the targets"
  echo
  echo "| measure | this run | target | met |"
  echo "|---|---|---|---|"
  check() {  # label value op bound target-text [note after the value]
    [ -z "$2" ] || [ "$2" = "-" ] && { echo "| $1 | - | $5 | not measured |"; return; }
    local ok
    ok=$(awk -v v="$2" -v b="$4" -v op="$3" 'BEGIN {print (op == "<=" ? v <= b : op == "<" ? v < b : v >= b) ? "yes" : "**no**"}')
    echo "| $1 | $2${6:-} | $5 | $ok |"
  }
  f=$R/decode_limit.csv
  if [ -f "$f" ]; then
    for sink in discard jsonl; do
      for w in big single batch1k mix toast; do
        r=$(median "$f" "\$1 == \"$w\" && \$2 == \"recvlogical\"" 5)
        p=$(median "$f" "\$1 == \"$w\" && \$2 == \"walsender_pace\"" 5)
        d=$(median "$f" "\$1 == \"$w\" && \$2 == \"pgfanout_$sink\"" 5)
        if [ -n "$p" ]; then
          check "decode time ÷ walsender pace, $sink sink, $w" "$(ratio "$d" "$p")" "<" 1.0 "< 1.0" " (÷ pg_recvlogical $(ratio "$d" "$r"))"
        else
          check "decode time ÷ pg_recvlogical, $sink sink, $w" "$(ratio "$d" "$r")" "<" 1.0 "< 1.0"
        fi
      done
    done
  fi
  f=$R/e2e_postgres.csv
  if [ -f "$f" ]; then
    for w in single batch1k; do
      for t in $(awk -F, -v w="$w" 'NR > 1 && $1 == w {print $2}' "$f" | sort -n -u); do
        cond="\$1 == \"$w\" && \$2 == $t"
        alone=$(median "$f" "$cond" 8)
        note=""
        [ -n "$alone" ] && note=" (the targets alone: $(ratio "$(median "$f" "$cond" 5)" "$alone"))"
        pace=$(median "$f" "$cond" 9)
        if [ -n "$pace" ]; then
          note=" (÷ pg_recvlogical: $(ratio "$(median "$f" "$cond" 5)" "$(median "$f" "$cond" 6)")${alone:+; the targets alone: $(ratio "$(median "$f" "$cond" 5)" "$alone")})"
          check "end to end ÷ walsender pace, $w, $t tenant(s)" \
            "$(ratio "$pace" "$(median "$f" "$cond" 6)")" ">=" 0.7 "≥ 0.7" "$note"
        else
          check "end to end ÷ decode limit, $w, $t tenant(s)" \
            "$(ratio "$(median "$f" "$cond" 5)" "$(median "$f" "$cond" 6)")" ">=" 0.7 "≥ 0.7" "$note"
        fi
      done
    done
  fi
  f=$R/e2e_tenants.csv
  if [ -f "$f" ]; then
    for w in single batch1k; do
      one=$(median "$f" "\$1 == \"$w\" && \$2 == 1" 6)
      k=$(median "$f" "\$1 == \"$w\" && \$2 == 1000" 6)
      check "rows/s at 1,000 tenants ÷ at 1 tenant, $w (JSONL sinks)" "$(ratio "$one" "$k")" ">=" 0.7 "≥ 0.7"
    done
    check "peak RSS, 10,000 sinks (MiB)" "$(median "$f" '$2 == 10000' 7)" "<" 1024 "< 1 GiB"
    workers=$(median "$f" '$2 == 10000' 9)
    [ -n "$workers" ] && check "most threads, 10,000 sinks" "$(awk -F, 'NR > 1 && $2 == 10000 {print $8}' "$f" | sort -n | tail -1)" "<=" "$((${workers%.*} + 16))" "≤ delivery.workers + 16 ($((${workers%.*} + 16)))"
  fi
  f=$R/e2e_tenants_postgres.csv
  if [ -f "$f" ]; then
    for w in single batch1k; do
      one=$(median "$f" "\$1 == \"$w\" && \$2 == 1" 6)
      k=$(median "$f" "\$1 == \"$w\" && \$2 == 1000" 6)
      check "rows/s at 1,000 tenants ÷ at 1 tenant, $w (Postgres sinks)" "$(ratio "$one" "$k")" ">=" 0.7 "≥ 0.7"
    done
    check "peak RSS, 10,000 Postgres sinks (MiB)" "$(awk -F, 'NR > 1 && $2 == 10000 {print $7}' "$f" | sort -n | tail -1)" "<" 1024 "< 1 GiB"
    check "most target connections, 10,000 Postgres sinks" "$(awk -F, 'NR > 1 && $2 == 10000 {print $11}' "$f" | sort -n | tail -1)" "<=" 256 "≤ delivery.max_connections (256)"
  fi
  f=$R/registry_latency.csv
  if [ -f "$f" ]; then
    check "registry INSERT to its sink's first row, p99 over $(awk -F, 'NR > 1 && $1 == "sequential"' "$f" | wc -l) inserts (ms)" \
      "$(percentile "$f" '$1 == "sequential"' 4 99)" "<" 1000 "< 1000 (live within 1 s)"
    check "1,000 registry rows in one transaction, all live (ms)" "$(median "$f" '$1 == "batch"' 4)" "<" 1000 "< 1000 (live within 1 s)"
  fi
  f=$R/latency.csv
  [ -f "$f" ] && check "latency p99 at 2000 tx/s (ms)" "$(median "$f" '$1 == 2000' 7)" "<" 50 "< 50"
  f=$R/polling.csv
  if [ -f "$f" ]; then
    none=$(median "$f" '$1 == "tps" && $2 == "none"' 4)
    check "primary TPS ÷ no capture, pgfanout" "$(ratio "$(median "$f" '$1 == "tps" && $2 == "pgfanout"' 4)" "$none")" ">=" 0.9 "≥ 0.9"
    echo "| primary TPS ÷ no capture, polling design | $(ratio "$(median "$f" '$1 == "tps" && $2 == "polling"' 4)" "$none") | (the baseline) | |"
  fi
  f=$R/memory_restart.csv
  if [ -f "$f" ]; then
    check "peak RSS, 10M-row transaction (MiB)" "$(median "$f" '$1 == "big_tx_peak_rss"' 3)" "<" 191 "< 200 MB (190.7 MiB)"
    check "peak RSS, a sink 10M events behind (MiB)" "$(median "$f" '$1 == "lagging_sink_peak_rss"' 3)" "<" 191 "< 200 MB (190.7 MiB)"
  fi
  echo

  f=$R/decode_limit.csv
  if [ -f "$f" ]; then
    echo "## 1. Decode limit (seconds until caught up, $(rounds "$f") rounds)"
    echo
    echo "The same WAL read by each reader alone. Walsender pace: \`bench/walsender_pace\`, a"
    echo "libpq client sending pgfanout's START_REPLICATION options that discards every payload"
    echo "and writes nothing (pg_recvlogical, kept as a column, writes each message to its"
    echo "output: its own writes slow it). pgfanout's time runs from its start until its sink has"
    echo "taken every change (decode, group commit to the fsynced event log, delivery). Ratios:"
    echo "pgfanout's time ÷ the walsender pace's, and ÷ pg_recvlogical's."
    echo
    echo "| workload | changes | walsender pace | pg_recvlogical | binary mode | wal2json | pgfanout, discard sink | pgfanout, JSONL sink | ÷ pace, discard | ÷ pace, JSONL | ÷ pg_recvlogical, discard | ÷ pg_recvlogical, JSONL | pgfanout peak RSS (MiB) |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for w in big single batch1k mix toast; do
      grep -q "^$w," "$f" || continue
      c=$(median "$f" "\$1 == \"$w\" && \$2 == \"recvlogical\"" 4)
      r=$(median "$f" "\$1 == \"$w\" && \$2 == \"recvlogical\"" 5)
      d=$(median "$f" "\$1 == \"$w\" && \$2 == \"pgfanout_discard\"" 5)
      j=$(median "$f" "\$1 == \"$w\" && \$2 == \"pgfanout_jsonl\"" 5)
      p=$(median "$f" "\$1 == \"$w\" && \$2 == \"walsender_pace\"" 5)
      echo "| $w | $c | $(stats "$f" "\$1 == \"$w\" && \$2 == \"walsender_pace\"" 5) | $(stats "$f" "\$1 == \"$w\" && \$2 == \"recvlogical\"" 5) | $(stats "$f" "\$1 == \"$w\" && \$2 == \"recvlogical_binary\"" 5) | $(stats "$f" "\$1 == \"$w\" && \$2 == \"recvlogical_wal2json\"" 5) | $(stats "$f" "\$1 == \"$w\" && \$2 == \"pgfanout_discard\"" 5) | $(stats "$f" "\$1 == \"$w\" && \$2 == \"pgfanout_jsonl\"" 5) | $(ratio "$d" "$p") | $(ratio "$j" "$p") | $(ratio "$d" "$r") | $(ratio "$j" "$r") | $(stats "$f" "\$1 == \"$w\" && \$2 ~ /pgfanout/" 6) |"
    done
    echo
    echo "Workloads: big = one 1M-row INSERT transaction (streamed by the server);"
    echo "single = 100k single-row transactions; batch1k = 1M rows in 1000-row transactions;"
    echo "mix = 100k single-statement transactions, 60 % insert, 30 % update, 10 % delete"
    echo "(changes: those the WAL holds); toast = 20k rows with an 8 kB out-of-line value,"
    echo "100 per transaction."
    echo
  fi

  f=$R/e2e_postgres.csv
  if [ -f "$f" ]; then
    echo "## 2. End to end into per-tenant Postgres targets ($(awk -F, 'NR > 1 {print $3}' "$f" | sort -u | wc -l) rounds${R:+$(meta e2e_postgres commit >/dev/null 2>&1 && [ -f "$R/e2e_postgres.meta" ] && echo "; pgfanout $(meta e2e_postgres commit), $(meta e2e_postgres date)")})"
    echo
    echo "A backlog in the slot, then pgfanout starts with one Postgres sink and one target"
    echo "database per tenant (on the same server); the clock stops when every target holds"
    echo "its rows. Ratios: pgfanout's rows/s ÷ the walsender pace's, and ÷ pg_recvlogical's,"
    echo "on the same WAL. Then, as a"
    echo "ceiling, the targets alone: the same rows written again into each tenant's database"
    echo "by psql with the sink's kind of statements (COPY into a staging table, INSERT … ON"
    echo "CONFLICT with the version guard, a cursor row; 10000 rows per transaction; without"
    echo "the sink's casts and move bookkeeping), all tenants in parallel, nothing decoding"
    echo "meanwhile. Where the targets alone take longer than pg_recvlogical, the ratio to the"
    echo "decode limit cannot reach 1 on this machine."
    echo
    echo "| workload | tenants | rows | walsender pace (s) | pg_recvlogical (s) | pgfanout into targets (s) | rows/s | ratio to the pace | ratio to pg_recvlogical | the targets alone (s) | ratio to the targets alone | peak RSS (MiB) |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
    for w in single batch1k; do
      for t in $(awk -F, -v w="$w" 'NR > 1 && $1 == w {print $2}' "$f" | sort -n -u); do
        cond="\$1 == \"$w\" && \$2 == $t"
        rows=$(median "$f" "$cond" 4)
        r=$(median "$f" "$cond" 5)
        p=$(median "$f" "$cond" 6)
        a=$(median "$f" "$cond" 8)
        pace=$(median "$f" "$cond" 9)
        echo "| $w | $t | $rows | $(stats "$f" "$cond" 9) | $(stats "$f" "$cond" 5) | $(stats "$f" "$cond" 6) | $(awk -v n="$rows" -v s="$p" 'BEGIN {printf "%.0f", n / s}') | $(ratio "$pace" "$p") | $(ratio "$r" "$p") | $(stats "$f" "$cond" 8) | $(ratio "$a" "$p") | $(stats "$f" "$cond" 7) |"
      done
    done
    echo
  fi

  f=$R/e2e_tenants.csv
  if [ -f "$f" ]; then
    echo "## 2b. Many tenants on one daemon ($(rounds "$f") rounds; pgfanout $(meta e2e_tenants commit || true), $(meta e2e_tenants date || true))"
    echo
    echo "The same rows at every tenant count (rows spread evenly), one JSONL sink of one tenant"
    echo "each, so no target server shares the cores: what grows with the tenants is pgfanout's"
    echo "own cost (the tenant index, the wake-ups, the delivery pool). A backlog in the slot,"
    echo "then pgfanout starts; the clock stops when the sinks have taken every row. Ratios:"
    echo "rows/s ÷ the 1-tenant run's, and pg_recvlogical's time on the same WAL ÷ pgfanout's."
    echo "Threads: the most seen during the run (\`/proc/<pid>/status\`, every 50 ms)."
    echo
    echo "| workload | tenants | rows | pg_recvlogical (s) | pgfanout (s) | rows/s | ÷ 1 tenant | ÷ pg_recvlogical | peak RSS (MiB) | threads (workers) |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    tenant_rows "$f"
    echo
  fi

  f=$R/e2e_tenants_postgres.csv
  if [ -f "$f" ]; then
    echo "## 2c. Many tenants into Postgres ($(rounds "$f") rounds; pgfanout $(meta e2e_tenants_postgres commit || true), $(meta e2e_tenants_postgres date || true))"
    echo
    echo "As 2b, but each tenant's sink is a Postgres sink: ten target databases on the source's"
    echo "cluster, a schema per tenant through the mapping (\`BENCH_SINK=postgres"
    echo "bench/e2e_tenants.sh\`), the tables made before the run. Target connections: the most"
    echo "the server counted during the run (\`pg_stat_activity\`, every 50 ms), under"
    echo "\`delivery.max_connections\` (256), so at 10,000 tenants most sinks open a connection,"
    echo "write their rows and give it up to the next. The targets share the two cores with"
    echo "the source and pgfanout. Per extra tenant: (time − the 1-tenant time) ÷ (tenants − 1),"
    echo "what each further tenant's sink costs (its connection, its own target transaction)."
    echo
    echo "| workload | tenants | rows | pg_recvlogical (s) | pgfanout (s) | rows/s | ÷ 1 tenant | ÷ pg_recvlogical | per extra tenant (ms) | peak RSS (MiB) | threads (workers) | target connections |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
    tenant_rows "$f" postgres
    echo
  fi

  f=$R/latency.csv
  if [ -f "$f" ]; then
    echo "## 3. Latency, commit to visible in the tenant's database ($(awk -F, 'NR > 1 {print $2}' "$f" | sort -u | wc -l) rounds)"
    echo
    echo "pgbench offers single-row INSERTs at a fixed rate for the run's duration into 10"
    echo "tenants, each with its own Postgres sink and database. Per row: its commit time in"
    echo "the target minus its commit time on the source (track_commit_timestamp, same"
    echo "clock); percentiles over every row. Nothing probes during the load."
    echo
    echo "| offered tx/s | achieved tx/s | rows | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) |"
    echo "|---|---|---|---|---|---|---|"
    for rate in $(awk -F, 'NR > 1 {print $1}' "$f" | sort -n -u); do
      cond="\$1 == $rate"
      echo "| $rate | $(stats "$f" "$cond" 4) | $(median "$f" "$cond" 3) | $(stats "$f" "$cond" 5) | $(stats "$f" "$cond" 6) | $(stats "$f" "$cond" 7) | $(stats "$f" "$cond" 8) |"
    done
    echo
  fi

  f=$R/polling.csv
  if [ -f "$f" ]; then
    echo "## 4. pgfanout beside the polling design it replaces ($(awk -F, 'NR > 1 {print $3}' "$f" | sort -u | wc -l) rounds)"
    echo
    echo "The polling design rebuilt in \`bench/polling/\` (dirty-flag triggers, a 50 ms"
    echo "sequencer stamping up to 1000 rows with FOR UPDATE SKIP LOCKED, a tombstone table, a"
    echo "50 ms per-tenant sync engine upserting 1000 rows at a time with a sequence guard),"
    echo "against pgfanout with one Postgres sink per tenant, same table (100k rows, 10"
    echo "tenants), same machine. Primary TPS: pgbench, single-row UPDATEs, 4 clients."
    echo
    none=$(median "$f" '$1 == "tps" && $2 == "none"' 4)
    fan=$(median "$f" '$1 == "tps" && $2 == "pgfanout"' 4)
    pol=$(median "$f" '$1 == "tps" && $2 == "polling"' 4)
    echo "| measure | no capture | pgfanout | polling design |"
    echo "|---|---|---|---|"
    echo "| primary TPS | $(stats "$f" '$1 == "tps" && $2 == "none"' 4) | $(stats "$f" '$1 == "tps" && $2 == "pgfanout"' 4) | $(stats "$f" '$1 == "tps" && $2 == "polling"' 4) |"
    echo "| TPS ÷ no capture | 1.00 | $(ratio "$fan" "$none") | $(ratio "$pol" "$none") |"
    echo "| latency p50 at 500 updates/s (ms) | | $(stats "$f" '$1 == "latency_p50_ms" && $2 == "pgfanout"' 4) | $(stats "$f" '$1 == "latency_p50_ms" && $2 == "polling"' 4) |"
    echo "| latency p99 at 500 updates/s (ms) | | $(stats "$f" '$1 == "latency_p99_ms" && $2 == "pgfanout"' 4) | $(stats "$f" '$1 == "latency_p99_ms" && $2 == "polling"' 4) |"
    echo "| backlog of 100k updates, rows/s | | $(stats "$f" '$1 == "rows_per_s" && $2 == "pgfanout"' 4) | $(stats "$f" '$1 == "rows_per_s" && $2 == "polling"' 4) |"
    echo
    echo "Where pgfanout's share of the primary's TPS goes, same rounds (each capture alone):"
    echo
    rec=$(median "$f" '$1 == "tps" && $2 == "recvlogical"' 4)
    dis=$(median "$f" '$1 == "tps" && $2 == "discard"' 4)
    echo "| capture | primary TPS | ÷ no capture | ÷ pg_recvlogical |"
    echo "|---|---|---|---|"
    echo "| pg_recvlogical, pgoutput to /dev/null (the walsender alone) | $(stats "$f" '$1 == "tps" && $2 == "recvlogical"' 4) | $(ratio "$rec" "$none") | 1.00 |"
    echo "| pgfanout, \`discard\` sink (walsender + decode + event log) | $(stats "$f" '$1 == "tps" && $2 == "discard"' 4) | $(ratio "$dis" "$none") | $(ratio "$dis" "$rec") |"
    echo "| pgfanout, 10 Postgres tenant sinks on this server | $(stats "$f" '$1 == "tps" && $2 == "pgfanout"' 4) | $(ratio "$fan" "$none") | $(ratio "$fan" "$rec") |"
    echo
    echo "Latency here is the tenant database's commit time minus the application's"
    echo "\`clock_timestamp()\` in the UPDATE (the polling design rewrites source rows, so the"
    echo "source's commit time of the application's change is gone): the same for both."
    echo
  fi

  f=$R/memory_restart.csv
  if [ -f "$f" ]; then
    echo "## 5. Memory and restart ($(awk -F, 'NR > 1 {print $2}' "$f" | sort -u | wc -l) rounds)"
    echo
    echo "| measure | value |"
    echo "|---|---|"
    echo "| peak RSS, one 10M-row transaction (MiB) | $(stats "$f" '$1 == "big_tx_peak_rss"' 3) |"
    echo "| peak RSS, one sink 10M events behind (MiB) | $(stats "$f" '$1 == "lagging_sink_peak_rss"' 3) |"
    echo "| kill -9 to streaming again (s) | $(stats "$f" '$1 == "restart_to_streaming"' 3) |"
    echo "| start to caught up, 1M events of backlog (s) | $(stats "$f" '$1 == "restart_to_caught_up_1m"' 3) |"
    echo
  fi

  f=$R/micro.csv
  if [ -f "$f" ]; then
    echo "## 6. Per-event cost on one core (Google Benchmark; callgrind)"
    echo
    echo "Messages built in memory, no server or disk (\`bench/micro/decoder_bench.cc\`)."
    echo "Instructions per event: callgrind's instruction count for decoding and assembling"
    echo "2N events minus that for N, divided by N (setup cancels out; repeatable whatever"
    echo "else the machine does)."
    echo
    echo "| measure | value |"
    echo "|---|---|"
    awk -F, 'NR > 1 {printf "| %s | %s %s |\n", $1, $2, $3}' "$f"
    echo
  fi

  if compgen -G "$R/*_1m.csv" >/dev/null; then
    echo "## 7. Each sink kind, 1M rows (one run each)"
    echo
    echo "A backlog of 1M inserts in the slot, as single-row and as 1000-row transactions;"
    echo "pgfanout starts with one sink of the kind (the Postgres, ClickHouse and NATS runs"
    echo "beside a JSONL sink of the same daemon) and the clock stops when the destination"
    echo "holds every row: a local Postgres database, clickhouse-server $(awk -F, 'NR == 2 {print $9}' $R/clickhouse_1m.csv 2>/dev/null),"
    echo "a local HTTP receiver verifying signatures, nats-server -js (file storage). Scripts:"
    echo "\`bench/<kind>_1m.sh\`."
    echo
    echo "| sink | workload | rows | seconds | rows/s | pgfanout peak RSS (MiB) |"
    echo "|---|---|---|---|---|---|"
    for kind in postgres_sink clickhouse webhook nats; do
      f=$R/${kind}_1m.csv
      [ -f "$f" ] || continue
      if [ "$kind" = webhook ]; then cols='$5, $6, $8'; else cols='$6, $7, $8'; fi
      awk -F, -v k="${kind%_sink}" "NR > 1 {printf \"| %s | %s | %s | %.2f | %.0f | %s |\\n\", k, \$1, \$2, $cols}" "$f"
    done
    echo
  fi

  f=$R/registry_latency.csv
  if [ -f "$f" ]; then
    echo "## 8. Sinks as data: a registry INSERT to a live sink ($(awk -F, 'NR > 1 {print $2}' "$f" | sort -u | wc -l) round(s); pgfanout $(meta registry_latency commit || true), $(meta registry_latency date || true))"
    echo
    echo "One daemon with a Postgres template (a schema per tenant in one of ten target databases"
    echo "on the source's cluster, the database a param of the row) and the registry table, no"
    echo "static sink (\`bench/registry_latency.sh\`). The tenants' rows exist before the"
    echo "slot, so each new sink gets them by its snapshot copy. Times run from the registry"
    echo "row's commit to the commit of the first and of the last of the tenant's rows in its"
    echo "target (commit timestamps, one cluster, one clock). Sequential: 100 registry INSERTs"
    echo "one after another, 1,000 rows per tenant, the next once the last one is done. Batch:"
    echo "1,000 registry rows in one INSERT, 100 rows per tenant: live is the latest of the"
    echo "1,000 first rows, done the latest last row; /status: when it first listed all 1,000"
    echo "with a cursor (polled every 100 ms)."
    echo
    echo "| phase | inserts | first row, median (ms) | first row, p99 (ms) | all rows, median (ms) | all rows, p99 (ms) |"
    echo "|---|---|---|---|---|---|"
    c='$1 == "sequential"'
    echo "| sequential | $(awk -F, "NR > 1 && $c" "$f" | wc -l) | $(median "$f" "$c" 4) | $(percentile "$f" "$c" 4 99) | $(median "$f" "$c" 5) | $(percentile "$f" "$c" 5 99) |"
    echo
    echo "| phase | sinks | all live (ms) | all done (ms) | /status: all with a cursor (ms) |"
    echo "|---|---|---|---|---|"
    c='$1 == "batch"'
    echo "| one transaction | $(median "$f" "$c" 3) | $(stats "$f" "$c" 4) | $(stats "$f" "$c" 5) | $(stats "$f" "$c && \$6 != \"\"" 6) |"
    echo
  fi
} >"$out"
echo "wrote $out"
