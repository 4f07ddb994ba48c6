#!/usr/bin/env python3
"""wordfreq_test.py — wordfreq's word rules on a known text, and its command line.

   wordfreq_test.py WORDFREQ

Writes a file whose words are known, runs wordfreq on it with --top large enough to print every
word, and compares the counts it prints with the expected ones, word by word.
"""
import os
import re
import subprocess
import sys
import tempfile

TOOL = os.path.abspath(sys.argv[1])
DEADLINE = 120  # seconds: a hung run only

TEXT = """Don't stop: it's 10 o'clock, and the self-contained test isn't 'quoted'.
DON'T -- well-known -dash trailing- 2026 utf8 naïve NAÏVE don\u2019t \u2018single\u2019 it's \u201cdouble\u201d \u00abguillemets\u00bb em\u2014dash
"""
WANT = {"don't": 3, "it's": 2, "stop": 1, "o'clock": 1, "and": 1, "the": 1, "self-contained": 1,
        "test": 1, "isn't": 1, "quoted": 1, "well-known": 1, "dash": 2, "trailing": 1, "utf8": 1,
        "naïve": 1, "naÏve": 1, "single": 1, "double": 1,
        "guillemets": 1, "em": 1}


def main():
    failures = []
    with tempfile.TemporaryDirectory(prefix="wordfreq-test.") as tmp:
        path = os.path.join(tmp, "words.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write(TEXT)
        p = subprocess.run([TOOL, "--top", "100", path], capture_output=True, timeout=DEADLINE)
        out = p.stdout.decode("utf-8")
        if p.returncode != 0:
            failures.append("exit status %d: %r" % (p.returncode, p.stderr))
        got = {}
        for line in out.splitlines()[1:]:
            m = re.fullmatch(r"\s*(\d+)  (.+)", line)
            if m:
                got[m.group(2)] = int(m.group(1))
        if got != WANT:
            for w in sorted(set(got) | set(WANT)):
                if got.get(w) != WANT.get(w):
                    failures.append("%r: want %s, got %s" % (w, WANT.get(w), got.get(w)))
        first = out.splitlines()[0] if out else ""
        if not first.startswith("1 files, %d words, %d distinct" % (sum(WANT.values()), len(WANT))):
            failures.append("summary line: %r" % first)
        for args, why in ((["--top", "x"], "--top"), (["--scheduler", "nope"], "--scheduler"), (["--bogus"], "bogus")):
            p = subprocess.run([TOOL] + args + [path], capture_output=True, timeout=DEADLINE)
            if p.returncode != 2 or why not in p.stderr.decode():
                failures.append("%s: exit %d, %r" % (args, p.returncode, p.stderr))
    for f in failures:
        print("FAIL " + f)
    print("%d failures" % len(failures) if failures else "all wordfreq checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
