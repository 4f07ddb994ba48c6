#!/usr/bin/env python3
"""fetch_server.py — a small HTTP/1.1 server for taskport-fetch's tests, with faults on demand.

Written on raw sockets (not http.server) so that it can send exactly the bytes a test needs:
keep-alive with Content-Length, chunked bodies, bodies that run until close, redirects, and
the faults a downloader must survive. Routes (GET only):

  /                      "root page\\n"
  /data/SIZE/NAME        SIZE bytes, deterministic for NAME (data(NAME, SIZE)), Content-Length
  /chunked/SIZE/NAME     the same bytes, Transfer-Encoding: chunked, chunks of varied sizes
  /eof/SIZE/NAME         the same bytes, no length: the body ends when the server closes
  /redirect/N/SIZE/NAME  302 to ../../N-1/SIZE/NAME (relative), N=0: to /data/SIZE/NAME
  /loop                  302 to itself, forever
  /status/CODE/NAME      that status code, a short body
  /flaky/KEY/N/SIZE/NAME 503 for the first N requests with this KEY, then /data/SIZE/NAME
  /stall-headers/NAME    accepts the request, never answers
  /stall-body/NAME       headers and half the body (Content-Length 2000), then nothing
  /drip/NAME             Content-Length 1000000, then a byte every 20 ms until the client goes
  /endless/NAME          a chunked body that never ends (64 KiB chunks) until the client goes
  /reset/NAME            headers and part of the body, then a TCP reset
  /short/NAME            Content-Length 1000, 10 bytes, then a clean close
  /malformed/NAME        a status line, then a header line without a colon
  /close-after/SIZE/NAME /data's answer without "Connection: close", then closes anyway
  /interim/SIZE/NAME     "100 Continue" and "103 Early Hints" (with a Location), then /data's answer
  /to/SCHEME/SIZE/NAME   302 to SCHEME://127.0.0.1:PORT/data/SIZE/NAME, PORT from .peers[SCHEME]
  /range/SIZE/NAME       /data's bytes, honouring "Range: bytes=N-" (206 + Content-Range), with
                         ETag "NAME-SIZE" (If-Range with another ETag: the whole body, 200)
  /norange/SIZE/NAME     /data's bytes, Range ignored (200, the whole body)
  /etag/TAG/SIZE/NAME    as /range, but the ETag is "TAG" and the bytes depend on it
  /cut/SIZE/NAME         as /range, but a request without Range gets half the body, then a reset
  (.ranges records (target, Range, If-Range) of every request to these four)
  /hold/SIZE/NAME        /range's headers (ETag "NAME-SIZE", Content-Length SIZE) and the first
                         half of the body, then nothing until the client goes; .wait_held(n)
                         returns once n such halves have been sent in all (for Ctrl-C tests)

FaultServer(tls=(certfile, keyfile)) serves the same over TLS (python's ssl module); a body that
runs until the close then ends with close_notify.

Use it in-process (FaultServer(...).start(); .port; .stop()) or standalone:
  python3 fetch_server.py [--port N]      prints "port N" once it listens, serves until killed.
"""
import random
import re
import socket
import ssl
import socketserver
import struct
import sys
import threading


def data(name, size):
    """The body /data/SIZE/NAME serves."""
    return random.Random(name).randbytes(size)


class _Handler(socketserver.BaseRequestHandler):
    def setup(self):
        self.server.owner._count_connection()
        self.buf = b""
        self.headers = {}
        self.tls_failed = False
        ctx = self.server.owner.tls_ctx
        if ctx is not None:
            self.request.settimeout(10)
            try:
                self.request = ctx.wrap_socket(self.request, server_side=True)
            except (ssl.SSLError, OSError):
                self.tls_failed = True  # e.g. the client rejected our certificate: it is gone

    def _read_request(self):
        """The next request's target, or None at end of stream / shutdown."""
        sock = self.request
        sock.settimeout(0.2)
        while b"\r\n\r\n" not in self.buf:
            if self.server.owner.stopping.is_set():
                return None
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return None
            if not chunk:
                return None
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        line = lines[0].decode("latin-1")
        self.headers = {}
        for h in lines[1:]:
            k, _, v = h.decode("latin-1").partition(":")
            self.headers[k.strip().lower()] = v.strip()
        parts = line.split(" ")
        return parts[1] if len(parts) >= 2 else "/"

    def _send(self, data_bytes):
        self.request.sendall(data_bytes)

    def _stream_until_gone(self, piece, pause):
        """Sends piece again and again (pause seconds apart) until the client closes or the server stops."""
        while not self.server.owner.stopping.is_set():
            try:
                self._send(piece)
            except (ssl.SSLError, OSError):
                return
            if pause:
                self.server.owner.stopping.wait(pause)

    def _wait_for_close(self):
        """Holds the connection open without answering until the client goes (or shutdown)."""
        sock = self.request
        sock.settimeout(0.2)
        while not self.server.owner.stopping.is_set():
            try:
                if not sock.recv(65536):
                    return
            except socket.timeout:
                continue
            except OSError:
                return

    def _reply(self, code, reason, body, extra=b"", close=False):
        head = b"HTTP/1.1 %d %s\r\nContent-Length: %d\r\n" % (code, reason.encode(), len(body))
        if close:
            head += b"Connection: close\r\n"
        self._send(head + extra + b"\r\n" + body)

    def _close_notify(self):
        """TLS: end with close_notify (a body that runs until the close is then complete)."""
        if isinstance(self.request, ssl.SSLSocket):
            try:
                self.request.settimeout(2)
                self.request = self.request.unwrap()
            except (ssl.SSLError, OSError):
                pass

    def handle(self):
        owner = self.server.owner
        if self.tls_failed:
            return
        while True:
            target = self._read_request()
            if target is None:
                return
            owner._count_request(target)
            if not self._serve(target.split("?", 1)[0].strip("/").split("/")):
                return

    def _serve(self, p):
        """Answers one request; False when the connection is to be closed."""
        owner = self.server.owner
        kind = p[0] if p else ""
        if kind == "":
            self._reply(200, "OK", b"root page\n")
            return True
        if kind == "data" and len(p) == 3:
            self._reply(200, "OK", data(p[2], int(p[1])))
            return True
        if kind == "chunked" and len(p) == 3:
            body = data(p[2], int(p[1]))
            out = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"]
            i, step = 0, 1
            while i < len(body):
                piece = body[i:i + step]
                out.append(b"%x\r\n" % len(piece) + piece + b"\r\n")
                i += len(piece)
                step = step * 3 + 7
            out.append(b"0\r\n\r\n")
            self._send(b"".join(out))
            return True
        if kind == "eof" and len(p) == 3:
            self._send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + data(p[2], int(p[1])))
            self._close_notify()
            return False
        if kind == "to" and len(p) == 4:
            loc = "%s://127.0.0.1:%d/data/%s/%s" % (p[1], owner.peers[p[1]], p[2], p[3])
            self._reply(302, "Found", b"moved", b"Location: " + loc.encode() + b"\r\n")
            return True
        if kind in ("range", "norange", "etag", "cut") and len(p) in (3, 4):
            owner._log_range(p, self.headers.get("range"), self.headers.get("if-range"))
            tag = p[1] if kind == "etag" else "%s-%s" % (p[-1], p[-2])
            body = data(p[-1] + (tag if kind == "etag" else ""), int(p[-2]))
            etag = ('"%s"' % tag).encode()
            m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("range", ""))
            if_range = self.headers.get("if-range")
            if kind != "norange" and m and (if_range is None or if_range == etag.decode()):
                start = int(m.group(1))
                if start >= len(body):
                    self._reply(416, "Range Not Satisfiable", b"",
                                b"Content-Range: bytes */%d\r\n" % len(body))
                    return True
                self._reply(206, "Partial Content", body[start:],
                            b"ETag: " + etag + b"\r\nContent-Range: bytes %d-%d/%d\r\n" % (start, len(body) - 1, len(body)))
                return True
            if kind == "cut":
                self._send(b"HTTP/1.1 200 OK\r\nETag: %s\r\nContent-Length: %d\r\n\r\n" % (etag, len(body))
                           + body[:len(body) // 2])
                self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.request.close()
                return False
            self._reply(200, "OK", body, b"ETag: " + etag + b"\r\n")
            return True
        if kind == "redirect" and len(p) == 4:
            n = int(p[1])
            # Relative with dot segments (RFC 3986 5.2), then absolute-path at the end.
            loc = "../../%d/%s/%s" % (n - 1, p[2], p[3]) if n > 0 else "/data/%s/%s" % (p[2], p[3])
            self._reply(302, "Found", b"moved", b"Location: " + loc.encode() + b"\r\n")
            return True
        if kind == "loop":
            self._reply(302, "Found", b"", b"Location: /loop\r\n")
            return True
        if kind == "status" and len(p) == 3:
            code = int(p[1])
            self._reply(code, "Status", b"status %d\n" % code)
            return True
        if kind == "flaky" and len(p) == 5:
            if owner._take_failure(p[1], int(p[2])):
                self._reply(503, "Service Unavailable", b"try later\n")
            else:
                self._reply(200, "OK", data(p[4], int(p[3])))
            return True
        if kind == "hold" and len(p) == 3:
            body = data(p[2], int(p[1]))
            self._send(b"HTTP/1.1 200 OK\r\nETag: \"%s-%s\"\r\nContent-Length: %d\r\n\r\n"
                       % (p[2].encode(), p[1].encode(), len(body)) + body[:len(body) // 2])
            owner._count_held()
            self._wait_for_close()
            return False
        if kind == "stall-headers":
            self._wait_for_close()
            return False
        if kind == "drip":
            # A byte every 20 ms of a 1 MB body, until the client goes: each read is quick, the
            # whole never ends (only --max-time stops it).
            self._send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
            self._stream_until_gone(b"d", 0.02)
            return False
        if kind == "endless":
            # A chunked body that never ends, 64 KiB chunks as fast as the client takes them.
            self._send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            self._stream_until_gone(b"10000\r\n" + b"e" * 0x10000 + b"\r\n", 0)
            return False
        if kind == "stall-body":
            self._send(b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n" + b"x" * 1000)
            self._wait_for_close()
            return False
        if kind == "reset":
            self._send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"r" * 5000)
            self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.request.close()
            return False
        if kind == "short":
            self._send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"s" * 10)
            return False
        if kind == "malformed":
            self._send(b"HTTP/1.1 200 OK\r\nThis line has no colon\r\nContent-Length: 5\r\n\r\nhello")
            return False
        if kind == "close-after" and len(p) == 3:
            self._reply(200, "OK", data(p[2], int(p[1])))
            return False  # closed although the reply promised keep-alive
        if kind == "interim" and len(p) == 3:
            # Interim responses come before the answer, which they are not (RFC 9110 15.2).
            self._send(b"HTTP/1.1 100 Continue\r\n\r\n"
                       b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\nLocation: /loop\r\n\r\n")
            self._reply(200, "OK", data(p[2], int(p[1])))
            return True
        self._reply(404, "Not Found", b"no such route\n")
        return True


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


class FaultServer:
    def __init__(self, host="127.0.0.1", port=0, tls=None):
        self.stopping = threading.Event()
        self.peers = {}  # scheme -> port, for /to/
        self.tls_ctx = None
        if tls is not None:
            self.tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls_ctx.load_cert_chain(tls[0], tls[1])
        self._lock = threading.Lock()
        self.connections = 0
        self.requests = {}
        self.ranges = []
        self._failures = {}
        self.held = 0  # /hold/ halves sent
        self._held_cv = threading.Condition(self._lock)
        self._srv = _TCPServer((host, port), _Handler)
        self._srv.owner = self
        self.port = self._srv.server_address[1]
        self._thread = threading.Thread(target=self._srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self.stopping.set()
        self._srv.shutdown()
        self._srv.server_close()

    def reset_counts(self):
        with self._lock:
            self.connections = 0
            self.requests = {}
            self.ranges = []

    def _log_range(self, p, rng, if_range):
        with self._lock:
            self.ranges.append(("/".join(p), rng, if_range))

    def _count_connection(self):
        with self._lock:
            self.connections += 1

    def _count_held(self):
        with self._lock:
            self.held += 1
            self._held_cv.notify_all()

    def wait_held(self, n, timeout):
        """True once n /hold/ halves have been sent (since the start), False after timeout s."""
        with self._lock:
            return self._held_cv.wait_for(lambda: self.held >= n, timeout)

    def _count_request(self, target):
        with self._lock:
            self.requests[target] = self.requests.get(target, 0) + 1

    def _take_failure(self, key, n):
        with self._lock:
            done = self._failures.get(key, 0)
            self._failures[key] = done + 1
            return done < n


def main():
    port = 0
    if len(sys.argv) == 3 and sys.argv[1] == "--port":
        port = int(sys.argv[2])
    srv = FaultServer(port=port).start()
    print("port %d" % srv.port, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        srv.stop()


if __name__ == "__main__":
    main()
