#!/usr/bin/env bash
# tests/fuzz/run.sh — builds the libFuzzer targets with clang++-14 (outside meson) and runs each
# for a bounded time over its seed corpus; exits non-zero if any target found a crash or a
# broken property (an abort in the target), or did not build.
#
#   tests/fuzz/run.sh [TARGET...]          all targets (or the ones named), 30 s each
#
# Environment:
#   FUZZ_TIME=SECONDS   time per target (default 30: libFuzzer's -max_total_time)
#   FUZZ_BUILD=DIR      build into DIR and keep it (default: a temporary folder, removed)
#   FUZZ_BUILD_ONLY=1   build, run each target once over its corpus (a regression check), stop
#   CXX=...             the compiler (default clang++-14; it needs libclang-rt-14-dev)
#
# Targets (one *_fuzz.cpp each, properties listed at the top of each file):
#   endpoint        io::endpoint::parse                        (io/src/endpoint.cpp)
#   fetch_url       taskport-fetch's URLs and redirect targets (samples/fetch/http.cpp)
#   fetch_response  taskport-fetch's HTTP responses            (samples/fetch/http.cpp, http-parser)
#   hash_list       taskport-hash's -c lists and sum lines     (samples/hash/checksum_list.cpp)
#
# The seed corpus of TARGET is tests/fuzz/corpus/TARGET/ (read only here: new inputs go to a
# temporary folder), its dictionary tests/fuzz/TARGET.dict if there is one. A finding is saved
# as crash-*/timeout-*/oom-* in the work folder, whose path is printed; reproduce it with
#   FUZZ_BUILD=/tmp/fz tests/fuzz/run.sh TARGET; /tmp/fz/TARGET_fuzz FILE
# and turn it into a seed (tests/fuzz/corpus/TARGET/) and a regression test.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cxx=${CXX:-clang++-14}
time_s=${FUZZ_TIME:-30}
all_targets=(endpoint fetch_url fetch_response hash_list)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

if ! command -v "$cxx" >/dev/null; then
  echo "fuzz: $cxx not found (install clang-14 and libclang-rt-14-dev)" >&2
  exit 1
fi

if [ -n "${FUZZ_BUILD:-}" ]; then
  work=$FUZZ_BUILD
  mkdir -p "$work"
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/taskport-fuzz.XXXXXX")
  trap 'rm -rf "$work"' EXIT
fi

# -O1 -g: fast enough to fuzz, reports with file and line; every sanitizer report is fatal.
cxxflags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
          -fno-omit-frame-pointer -Wall -Wextra -I"$here")

# sources_of TARGET: the sources and libraries a target is built from.
sources_of() {
  case $1 in
    endpoint) echo "$here/endpoint_fuzz.cpp $root/io/src/endpoint.cpp -I$root/io/include -I$root/io/src" ;;
    fetch_url) echo "$here/fetch_url_fuzz.cpp $root/samples/fetch/http.cpp -I$root/samples/fetch -lhttp_parser" ;;
    fetch_response) echo "$here/fetch_response_fuzz.cpp $root/samples/fetch/http.cpp -I$root/samples/fetch -lhttp_parser" ;;
    hash_list) echo "$here/hash_list_fuzz.cpp $root/samples/hash/checksum_list.cpp -I$root/samples/hash" ;;
    *) return 1 ;;
  esac
}

# Sanitizer settings when the caller (.ci/run) has none: stop at the first report.
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}

failed=()
for t in "${targets[@]}"; do
  if ! src=$(sources_of "$t"); then
    echo "fuzz: unknown target '$t' (known: ${all_targets[*]})" >&2
    failed+=("$t")
    continue
  fi
  bin=$work/${t}_fuzz
  echo "fuzz: building $t"
  # shellcheck disable=SC2086  # src is a list of words
  if ! "$cxx" "${cxxflags[@]}" $src -o "$bin"; then
    failed+=("$t (build)")
    continue
  fi
  seeds=$here/corpus/$t
  new=$work/$t.corpus
  mkdir -p "$new" "$seeds"
  args=(-max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/$t-")
  [ -f "$here/$t.dict" ] && args+=(-dict="$here/$t.dict")
  if [ "${FUZZ_BUILD_ONLY:-0}" = 1 ]; then
    echo "fuzz: $t over its $(ls "$seeds" | wc -l) seeds"
    rc=0
    "$bin" "${args[@]}" -runs=0 "$seeds" >"$work/$t.log" 2>&1 || rc=$?
  else
    echo "fuzz: running $t for ${time_s}s over $(ls "$seeds" | wc -l) seeds"
    rc=0
    "$bin" "${args[@]}" -max_total_time="$time_s" "$new" "$seeds" >"$work/$t.log" 2>&1 || rc=$?
  fi
  grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$work/$t.log" | sed "s/^/fuzz: $t: /" || true
  if [ "$rc" -ne 0 ]; then
    echo "fuzz: $t FAILED (exit $rc); the end of its log ($work/$t.log):"
    tail -n 40 "$work/$t.log" | sed 's/^/  | /'
    ls "$work"/"$t"-* 2>/dev/null | sed 's/^/fuzz: finding: /' || true
    failed+=("$t")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}"
  [ -n "${FUZZ_BUILD:-}" ] || trap - EXIT  # keep the findings
  [ -n "${FUZZ_BUILD:-}" ] || echo "fuzz: findings kept in $work"
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran clean"
