#!/usr/bin/env python3
"""echo_peers.py - echo servers in processes of their own, loaded by a client in another process.

Servers: taskport and Boost.Asio (peers/echo_peer_server, bench_echo's code) and Tokio
(peers/tokio_echo, built offline from Debian's crates by peers/tokio_echo/build.sh). The client
is peers/echo_load_client (CONNS connections x BYTES, one message in flight each). The servers
run alternately, round by round (A B C A B C ...), each with a fresh process.

Per run, two windows of the same load back to back, each bounded by the client's own count of
round trips read next to the server's counters ("mark" on the client's stdin):
  1. CPU: the server's CPU time (sum of /proc/PID/task/*/schedstat, ns) and context switches
     (voluntary: the server slept; involuntary: it was preempted, which grows with the machine's
     load; /proc/PID/task/*/status), nothing attached to it;
  2. system calls: `perf stat -e 'syscalls:sys_enter_...' -p PID`, attached before the window
     and enabled/disabled through its control pipe (--control, -D -1) at the marks (needs root
     or perf_event_paranoid <= -1; tracepoints only, no hardware counters needed).
Reported per server: round trips/s (window 1), server CPU us per round trip, context switches
per round trip, system calls per round trip (by name), and the ratio of each to Tokio's.

  echo_peers.py --build DIR [--tokio BIN] [--rounds 3] [--conns 64] [--bytes 64]
                [--threads 2] [--warm-ms 500] [--window-ms 2000] [--env K=V ...]
                [--servers taskport,asio,tokio] [--variant NAME=BUILD_DIR[,K=V...] ...]

--variant adds a taskport server from another build (e.g. main's) or with other settings, run
in the same alternation: --variant main=/tmp/b-main --variant nospin=.,TASKPORT_POLL_SPIN_US=0
(`.` is --build).
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
    vol = invol = 0
    for f in glob.glob(f"/proc/{pid}/task/*/status"):
        try:
            with open(f) as fh:
                for line in fh:
                    if line.startswith("voluntary_ctxt_switches"):
                        vol += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        invol += int(line.split()[1])
        except (OSError, ValueError):
            pass
    return vol, invol


def mark(client):
    client.stdin.write("mark\n")
    client.stdin.flush()
    line = client.stdout.readline().split()
    if not line or line[0] != "mark":
        raise SystemExit(f"echo_peers: client said {line!r}, expected a mark")
    return int(line[1]), float(line[2])


def one_run(args, name, cmd, env):
    server = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    client = perf = None
    try:
        port = int(server.stdout.readline())
        client = subprocess.Popen([os.path.join(args.build, "tests/bench/echo_load_client"), str(port),
                                   str(args.conns), str(args.bytes), str(args.warm_ms), str(args.client_threads)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if client.stdout.readline().strip() != "ready":
            raise SystemExit("echo_peers: the client did not start")
        w = args.window_ms / 1000
        # Window 1: CPU and context switches, nothing attached.
        n0, t0 = mark(client)
        c0, s0 = cpu_ns(server.pid), ctx_switches(server.pid)
        time.sleep(w)
        c1, s1 = cpu_ns(server.pid), ctx_switches(server.pid)
        n1, t1 = mark(client)
        rts = n1 - n0
        # Window 2: system calls, perf attached beforehand, counting only between the marks.
        ctl_r, ctl_w = os.pipe()
        ack_r, ack_w = os.pipe()
        events = ",".join(f"syscalls:sys_enter_{s}" for s in SYSCALLS)
        perf = subprocess.Popen(["perf", "stat", "-x", ",", "-D", "-1", "--control", f"fd:{ctl_r},{ack_w}",
                                 "-e", events, "-p", str(server.pid)],
                                stderr=subprocess.PIPE, text=True, pass_fds=(ctl_r, ack_w))
        os.close(ctl_r)
        os.close(ack_w)

        def perf_ctl(cmd):
            os.write(ctl_w, cmd.encode() + b"\n")
            ack = os.read(ack_r, 16)
            if not ack.startswith(b"ack"):
                raise SystemExit(f"echo_peers: perf said {ack!r} to {cmd}")

        time.sleep(0.3)  # perf opens its events on every thread
        perf_ctl("enable")
        n2, _ = mark(client)
        time.sleep(w)
        n3, _ = mark(client)
        perf_ctl("disable")
        perf.send_signal(2)  # SIGINT: perf prints its counts and exits
        _, perr = perf.communicate()
        os.close(ctl_w)
        os.close(ack_r)
        rts2 = n3 - n2
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
            "rt_s": rts / (t1 - t0),
            "cpu_us": (c1 - c0) / 1e3 / rts,
            "vcs": (s1[0] - s0[0]) / rts,
            "ics": (s1[1] - s0[1]) / rts,
            "calls": {k: v / rts2 for k, v in calls.items()},
        }
    finally:
        if perf and perf.poll() is None:
            perf.kill()
            perf.wait()
        if client:
            try:
                client.stdin.close()
            except OSError:
                pass
            client.wait()
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
    ap.add_argument("--variant", action="append", default=[], help="NAME=BUILD_DIR[,K=V...]: another taskport server")
    args = ap.parse_args()

    here = os.path.dirname(os.path.abspath(__file__))
    # perf (linux-perf) is this benchmark's alone: not in .ci/deps.sh's default list.
    subprocess.run(["bash", os.path.join(here, "..", "..", ".ci", "deps.sh"), "linux-perf"],
                   check=True, stdout=sys.stderr)
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
    envs = {s: (tp_env if s == "taskport" else dict(os.environ)) for s in servers}
    for var in args.variant:
        name, _, rest = var.partition("=")
        parts = rest.split(",")
        bdir = args.build if parts[0] == "." else parts[0]
        cmds[name] = [os.path.join(bdir, "tests/bench/echo_peer_server"), "taskport", str(args.threads)]
        envs[name] = dict(tp_env)
        for kv in parts[1:]:
            k, _, v = kv.partition("=")
            envs[name][k] = v
        servers.insert(servers.index("taskport") + 1 if "taskport" in servers else 0, name)

    print(f"# echo_peers: {args.conns} connections x {args.bytes} B, server threads {args.threads}, "
          f"client threads {args.client_threads}, windows {args.window_ms} ms, {args.rounds} rounds; "
          f"taskport env {args.env or 'default'}")
    print(f"# load before: {open('/proc/loadavg').read().strip()}")
    print(f"# servers: " + "; ".join(f"{s}: {' '.join(cmds[s])}" for s in servers))
    results = {s: [] for s in servers}
    for r in range(args.rounds):
        for s in servers:
            res = one_run(args, s, cmds[s], envs[s])
            results[s].append(res)
            calls = res["calls"]
            total = sum(calls.values())
            top = " ".join(f"{k} {v:.2f}" for k, v in sorted(calls.items(), key=lambda kv: -kv[1]) if v >= 0.005)
            print(f"round {r + 1} {s:9s} {res['rt_s']:9.0f} rt/s  cpu {res['cpu_us']:6.2f} us/rt  "
                  f"cs vol {res['vcs']:.3f} invol {res['ics']:.3f}/rt  syscalls {total:.2f}/rt ({top})", flush=True)
    print(f"# load after: {open('/proc/loadavg').read().strip()}")

    med = {}
    for s in servers:
        rs = results[s]
        keys = sorted({k for x in rs for k in x["calls"]})
        med[s] = {
            "rt_s": statistics.median(x["rt_s"] for x in rs),
            "cpu_us": statistics.median(x["cpu_us"] for x in rs),
            "vcs": statistics.median(x["vcs"] for x in rs),
            "ics": statistics.median(x["ics"] for x in rs),
            "sys": statistics.median(sum(x["calls"].values()) for x in rs),
            "calls": {k: statistics.median(x["calls"].get(k, 0.0) for x in rs) for k in keys},
        }
    base = med.get("tokio")
    print("\n| server | round trips/s | server CPU us/rt | ctx switches/rt (voluntary + involuntary) | syscalls/rt | of which | CPU vs Tokio | syscalls vs Tokio |")
    print("|---|---|---|---|---|---|---|---|")
    for s in servers:
        m = med[s]
        detail = ", ".join(f"{k} {v:.2f}" for k, v in sorted(m["calls"].items(), key=lambda kv: -kv[1]) if v >= 0.005)
        rc = f"{m['cpu_us'] / base['cpu_us']:.2f}x" if base else "-"
        rsys = f"{m['sys'] / base['sys']:.2f}x" if base and base["sys"] else "-"
        print(f"| {s} | {m['rt_s']:.0f} | {m['cpu_us']:.2f} | {m['vcs']:.3f} + {m['ics']:.3f} | {m['sys']:.2f} | {detail} | {rc} | {rsys} |")
    print("(medians of the rounds above)")


if __name__ == "__main__":
    main()
