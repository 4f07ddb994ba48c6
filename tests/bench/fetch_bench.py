#!/usr/bin/env python3
"""fetch_bench.py — taskport-fetch against `xargs -P64 curl`, both downloading from a local nginx.

   fetch_bench.py TASKPORT_FETCH [--small 2000] [--large 20] [--large-mib 32] [--reps 3]
                  [--nginx /usr/sbin/nginx] [--https] [--no-n1] [--delete-between]

Serves SMALL files of 1..32 KiB and LARGE files of LARGE_MIB MiB (random bytes) from nginx,
started here as a non-daemon on a free loopback port with a temporary config (keep-alive on,
sendfile, no access log), and waits for its port to accept (deadline 30 s). The URL list is the
files in a fixed shuffled order. Each side downloads all of it into an empty folder; one untimed
warm-up run each, then REPS runs each, alternating. Printed per side: median wall time and
median CPU time of the client (user + system of it and its children; nginx's is not counted on
either side). ratio = taskport / peer (below 1: taskport is faster). After every run each
downloaded file is compared with the served one, byte for byte.

--https: nginx serves over TLS (ssl on its port; a CA and a server certificate for 127.0.0.1
made here with tests/tls_certs.py, EC P-256), both clients verify it against that CA (taskport-
fetch --cacert, curl --cacert), and the URLs are https://. Every round's figures go to stderr
(with the load average).

Output folders: every run writes into a new empty folder, and the small files downloaded stay
until the end (the large ones are removed once compared, to bound the disk used). Deleting the
2,000 files of the run before made the next run pay for it: on ext4 without a journal (this
machine's /tmp) a new inode skips every inode of its group freed in the last 60 s
(fs/ext4/ialloc.c recently_deleted), so each of the next run's 2,000 creates scanned the 2,000
just deleted: 45-56% of either client's CPU went to find_inode_bit/recently_deleted under
open(O_CREAT) (perf record -g), the same cost for both sides, measuring the file system's
allocator rather than the clients. --delete-between restores the old behaviour (rm -rf of one
output folder before each run) for comparison.

Peers: the issue's `xargs -P64 curl` as usually written, one URL per curl process (-n 1, a new
connection per file), and `xargs -P64 -n 32 curl`, whose processes each reuse one connection for
32 URLs (the fairer peer, since taskport-fetch reuses connections too).
"""
import argparse
import filecmp
import os
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tls_certs import make_certs  # noqa: E402

NGINX_CONF = """
daemon off;
master_process on;
worker_processes 2;
{user}
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 100000;
    default_type application/octet-stream;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port}{ssl};
        root {www};
        {tls}
    }}
}}
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for_port(port, proc, deadline_s=30):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)  # polling the port, with a deadline: nothing to wait on otherwise
    return False


def timed(cmd, stdin_path, shell=False):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(stdin_path, "rb") as f:
        p = subprocess.run(cmd, shell=shell, stdin=f, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit("fetch_bench: %s failed (%d): %s" % (cmd, p.returncode, p.stderr.decode(errors="replace")[-2000:]))
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def verify(www, names, out):
    got = sorted(os.listdir(out))
    if got != sorted(n for _, n in names):
        sys.exit("fetch_bench: %s holds %d files, expected %d" % (out, len(got), len(names)))
    for rel, n in names:
        if not filecmp.cmp(os.path.join(www, rel), os.path.join(out, n), shallow=False):
            sys.exit("fetch_bench: %s differs from the served file" % n)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tool")
    ap.add_argument("--small", type=int, default=2000)
    ap.add_argument("--large", type=int, default=20)
    ap.add_argument("--large-mib", type=int, default=32)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    ap.add_argument("--https", action="store_true", help="serve and fetch over TLS")
    ap.add_argument("--no-n1", action="store_true", help="leave out the slow `xargs -P64 -n 1 curl` peer")
    ap.add_argument("--delete-between", action="store_true",
                    help="one output folder, emptied (rm -rf) before each run, as before (see the docstring)")
    a = ap.parse_args()
    # nginx and curl are this benchmark's alone: not in .ci/deps.sh's default list.
    if not os.access(a.nginx, os.X_OK) or not shutil.which("curl"):
        subprocess.run(["bash", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                             ".ci", "deps.sh"), "nginx", "curl"],
                       stdout=sys.stderr)
        a.nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(a.nginx, os.X_OK) or not shutil.which("curl"):
        print("fetch_bench: needs nginx and curl (apt-get install nginx curl)", file=sys.stderr)
        return 77

    tmp = tempfile.mkdtemp(prefix="taskport-fetch-bench.")
    os.chmod(tmp, 0o755)  # nginx's workers may run as another user
    www = os.path.join(tmp, "www")
    nginx = None
    try:
        r = random.Random(5)
        names = []  # (path under www, file name)
        os.makedirs(os.path.join(www, "s"))
        os.makedirs(os.path.join(www, "l"))
        for i in range(a.small):
            n = "s%05d.bin" % i
            with open(os.path.join(www, "s", n), "wb") as f:
                f.write(r.randbytes(r.randint(1024, 32768)))
            names.append(("s/" + n, n))
        for i in range(a.large):
            n = "l%03d.bin" % i
            with open(os.path.join(www, "l", n), "wb") as f:
                for _ in range(a.large_mib):
                    f.write(os.urandom(1 << 20))
            names.append(("l/" + n, n))
        for d, _, fs in os.walk(tmp):
            os.chmod(d, 0o755)
        r.shuffle(names)

        port = free_port()
        conf = os.path.join(tmp, "nginx.conf")
        ssl, tls, scheme, cacert = "", "", "http", None
        if a.https:
            certs_dir = os.path.join(tmp, "certs")
            os.mkdir(certs_dir)
            certs = make_certs(certs_dir)
            cacert = certs["ca.crt"]
            ssl, scheme = " ssl", "https"
            tls = ("ssl_certificate %s; ssl_certificate_key %s; ssl_session_cache shared:tp:10m; "
                   "ssl_protocols TLSv1.2 TLSv1.3;" % (certs["server.crt"], certs["server.key"]))
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(tmp=tmp, port=port, www=www, user="user root;" if os.geteuid() == 0 else "",
                                      ssl=ssl, tls=tls))
        nginx = subprocess.Popen([a.nginx, "-p", tmp, "-e", os.path.join(tmp, "error.log"), "-c", conf],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not wait_for_port(port, nginx):
            err = open(os.path.join(tmp, "error.log")).read() if os.path.exists(os.path.join(tmp, "error.log")) else ""
            sys.exit("fetch_bench: nginx did not start: %s %s" % (nginx.stderr.read().decode() if nginx.poll() is not None else "", err))

        urls = os.path.join(tmp, "urls.txt")
        with open(urls, "w") as f:
            for rel, _ in names:
                f.write("%s://127.0.0.1:%d/%s\n" % (scheme, port, rel))
        out = os.path.join(tmp, "out")
        tp_ca = ["--cacert", cacert] if cacert else []
        curl_ca = " --cacert %s" % cacert if cacert else ""
        sides = [
            ("taskport-fetch -c 64", [os.path.abspath(a.tool), "--no-progress", "-q", "-c", "64", "-o", out] + tp_ca,
             False),
            ("xargs -P64 -n 1 curl", "xargs -P64 -n 1 curl -sSf%s --output-dir %s --remote-name-all" % (curl_ca, out),
             True),
            ("xargs -P64 -n 32 curl", "xargs -P64 -n 32 curl -sSf%s --output-dir %s --remote-name-all" % (curl_ca, out),
             True),
        ]
        if a.no_n1:
            sides = [x for x in sides if x[0] != "xargs -P64 -n 1 curl"]
        results = {name: ([], []) for name, _, _ in sides}
        run_no = 0
        for rep in range(a.reps + 1):  # rep 0: warm-up, not counted
            for name, cmd, shell in sides:
                if a.delete_between:
                    run_out = out
                    shutil.rmtree(out, ignore_errors=True)
                else:  # a new folder per run: nothing deleted shortly before a run (see the docstring)
                    run_no += 1
                    run_out = "%s.%d" % (out, run_no)
                os.mkdir(run_out)
                run_cmd = cmd.replace(out, run_out) if shell else [run_out if x == out else x for x in cmd]
                wall, cpu = timed(run_cmd, urls, shell)
                verify(www, names, run_out)
                if not a.delete_between:
                    for rel, n in names:
                        if rel.startswith("l/"):
                            os.unlink(os.path.join(run_out, n))
                if rep > 0:
                    results[name][0].append(wall)
                    results[name][1].append(cpu)
                    print("round %d: %s: wall %.3f s, client CPU %.3f s (load average %.1f)" %
                          (rep, name, wall, cpu, os.getloadavg()[0]), file=sys.stderr)
        total = sum(os.path.getsize(os.path.join(www, rel)) for rel, _ in names)
        print("fetch over %s: %d files (%d of 1-32 KiB, %d of %d MiB), %.2f GiB from nginx on loopback, %d CPUs, "
              "median of %d runs each (load average %.1f)" %
              (scheme, len(names), a.small, a.large, a.large_mib, total / 2**30, os.cpu_count() or 1, a.reps,
               os.getloadavg()[0]))
        print("every file identical to the served one: yes")
        print("| benchmark | taskport | peer | ratio | goal | verdict |")
        print("| --- | --- | --- | --- | --- | --- |")
        tw, tc = (statistics.median(x) for x in results[sides[0][0]])
        for name, _, _ in sides[1:]:
            pw, pc = (statistics.median(x) for x in results[name])
            for what, t, p in (("wall s", tw, pw), ("client CPU s", tc, pc)):
                ratio = t / p
                print("| fetch vs %s, %s | %.3f | %.3f | %.3f | < 1 | %s |" %
                      (name, what, t, p, ratio, "faster" if ratio < 1 else "SLOWER"))
    finally:
        if nginx is not None and nginx.poll() is None:
            nginx.terminate()  # SIGTERM: nginx's fast shutdown
            try:
                nginx.wait(timeout=30)
            except subprocess.TimeoutExpired:
                nginx.kill()
                nginx.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
