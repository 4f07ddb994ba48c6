#!/usr/bin/env python3
"""Runs taskport-echo on a free port, loads it with taskport-echo-client, stops it with SIGINT.

usage: echo_test.py SERVER CLIENT
Passes when the client completes its round trips and the server exits 0 after SIGINT.
"""
import re
import signal
import subprocess
import sys

server_exe, client_exe = sys.argv[1], sys.argv[2]
server = subprocess.Popen([server_exe, "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
try:
    first = server.stdout.readline()
    m = re.search(r"listening on (\S+)", first)
    if not m:
        sys.exit(f"echo_test: unexpected first line from the server: {first!r}")
    address = m.group(1)
    client = subprocess.run([client_exe, address, "-c", "16", "-s", "100", "-n", "500"],
                            capture_output=True, text=True, timeout=60)
    sys.stdout.write(client.stdout)
    sys.stderr.write(client.stderr)
    if client.returncode != 0:
        sys.exit(f"echo_test: client failed with status {client.returncode}")
    if "8000 round trips" not in client.stdout:
        sys.exit("echo_test: client did not report 8000 round trips")
    server.send_signal(signal.SIGINT)
    rest, _ = server.communicate(timeout=30)
    sys.stdout.write(first + rest)
    if server.returncode != 0:
        sys.exit(f"echo_test: server exited with status {server.returncode}")
    if "served 16 connections" not in rest:
        sys.exit("echo_test: server did not report 16 connections")
finally:
    if server.poll() is None:
        server.kill()
        server.wait()
print("echo_test: ok")
