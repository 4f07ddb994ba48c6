#!/usr/bin/env bash
# tests/model/run.sh — builds and runs every Relacy model (tests/model/*_model.cpp).
#
# For each model: compile it as the convention says (g++ -std=c++20 -O1 and the component
# include dirs), run it and expect exit 0 (Relacy found nothing); then, for each name on its
# `// planted: A B` line, recompile with -DTASKPORT_PLANT_<NAME> and expect exit 1 (Relacy caught
# the planted bug). One line per run, with Relacy's first report line for a caught bug; a summary
# at the end; exits non-zero when any expectation fails. Each run is bounded (MODEL_TIMEOUT
# seconds, default 300; a model keeps itself near a minute or less).
#
#   tests/model/run.sh              # every model
#   tests/model/run.sh deque cq     # only the models whose file name contains one of the words
#
# Environment: CXX (default g++), MODEL_BUILD_DIR (default a temporary folder, removed after),
# MODEL_TIMEOUT. Logs of every run are kept in MODEL_BUILD_DIR when it is given.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cxx=${CXX:-g++}
timeout_s=${MODEL_TIMEOUT:-300}
if [ -n "${MODEL_BUILD_DIR:-}" ]; then
  out=$MODEL_BUILD_DIR
  mkdir -p "$out"
else
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
flags=(-std=c++20 -O1 -I"$root/sched/src" -I"$root/sched/include" -I"$root/runtime/include"
       -I"$root/io/src" -I"$root/io/include")

pass=0
fail=0
failed=()
t_all=$SECONDS

# The first line of Relacy's report (the line after the test's name), or the last line printed.
report_line() {
  local line
  line=$(grep -m1 -E 'ASSERT|RACE|UNINITIALIZED|LIVELOCK|DEADLOCK|LEAK|ACCESS|FAILED|USE AFTER|DOUBLE|INVALID|DEADLOCK|unhandled' "$1")
  [ -n "$line" ] || line=$(tail -n 1 "$1")
  printf '%s' "${line:0:160}"
}

# run_one NAME BINARY EXPECTED_RC LABEL
run_one() {
  local name=$1 bin=$2 want=$3 label=$4 log=$2.log rc t0=$SECONDS
  timeout "$timeout_s" "$bin" >"$log" 2>&1
  rc=$?
  local dt=$((SECONDS - t0))
  if [ "$rc" -eq "$want" ]; then
    pass=$((pass + 1))
    if [ "$want" -eq 0 ]; then
      echo "model: $name: ok, nothing found (${dt}s; $(grep -c '^model: .*: ok$' "$log") suites)"
    else
      echo "model: $name: planted $label caught (${dt}s): $(report_line "$log")"
    fi
  else
    fail=$((fail + 1))
    failed+=("$name${label:+ ($label)}")
    if [ "$rc" -eq 124 ]; then
      echo "model: $name${label:+ planted $label}: FAILED, timed out after ${timeout_s}s"
    elif [ "$want" -eq 0 ]; then
      echo "model: $name: FAILED, exit $rc (${dt}s): $(report_line "$log")"
    else
      echo "model: $name: FAILED, planted $label NOT caught (exit $rc, ${dt}s)"
    fi
    tail -n 25 "$log" | sed 's/^/  | /'
  fi
}

compile() {
  local src=$1 bin=$2
  shift 2
  if ! "$cxx" "${flags[@]}" "$@" "$src" -o "$bin" >"$bin.compile.log" 2>&1; then
    echo "model: $(basename "$src"): FAILED to compile ($*)"
    sed 's/^/  | /' "$bin.compile.log" | head -n 30
    return 1
  fi
}

shopt -s nullglob
models=("$root"/tests/model/*_model.cpp)
for src in "${models[@]}"; do
  name=$(basename "$src" .cpp)
  if [ $# -gt 0 ]; then
    keep=0
    for w in "$@"; do [[ $name == *"$w"* ]] && keep=1; done
    [ "$keep" -eq 1 ] || continue
  fi
  bin=$out/$name
  if compile "$src" "$bin"; then
    run_one "$name" "$bin" 0 ""
  else
    fail=$((fail + 1)); failed+=("$name (compile)")
  fi
  planted=$(grep -m1 -E '^// planted:' "$src" | sed 's|^// planted:||')
  if [ -z "${planted// /}" ]; then
    echo "model: $name: FAILED, no '// planted:' line (each model must show it catches a bug)"
    fail=$((fail + 1)); failed+=("$name (no planted bug)")
    continue
  fi
  for bug in $planted; do
    pbin=$out/$name.$bug
    if compile "$src" "$pbin" "-DTASKPORT_PLANT_$bug"; then
      run_one "$name" "$pbin" 1 "$bug"
    else
      fail=$((fail + 1)); failed+=("$name ($bug: compile)")
    fi
  done
done

dt=$((SECONDS - t_all))
if [ "$fail" -eq 0 ]; then
  echo "models: all $pass runs as expected (${dt}s)"
else
  echo "models: $fail FAILED, $pass as expected (${dt}s): ${failed[*]}"
fi
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
