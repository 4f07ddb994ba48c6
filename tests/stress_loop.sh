#!/usr/bin/env bash
# tests/stress_loop.sh — runs the whole test suite N times in a row while a busy loop competes
# for one core, and stops at the first failure or hang. A hang is a test that meson stops at its
# timeout (TIMEOUT in its log), so a lost wake-up shows up here as a failed run, not a stuck script.
#
#   tests/stress_loop.sh BUILDDIR [N] [-- MESON TEST ARGS...]      (N: 30 by default)
#
#   e.g. tests/stress_loop.sh build
#        tests/stress_loop.sh build-tsan 30 -- --timeout-multiplier 4
#
# BUILDDIR is built once first (ninja), then every run is `meson test -C BUILDDIR --no-rebuild`.
# Each run prints one line (ok, or FAILED with the tests that failed and the log kept for it);
# the last line is "N passed, M failed". Exit status: 0 when every run passed.
# STRESS_BUSY=0 runs without the busy loop. STRESS_BUSY_CPU picks the core it is pinned to
# (default 0; taskset is used when it exists, else the loop just runs unpinned).
set -uo pipefail

usage() {
  echo "usage: $0 BUILDDIR [N] [-- MESON TEST ARGS...]" >&2
  exit 2
}
[ $# -ge 1 ] || usage
builddir=$1
shift
runs=30
if [ $# -ge 1 ] && [ "$1" != -- ]; then
  runs=$1
  shift
fi
case $runs in '' | *[!0-9]* | 0) echo "$0: N must be a positive integer, got '$runs'" >&2; exit 2 ;; esac
if [ $# -ge 1 ]; then
  [ "$1" = -- ] || usage
  shift
fi
meson_args=("$@")

[ -f "$builddir/build.ninja" ] || { echo "$0: $builddir is not a configured meson build dir" >&2; exit 2; }
ninja -C "$builddir" >/dev/null || { echo "$0: building $builddir failed (run ninja -C $builddir)" >&2; exit 2; }

busy_pid=
stop_busy() {
  if [ -n "$busy_pid" ]; then
    kill "$busy_pid" 2>/dev/null
    wait "$busy_pid" 2>/dev/null
    busy_pid=
  fi
}
trap stop_busy EXIT
trap 'stop_busy; exit 130' INT TERM
if [ "${STRESS_BUSY:-1}" != 0 ]; then
  busy=(bash -c 'while :; do :; done')
  if command -v taskset >/dev/null; then busy=(taskset -c "${STRESS_BUSY_CPU:-0}" "${busy[@]}"); fi
  "${busy[@]}" &
  busy_pid=$!
  echo "stress_loop: busy loop pid $busy_pid (${busy[*]})"
fi

# The names and results of the tests that did not pass in the last run (from testlog.json).
failed_tests() {
  python3 - "$builddir/meson-logs/testlog.json" <<'PY'
import json, sys
try:
    lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
except OSError as e:
    print(f"(no testlog.json: {e})")
    sys.exit(0)
bad = []
for line in lines:
    if line.strip():
        r = json.loads(line)
        if r["result"] not in ("OK", "SKIP", "EXPECTEDFAIL"):
            bad.append(f'{r["name"]}: {r["result"]}')
print(", ".join(bad) if bad else "(no failed test in its log: meson failed before or outside the tests, or no test matched)")
PY
}

passed=0
failed=0
t_all=$SECONDS
for ((i = 1; i <= runs; i++)); do
  t0=$SECONDS
  meson test -C "$builddir" --no-rebuild "${meson_args[@]}" >"$builddir/stress_loop.last.txt" 2>&1
  rc=$?
  summary=$(grep -E '^(Ok|Fail|Timeout|Skipped):' "$builddir/stress_loop.last.txt" | tr -s ' ' | tr '\n' ' ')
  if [ "$rc" -eq 0 ] && ! grep -qE '^Ok: +[1-9]' "$builddir/stress_loop.last.txt"; then
    rc=1  # meson exits 0 when no test matched: that is no passing run
  fi
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
    echo "run $i/$runs: ok ($((SECONDS - t0))s; $summary)"
  else
    failed=$((failed + 1))
    kept="$builddir/stress_loop.run$i.txt"
    cp "$builddir/stress_loop.last.txt" "$kept"
    cp "$builddir/meson-logs/testlog.txt" "$builddir/stress_loop.run$i.testlog.txt" 2>/dev/null
    echo "run $i/$runs: FAILED (exit $rc, $((SECONDS - t0))s): $(failed_tests)"
    echo "  output: $kept; full log: $builddir/stress_loop.run$i.testlog.txt"
    break
  fi
done
stop_busy
echo "stress_loop: $passed passed, $failed failed (of $runs runs asked, $((SECONDS - t_all))s)"
[ "$failed" -eq 0 ]
