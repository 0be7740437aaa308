#!/usr/bin/env bash
# `meson install` into a temporary DESTDIR and check what a package would ship
# (packaging/README.md): the binary, the systemd unit naming it, the migrations, the example
# config (which the installed binary accepts), and a --help for every command.
# Usage: install_test.sh BUILD_DIR
set -euo pipefail
build=$1
dest=$(mktemp -d /tmp/pgfanout-install-XXXXXX)
trap 'rm -rf "$dest"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

meson install -C "$build" --destdir "$dest" --no-rebuild --quiet >/dev/null
bin=$(find "$dest" -path '*/bin/pgfanout' -type f)
[ -x "$bin" ] || fail "no executable bin/pgfanout under $dest"
prefix=${bin#"$dest"}
prefix=${prefix%/bin/pgfanout}
echo "installed under prefix $prefix:"
(cd "$dest" && find . -type f | sort | sed 's/^/  /')

unit="$dest$prefix/lib/systemd/system/pgfanout.service"
[ -f "$unit" ] || fail "no systemd unit at $unit"
grep -qx "ExecStart=$prefix/bin/pgfanout run --config /etc/pgfanout/pgfanout.yaml" "$unit" \
  || fail "the unit does not start the installed binary: $(grep ExecStart= "$unit")"
grep -qE '@[A-Z_]+@' "$unit" && fail "unsubstituted @VAR@ left in the unit"
for k in NoNewPrivileges=yes ProtectSystem=strict ExecReload= StateDirectory=pgfanout \
         RestartPreventExitStatus=2 'CapabilityBoundingSet='; do
  grep -q "^$k" "$unit" || fail "the unit lacks $k"
done

for f in migrations/source/001_replication_role.sql migrations/source/002_create_publication.sql \
         migrations/sink_postgres/001_sink_state.sql; do
  [ -f "$dest$prefix/share/pgfanout/$f" ] || fail "missing share/pgfanout/$f"
done
example="$dest$prefix/share/doc/pgfanout/pgfanout.example.yaml"
[ -f "$example" ] || fail "missing the example config"
[ -f "$dest$prefix/share/doc/pgfanout/README.md" ] || fail "missing the README"
out=$("$bin" check --config "$example") || fail "the installed example config is refused: $out"
echo "$out"

for cmd in run status checkpoint check replay verify backfill; do
  help=$("$bin" "$cmd" --help) || fail "pgfanout $cmd --help failed"
  grep -q -- "--config" <<<"$help" || fail "pgfanout $cmd --help does not show --config"
  grep -qi "exit status" <<<"$help" || fail "pgfanout $cmd --help does not say its exit status"
done
"$bin" --help | grep -q EXAMPLES || fail "pgfanout --help has no examples"
echo "install test: OK"
