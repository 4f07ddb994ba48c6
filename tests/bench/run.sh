#!/bin/sh
# run.sh — build and run every taskport benchmark, print one table.
#
#   tests/bench/run.sh                  # configure (if needed) and build build-bench/, run all
#   tests/bench/run.sh --no-build DIR   # run the bench_* executables already built in DIR
#                                       # (a build dir, or its tests/bench subdir)
#   BENCH_REPS=3 tests/bench/run.sh     # fewer repetitions (a quick look; noisier)
#   BENCH_ONLY="fib submit" ...         # a subset
#
# Each benchmark runs taskport and its peer in one process and prints markdown rows:
#   | benchmark | taskport | peer | ratio | goal | verdict |
# ratio = taskport / peer (below 1: taskport is faster or smaller); figures are medians.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=1
dir=""
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) build=0 ;;
        *) dir="$1" ;;
    esac
    shift
done
[ -n "$dir" ] || dir="$root/build-bench"

if [ "$build" = 1 ]; then
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$root" --buildtype=release -Dbenchmarks=enabled >/dev/null
    fi
    ninja -C "$dir" >/dev/null
fi
bindir="$dir"
[ -x "$bindir/bench_fib" ] || bindir="$dir/tests/bench"
if [ ! -x "$bindir/bench_fib" ]; then
    echo "run.sh: no benchmarks in $dir (need oneTBB and Boost)" >&2
    exit 1
fi

# Ours in a fixed order, then any other bench_* built beside them.
order="fib submit skynet reduce pingpong memory idle injector alloc"
for f in "$bindir"/bench_*; do
    [ -x "$f" ] && [ -f "$f" ] || continue
    n=${f##*/bench_}
    case " $order " in *" $n "*) ;; *) order="$order $n" ;; esac
done
[ -n "${BENCH_ONLY:-}" ] && order="$BENCH_ONLY"

cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || echo unknown)
echo "taskport benchmarks — $(nproc) CPU(s): $cpu; $(uname -sr); $(c++ --version | head -1)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); repetitions: ${BENCH_REPS:-default}; figures are medians"
echo
echo "| benchmark | taskport | peer | ratio (taskport/peer) | goal | verdict |"
echo "| --- | --- | --- | --- | --- | --- |"
status=0
for n in $order; do
    exe="$bindir/bench_$n"
    if [ ! -x "$exe" ]; then
        echo "run.sh: bench_$n not built" >&2
        status=1
        continue
    fi
    # Rows only (lines starting with '|'); the spread comments stay in the rows' tails.
    if ! "$exe" | grep '^|'; then
        echo "run.sh: bench_$n failed" >&2
        status=1
    fi
done
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $status
