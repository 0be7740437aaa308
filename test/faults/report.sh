#!/usr/bin/env bash
# Writes RELIABILITY.md from test/faults/RELIABILITY.in.md (the prose) and the raw results
# of the last full run, test/faults/results/faults.csv (one row per scenario, written by
# the suite itself: PGFANOUT_FAULT_RESULTS) and run.txt (commit, date, tests, minutes),
# both left by `./dev faults`. No figure here is typed by hand.
set -euo pipefail
cd "$(dirname "$0")/../.."
R=test/faults/results
csv=$R/faults.csv
[ -f "$csv" ] || { echo "no $csv: run ./dev faults first" >&2; exit 1; }
# shellcheck disable=SC1090
. "$R/run.txt"  # commit, date, machine, tests, failed, minutes, fuzz (optional)

figures() {
  echo "## Figures of the last full run"
  echo
  echo "Run with \`./dev faults\` on ${machine:-$(uname -m), $(nproc) cores}, commit \`$commit\`, $date: $tests"
  echo "tests, $failed failed, $minutes minutes. Raw results: \`$csv\` (this table is made from"
  echo "it by \`test/faults/report.sh\`). The status column says what each row must show:"
  echo "valid for a fault the daemon must survive; for a negative control, the broken"
  echo "property; for a halt, the loss it halts for (the WAL or the slot is gone)."
  echo
  # Columns: see Report::CsvHeader (test/faults/checker.cc). Python (meson's own
  # runtime, so always here) reads the quoted fields.
  python3 - "$csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
mib = lambda b: "%.1f MiB" % (int(b) / 1048576)
print("| scenario | faults | committed | unknown | lost | dup. once | dup. raw | dup. effect "
      "| unexpected | order viol. | recovery p50 / p99 | replay window | peak retained WAL "
      "| peak RSS | status |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
survive, controls, halts = [], [], []
for r in rows:
    s = r["scenario"]
    if s.startswith("negative control"):
        controls.append(r)
        status = "not valid, as it must be" if r["valid"] == "no" else "**valid: the control failed**"
    elif s.startswith("halt:") and int(r["lost"]) > 0:
        halts.append(r)
        status = "halted; the loss is its cause"
    else:
        survive.append(r)
        status = "valid" if r["valid"] == "yes" else "**NOT VALID**"
    rec = "-" if not r["recovery_p50_s"] else "%.2f s / %.2f s" % (
        float(r["recovery_p50_s"]), float(r["recovery_p99_s"]))
    print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        s, r["faults"], r["committed"], r["unknown"], r["lost"], r["duplicated_once"],
        r["duplicated_raw"], r["duplicated_effect"], r["unexpected"], r["order_violations"], rec,
        mib(r["replay_window_bytes"]), mib(r["peak_retained_wal_bytes"]),
        mib(r["peak_rss_bytes"]), status))
total = lambda key: sum(int(r[key]) for r in survive)
print()
print("Summary, computed from the same file:")
print("- %d scenarios the daemon must survive: %d faults injected, %d transactions committed;"
      % (len(survive), total("faults"), total("committed")))
print("  %d not valid; in all of them %d lost, %d duplicated where once is promised, %d "
      "duplicate effects, %d unexpected, %d order violations."
      % (sum(r["valid"] != "yes" for r in survive), total("lost"), total("duplicated_once"),
         total("duplicated_effect"), total("unexpected"), total("order_violations")))
print("- %d negative controls, %d reported by the checker as not valid."
      % (len(controls), sum(r["valid"] == "no" for r in controls)))
print("- %d halts with the loss they halt for." % len(halts))
if survive:
    top = max(survive, key=lambda r: int(r["peak_rss_bytes"]))
    print("- Highest peak RSS of the daemon: %s (%s)." % (mib(top["peak_rss_bytes"]), top["scenario"]))
for r in rows:
    if r["notes"]:
        print("- %s: %s" % (r["scenario"], r["notes"]))
PY
  if [ -n "${fuzz:-}" ]; then
    echo
    echo "Fuzzers: $fuzz"
  fi
}

out=RELIABILITY.md
tmp=$(mktemp)
figures >"$tmp"
awk -v f="$tmp" '$0 == "@FIGURES@" { while ((getline line < f) > 0) print line; next } { print }' \
  test/faults/RELIABILITY.in.md >"$out"
rm -f "$tmp"
echo "wrote $out from $csv"
