#!/usr/bin/env bash
# tests/subproject_consumer/check.sh [WORKDIR] — builds this consumer with taskport as a Meson
# subproject (subprojects/taskport -> this checkout), runs it, and checks that taskport's
# tests, samples and benchmarks were not configured. Leaves everything under WORKDIR
# (default: a new temporary folder).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${1:-$(mktemp -d -t taskport-subproject.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)

src="$work/src"
rm -rf "$src" "$work/build"
mkdir -p "$src/subprojects"
cp "$here/meson.build" "$here/main.cpp" "$src/"
ln -s "$root" "$src/subprojects/taskport"

# --force-fallback-for: use the subproject even where a taskport is installed system-wide.
meson setup "$work/build" "$src" --force-fallback-for=taskport
meson test -C "$work/build" --print-errorlogs

python3 - "$work/build" <<'PY'
import json, subprocess, sys
build = sys.argv[1]
intro = lambda what: json.loads(subprocess.check_output(["meson", "introspect", build, what]))
tests = [t["name"] for t in intro("--tests")]
targets = [t["name"] for t in intro("--targets") if t.get("subproject") == "taskport"]
bad = [t for t in targets if t != "taskport"]
if tests != ["consumer"] or targets != ["taskport"] or bad:
    sys.exit(f"subproject consumer: expected only the consumer's test and taskport's library; "
             f"tests={tests} taskport targets={targets}")
types = {t["name"]: t["type"] for t in intro("--targets") if t.get("subproject") == "taskport"}
if types.get("taskport") != "static library":
    sys.exit(f"subproject consumer: taskport should be a static library, is {types}")
print("subproject consumer: taskport built as a static library; its tests/samples/benchmarks off")
PY
