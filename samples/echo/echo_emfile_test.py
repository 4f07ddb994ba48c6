#!/usr/bin/env python3
"""taskport-echo out of descriptors: its limit at 64, 200 clients at once (the tester's setup).

usage: echo_emfile_test.py SERVER CLIENT
Passes when every client completes its round trips (the server keeps serving what it has and
accepts the waiting clients as descriptors free up), the server said it ran out of descriptors
(so the case was really exercised) and exits 0 after SIGINT. Prints the server's CPU time.
"""
import re
import resource
import signal
import subprocess
import sys

server_exe, client_exe = sys.argv[1], sys.argv[2]
CLIENTS, ROUNDS, LIMIT = 200, 50, 64


def limit_fds():
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


server = subprocess.Popen([server_exe, "127.0.0.1:0", "--workers", "2"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, preexec_fn=limit_fds)
try:
    first = server.stdout.readline()
    m = re.search(r"listening on (\S+)", first)
    if not m:
        sys.exit(f"echo_emfile_test: unexpected first line from the server: {first!r}")
    client = subprocess.run([client_exe, m.group(1), "-c", str(CLIENTS), "-s", "64", "-n", str(ROUNDS),
                             "--workers", "2"], capture_output=True, text=True, timeout=90)
    sys.stdout.write(client.stdout)
    sys.stderr.write(client.stderr)
    if client.returncode != 0:
        server.kill()
        sys.stderr.write("server's stderr:\n" + server.communicate()[1])
        sys.exit(f"echo_emfile_test: client failed with status {client.returncode}")
    if f"{CLIENTS * ROUNDS} round trips" not in client.stdout:
        sys.exit(f"echo_emfile_test: client did not report {CLIENTS * ROUNDS} round trips")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)  # the client's, already reaped
    server.send_signal(signal.SIGINT)
    out, err = server.communicate(timeout=30)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    sys.stdout.write(first + out)
    sys.stderr.write(err)
    if server.returncode != 0:
        sys.exit(f"echo_emfile_test: server exited with status {server.returncode}")
    if f"served {CLIENTS} connections" not in out:
        sys.exit(f"echo_emfile_test: server did not report {CLIENTS} connections")
    starved = err.count("Too many open files")
    if starved == 0:
        sys.exit("echo_emfile_test: the server never ran out of descriptors: the case was not exercised")
    print(f"echo_emfile_test: {starved} starved episode(s) reported; server CPU {cpu:.3f} s in all; ok")
finally:
    if server.poll() is None:
        server.kill()
        server.wait()
