#!/usr/bin/env python3
"""hash_bench.py — taskport-hash against `find | xargs -P$(nproc) sha256sum` on one generated tree.

   hash_bench.py TASKPORT_HASH [--small 10000] [--large 4] [--large-mib 256] [--reps 5] [--keep DIR]

The tree: SMALL files of 0..16 KiB in 100 folders, and LARGE files of LARGE_MIB MiB, random
bytes, under $TMPDIR (removed afterwards unless --keep). Both sides run once untimed (so the
page cache is warm for both: this measures hashing and per-file overhead, not the disk), then
REPS times each, alternating. Printed per side: median wall time and median CPU time (user +
system of the process and its children); the machine's load moves wall time much more than CPU
time. ratio = taskport / peer (below 1: taskport is faster). Every run's output is checked:
taskport-hash's must equal the peer's lines sorted by path, byte for byte.

Peers: the command of the issue, `find T -type f -print0 | xargs -0 -P$(nproc) sha256sum`, and
the same with -n 256 (xargs otherwise packs ~10,000 paths into very few sha256sum processes, so
-P barely parallelises; -n 256 is the fairer peer on a tree of small files), and issue 11's
`xargs -0 -P2 -n64 sha256sum`. Every round's figures go to stderr (with the load average).
"""
import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def make_tree(top, small, large, large_mib):
    r = random.Random(11)
    for i in range(small):
        d = os.path.join(top, "d%03d" % (i % 100))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "f%05d.bin" % i), "wb") as f:
            f.write(r.randbytes(r.randint(0, 16384)))
    os.makedirs(os.path.join(top, "large"), exist_ok=True)
    for i in range(large):
        with open(os.path.join(top, "large", "large%d.bin" % i), "wb") as f:
            for _ in range(large_mib):
                f.write(os.urandom(1 << 20))


def timed(cmd, shell=False):
    """(wall s, CPU s of the children, stdout bytes)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, shell=shell, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, LC_ALL="C"))
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit("hash_bench: %s failed (%d): %s" % (cmd, p.returncode, p.stderr.decode(errors="replace")))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, p.stdout


def by_path(out):
    lines = out.split(b"\n")[:-1]
    return b"".join(l + b"\n" for l in sorted(lines, key=lambda l: l[66:]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tool")
    ap.add_argument("--small", type=int, default=10000)
    ap.add_argument("--large", type=int, default=4)
    ap.add_argument("--large-mib", type=int, default=256)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--keep", help="generate the tree here and leave it")
    a = ap.parse_args()

    top = a.keep or tempfile.mkdtemp(prefix="taskport-hash-bench.")
    tree = os.path.join(top, "t")
    try:
        if not os.path.isdir(tree):
            t0 = time.perf_counter()
            make_tree(tree, a.small, a.large, a.large_mib)
            print("tree: %d small files (0-16 KiB) + %d x %d MiB, generated in %.1f s" %
                  (a.small, a.large, a.large_mib, time.perf_counter() - t0), file=sys.stderr)
        nproc = os.cpu_count() or 1
        sides = [
            ("taskport-hash", [os.path.abspath(a.tool), "--no-progress", tree], False),
            ("find -print0 \\| xargs -0 -P%d sha256sum" % nproc,
             "find %s -type f -print0 | xargs -0 -P%d sha256sum" % (tree, nproc), True),
            ("find -print0 \\| xargs -0 -P%d -n 256 sha256sum" % nproc,
             "find %s -type f -print0 | xargs -0 -P%d -n 256 sha256sum" % (tree, nproc), True),
            # issue 11's peer, as written there
            ("find -print0 \\| xargs -0 -P2 -n64 sha256sum",
             "find %s -type f -print0 | xargs -0 -P2 -n64 sha256sum" % tree, True),
        ]
        results = {name: ([], []) for name, _, _ in sides}
        reference = None
        for rep in range(a.reps + 1):  # rep 0: warm-up, not counted
            for name, cmd, shell in sides:
                wall, cpu, out = timed(cmd, shell)
                out = out if name == "taskport-hash" else by_path(out)
                if reference is None:
                    reference = out
                elif out != reference:
                    sys.exit("hash_bench: %s's output differs from the first run's" % name)
                if rep > 0:
                    results[name][0].append(wall)
                    results[name][1].append(cpu)
                    print("round %d: %s: wall %.3f s, CPU %.3f s (load average %.1f)" %
                          (rep, name, wall, cpu, os.getloadavg()[0]), file=sys.stderr)
        files = reference.count(b"\n")
        total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(tree) for f in fs)
        print("hash: %d files, %.2f GiB, warm page cache, %d CPUs, median of %d runs each (load average %.1f)" %
              (files, total / 2**30, nproc, a.reps, os.getloadavg()[0]))
        print("output identical to sha256sum's (sorted by path): yes")
        print("| benchmark | taskport | peer | ratio | goal | verdict |")
        print("| --- | --- | --- | --- | --- | --- |")
        tw, tc = (statistics.median(x) for x in results["taskport-hash"])
        for name, _, _ in sides[1:]:
            pw, pc = (statistics.median(x) for x in results[name])
            for what, t, p in (("wall s", tw, pw), ("CPU s", tc, pc)):
                ratio = t / p
                print("| hash tree vs %s, %s | %.3f | %.3f | %.3f | < 1 | %s |" %
                      (name, what, t, p, ratio, "faster" if ratio < 1 else "SLOWER"))
    finally:
        if not a.keep:
            shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
