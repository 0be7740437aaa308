#!/usr/bin/env bash
# Regenerates the wal2json test data from a throwaway PostgreSQL 15 with wal2json 2.x:
# one workload (every action, the type zoo, unchanged TOAST, each replica identity, key
# changes, savepoints, TRUNCATE CASCADE, DDL mid-stream, logical messages) read through two
# slots created at the same point, so both plugins describe the same WAL:
#   data/wal2json_stream.jsonl   wal2json format-version 2 documents, one per line, with the
#                                options src/source/replication_stream.cc sends
#   data/pgoutput_stream.hex     pgoutput messages (proto 2, messages on), hex, one per line
#   data/wal2json_hints.jsonl    the catalog when the slots were made, one table per line,
#                                as src/source/source_setup.cc reads it
# and seeds for test/fuzz/corpus/wal2json/ (one transaction's documents per file).
#   test/unit/decoders/capture_wal2json.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
data=test/unit/decoders/data
seeds=test/fuzz/corpus/wal2json
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
# A zone with a half-hour offset, so commit timestamps print as +05:30.
cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
port = $port
unix_socket_directories = '$dir'
wal_level = logical
timezone = 'Asia/Kolkata'
CONF
as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/data/postgres.log" -w start >/dev/null
psql=(psql -X -q -h "$dir" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1)

"${psql[@]}" >/dev/null <<'SQL'
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE TYPE pair AS (a int, b text);
CREATE TABLE users (id int PRIMARY KEY, tenant_id text NOT NULL, name text, bio text, m mood);
ALTER TABLE users ALTER COLUMN bio SET STORAGE EXTERNAL;  -- out of line: left out of UPDATEs
CREATE TABLE types (
  id int PRIMARY KEY, b bool, i2 int2, i4 int4, i8 int8, o oid, f4 float4, f8 float8,
  n numeric, n2 numeric(10, 2), mon money, t text, vc varchar(20), c char(5), by bytea,
  j json, jb jsonb, u uuid, d date, tm time, tm3 time(3), ttz timetz, ts timestamp,
  ts3 timestamp(3), tstz timestamptz, iv interval, iv2 interval day to second(3), ai int[],
  at text[], ip inet, net cidr, mac macaddr, pt point, bt bit(4), vb varbit(8), tsv tsvector,
  x xml, m mood, dom posint, comp pair, r int4range, vca varchar(3)[],
  g int GENERATED ALWAYS AS (id * 2) STORED);
CREATE TABLE orders (id bigint PRIMARY KEY, note varchar(20), total numeric(10, 2), big text);
ALTER TABLE orders ALTER COLUMN big SET STORAGE EXTERNAL;
ALTER TABLE orders REPLICA IDENTITY FULL;
CREATE TABLE "Mixed Case" (a int NOT NULL, "b.c, d*" text, e text);
CREATE UNIQUE INDEX mixed_a ON "Mixed Case" (a);
ALTER TABLE "Mixed Case" REPLICA IDENTITY USING INDEX mixed_a;
CREATE TABLE child (id int PRIMARY KEY, user_id int REFERENCES users (id));
CREATE PUBLICATION pub FOR ALL TABLES;
SELECT pg_create_logical_replication_slot('p', 'pgoutput');
SELECT pg_create_logical_replication_slot('w', 'wal2json');
SQL

mkdir -p "$data" "$seeds"
# The same catalog query as src/source/source_setup.cc (ReadWal2JsonHint), as JSON.
"${psql[@]}" -At >"$data/wal2json_hints.jsonl" <<'SQL'
SELECT json_build_object('schema', n.nspname, 'table', c.relname, 'oid', c.oid::bigint,
  'replica_identity', c.relreplident,
  'columns', (SELECT json_agg(json_build_object('attnum', a.attnum, 'name', a.attname,
      'type_oid', a.atttypid::bigint, 'type_modifier', a.atttypmod,
      'type_text', format_type(a.atttypid, a.atttypmod),
      'in_primary_key', EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid
                                  AND i.indisprimary AND a.attnum = ANY (i.indkey)),
      'in_identity_index', EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid
                                  AND i.indisreplident AND a.attnum = ANY (i.indkey)),
      'generated', a.attgenerated <> '') ORDER BY a.attnum)
    FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped))
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY c.relname;
SQL

"${psql[@]}" >/dev/null <<'SQL'
INSERT INTO users VALUES (1, '7', 'ünïcødé ✓ "q" \ tab	end', NULL, 'happy');
INSERT INTO users SELECT 2, '9', '', string_agg(md5(g::text), ''), 'sad' FROM generate_series(1, 200) g;
UPDATE users SET name = 'bob' WHERE id = 2;
UPDATE users SET id = 3 WHERE id = 1;
UPDATE users SET id = id, name = 'same key' WHERE id = 3;
DELETE FROM users WHERE id = 3;
INSERT INTO types VALUES (1, true, -32768, 2147483647, -9223372036854775808, 4294967295, 1.5,
  '-0', 123456789012345678901234567890.123456789, 1.5, 12.34, 'text', 'vc', 'ab',
  '\x00ff10', '{"b": 1,  "a" : [1, 2]}', '{"b": 1, "a": [1, 2]}',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2024-02-29', '13:14:15.123456', '13:14:15.1236',
  '13:14:15+05:30', '2024-01-02 03:04:05.678901', '2024-01-02 03:04:05.6789',
  '2024-01-02 03:04:05.678901+00', '1 year 2 mons 3 days 04:05:06.789', '3 days 04:05:06.789',
  '{1,NULL,3}', '{"a b","c\"d",NULL}', '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03',
  '(1.5,-2)', B'1010', B'101', 'a fat cat', '<a>x</a>', 'sad', 5, ROW(1, 'x y'), '[1,5)',
  '{abc,de}');
INSERT INTO types (id, f4, f8, n) VALUES (2, 'NaN', '-Infinity', 'NaN');
INSERT INTO types (id, f8, n, b, f4) VALUES (3, 1e-300, 0.000001000, false, 3.4e38);
UPDATE types SET t = NULL, b = NULL WHERE id = 1;
INSERT INTO orders VALUES (10, 'x', 1.50, NULL), (11, NULL, NULL, NULL);
INSERT INTO orders SELECT 12, 'toast', 3, string_agg(md5(g::text), '') FROM generate_series(1, 200) g;
UPDATE orders SET note = 'y' WHERE id = 10;
UPDATE orders SET note = 'toast2' WHERE id = 12;
DELETE FROM orders WHERE id = 11;
INSERT INTO "Mixed Case" VALUES (1, 'one', 'e');
UPDATE "Mixed Case" SET "b.c, d*" = 'uno' WHERE a = 1;
UPDATE "Mixed Case" SET a = 2 WHERE a = 1;
DELETE FROM "Mixed Case" WHERE a = 2;
BEGIN;
INSERT INTO users VALUES (5, '7', 'kept', NULL, NULL);
SAVEPOINT s;
INSERT INTO users VALUES (6, '7', 'rolled back', NULL, NULL);
ROLLBACK TO s;
INSERT INTO child VALUES (1, 5);
SELECT pg_logical_emit_message(true, 'audit', 'tx-msg');
COMMIT;
SELECT pg_logical_emit_message(false, 'audit', 'non-tx "msg"');
TRUNCATE users RESTART IDENTITY CASCADE;
TRUNCATE orders;
ALTER TABLE orders ADD COLUMN extra jsonb;
INSERT INTO orders VALUES (13, 'z', 3, NULL, '{"k": [1, 2]}');
ALTER TABLE orders DROP COLUMN note;
INSERT INTO orders VALUES (14, 4, NULL, NULL);
ALTER TABLE orders RENAME COLUMN total TO amount;
ALTER TABLE orders ALTER COLUMN amount TYPE numeric(12, 3);
INSERT INTO orders VALUES (15, 5, NULL, NULL);
ALTER TABLE orders REPLICA IDENTITY DEFAULT;
UPDATE orders SET amount = 6 WHERE id = 15;
DELETE FROM orders WHERE id = 15;
INSERT INTO users SELECT 7, '7', 'pre', string_agg(md5(g::text), ''), NULL FROM generate_series(1, 200) g;
ALTER TABLE users ADD COLUMN score int DEFAULT 0;
UPDATE users SET name = 'post' WHERE id = 7;
SQL

"${psql[@]}" -At >"$data/wal2json_stream.jsonl" -c "SELECT data FROM pg_logical_slot_peek_changes(
  'w', NULL, NULL, 'format-version', '2', 'include-xids', '1', 'include-timestamp', '1',
  'include-lsn', '1', 'include-type-oids', '1', 'include-typmod', '1', 'include-pk', '1',
  'include-column-positions', '1')"
"${psql[@]}" -At >"$data/pgoutput_stream.hex" -c "SELECT encode(data, 'hex') FROM
  pg_logical_slot_peek_binary_changes('p', NULL, NULL, 'proto_version', '2',
  'publication_names', 'pub', 'messages', 'true')"

# Fuzz seeds: each transaction (B ... C) and each message outside one, as a file of lines.
rm -f "$seeds"/*.jsonl
n=0
tx=""
while IFS= read -r line; do
  tx+="$line"$'\n'
  case "$line" in
    '{"action":"B"'*) continue ;;
    '{"action":"C"'* | '{"action":"M"'*'"transactional":false'*) ;;
    *) continue ;;
  esac
  if [ "$(printf '%s' "$tx" | wc -l)" -gt 2 ] || [ "${line:0:13}" = '{"action":"M"' ]; then
    printf '%s' "$tx" >"$seeds/$(printf 'tx-%02d.jsonl' "$n")"
    n=$((n + 1))
  fi
  tx=""
done <"$data/wal2json_stream.jsonl"
echo "wrote $(wc -l <"$data/wal2json_stream.jsonl") wal2json documents," \
  "$(wc -l <"$data/pgoutput_stream.hex") pgoutput messages, $n seeds" \
  "($("$PG_BIN/postgres" --version), wal2json $(dpkg-query -W -f '${Version}' postgresql-15-wal2json 2>/dev/null || echo '?'))"
