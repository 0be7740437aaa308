# Shared by the bench scripts: a throwaway Postgres 15 cluster with logical decoding.
# After `start_cluster`: $dir (work dir, removed on exit), $port, $PG_BIN, $BIN (pgfanout),
# psql=(…) without a database (add -d), `now` (seconds, fractional), and a background
# pgfanout in $daemon is killed on exit.
PG_BIN=/usr/lib/postgresql/15/bin
BIN=${PGFANOUT_BIN:-$PWD/build/src/pgfanout}

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
