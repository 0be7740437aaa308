# Shared by the bench scripts: a throwaway Postgres 15 cluster with logical decoding.
# After `start_cluster`: $dir (work dir, removed on exit), $port, $PG_BIN, $BIN (pgfanout),
# psql=(…) without a database (add -d), `now` (seconds, fractional), and a background
# pgfanout in $daemon is killed on exit. Then the pieces every script needs: the head of
# a config, pgfanout started and stopped, its slot made before a load; and the driver of
# the one-sink benchmarks (<kind>_1m.sh).
PG_BIN=/usr/lib/postgresql/15/bin
BIN=${PGFANOUT_BIN:-$PWD/build/src/pgfanout}
# The walsender's pace: bench/walsender_pace/receive.cc, built on first use.
PACE=$PWD/build/bench/receive_only
[ -x "$PACE" ] || ninja -C build bench/receive_only >&2

# run_pace SLOT END_LSN -> prints the seconds the walsender took to send SLOT's changes up
# to END_LSN to a client that reads and discards them (the same options pgfanout sends).
run_pace() {
  "$PACE" "host=127.0.0.1 port=$port user=postgres dbname=postgres replication=database" "$1" "$2" \
    "proto_version '2', streaming 'on', publication_names '\"bench\"'" | awk '{print $1}'
}

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
now() { date +%s.%N; }

start_cluster() {
  dir=$(mktemp -d /tmp/pgfanout-bench-XXXXXX)
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  port=$(( 20000 + RANDOM % 20000 ))
  trap cleanup_cluster EXIT
  as_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
wal_level = logical
max_wal_size = 4GB
track_commit_timestamp = on
max_connections = 300
CONF
  # Debian's hardened builds load only the output plugins this list names (wal2json here).
  if as_pg "$PG_BIN/postgres" --describe-config 2>/dev/null | grep -q '^output_plugin_libraries'; then
    echo "output_plugin_libraries = 'pgoutput, wal2json'" >>"$dir/data/postgresql.conf"
  fi
  as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w start >/dev/null
  psql=(psql -X -q -At -h 127.0.0.1 -p "$port" -U postgres -v ON_ERROR_STOP=1)
  export PGOPTIONS="-c client_min_messages=warning"  # no NOTICE for every DROP … IF EXISTS
}

cleanup_cluster() {
  [ -n "${daemon:-}" ] && kill -9 "$daemon" 2>/dev/null || true
  as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}

# The head of a bench config on stdout: the source (slot bench_fanout; publication $2,
# default bench, or with $3 = wal2json that decoder instead), the state dir, the HTTP
# endpoint on $http_port when it is set (the /metrics the scripts poll; lag sampled once a
# minute, so its scans stay out of the measurements), else "off", and one tracked table
# $1 with its tenant column tenant_id. The caller appends the sinks.
config_head() {
  local table=$1 publication=${2:-bench} decoder=${3:-pgoutput}
  printf 'source:\n  dsn: "host=127.0.0.1 port=%s dbname=postgres user=postgres"\n' "$port"
  printf '  slot: bench_fanout\n'
  if [ "$decoder" = wal2json ]; then printf '  decoder: wal2json\n'; else printf '  publication: %s\n' "$publication"; fi
  printf 'state_dir: %s/state\n' "$dir"
  if [ -n "${http_port:-}" ]; then
    printf 'http:\n  listen: "127.0.0.1:%s"\n  sample_interval: 60s\n' "$http_port"
  else
    printf 'http:\n  listen: "off"\n'
  fi
  printf 'tables:\n  - name: %s\n    tenant_column: tenant_id\n' "$table"
}

# The multi-tenant table of the end-to-end benchmarks, its publication `bench`, and
# `CALL load(total, per_tx, tenants)`: `total` rows spread over tenants t0…, `per_tx` a
# transaction.
create_items() {
  "${psql[@]}" -d postgres <<'SQL'
CREATE TABLE items (tenant_id text NOT NULL, id bigint NOT NULL, name text, qty int,
                    price numeric(12,2), updated_at timestamptz, PRIMARY KEY (tenant_id, id));
CREATE PUBLICATION bench FOR TABLE items;
CREATE PROCEDURE load(total int, per_tx int, tenants int) LANGUAGE plpgsql AS $$
BEGIN
  FOR start IN 0..total - 1 BY per_tx LOOP
    INSERT INTO items SELECT 't' || (i % tenants), i, 'item ' || i, i % 1000, i * 0.01, now()
      FROM generate_series(start + 1, least(start + per_tx, total)) i;
    COMMIT;
  END LOOP;
END $$;
SQL
}

# pgfanout in the background on $dir/pgfanout.yaml, its output in $1; its pid in $daemon.
start_pgfanout() {
  "$BIN" run --config "$dir/pgfanout.yaml" >"$1" 2>&1 &
  daemon=$!
}
stop_pgfanout() { kill "$daemon"; wait "$daemon" || true; daemon=; }
# Ends the script, with the end of pgfanout's log $1, when pgfanout is no longer running.
pgfanout_alive() { kill -0 "$daemon" 2>/dev/null || { echo "pgfanout exited:"; tail -20 "$1"; exit 1; }; }
# Peak RSS of the running pgfanout, MiB.
pgfanout_peak_mib() { awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$daemon/status"; }
# pgfanout makes its slot (and records it in its state dir), streams, and is stopped: what
# is committed next waits in the slot, a backlog for the next start.
make_slot() {
  start_pgfanout "$dir/fanout-setup.log"
  until [ "$("${psql[@]}" -d postgres -c "SELECT count(*) FROM pg_replication_slots WHERE active")" = 1 ]; do
    pgfanout_alive "$dir/fanout-setup.log"
    sleep 0.1
  done
  stop_pgfanout
}

# --- The one-sink benchmarks (<kind>_1m.sh) ---------------------------------------------
# A backlog of ROWS inserts into public.users (tenants 0-9) in single-row or 1000-row
# transactions, read by one daemon into the sink under test and, beside it, a JSONL sink.

# The users table, its publication and load(total, per_tx).
create_users_table() {
  "${psql[@]}" -d postgres -c "
    CREATE TABLE users (id int PRIMARY KEY, tenant_id text NOT NULL, name text, score int);
    CREATE PUBLICATION bench FOR TABLE users;
    CREATE PROCEDURE load(total int, per_tx int) LANGUAGE plpgsql AS \$\$
    BEGIN
      FOR start IN 0..total - 1 BY per_tx LOOP
        INSERT INTO users SELECT i, (i % 10)::text, 'user ' || i, i
          FROM generate_series(start + 1, least(start + per_tx, total)) i;
        COMMIT;
      END LOOP;
    END \$\$;"
}

# Rows per transaction of a shape (single, batch1k); ends the script on any other.
shape_rows_per_tx() {
  case $1 in
    single) echo 1 ;;
    batch1k) echo 1000 ;;
    *) echo "unknown shape $1 (single, batch1k)" >&2; exit 2 ;;
  esac
}

# One shape ($per_tx rows per transaction): a fresh state dir and slot, a config with the
# sink under test ($1, YAML of one list item) after a JSONL sink (left out when $3 is
# "no-jsonl"), the slot made, ROWS rows loaded; then pgfanout runs until the JSONL file
# holds ROWS lines and `$2` (a command printing how many rows the tested sink's target
# holds; anything but a number counts as 0) prints ROWS or more. Sets jsonl_s and sink_s
# (seconds from pgfanout's start) and rss_mib; pgfanout is stopped at the end.
run_sink_shape() {
  local sink_yaml=$1 count=$2 jsonl=${3:-jsonl} t0 n t_jsonl= t_sink=
  rm -rf "$dir/state" "$dir/out"
  "${psql[@]}" -d postgres -c "TRUNCATE users" \
    -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots" >/dev/null
  {
    config_head public.users
    echo "sinks:"
    if [ "$jsonl" = jsonl ]; then
      printf '  - id: jsonl\n    type: jsonl\n    tenants: ["*"]\n    path: %s\n    batch_size: 10000\n' \
        "$dir/out/events.jsonl"
    fi
    printf '%s\n' "$sink_yaml"
  } >"$dir/pgfanout.yaml"
  make_slot
  echo "loading $ROWS rows, $per_tx per transaction…"
  "${psql[@]}" -d postgres -c "SET synchronous_commit = off" -c "CALL load($ROWS, $per_tx)"
  [ "$jsonl" = jsonl ] || t_jsonl=none
  t0=$(now)
  start_pgfanout "$dir/fanout.log"
  while [ -z "$t_jsonl" ] || [ -z "$t_sink" ]; do
    sleep 0.1
    if [ -z "$t_jsonl" ] && [ "$(wc -l <"$dir/out/events.jsonl" 2>/dev/null || echo 0)" -ge "$ROWS" ]; then
      t_jsonl=$(now)
    fi
    if [ -z "$t_sink" ]; then
      n=$($count 2>/dev/null || true)
      [[ "$n" =~ ^[0-9]+$ ]] || n=0
      [ "$n" -ge "$ROWS" ] && t_sink=$(now)
    fi
    pgfanout_alive "$dir/fanout.log"
  done
  rss_mib=$(pgfanout_peak_mib)
  stop_pgfanout
  jsonl_s=
  [ "$t_jsonl" = none ] || jsonl_s=$(echo "$t_jsonl - $t0" | bc)
  sink_s=$(echo "$t_sink - $t0" | bc)
}
