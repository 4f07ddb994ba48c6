#!/usr/bin/env python3
"""echo_peers.py - echo servers in processes of their own, loaded by a client in another process.

Servers: taskport and Boost.Asio (peers/echo_peer_server, bench_echo's code) and Tokio
(peers/tokio_echo, built offline from Debian's crates by peers/tokio_echo/build.sh). The client
is peers/echo_load_client (CONNS connections x BYTES, one message in flight each). The servers
run alternately, round by round (A B C A B C ...), each with a fresh process.

Per run, two windows of the same load back to back:
  1. CPU: the server's CPU time (sum of /proc/PID/task/*/schedstat, ns) and context switches
     (voluntary + involuntary, /proc/PID/task/*/status), nothing attached to it;
  2. system calls: `perf stat -e 'syscalls:sys_enter_...' -p PID` (needs root or
     perf_event_paranoid <= -1; tracepoints only, no hardware counters needed).
Reported per server: round trips/s (window 1), server CPU us per round trip, context switches
per round trip, system calls per round trip (by name), and the ratio of each to Tokio's.

  echo_peers.py --build DIR [--tokio BIN] [--rounds 3] [--conns 64] [--bytes 64]
                [--threads 2] [--warm-ms 500] [--window-ms 2000] [--env K=V ...]
                [--servers taskport,asio,tokio]
"""
import argparse
import glob
import os
import statistics
import subprocess
import sys
import time

SYSCALLS = ["recvfrom", "sendto", "read", "write", "readv", "writev", "recvmsg", "sendmsg",
            "epoll_wait", "epoll_pwait", "epoll_ctl", "futex", "sched_yield", "io_uring_enter"]


def cpu_ns(pid):
    total = 0
    for f in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(f) as fh:
                total += int(fh.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that ended meanwhile
    return total


def ctx_switches(pid):
    total = 0
    for f in glob.glob(f"/proc/{pid}/task/*/status"):
        try:
            with open(f) as fh:
                for line in fh:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except (OSError, ValueError):
            pass
    return total


def expect(client, prefix):
    line = client.stdout.readline()
    if not line.startswith(prefix):
        raise SystemExit(f"echo_peers: client said {line!r}, expected {prefix!r}")
    return line.split()


def one_run(args, name, cmd, env):
    server = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        port = int(server.stdout.readline())
        client = subprocess.Popen([os.path.join(args.build, "tests/bench/echo_load_client"), str(port),
                                   str(args.conns), str(args.bytes), str(args.warm_ms), str(args.window_ms),
                                   "2", str(args.client_threads)],
                                  stdout=subprocess.PIPE, text=True)
        # Window 1: CPU and context switches, nothing attached.
        expect(client, "start")
        c0, s0 = cpu_ns(server.pid), ctx_switches(server.pid)
        w = expect(client, "round_trips")
        c1, s1 = cpu_ns(server.pid), ctx_switches(server.pid)
        rts, secs = int(w[1]), float(w[3])
        # Window 2: system calls.
        expect(client, "start")
        events = ",".join(f"syscalls:sys_enter_{s}" for s in SYSCALLS)
        perf = subprocess.Popen(["perf", "stat", "-x", ",", "-e", events, "-p", str(server.pid)],
                                stderr=subprocess.PIPE, text=True)
        w2 = expect(client, "round_trips")
        perf.send_signal(2)  # SIGINT: perf prints its counts and exits
        _, perr = perf.communicate()
        rts2 = int(w2[1])
        client.wait()
        calls = {}
        for line in perr.splitlines():
            parts = line.split(",")
            if len(parts) >= 3 and parts[2].startswith("syscalls:sys_enter_"):
                try:
                    calls[parts[2][len("syscalls:sys_enter_"):]] = int(parts[0])
                except ValueError:
                    calls[parts[2][len("syscalls:sys_enter_"):]] = 0  # <not counted>
        if not calls:
            print(f"# perf gave nothing for {name}: {perr.strip()[:300]}", file=sys.stderr)
        return {
            "rt_s": rts / secs,
            "cpu_us": (c1 - c0) / 1e3 / rts,
            "cs": (s1 - s0) / rts,
            "calls": {k: v / rts2 for k, v in calls.items()},
        }
    finally:
        try:
            server.stdin.close()
        except OSError:
            pass
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True, help="meson build dir (tests/bench/echo_peer_server etc.)")
    ap.add_argument("--tokio", default=None, help="tokio_echo binary (default: build it with peers/tokio_echo/build.sh)")
    ap.add_argument("--servers", default="taskport,asio,tokio")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--bytes", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2, help="server threads (taskport workers, Asio and Tokio threads)")
    ap.add_argument("--client-threads", type=int, default=1)
    ap.add_argument("--warm-ms", type=int, default=500)
    ap.add_argument("--window-ms", type=int, default=2000)
    ap.add_argument("--env", action="append", default=[], help="K=V for the taskport server (e.g. TASKPORT_POLL_SPIN_US=0)")
    args = ap.parse_args()

    here = os.path.dirname(os.path.abspath(__file__))
    tokio = args.tokio
    servers = args.servers.split(",")
    if "tokio" in servers and not tokio:
        tokio = subprocess.run([os.path.join(here, "peers/tokio_echo/build.sh")], check=True,
                               stdout=subprocess.PIPE, text=True).stdout.strip()
    peer_server = os.path.join(args.build, "tests/bench/echo_peer_server")
    cmds = {
        "taskport": [peer_server, "taskport", str(args.threads)],
        "asio": [peer_server, "asio", str(args.threads)],
        "tokio": [tokio, str(args.threads)],
    }
    tp_env = dict(os.environ)
    for kv in args.env:
        k, _, v = kv.partition("=")
        tp_env[k] = v

    print(f"# echo_peers: {args.conns} connections x {args.bytes} B, server threads {args.threads}, "
          f"client threads {args.client_threads}, windows {args.window_ms} ms, {args.rounds} rounds; "
          f"taskport env {args.env or 'default'}")
    print(f"# load before: {open('/proc/loadavg').read().strip()}")
    results = {s: [] for s in servers}
    for r in range(args.rounds):
        for s in servers:
            res = one_run(args, s, cmds[s], tp_env if s == "taskport" else dict(os.environ))
            results[s].append(res)
            calls = res["calls"]
            total = sum(calls.values())
            top = " ".join(f"{k} {v:.2f}" for k, v in sorted(calls.items(), key=lambda kv: -kv[1]) if v >= 0.005)
            print(f"round {r + 1} {s:9s} {res['rt_s']:9.0f} rt/s  cpu {res['cpu_us']:6.2f} us/rt  "
                  f"cs {res['cs']:.3f}/rt  syscalls {total:.2f}/rt ({top})", flush=True)
    print(f"# load after: {open('/proc/loadavg').read().strip()}")

    med = {}
    for s in servers:
        rs = results[s]
        keys = sorted({k for x in rs for k in x["calls"]})
        med[s] = {
            "rt_s": statistics.median(x["rt_s"] for x in rs),
            "cpu_us": statistics.median(x["cpu_us"] for x in rs),
            "cs": statistics.median(x["cs"] for x in rs),
            "sys": statistics.median(sum(x["calls"].values()) for x in rs),
            "calls": {k: statistics.median(x["calls"].get(k, 0.0) for x in rs) for k in keys},
        }
    base = med.get("tokio")
    print("\n| server | round trips/s | server CPU us/rt | ctx switches/rt | syscalls/rt | of which | CPU vs Tokio | syscalls vs Tokio |")
    print("|---|---|---|---|---|---|---|---|")
    for s in servers:
        m = med[s]
        detail = ", ".join(f"{k} {v:.2f}" for k, v in sorted(m["calls"].items(), key=lambda kv: -kv[1]) if v >= 0.005)
        rc = f"{m['cpu_us'] / base['cpu_us']:.2f}x" if base else "-"
        rsys = f"{m['sys'] / base['sys']:.2f}x" if base and base["sys"] else "-"
        print(f"| {s} | {m['rt_s']:.0f} | {m['cpu_us']:.2f} | {m['cs']:.3f} | {m['sys']:.2f} | {detail} | {rc} | {rsys} |")
    print("(medians of the rounds above)")


if __name__ == "__main__":
    main()
