"""Time to the first event of a Server-Sent Events answer, which wrk cannot see.

wrk times whole answers; what a streamed request is judged by is how soon its
first event arrives.  This client sends requests one at a time on one
keep-alive connection (a few unmeasured first), times each from just before
the request is sent to the moment the first complete event that is not a
comment (a ``:`` line, such as a keep-alive) has been read, then reads the
rest of the answer before sending the next.  It stops after ``count``
measured requests or ``seconds``, whichever comes first.

``run()`` starts it pinned to a core (the load core, as wrk is) and returns
the figures; ``python firstevent.py URL`` reads the request (JSON: method,
headers, base64 body) on stdin and prints one JSON line: the requests timed
and p50/p90/p99/mean/max in milliseconds.  A raw socket with TCP_NODELAY,
the request sent in one write, no more of the answer parsed than its
framing: little client time, the same through the gateway and straight to
the upstream.  (``http.client`` sends head and body in two writes without
TCP_NODELAY; through a proxy that added about 0.3 ms to every figure.)
"""
from __future__ import annotations

import argparse
import base64
import json
import math
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
#: Requests sent before timing starts (connection set up, caches and code paths warm).
WARMUP = 20
#: Bounds on one measurement.
COUNT = 200
SECONDS = 15.0


def run(url: str, method: str, headers: Mapping[str, str], body: bytes, *, cpu: int | None,
        count: int = COUNT, seconds: float = SECONDS) -> dict[str, float]:
    """Measure ``url`` in a child process pinned to ``cpu``; the figures of :func:`measure`."""
    cmd = [sys.executable, str(HERE / "firstevent.py"), url, "--count", str(count), "--seconds", str(seconds)]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    spec = json.dumps({"method": method, "headers": dict(headers), "body": base64.b64encode(body).decode()})
    proc = subprocess.run(cmd, input=spec, capture_output=True, text=True, timeout=seconds + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"first-event client failed on {url}: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout)


def measure(url: str, method: str, headers: Mapping[str, str], body: bytes, *, count: int,
            seconds: float, warmup: int = WARMUP) -> dict[str, float]:
    """Time to the first event of ``count`` sequential requests (at most ``seconds`` of them)."""
    parts = urlsplit(url)
    if parts.hostname is None or parts.port is None:
        raise RuntimeError(f"{url}: expected http://HOST:PORT/PATH")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    head = f"{method} {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items() if k.lower() not in ("host", "content-length"))
    # One write (and TCP_NODELAY): a request sent as head, then body, can wait for an ACK in between.
    request = head.encode("latin-1") + b"\r\n" + body
    times: list[float] = []
    deadline = None
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Conn(sock)
        for i in range(warmup + count):
            if i == warmup:
                deadline = time.monotonic() + seconds
            elif deadline is not None and time.monotonic() > deadline:
                break
            elapsed = conn.exchange(request)
            if i >= warmup:
                times.append(elapsed)
    return _figures(times)


class _Conn:
    """A keep-alive HTTP/1.1 connection, read just far enough to see each answer's first event."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def exchange(self, request: bytes) -> float:
        """Send ``request``: seconds until its answer's first event; the answer is read to the end."""
        t0 = time.perf_counter()
        self.sock.sendall(request)
        status, chunked, length = self._head()
        if status != 200:
            raise RuntimeError(f"answered {status}: {bytes(self.buf[:300])!r}")
        data = bytearray()  # the body up to its first event (chunk framing removed)
        first = None
        for piece in self._body(chunked, length):
            if first is None:
                data += piece
                if _has_event(data):
                    first = time.perf_counter() - t0
        if first is None:
            raise RuntimeError("the answer ended before its first event")
        return first

    def _recv(self) -> None:
        data = self.sock.recv(1 << 20)
        if not data:
            raise RuntimeError("the server closed the connection")
        self.buf += data

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._recv()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def _line(self) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            self._recv()
        return self._take(end + 2)[:-2]

    def _head(self) -> tuple[int, bool, int]:
        """(status, chunked, Content-Length) of the next answer."""
        status = int(self._line().split(b" ", 2)[1])
        chunked, length = False, -1
        while line := self._line():
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"content-length":
                length = int(value)
        if not chunked and length < 0:
            raise RuntimeError("an answer with neither Content-Length nor chunks: cannot keep the connection")
        return status, chunked, length

    def _body(self, chunked: bool, length: int) -> Iterator[bytes]:
        """The answer's body as it arrives (whatever is buffered, never waiting for more than needed)."""
        if not chunked:
            while length > 0:
                if not self.buf:
                    self._recv()
                piece = self._take(min(length, len(self.buf)))
                length -= len(piece)
                yield piece
            return
        while size := int(self._line().split(b";", 1)[0], 16):
            while size > 0:
                if not self.buf:
                    self._recv()
                piece = self._take(min(size, len(self.buf)))
                size -= len(piece)
                yield piece
            self._take(2)  # the CRLF after the chunk
        while self._line():  # trailers, up to the blank line
            pass


def _has_event(data: bytearray) -> bool:
    """Whether ``data`` (the start of an SSE body) holds a complete event, comments aside."""
    pos = 0
    text = data.replace(b"\r\n", b"\n")
    while (end := text.find(b"\n\n", pos)) >= 0:
        if any(line and not line.startswith(b":") for line in text[pos:end].split(b"\n")):
            return True
        pos = end + 2
    return False


def _figures(times: list[float]) -> dict[str, float]:
    if not times:
        raise RuntimeError("no request was timed")
    ms = sorted(t * 1000 for t in times)

    def pct(q: float) -> float:
        return ms[min(len(ms) - 1, max(0, math.ceil(q * len(ms)) - 1))]

    return {"requests": len(ms), "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
            "mean_ms": sum(ms) / len(ms), "max_ms": ms[-1]}


def main(argv: list[str] | None = None) -> None:
    """Command line entry point: the request as JSON on stdin, the figures as JSON on stdout."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url")
    p.add_argument("--count", type=int, default=COUNT, help=f"requests timed (default {COUNT})")
    p.add_argument("--seconds", type=float, default=SECONDS, help=f"at most this long timing (default {SECONDS:g})")
    p.add_argument("--warmup", type=int, default=WARMUP, help=f"unmeasured requests first (default {WARMUP})")
    args = p.parse_args(argv)
    spec = json.load(sys.stdin)
    try:
        figures = measure(args.url, spec["method"], spec["headers"], base64.b64decode(spec["body"]),
                          count=args.count, seconds=args.seconds, warmup=args.warmup)
    except (RuntimeError, OSError, ValueError) as e:
        sys.exit(f"firstevent: {e}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
