#!/usr/bin/env bash
# tests/cmake_consumer/check.sh [WORKDIR] — `meson install`s this checkout into temporary
# prefixes, once as a shared and once as a static library, and builds and runs consumers
# against each: this CMake project (find_package(taskport) -> taskport::taskport) and the
# same program compiled with `pkg-config --cflags --libs taskport`. The shared install is moved
# before the CMake build, to show the CMake package does not depend on where it was installed.
# Leaves everything under WORKDIR (default: a new temporary folder).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${1:-$(mktemp -d -t taskport-install.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
cxx=${CXX:-c++}

# run_tools PREFIX: the installed tools start and print their version, found through their
# run path alone (the loader would say "cannot open shared object file" otherwise).
run_tools() {
  local tool found=0
  for tool in taskport-hash taskport-fetch; do
    [ -x "$1/bin/$tool" ] || continue
    found=$((found + 1))
    echo "== installed $tool --version (prefix $1)"
    env -u LD_LIBRARY_PATH "$1/bin/$tool" --version
  done
  [ "$found" -gt 0 ] || { echo "no installed tool under $1/bin" >&2; exit 1; }
}

for kind in shared static; do
  echo "== install ($kind)"
  build="$work/taskport-$kind"
  prefix="$work/prefix-$kind"
  rm -rf "$build" "$prefix" "$prefix-moved" "$work/cmake-$kind"
  # The shared install also builds and installs the tools (taskport-hash, taskport-fetch), to
  # check that they run from the prefix with no LD_LIBRARY_PATH and no ldconfig.
  samples=disabled
  [ "$kind" = shared ] && samples=enabled
  meson setup "$build" "$root" --prefix "$prefix" -Ddefault_library="$kind" \
    -Dtests=disabled -Dsamples="$samples" -Dbenchmarks=disabled >"$work/setup-$kind.log" \
    || { cat "$work/setup-$kind.log"; exit 1; }
  meson compile -C "$build"
  meson install -C "$build" --quiet

  for f in include/taskport/taskport.hpp include/taskport/sched/executor.hpp; do
    [ -f "$prefix/$f" ] || { echo "missing after install: $f" >&2; exit 1; }
  done
  pc=$(find "$prefix" -name taskport.pc)
  config=$(find "$prefix" -name taskportConfig.cmake)
  [ -n "$pc" ] && [ -n "$config" ] || { echo "missing after install: taskport.pc or taskportConfig.cmake" >&2; exit 1; }

  echo "== pkg-config consumer ($kind)"
  pcdir=$(dirname "$pc")
  libdir=$(dirname "$pcdir")
  static=()
  [ "$kind" = static ] && static=(--static)
  flags=$(PKG_CONFIG_PATH="$pcdir" pkg-config "${static[@]}" --cflags --libs taskport)
  # shellcheck disable=SC2086  # flags are words
  "$cxx" -std=c++20 -O2 "$here/main.cpp" -o "$work/pkgconfig-$kind" $flags -Wl,-rpath,"$libdir"
  "$work/pkgconfig-$kind"

  if [ "$kind" = shared ]; then
    run_tools "$prefix"
    mv "$prefix" "$prefix-moved"
    prefix="$prefix-moved"
    run_tools "$prefix"
  fi

  echo "== CMake consumer ($kind)"
  cmake -S "$here" -B "$work/cmake-$kind" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_BUILD_TYPE=Release >"$work/cmake-$kind.log" || { cat "$work/cmake-$kind.log"; exit 1; }
  cmake --build "$work/cmake-$kind"
  "$work/cmake-$kind/consumer"

done
echo "install consumers: CMake and pkg-config, shared and static: ok"
