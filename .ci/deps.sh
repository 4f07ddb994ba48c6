#!/usr/bin/env bash
# .ci/deps.sh — installs the Debian 12 packages taskport needs to build, test, benchmark and
# run its samples. Does nothing when they are all present; otherwise apt-get update + install
# (as root, or through sudo). Extra package names given as arguments are installed too.
#
#   bash .ci/deps.sh            # everything the README's commands and .ci/run need
set -euo pipefail

packages=(
  meson ninja-build pkg-config g++      # build (g++ 12 brings libasan/libubsan/libtsan)
  libboost-dev                          # Boost.Lockfree (header-only)
  libtbb-dev                            # oneTBB: task memory, tbb_arena scheduler, bench peer
  liburing-dev                          # io_uring backend (optional at build time)
  catch2                                # tests (v2, catch2/catch.hpp)
  libbenchmark-dev                      # benchmarks (tests/bench)
  cmake                                 # the CMake consumer check (tests/cmake_consumer)
  libssl-dev                            # taskport-hash: OpenSSL's EVP SHA-256 (optional at build time)
  libcli11-dev                          # taskport-hash, taskport-fetch: command lines (optional)
  libhttp-parser-dev                    # taskport-fetch: HTTP/1.1 responses (optional)
  relacy-dev                           # Relacy race detector: the models in tests/model (headers)
  openssl                               # io TLS tests and taskport-fetch https tests: s_server peer, test certificates
  nginx curl                            # bench-fetch(-https): the server and the peer (tests/bench/fetch_bench.py)
  "$@"
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  sudo=(env DEBIAN_FRONTEND=noninteractive)
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo env DEBIAN_FRONTEND=noninteractive)
else
  echo "deps: missing packages and not root (and no sudo): ${missing[*]}" >&2
  exit 1
fi
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
