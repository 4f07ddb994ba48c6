#!/usr/bin/env python3
"""hash_test.py — taskport-hash against coreutils' sha256sum on generated trees.

   hash_test.py TASKPORT_HASH

Cases: the output equals `find -L ... -type f | LC_ALL=C sort | xargs sha256sum` byte for byte
(names with spaces, backslashes, newlines, CRs; empty files; files around the chunk size, read
with small chunks and a small memory budget), and `sha256sum -c` accepts it; -c agrees with
`sha256sum -c` line for line on OK and FAILED lists; every error case (missing path, dangling
link, symlink loops, FIFO, socket, unreadable file and folder, files deleted while it runs) is
reported on stderr with the path and the system's message, the rest still hashed, exit status 1.
The deadline on each run only fails a hung run; nothing here depends on timing.
"""
import hashlib
import os
import queue
import random
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading

TOOL = os.path.abspath(sys.argv[1])
DEADLINE = 300
ENV = dict(os.environ, LC_ALL="C")


def under_tsan():
    """True for a ThreadSanitizer build. There a signal's handler runs only once the thread the
    kernel gave it to next enters a call TSan intercepts; taskport's threads sleep in raw system
    calls TSan does not see (the parker's futex, io_uring_enter), which the signal interrupts and
    they re-enter, so the handler never runs. Seen: case_interrupt hung under TSan with the
    io_uring backend (a thread in io_uring_enter) and with epoll (all threads in futex waits,
    no signal pending: TSan had taken it). tests/test_io_signal.cpp works round it with raise()
    on the waiting thread, which a test of a separate process cannot do: the Ctrl-C cases are
    skipped there (they run plain and under ASan)."""
    ldd = subprocess.run(["ldd", TOOL], capture_output=True, timeout=60).stdout
    return b"libtsan" in ldd


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


def run(args, cwd=None, stdin=None, without_dac_caps=False, progress=False, timeout=DEADLINE):
    cmd = [TOOL, "--progress" if progress else "--no-progress"] + args
    if without_dac_caps:
        # Root without the capabilities that let it read anything: file permissions then apply
        # to it. (Not another user: that one could not reach the tool itself in a build tree
        # under a folder only root may enter, such as one made by mktemp -d.)
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] + cmd
    p = subprocess.run(cmd, cwd=cwd, input=stdin, capture_output=True, timeout=timeout, env=ENV)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def reference(root, cwd):
    """sha256sum's lines for every file `find -L` finds, in byte order of the path."""
    found = subprocess.run(["find", "-L", root, "-type", "f", "-print0"], cwd=cwd, capture_output=True,
                           env=ENV, timeout=DEADLINE).stdout
    paths = sorted(p for p in found.split(b"\0") if p)
    if not paths:
        return b""
    return subprocess.run(["xargs", "-0", "sha256sum", "--"], cwd=cwd, input=b"\0".join(paths),
                          capture_output=True, env=ENV, timeout=DEADLINE, check=True).stdout


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def make_tree(top):
    r = random.Random(7)
    names = ["plain.txt", "with space", "back\\slash", "new\nline", "carriage\rreturn", "-dash",
             "ünïcödé", "both\\and\nnewline"]
    for i, n in enumerate(names):
        write(os.path.join(top, "names", n), b"name %d\n" % i)
    for n in (0, 1, 4095, 4096, 4097, 8191, 8192, 8193, 65536, 300001):
        write(os.path.join(top, "sizes", "s%d" % n), r.randbytes(n))
    for d in range(6):
        for f in range(25):
            write(os.path.join(top, "deep", "a%d" % d, "b%d" % (d % 2), "f%02d" % f), r.randbytes(r.randint(0, 3000)))
    os.symlink("../sizes/s4097", os.path.join(top, "names", "link-to-file"))
    os.symlink("../deep/a1", os.path.join(top, "names", "link-to-dir"))  # not a loop: walked twice


def case_matches_sha256sum(tmp):
    """Same bytes as sha256sum, whatever the jobs, chunk size and memory budget; -c accepts it."""
    make_tree(os.path.join(tmp, "t"))
    want = reference("t", tmp)
    check(want.count(b"\n") > 150, "reference too small")
    for extra in ([], ["-j", "1"], ["-j", "3", "--chunk-size", "4096", "--max-memory", "16K"],
                  ["--chunk-size", "8192", "--max-memory", "4K"]):
        rc, out, err = run(extra + ["t"], cwd=tmp)
        check(rc == 0 and err == "", "%s: exit %d, stderr %r" % (extra, rc, err))
        check(out == want, "%s: output differs from sha256sum's:\n%s" % (extra, diff(want, out)))
    sums = os.path.join(tmp, "sums")
    with open(sums, "wb") as f:
        f.write(want)
    p = subprocess.run(["sha256sum", "-c", "--quiet", sums], cwd=tmp, capture_output=True, env=ENV, timeout=DEADLINE)
    check(p.returncode == 0, "sha256sum -c rejects the output: %r" % p.stdout)
    # A file named on the command line, and a folder given with a trailing slash: one sorted list.
    rc, out, err = run(["t/sizes/s1", "t/deep/"], cwd=tmp)
    want = reference("t/deep/", tmp) + reference("t/sizes/s1", tmp)  # "t/deep/..." < "t/sizes/s1"
    check(rc == 0 and out == want, "named file + folder/:\n%s" % diff(want, out))


def diff(a, b):
    al, bl = a.splitlines(), b.splitlines()
    for i, (x, y) in enumerate(zip(al, bl)):
        if x != y:
            return "line %d: want %r, got %r" % (i + 1, x, y)
    return "lengths: want %d lines, got %d" % (len(al), len(bl))


def case_check_mode(tmp):
    """-c: OK, FAILED and FAILED open or read lines as sha256sum -c prints them; the warnings."""
    make_tree(os.path.join(tmp, "t"))
    list_path = os.path.join(tmp, "list")
    with open(list_path, "wb") as f:
        f.write(reference("t", tmp))
    # All OK, from a file and from stdin.
    rc, out, err = run(["-c", "list"], cwd=tmp)
    ref = subprocess.run(["sha256sum", "-c", "list"], cwd=tmp, capture_output=True, env=ENV, timeout=DEADLINE)
    check(rc == 0 and ref.returncode == 0, "all-OK list: exit %d" % rc)
    check(out == ref.stdout, "OK lines differ:\n%s" % diff(ref.stdout, out))
    with open(list_path, "rb") as f:
        rc, out2, _ = run(["-c", "-"], cwd=tmp, stdin=f.read())
    check(rc == 0 and out2 == out, "-c - (stdin)")
    # Break it: change a file, remove one (and one whose name needs escaping), a folder where
    # a file was, a malformed line, a comment.
    write(os.path.join(tmp, "t", "sizes", "s1"), b"changed")
    os.remove(os.path.join(tmp, "t", "sizes", "s0"))
    os.remove(os.path.join(tmp, "t", "names", "new\nline"))
    shutil.rmtree(os.path.join(tmp, "t", "deep", "a5"))
    os.makedirs(os.path.join(tmp, "t", "deep", "a5", "b1", "f00"))
    with open(list_path, "ab") as f:
        f.write(b"this line is not a checksum line\n# a comment\n\n")
    ref = subprocess.run(["sha256sum", "-c", "list"], cwd=tmp, capture_output=True, env=ENV, timeout=DEADLINE)
    rc, out, err = run(["-c", "list"], cwd=tmp)
    check(ref.returncode == 1 and rc == 1, "broken list: exit %d (sha256sum: %d)" % (rc, ref.returncode))
    check(out == ref.stdout, "-c lines differ from sha256sum -c's:\n%s" % diff(ref.stdout, out))
    check(b": FAILED\n" in out and b": FAILED open or read\n" in out, "no FAILED lines: %r" % out)
    ref_warnings = [l.replace("sha256sum:", "taskport-hash:", 1) for l in ref.stderr.decode().splitlines() if "WARNING" in l]
    check(len(ref_warnings) == 3 and [l for l in err.splitlines() if "WARNING" in l] == ref_warnings,
          "warnings differ from sha256sum's %r: %r" % (ref_warnings, err))
    for w in ("t/sizes/s0: No such file or directory", "t/deep/a5/b1/f00: Is a directory"):
        check("taskport-hash: " + w in err, "stderr lacks %r: %r" % (w, err))
    # --quiet drops the OK lines only.
    rc, outq, _ = run(["-c", "--quiet", "list"], cwd=tmp)
    lines = [l + b"\n" for l in out.split(b"\n")[:-1]]  # not splitlines(): a name holds a CR
    check(rc == 1 and outq == b"".join(l for l in lines if not l.endswith(b": OK\n")), "--quiet")
    # Nothing usable in a list.
    write(os.path.join(tmp, "bad"), b"nothing\nuseful\n")
    rc, out, err = run(["-c", "bad"], cwd=tmp)
    check(rc == 1 and "bad: no properly formatted checksum lines found" in err, "bad list: %d %r" % (rc, err))
    # Tagged (BSD) lines and binary-mode markers are read too.
    data = b"tagged\n"
    write(os.path.join(tmp, "tg"), data)
    h = hashlib.sha256(data).hexdigest()
    write(os.path.join(tmp, "tags"), ("SHA256 (tg) = %s\n%s *tg\n" % (h, h.upper())).encode())
    rc, out, err = run(["-c", "tags"], cwd=tmp)
    check(rc == 0 and out == b"tg: OK\ntg: OK\n", "tagged / binary lines: %d %r %r" % (rc, out, err))


def can_drop_privileges():
    return os.geteuid() != 0 or shutil.which("setpriv") is not None


def case_errors(tmp):
    """Each problem reported with its path and the system's message; the rest hashed; exit 1."""
    t = os.path.join(tmp, "t")
    good = {"t/a": b"a\n", "t/sub/b": b"b\n", "t/sub/deeper/c": b"c\n"}
    for p, d in good.items():
        write(os.path.join(tmp, p), d)
    os.symlink("nowhere", os.path.join(t, "dangling"))
    os.symlink("../..", os.path.join(t, "sub", "deeper", "up"))  # leads back to t
    os.symlink("self", os.path.join(t, "self"))                   # ELOOP from the system
    os.mkfifo(os.path.join(t, "fifo"))
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(os.path.join(t, "sock"))
    write(os.path.join(t, "secret"), b"s\n")
    os.chmod(os.path.join(t, "secret"), 0)
    write(os.path.join(t, "closed", "inside"), b"i\n")
    os.chmod(os.path.join(t, "closed"), 0)
    root = os.geteuid() == 0  # root reads anything: run the tool without that power
    rc, out, err = run(["t", "missing"], cwd=tmp, without_dac_caps=root)
    sock.close()
    os.chmod(os.path.join(t, "closed"), 0o755)
    want = b"".join(b"%s  %s\n" % (hashlib.sha256(d).hexdigest().encode(), p.encode()) for p, d in sorted(good.items()))
    check(out == want, "the good files: want %r, got %r" % (want, out))
    check(rc == 1, "exit status %d" % rc)
    for line in ("t/dangling: No such file or directory (dangling symbolic link)",
                 "t/sub/deeper/up: Too many levels of symbolic links (leads back to t)",
                 "t/self: Too many levels of symbolic links",
                 "t/fifo: not a regular file (a FIFO)",
                 "t/sock: not a regular file (a socket)",
                 "t/secret: Permission denied",
                 "t/closed: Permission denied",
                 "missing: No such file or directory"):
        check("taskport-hash: " + line in err, "stderr lacks %r:\n%s" % (line, err))
    check(len(err.splitlines()) == 8, "unexpected stderr lines:\n%s" % err)


def case_check_fifo(tmp):
    """-c with a listed file that is now a FIFO with no writer (a file replaced by one after the
    list was made): the open does not wait for a writer (the tool used to hang for ever, every
    pool thread blocked in open); the FIFO is reported, the rest checked, exit status 1."""
    write(os.path.join(tmp, "t", "a"), b"a\n")
    os.mkfifo(os.path.join(tmp, "t", "fifo"))
    lst = b"%s  t/a\n%s  t/fifo\n" % (hashlib.sha256(b"a\n").hexdigest().encode(),
                                      hashlib.sha256(b"").hexdigest().encode())
    rc, out, err = run(["-c", "-"], cwd=tmp, stdin=lst, timeout=60)  # a hang fails at 60 s
    check(rc == 1, "exit status %d" % rc)
    check(out == b"t/a: OK\nt/fifo: FAILED open or read\n", "stdout %r" % out)
    check("taskport-hash: t/fifo: Illegal seek" in err, "stderr lacks the FIFO's report:\n%s" % err)


def case_files_vanish(tmp):
    """Files and folders deleted while it walks and hashes. Which ones vanish before it sees them
    depends on timing; what must hold does not: every line printed is a correct hash of a file
    that existed, every error is 'No such file or directory' for a deleted path, and the exit
    status is 1 exactly when something was reported."""
    t = os.path.join(tmp, "t")
    r = random.Random(3)
    contents = {}
    for d in range(40):
        for f in range(50):
            p = "t/d%02d/f%02d" % (d, f)
            contents[p] = r.randbytes(r.randint(0, 20000))
            write(os.path.join(tmp, p), contents[p])
    doomed = sorted(contents)
    r.shuffle(doomed)
    doomed = doomed[:600]
    doomed_dirs = ["t/d%02d" % d for d in range(0, 40, 7)]
    started = threading.Event()

    def deleter():
        started.wait()
        for i, p in enumerate(doomed):
            try:
                os.remove(os.path.join(tmp, p))
            except FileNotFoundError:
                pass
            if i % 100 == 0 and doomed_dirs:
                shutil.rmtree(os.path.join(tmp, doomed_dirs.pop()), ignore_errors=True)

    th = threading.Thread(target=deleter)
    th.start()
    proc = subprocess.Popen([TOOL, "--no-progress", "-j", "2", "t"], cwd=tmp, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV)
    started.set()
    out, err = proc.communicate(timeout=DEADLINE)
    th.join()
    err = err.decode()
    deleted_dirs = ["t/d%02d" % d for d in range(0, 40, 7)]
    for line in out.decode().splitlines():
        h, p = line.split("  ", 1)
        check(p in contents and hashlib.sha256(contents[p]).hexdigest() == h, "wrong line %r" % line)
    for line in err.splitlines():
        check(line.startswith("taskport-hash: ") and line.endswith(": No such file or directory"),
              "unexpected error line %r" % line)
        p = line[len("taskport-hash: "):-len(": No such file or directory")]
        check(p in doomed or any(p == d or p.startswith(d + "/") for d in deleted_dirs), "%r was not deleted" % p)
    check((proc.returncode == 1) == bool(err) and proc.returncode in (0, 1), "exit status %d" % proc.returncode)
    return "%d of %d files hashed, %d vanished ones reported" % (out.count(b"\n"), len(contents), len(err.splitlines()))


def case_progress(tmp):
    """--progress draws the bar on stderr (as on a terminal) and erases it; stdout is unchanged."""
    make_tree(os.path.join(tmp, "t"))
    rc, out, err = run(["-j", "2", "--chunk-size", "4096", "t"], cwd=tmp, progress=True)
    check(rc == 0 and out == reference("t", tmp), "output with --progress: %d" % rc)
    frames = re.findall(r"\r\[[#.]{24}\] \d+/\d+ files [^\r]*\x1b\[K", err)
    check(frames, "no progress frame in %r" % err[:300])
    rest = re.sub(r"\r\[[#.]{24}\] \d+/\d+ files [^\r]*\x1b\[K", "", err)
    check(rest == "\r\x1b[K", "stderr besides the frames: %r" % rest[:300])


def case_usage(tmp):
    rc, out, err = run([], cwd=tmp)
    check(rc == 2 and "no PATH" in err, "no PATH: %d %r" % (rc, err))
    rc, out, err = run(["--jobs", "0", "."], cwd=tmp)
    check(rc == 2, "--jobs 0 accepted: %d" % rc)
    os.mkdir(os.path.join(tmp, "empty"))
    rc, out, err = run(["empty"], cwd=tmp)
    check(rc == 0 and out == b"" and err == "", "empty folder: %d %r %r" % (rc, out, err))


def case_shard(tmp):
    """--shard I/N: N runs together hash (and check) every file exactly once, report every problem
    exactly once, and their outputs together equal one unsharded run's; bad I/N is refused."""
    make_tree(os.path.join(tmp, "t"))
    t = os.path.join(tmp, "t")
    os.symlink("nowhere", os.path.join(t, "dangling"))
    os.mkfifo(os.path.join(t, "fifo"))
    rc1, whole, whole_err = run(["t"], cwd=tmp)
    check(rc1 == 1 and whole.count(b"\n") > 150, "unsharded run: exit %d" % rc1)
    for n in (1, 2, 3, 7):
        outs, errs, rcs = [], [], []
        for i in range(n):
            rc, out, err = run(["--shard", "%d/%d" % (i, n), "t"], cwd=tmp)
            check(rc in (0, 1), "shard %d/%d: exit %d, %r" % (i, n, rc, err))
            outs.append(out)
            errs += err.splitlines()
            rcs.append(rc)
            lines = out.splitlines()
            check(lines == [l for l in whole.splitlines() if l in set(lines)],
                  "shard %d/%d is not in the unsharded run's order" % (i, n))
        got = sorted(l for o in outs for l in o.splitlines())
        check(got == sorted(whole.splitlines()), "%d shards: union differs from the unsharded run:\n%s"
              % (n, diff(b"\n".join(sorted(whole.splitlines())), b"\n".join(got))))
        check(sorted(errs) == sorted(whole_err.splitlines()),
              "%d shards: problems reported %r, unsharded %r" % (n, errs, whole_err))
        check(max(rcs) == rc1, "%d shards: exit statuses %r" % (n, rcs))
        if n == 7:
            check(sum(1 for o in outs if o) >= 5, "7 shards: the split is lopsided: %r" % [len(o) for o in outs])
    # -c: the same, over a list of everything.
    with open(os.path.join(tmp, "list"), "wb") as f:
        f.write(whole)
    rc1, whole_check, _ = run(["-c", "list"], cwd=tmp)
    check(rc1 == 0, "unsharded -c: exit %d" % rc1)
    got = []
    for i in range(3):
        rc, out, err = run(["-c", "--shard", "%d/3" % i, "list"], cwd=tmp)
        check(rc == 0 and err == "", "-c shard %d/3: exit %d %r" % (i, rc, err))
        got += out.splitlines()
    check(sorted(got) == sorted(whole_check.splitlines()), "-c: 3 shards differ from the unsharded check")
    for bad, why in (("3/3", "I must be below N"), ("x/2", "not a whole number"), ("1", "expected I/N"),
                     ("0/0", "N must be at least 1"), ("-1/2", "not a whole number")):
        rc, out, err = run(["--shard", bad, "t"], cwd=tmp)
        check(rc == 2 and why in err and out == b"", "--shard %s: exit %d, %r" % (bad, rc, err))


def all_paths(top):
    return sorted(os.path.join(d, n) for d, ds, fs in os.walk(top) for n in ds + fs)


def case_interrupt(tmp):
    """SIGINT while a file is being hashed (TASKPORT_HASH_TEST_HOLD makes the tool hold t/f30
    once open and say so on stderr; the signal goes after that line): exit status 130, stdout a
    prefix (in order) of the full output that stops before f30, a line on stderr saying how far
    it got; -c with SIGTERM: 143, the same. Nothing is written anywhere. (Before: the tool died
    of the signal and printed no summary.)"""
    for i in range(60):
        write(os.path.join(tmp, "t", "f%02d" % i), b"file %d\n" % i * (i * 37 % 500))
    full = reference("t", tmp)
    with open(os.path.join(tmp, "list"), "wb") as f:
        f.write(full)
    before = all_paths(tmp)
    expect = {"hash": full.splitlines(keepends=True),
              "check": [l.split(b"  ", 1)[1].rstrip(b"\n") + b": OK\n" for l in full.splitlines(keepends=True)]}
    for mode, args, sig, status, verb in (("hash", ["-j", "1", "t"], signal.SIGINT, 130, "hashed"),
                                          ("check", ["-j", "2", "-c", "list"], signal.SIGTERM, 143, "checked")):
        p = subprocess.Popen([TOOL, "--no-progress"] + args, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=dict(ENV, TASKPORT_HASH_TEST_HOLD="t/f30"))
        lines = queue.Queue()
        err_lines = []

        def read_err():
            for line in p.stderr:
                lines.put(line)
            lines.put(None)
        reader = threading.Thread(target=read_err, daemon=True)
        reader.start()
        try:
            first = lines.get(timeout=DEADLINE)
        except queue.Empty:
            first = b"(nothing after %d s)" % DEADLINE
        if first == b"taskport-hash: test hook: holding t/f30\n":
            p.send_signal(sig)
        elif p.poll() is None:
            p.kill()
        out = p.stdout.read()
        p.wait(timeout=DEADLINE)
        line = first
        while line is not None:
            err_lines.append(line)
            line = lines.get(timeout=DEADLINE)
        err = b"".join(err_lines).decode("utf-8", "replace")
        check(first == b"taskport-hash: test hook: holding t/f30\n", "%s: stderr %r" % (mode, err))
        check(p.returncode == status, "%s: exit status %d, stderr %r" % (mode, p.returncode, err))
        got = out.splitlines(keepends=True)
        check(len(got) <= 30 and got == expect[mode][:len(got)], "%s: stdout %r" % (mode, out[-300:]))
        m = re.fullmatch(r"taskport-hash: test hook: holding t/f30\n"
                         r"taskport-hash: interrupted by %s: (\d+) of 60 files %s \(printed in order\), "
                         r"(\d+) in flight abandoned, (\d+) not printed\n" % (signal.Signals(sig).name, verb), err)
        check(m, "%s: stderr %r" % (mode, err))
        check(int(m.group(1)) == len(got) and int(m.group(3)) == 60 - len(got) and int(m.group(2)) >= 1,
              "%s: %d lines printed, stderr %r" % (mode, len(got), err))
        check(all_paths(tmp) == before, "%s: files written or removed: %s" % (mode, set(all_paths(tmp)) ^ set(before)))


CASES = [case_matches_sha256sum, case_check_mode, case_errors, case_check_fifo, case_files_vanish, case_progress,
         case_usage, case_shard, case_interrupt]


def main():
    failed = 0
    skipped = []
    for case in CASES:
        if case is case_interrupt and under_tsan():
            skipped.append(case.__name__)
            print("SKIP %s: a ThreadSanitizer build never runs the signal's handler (see under_tsan)" % case.__name__)
            continue
        if case is case_errors and not can_drop_privileges():
            skipped.append(case.__name__)
            print("SKIP %s: running as root without setpriv (root reads unreadable files)" % case.__name__)
            continue
        tmp = tempfile.mkdtemp(prefix="taskport-hash-test.")
        try:
            note = case(tmp)
            print("PASS %s%s" % (case.__name__, " (%s)" % note if note else ""))
        except (Failed, OSError, subprocess.SubprocessError) as e:
            failed += 1
            print("FAIL %s: %s" % (case.__name__, e))
        finally:
            for dirpath, dirnames, _ in os.walk(tmp):  # chmod 000 folders would stop rmtree
                for d in dirnames:
                    p = os.path.join(dirpath, d)
                    if not os.path.islink(p):
                        os.chmod(p, stat.S_IRWXU)
            shutil.rmtree(tmp, ignore_errors=True)
    print("%d of %d cases failed" % (failed, len(CASES)) if failed else "all %d cases passed" % (len(CASES) - len(skipped)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
