#!/usr/bin/env bash
# Regenerates test/fuzz/corpus/pgoutput/ from a throwaway PostgreSQL 15: runs a workload
# that makes the server send every pgoutput message type (protocol v2, streaming on,
# messages on), reads the changes back with pg_logical_slot_peek_binary_changes, and writes
# a few messages of each kind as one binary file each (the XLogData payload, without 'w').
#   test/fuzz/capture_pgoutput_seeds.sh [out_dir]
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-test/fuzz/corpus/pgoutput}
PG_BIN=/usr/lib/postgresql/15/bin

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

dir=$(mktemp -d /tmp/pgfanout-capture-XXXXXX)
[ "$(id -u)" -eq 0 ] && chown postgres "$dir"
port=$((20000 + RANDOM % 20000))
cleanup() {
  as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

as_postgres "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
  >/dev/null
cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
port = $port
unix_socket_directories = '$dir'
wal_level = logical
logical_decoding_work_mem = 64kB
CONF
as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/data/postgres.log" -w start >/dev/null
psql=(psql -X -q -h "$dir" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1)

"${psql[@]}" >/dev/null <<'SQL'
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TABLE users (id int PRIMARY KEY, name text, bio text, m mood);
ALTER TABLE users ALTER COLUMN bio SET STORAGE EXTERNAL;  -- out of line: 'u' in updates
CREATE TABLE orders (id bigint PRIMARY KEY, note varchar(20), total numeric(10, 2));
ALTER TABLE orders REPLICA IDENTITY FULL;
CREATE TABLE "Mixed Case" (a int NOT NULL, b text);
CREATE UNIQUE INDEX mixed_a ON "Mixed Case" (a);
ALTER TABLE "Mixed Case" REPLICA IDENTITY USING INDEX mixed_a;
CREATE TABLE nokey (x int) WITH (autovacuum_enabled = false);
ALTER TABLE nokey REPLICA IDENTITY NOTHING;
CREATE TABLE child (id int PRIMARY KEY, user_id int REFERENCES users (id));
CREATE PUBLICATION pub FOR ALL TABLES;
SELECT pg_create_logical_replication_slot('s', 'pgoutput');
INSERT INTO users VALUES (1, 'ünïcødé ✓', NULL, 'happy');
INSERT INTO users SELECT 2, '', string_agg(md5(g::text), ''), 'sad' FROM generate_series(1, 80) g;
UPDATE users SET name = 'bob' WHERE id = 2;
UPDATE users SET id = 3 WHERE id = 1;
DELETE FROM users WHERE id = 3;
INSERT INTO orders VALUES (10, 'x', 1.50), (11, NULL, NULL);
UPDATE orders SET note = 'y' WHERE id = 10;
DELETE FROM orders WHERE id = 11;
INSERT INTO "Mixed Case" VALUES (1, 'one');
UPDATE "Mixed Case" SET a = 2 WHERE a = 1;
DELETE FROM "Mixed Case" WHERE a = 2;
INSERT INTO nokey VALUES (1);
TRUNCATE nokey;
TRUNCATE users, child RESTART IDENTITY CASCADE;
TRUNCATE orders;
ALTER TABLE orders ADD COLUMN extra jsonb;
INSERT INTO orders VALUES (12, 'z', 3, '{"k": [1, 2]}');
SELECT pg_logical_emit_message(true, 'audit', 'tx-msg');
SELECT pg_logical_emit_message(false, 'audit', '\x00ff'::bytea);
SELECT pg_replication_origin_create('upstream');
SQL
# A transaction replayed from elsewhere carries an Origin message.
"${psql[@]}" >/dev/null <<'SQL'
SELECT pg_replication_origin_session_setup('upstream');
BEGIN;
SELECT pg_replication_origin_xact_setup('0/ABCDEF', now());
INSERT INTO orders VALUES (20, 'from-upstream', 1, NULL);
COMMIT;
SELECT pg_replication_origin_session_reset();
SQL
# Large transactions go out as streams (logical_decoding_work_mem = 64kB): one committed
# with a rolled-back savepoint (Stream Abort of a subtransaction), one aborted whole.
"${psql[@]}" >/dev/null <<'SQL'
BEGIN;
INSERT INTO orders SELECT g, 'bulk', g FROM generate_series(1000, 3000) g;
SAVEPOINT a;
INSERT INTO orders SELECT g, 'undone', g FROM generate_series(5000, 7000) g;
ROLLBACK TO a;
SELECT pg_logical_emit_message(true, 'audit', 'in-stream');
UPDATE orders SET note = 'bulk2' WHERE id BETWEEN 1000 AND 1010;
DELETE FROM orders WHERE id BETWEEN 1011 AND 1020;
TRUNCATE nokey;
COMMIT;
BEGIN;
INSERT INTO orders SELECT g, 'aborted', g FROM generate_series(10000, 12000) g;
ROLLBACK;
SQL

mkdir -p "$out"
rm -f "$out"/*.bin
# One line per message: the hex payload. Keep the first 3 of each (type, in stream, shape).
declare -A kept
in_stream=0
n=0
while read -r hex; do
  type=${hex:0:2}
  [ "$type" = 53 ] && in_stream=1  # 'S'
  # Shape: for Update/Delete the marker byte after relid (after the xid in a stream).
  shape=""
  case "$type" in
    55 | 44) shape=${hex:$((10 + in_stream * 8)):2} ;;
  esac
  key="$type-$in_stream-$shape"
  count=${kept[$key]:-0}
  if [ "$count" -lt 3 ]; then
    kept[$key]=$((count + 1))
    name=$(printf '%s-%s%s-%d.bin' "$(printf "\\x$type")" \
      "$([ $in_stream = 1 ] && echo stream || echo tx)" "${shape:+-$shape}" "$count")
    name=${name/#c-/sc-}  # Stream Commit 'c' vs Commit 'C' on case-insensitive file systems
    xxd -r -p <<<"$hex" >"$out/$name"
    n=$((n + 1))
  fi
  [ "$type" = 45 ] && in_stream=0  # 'E'
done < <("${psql[@]}" -At -c "SELECT encode(data, 'hex') FROM pg_logical_slot_peek_binary_changes(
    's', NULL, NULL, 'proto_version', '2', 'publication_names', 'pub', 'streaming', 'on',
    'messages', 'true')")
echo "wrote $n messages to $out ($("$PG_BIN/postgres" --version))"
