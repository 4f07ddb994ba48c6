#!/usr/bin/env python3
"""pipeline_test.py — samples/pipeline (taskport-pipeline, a parallel `grep -n` on channels)
against Python's re on generated text.

   pipeline_test.py TASKPORT_PIPELINE

Every matching line, its number and their order are checked for several patterns, with one
worker and many, batches of 1 line and of many, a window of 1 batch and of many (a window of 1
runs the pipe one batch at a time; batches of 1 line with 16 workers finish out of order, which
the writer must undo); against `grep -n -E` too; from a file and from stdin; exit statuses 0
(a match), 1 (none), 2 (bad pattern, missing file) as grep's. The deadline only fails a hung run.
"""
import os
import random
import re
import subprocess
import sys
import tempfile

TOOL = os.path.abspath(sys.argv[1])
DEADLINE = 120


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


def run(args, stdin=None):
    p = subprocess.run([TOOL] + args, input=stdin, capture_output=True, timeout=DEADLINE)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def make_text(n):
    r = random.Random(11)
    words = ["alpha", "beta", "gamma", "delta", "taskport", "channel", "x", "yz", "123", "4567", "a-b", "q.q"]
    lines = []
    for i in range(n):
        k = r.randint(0, 9)
        lines.append(" ".join(r.choice(words) for _ in range(k)))
    return lines


def expected(lines, pattern):
    rx = re.compile(pattern)
    return "".join("%d:%s\n" % (i, l) for i, l in enumerate(lines, 1) if rx.search(l)).encode()


def main():
    lines = make_text(20000)
    text = ("\n".join(lines)).encode()  # the last line without its newline
    failed = 0
    with tempfile.TemporaryDirectory(prefix="taskport-pipeline-test.") as tmp:
        path = os.path.join(tmp, "input.txt")
        with open(path, "wb") as f:
            f.write(text)
        cases = []
        for pattern in ("taskport", "^alpha.*gamma$", "[0-9]{4}", "a-b|q\\.q", "^$", ""):
            for w, b, win in ((1, 256, 64), (4, 256, 64), (16, 1, 3), (3, 7, 1), (8, 5000, 2)):
                cases.append((pattern, w, b, win))
        for pattern, w, b, win in cases:
            name = "pattern %r, --workers %d --batch %d --window %d" % (pattern, w, b, win)
            try:
                rc, out, err = run(["--workers", str(w), "--batch", str(b), "--window", str(win), pattern, path])
                want = expected(lines, pattern)
                check(err == "", "stderr %r" % err)
                check(rc == (0 if want else 1), "exit status %d" % rc)
                check(out == want, "output differs: %d bytes, expected %d; first difference at line %d" % (
                    len(out), len(want), next((i for i, (x, y) in enumerate(zip(out.splitlines(), want.splitlines()))
                                               if x != y), min(len(out.splitlines()), len(want.splitlines())))))
                print("PASS %s" % name)
            except (Failed, subprocess.TimeoutExpired) as e:
                failed += 1
                print("FAIL %s: %s" % (name, e))
        others = []

        def case_grep():
            rc, out, err = run(["[0-9]{3}", path])
            g = subprocess.run(["grep", "-n", "-E", "[0-9]{3}", path], capture_output=True, timeout=DEADLINE)
            check(rc == 0 and out == g.stdout and g.stdout, "differs from grep -n -E: %d %r" % (rc, err))
        others.append(case_grep)

        def case_stdin():
            rc, out, err = run(["-w", "8", "gamma"], stdin=text)
            check(rc == 0 and out == expected(lines, "gamma"), "stdin: %d %r" % (rc, err))
            rc, out, err = run(["gamma", "-"], stdin=b"")
            check(rc == 1 and out == b"" and err == "", "empty stdin: %d %r %r" % (rc, out, err))
        others.append(case_stdin)

        def case_errors():
            rc, out, err = run(["(", path])
            check(rc == 2 and "bad pattern '('" in err and out == b"", "bad pattern: %d %r" % (rc, err))
            rc, out, err = run(["x", os.path.join(tmp, "missing")])
            check(rc == 2 and "missing: No such file or directory" in err, "missing file: %d %r" % (rc, err))
            rc, out, err = run(["--workers", "0", "x", path])
            check(rc == 2, "--workers 0: %d" % rc)
        others.append(case_errors)

        for case in others:
            try:
                case()
                print("PASS %s" % case.__name__)
            except (Failed, subprocess.TimeoutExpired) as e:
                failed += 1
                print("FAIL %s: %s" % (case.__name__, e))
        total = len(cases) + len(others)
    print("%d of %d cases failed" % (failed, total) if failed else "all %d cases passed" % total)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
