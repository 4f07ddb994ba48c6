#!/bin/sh
# Builds tokio_echo OFFLINE from Debian's packages: cargo and librust-tokio-dev, installed here
# through .ci/deps.sh when missing (not in its default list: only this benchmark needs them). Debian's cargo (/usr/bin/cargo, not a rustup toolchain) with crates.io replaced
# by the packaged crates in /usr/share/cargo/registry, net.offline = true.
#   build.sh [TARGET_DIR]   (default: /tmp/tokio_echo-target); prints the binary's path.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/../../../../.ci/deps.sh" cargo librust-tokio-dev >&2
target=${1:-/tmp/tokio_echo-target}
home=$target/cargo-home
mkdir -p "$home"
cat > "$home/config.toml" <<CFG
[source.crates-io]
replace-with = "debian"
[source.debian]
directory = "/usr/share/cargo/registry"
[net]
offline = true
CFG
CARGO_HOME=$home /usr/bin/cargo build --release --offline --quiet \
    --manifest-path "$here/Cargo.toml" --target-dir "$target" >&2
echo "$target/release/tokio_echo"
