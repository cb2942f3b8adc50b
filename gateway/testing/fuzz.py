"""Malformed requests thrown at a running gateway, and what every answer to them must be.

``tests/test_fuzz.py`` sends a bounded number (hypothesis hands in the random source);
``bench/fuzz.py`` sends as many as asked and counts what went wrong.  A request is
drawn by :func:`draw` from a :class:`random.Random`: every unified route
(``/v1/images/generations``, ``/v1/images/edits``), the passthrough under any method
and path, the image store and paths the gateway does not serve, with malformed JSON,
multipart, encodings and header values (any byte an HTTP parser lets through: tab,
``0x20``-``0x7e``, ``0x80``-``0xff``; a parser refuses the others before the gateway
sees the request).

The provider behind the gateway (:class:`AlwaysOk`) answers every request with a 200,
so what :func:`problem` reports is the gateway's own fault: no answer within the time
limit, a status of 500 or more, or an error that is not the gateway's JSON shape.
"""
from __future__ import annotations

import asyncio
import base64
import gzip
import io
import random
import socket
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
import structlog
from aiohttp import web

from gateway.app import create_app
from gateway.keys import GATEWAY
from gateway.logging import configure_logging
from gateway.testing import PNG_1X1, FakeUpstream

__all__ = ["AlwaysOk", "Answer", "Sent", "Servers", "Summary", "draw", "exchange", "problem", "read_answer", "run", "send"]

_PNG_B64 = base64.b64encode(PNG_1X1).decode()
#: Seconds one request may take before it counts as a hang.
TIMEOUT = 10.0


# -- the provider: a 200 for everything ------------------------------------------------------


class AlwaysOk(FakeUpstream):
    """A provider on loopback that answers every request 200: a generation or an edit with
    as many images as its ``n`` asks (1 when ``n`` makes no sense), anything else ``{}``.
    It keeps no record of requests (a long run sends tens of thousands), only their count."""

    def __init__(self) -> None:
        # A body in a coding its server cannot decode is relayed to it, not refused by aiohttp.
        super().__init__(decompress=False)
        self.count = 0

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.count += 1
        if request.method == "POST" and request.path.endswith(("/images/generations", "/images/edits")):
            n: Any = 1
            if request.content_type == "multipart/form-data":
                form = await request.post()
                n = form.get("n", 1)
            else:
                body = await request.read()
                try:
                    decoded = msgspec.json.decode(body)
                except msgspec.DecodeError:
                    decoded = None
                if isinstance(decoded, dict):
                    n = decoded.get("n", 1)
            n = int(n) if isinstance(n, (int, str)) and str(n).isascii() and str(n).isdigit() else 1
            data = [{"b64_json": _PNG_B64} for _ in range(min(max(n, 1), 16))]
            return web.json_response({"created": 1, "data": data})
        await request.read()
        return web.json_response({})


# -- the servers, on a loop of their own -----------------------------------------------------


class Servers:
    """The gateway and :class:`AlwaysOk` on an event loop in a background thread, so a
    gateway that blocks its loop shows as a request without an answer, not a frozen test.

    The gateway has a virtual key ``vk-fuzz`` and a saved config ``pc-fuzz`` (both the fake
    provider), a body limit of ``max_body_bytes``; its log lines are kept in :attr:`log`."""

    def __init__(self, plugins: Iterable[Any], *, max_body_bytes: int = 256 * 1024,
                 settings: dict[str, Any] | None = None) -> None:
        self.log = io.BytesIO()
        self._images = tempfile.TemporaryDirectory(prefix="gateway-fuzz-")
        self._plugins = list(plugins)
        self._settings = settings or {}
        self._max_body = max_body_bytes
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        configure_logging("json", "info", stream=self.log, cache=False)
        self.port = self._run(self._start())

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    async def _start(self) -> int:
        self.upstream = await AlwaysOk().start()
        raw = {
            "server": {"max_body_bytes": self._max_body},
            "upstream": {"read_timeout": TIMEOUT * 2},
            "images": {"directory": self._images.name},
            "providers": {"fake": {"base_url": self.upstream.url + "/v1"}},
            "virtual_keys": {"vk-fuzz": {"provider": "fake", "api_key": "sk-fuzz-virtual"}},
            "configs": {"pc-fuzz": {"provider": "fake", "api_key": "sk-fuzz-saved"}},
            **self._settings,
        }
        app = create_app(raw, plugins=self._plugins, load_entrypoints=False)

        async def no_sleep(_seconds: float) -> None:
            return None

        app[GATEWAY].sleep = no_sleep
        self.runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _stop(self) -> None:
        await self.runner.cleanup()
        await self.upstream.close()

    def log_problems(self) -> list[str]:
        """Log lines that are not JSON, and requests whose log line failed or that crashed."""
        out = []
        for line in self.log.getvalue().splitlines():
            try:
                event = msgspec.json.decode(line)
            except msgspec.DecodeError:
                out.append(f"not a JSON log line: {line[:200]!r}")
                continue
            if event.get("event") in ("log.failed", "request.crashed"):
                out.append(f"{event.get('event')}: {event.get('error') or event.get('exception')}"[:300])
        return out

    def close(self) -> None:
        try:
            self._run(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            self.loop.close()
            self._images.cleanup()
            structlog.reset_defaults()


# -- one request -----------------------------------------------------------------------------


class Sent:
    """A request as it goes on the wire: the request line, the headers and the body."""

    __slots__ = ("method", "target", "headers", "body", "chunked", "what")

    def __init__(self, method: str, target: str, what: str) -> None:
        self.method = method
        self.target = target
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.chunked = False
        #: What the draw chose, for a report.
        self.what = what

    def header(self, name: str, value: bytes | str) -> None:
        self.headers.append((name.encode(), value.encode() if isinstance(value, str) else value))

    def raw(self) -> bytes:
        out = [f"{self.method} {self.target} HTTP/1.1\r\n".encode(), b"Host: 127.0.0.1\r\n", b"Connection: close\r\n"]
        out.extend(name + b": " + value + b"\r\n" for name, value in self.headers)
        if self.chunked:
            out.append(b"Transfer-Encoding: chunked\r\n\r\n")
            for i in range(0, len(self.body), 4096):
                piece = self.body[i:i + 4096]
                out.append(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            out.append(b"0\r\n\r\n")
        else:
            if self.body or self.method in ("POST", "PUT", "PATCH"):
                out.append(f"Content-Length: {len(self.body)}\r\n".encode())
            out.append(b"\r\n")
            out.append(self.body)
        return b"".join(out)

    def __repr__(self) -> str:
        headers = {k.decode(): v[:120] for k, v in self.headers}
        return f"<{self.method} {self.target[:200]} {self.what} {headers} body={self.body[:200]!r}>"


class Answer:
    """An HTTP answer: status, headers (names in lower case) and body (de-chunked)."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return msgspec.json.decode(self.body)


def send(port: int, sent: Sent, timeout: float = TIMEOUT) -> Answer | None:
    """Send ``sent`` on a fresh connection and read the answer whole; None when none came
    within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(sent.raw())
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered (a 413) before the whole body was read: the answer is still there
        data = bytearray()
        while True:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                more = sock.recv(65536)
            except TimeoutError:
                return None
            except ConnectionResetError:
                break
            if not more:
                break
            data += more
    return read_answer(bytes(data))


async def exchange(port: int, sent: Sent, timeout: float = TIMEOUT) -> Answer | None:
    """:func:`send` from a coroutine, for a gateway on the same event loop."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(sent.raw())
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout)
    except TimeoutError:
        return None
    finally:
        writer.close()
    return read_answer(data)


def read_answer(data: bytes) -> Answer:
    """An HTTP/1.1 answer read to the end of its connection."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split(b" ")[1])
    except (IndexError, ValueError):
        return Answer(0, {}, data)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
    if headers.get("transfer-encoding") == "chunked":
        out = bytearray()
        while body:
            size_line, _, rest = body.partition(b"\r\n")
            try:
                size = int(size_line.split(b";")[0], 16)
            except ValueError:
                break
            if size == 0:
                break
            out += rest[:size]
            body = rest[size + 2:]
        body = bytes(out)
    return Answer(status, headers, body)


def problem(sent: Sent, answer: Answer | None) -> str | None:
    """What is wrong with ``answer`` to ``sent``, or None: no answer, a status of 500 or
    more, or an error that is not ``{"error": {"message", "type", "param", "code"}}`` as JSON."""
    if answer is None:
        return f"no answer within {TIMEOUT:g} s"
    if answer.status == 0:
        return f"not an HTTP answer: {answer.body[:200]!r}"
    if answer.status >= 500:
        return f"status {answer.status}: {answer.body[:300]!r}"
    if answer.status < 400 or sent.method == "HEAD":
        return None
    ctype = answer.headers.get("content-type", "")
    if not ctype.startswith("application/json"):
        return f"status {answer.status} as {ctype or 'no content type'}: {answer.body[:200]!r}"
    try:
        body = msgspec.json.decode(answer.body)
    except msgspec.DecodeError:
        return f"status {answer.status}, body not JSON: {answer.body[:200]!r}"
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict) or set(err) != {"message", "type", "param", "code"} or set(body) - {"error", "provider"}:
        return f"status {answer.status}, not the gateway's error shape: {answer.body[:200]!r}"
    if not isinstance(err["message"], str) or not err["message"]:
        return f"status {answer.status}, an error without a message: {answer.body[:200]!r}"
    return None


# -- drawing a request -----------------------------------------------------------------------

#: Bytes an HTTP/1.1 parser takes in a header value.
_FIELD_BYTES = bytes([9, *range(0x20, 0x7F), *range(0x80, 0x100)])
_KEYISH = ["sk-proj-" + "A1b2C3d4" * 6, "AKIAIOSFODNN7EXAMPLE", "r8_" + "x9" * 18, "key-0123456789abcdef0123456789abcdef"]
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE", "PROPFIND"]
_PATHS = [
    "/v1/models", "/v1/files", "/v1/uploads", "/v1/images/variations", "/v1/../healthz", "/v1/%2e%2e/%2e%2e/admin",
    "/v1/..%2fadmin", "/v1/%2F..%2F..%2Fx", "/v1/a%5c..%5c..%5cx", "/v1/a\\..\\..\\x", "/v1/models%3Fx=1",
    "/v1/models%23frag", "/v1/models%00", "/v1/models%0d%0aX:%20y", "/v1/%252e%252e/x", "/v1/./models",
    "/v1/x/../models", "/v1/%E2%80%AE", "/v1/%ff%fe", "/v1/model/arn%3Aaws%3Abedrock%2Fabc/invoke", "/v1/",
    "/v1", "/v1/images/files/abc", "/v1/images/files/" + "a" * 300, "/v1/images/files/..%2f..%2fetc",
    "/healthz", "/readyz", "/", "/v2/models", "/v1/images/generations/extra",
]


def _pick(rng: random.Random, options: list[Any]) -> Any:
    return options[rng.randrange(len(options))]


def _field(rng: random.Random, size: int | None = None) -> bytes:
    """Any header value an HTTP parser lets through (no outer white space: parsers strip it)."""
    size = rng.choice([1, 4, 16, 64, 300]) if size is None else size
    value = bytes(rng.choice(_FIELD_BYTES) for _ in range(size)).strip(b" \t")
    return value or b"x"


def _json_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(10 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 1, 3, 2**31, 2**64, -(2**63), 10**30])
    if kind == 3:
        return rng.choice([0.5, -1.5, 1e308, 1e-308])
    if kind == 4:
        return rng.choice(["", "auto", "1024x1024", "x", "hd", "vivid", "url", "b64_json", "fake-hd", "\u00b9\u2070\u00b2\u2074x1024",
                           "1" * 5000 + "x1", "١٠٢٤x١٠٢٤", "\ud800".encode("utf-8", "surrogatepass").decode("latin-1"),
                           *_KEYISH])
    if kind == 5:
        return "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randrange(8)))
    if kind in (6, 7):
        return [_json_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(["a", "model", "n", "$x", ""]): _json_value(rng, depth + 1) for _ in range(rng.randrange(3))}


#: Values each unified parameter takes (a request now and then succeeds).
_VALID: dict[str, list[Any]] = {
    "model": ["fake-image", "fake-hd", "nope"], "n": [1, 2, 5], "size": ["512x512", "1792x1024", "auto"],
    "quality": ["hd", "standard", "low"], "style": ["vivid", "natural"], "response_format": ["url", "b64_json"],
    "stream": [True, False], "partial_images": [0, 2],
}


def _params(rng: random.Random) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if rng.random() < 0.9:
        params["prompt"] = rng.choice(["a cat", "", "   ", _json_value(rng), "x" * 2000])
    for name in ("model", "n", "size", "quality", "style", "response_format", "user", "stream", "partial_images",
                 "background", "seed", "output_format"):
        if rng.random() < 0.3:
            params[name] = _json_value(rng)
        elif rng.random() < 0.15:
            params[name] = rng.choice(_VALID.get(name, ["x"]))
    return params


def _nested(rng: random.Random) -> bytes:
    depth = rng.choice([100, 1000, 10000, 50000])
    opener, closer = rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
    return opener * depth + b"1" + closer * depth


def _json_body(rng: random.Random) -> bytes:
    kind = rng.randrange(12)
    if kind == 0:
        return _nested(rng)
    if kind == 1:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
    if kind == 2:
        return b'{"prompt": "x"' + b" " * rng.randrange(4)
    if kind == 3:
        return b'{"prompt": "\xff\xfe caf\xe9"}'
    if kind == 4:
        return b""
    if kind == 5:
        return msgspec.json.encode(_json_value(rng))
    return msgspec.json.encode(_params(rng))


def _multipart(rng: random.Random) -> tuple[bytes, str]:
    boundary = rng.choice(["fuzzboundary", "x" * 70, "a b", ""])
    parts = []
    fields = _params(rng)
    for name, value in fields.items():
        text = value if isinstance(value, str) else msgspec.json.encode(value).decode()
        parts.append((name, None, text.encode("utf-8", "surrogatepass")))
    for _ in range(rng.choice([0, 1, 1, 2, 5, 70])):
        name = rng.choice(["image", "image[]", "mask", "other", ""])
        data = rng.choice([PNG_1X1, b"", b"GIF89a" + b"\0" * 10, bytes(rng.randrange(256) for _ in range(40)),
                           PNG_1X1[:20]])
        parts.append((name, rng.choice(["a.png", "", "../../x.png", "\u00e9.png"]), data))
    rng.shuffle(parts)
    out = bytearray()
    for name, filename, data in parts:
        out += f"--{boundary}\r\n".encode()
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += f"Content-Disposition: {disposition}\r\n".encode()
        if filename is not None:
            out += b"Content-Type: image/png\r\n"
        out += b"\r\n" + data + b"\r\n"
    if rng.random() < 0.85:
        out += f"--{boundary}--\r\n".encode()
    body = bytes(out)
    if rng.random() < 0.1:
        body = body[: rng.randrange(len(body) + 1)]
    ctype = rng.choice([f"multipart/form-data; boundary={boundary}", "multipart/form-data",
                        f'multipart/form-data; boundary="{boundary}"', "application/json", "multipart/mixed; boundary=x"])
    return body, ctype


def _config(rng: random.Random) -> bytes:
    kind = rng.randrange(14)
    leaf: dict[str, Any] = {"provider": "fake", "api_key": "sk-fuzz"}
    if kind == 0:
        return b"pc-fuzz"
    if kind == 1:
        return rng.choice([b"pc-unknown", _KEYISH[rng.randrange(len(_KEYISH))].encode()])
    if kind == 2:
        # 1300 levels is 63.7 KiB: within the HTTP parser's header limit (64 KiB), whose
        # refusal of a longer header is aiohttp's own plain-text 400 (docs/security.md).
        depth = rng.choice([50, 900, 1300])
        return b'{"strategy": {"mode": "fallback"}, "targets": [' * depth + msgspec.json.encode(leaf) + b"]}" * depth
    if kind == 3:
        return _field(rng)
    if kind == 4:
        return msgspec.json.encode({"provider": rng.choice(_KEYISH), "api_key": "sk-x"})
    if kind == 5:
        return msgspec.json.encode({"virtual_key": rng.choice([*_KEYISH, "vk-fuzz", "vk-nope"])})
    if kind == 6:
        return msgspec.json.encode({**leaf, "custom_host": rng.choice(
            ["http://169.254.169.254/latest", "https://example.com/v1?key=" + _KEYISH[0], "ftp://x", "http://[fd00::1]/", "\u00e9"])})
    if kind == 7:
        return msgspec.json.encode({**leaf, "override_params": {"size": _json_value(rng), "quality": _json_value(rng)}})
    if kind == 8:
        return msgspec.json.encode({"strategy": {"mode": rng.choice(["fallback", "loadbalance", "conditional", "x"])},
                                    "targets": [leaf, {"virtual_key": "vk-fuzz"}, _json_value(rng)]})
    if kind == 9:
        return msgspec.json.encode({**leaf, "retry": {"attempts": rng.choice([1, 2])}, "cache": {"mode": "simple"}})
    if kind == 10:
        return msgspec.json.encode({**leaf, "request_timeout": rng.choice([1, 10**20, -1, "x"])})
    return msgspec.json.encode(rng.choice([leaf, {"virtual_key": "vk-fuzz"}, _json_value(rng)]))


def _control_headers(rng: random.Random, sent: Sent) -> None:
    """The ``x-portkey-*`` headers (and ``Authorization``), each present or not, any bytes."""
    choice = rng.random()
    if choice < 0.55:
        sent.header("x-portkey-provider", rng.choice([b"fake", b"fake", b"nope", _KEYISH[0].encode(), _field(rng)]))
        sent.header("Authorization", rng.choice([b"Bearer sk-fuzz", b"Bearer " + _field(rng), _field(rng)]))
    elif choice < 0.75:
        sent.header("x-portkey-config", _config(rng))
    elif choice < 0.9:
        sent.header("x-portkey-virtual-key", rng.choice([b"vk-fuzz", b"vk-nope", _KEYISH[1].encode(), _field(rng)]))
    generators: list[tuple[str, Callable[[], bytes]]] = [
        ("x-portkey-metadata", lambda: rng.choice([b'{"team": "a"}', b'{"a": 1}', _field(rng), b'{"t": "\xff\xfe"}',
                                                    b'{"t": "' + b"\xe9" * 10 + b'"}', b"[" * 5000])),
        ("x-portkey-trace-id", lambda: rng.choice([b"trace-1", _field(rng), b"\xff\xfe\xfd", b"t" * 5000])),
        ("x-portkey-custom-host", lambda: rng.choice([b"http://169.254.169.254", b"https://example.com/v1?key=sk-abc",
                                                       b"http://10.1.2.3/v1", _field(rng), b"http://user:pw@example.com"])),
        ("x-portkey-request-timeout", lambda: rng.choice([b"1000", b"0", b"-1", b"\xc2\xb9\xc2\xb2", b"9" * 400, _field(rng)])),
        ("x-portkey-strict-params", lambda: rng.choice([b"true", b"false", _field(rng)])),
        ("x-portkey-forward-headers", lambda: rng.choice([b"x-team", b"authorization, host", b",,,", _field(rng)])),
        ("x-portkey-cache-force-refresh", lambda: rng.choice([b"true", _field(rng)])),
        ("x-portkey-api-key", lambda: _field(rng)),
        ("x-portkey-" + rng.choice(["azure-resource-name", "aws-region", "vertex-project-id", "openai-organization"]),
         lambda: _field(rng)),
    ]
    for name, make in generators:
        if rng.random() < 0.2:
            sent.header(name, make())


def _encode(rng: random.Random, sent: Sent) -> None:
    """Sometimes a ``Content-Encoding``: a real gzip or deflate body, a bomb, or a lie."""
    if rng.random() > 0.15:
        return
    kind = rng.randrange(6)
    if kind == 0:
        sent.header("Content-Encoding", "gzip")
        sent.body = gzip.compress(sent.body)
    elif kind == 1:
        sent.header("Content-Encoding", "deflate")
        sent.body = zlib.compress(sent.body)
    elif kind == 2:
        sent.header("Content-Encoding", "gzip")
        sent.body = gzip.compress(b'{"prompt": "' + b"a" * (4 * 1024 * 1024) + b'"}')
    else:
        sent.header("Content-Encoding", rng.choice(["gzip", "deflate", "br", "zstd", "identity", "x-unknown", "gzip, gzip"]))


def draw(rng: random.Random) -> Sent:
    """One malformed (or now and then well-formed) request."""
    route = rng.random()
    if route < 0.35:
        sent = Sent("POST", "/v1/images/generations", "generation")
        _control_headers(rng, sent)
        sent.header("Content-Type", rng.choice(["application/json", "application/json; charset=utf-8", "text/plain",
                                                "application/json; charset=latin-1", "multipart/form-data"]))
        sent.body = _json_body(rng)
    elif route < 0.6:
        sent = Sent("POST", "/v1/images/edits", "edit")
        _control_headers(rng, sent)
        sent.body, ctype = _multipart(rng)
        sent.header("Content-Type", ctype)
    elif route < 0.95:
        method = _pick(rng, _METHODS)
        sent = Sent(method, _pick(rng, _PATHS) + rng.choice(["", "", "?limit=2", "?a=%00&b=%ff", "?" + "q" * 3000]),
                    "passthrough")
        _control_headers(rng, sent)
        if rng.random() < 0.5:
            sent.header("Content-Type", rng.choice(["application/json", "application/octet-stream", "text/plain"]))
            sent.body = rng.choice([b"", b'{"a": 1}', _json_body(rng), bytes(rng.randrange(256) for _ in range(200))])
        sent.chunked = bool(sent.body) and rng.random() < 0.3
        if rng.random() < 0.2:
            sent.header("Accept-Encoding", rng.choice(["gzip", "deflate", "br", "identity", "x"]))
    else:
        sent = Sent(rng.choice(["GET", "POST", "DELETE"]), _pick(rng, _PATHS), "other")
        _control_headers(rng, sent)
    _encode(rng, sent)
    return sent


# -- a run -----------------------------------------------------------------------------------


class Summary:
    """What a run found: requests sent, answers by status class, and each problem with its request."""

    def __init__(self) -> None:
        self.sent = 0
        self.by_status: dict[str, int] = {}
        self.hangs = 0
        self.server_errors = 0
        self.problems: list[tuple[Sent, str]] = []
        self.seconds = 0.0

    def add(self, sent: Sent, answer: Answer | None) -> str | None:
        self.sent += 1
        if answer is None:
            self.hangs += 1
        else:
            key = f"{answer.status // 100}xx"
            self.by_status[key] = self.by_status.get(key, 0) + 1
            if answer.status >= 500:
                self.server_errors += 1
        found = problem(sent, answer)
        if found is not None:
            self.problems.append((sent, found))
        return found


def run(servers: Servers, count: int, seed: int = 0, *, timeout: float = TIMEOUT,
        on_problem: Callable[[Sent, str], None] | None = None) -> Summary:
    """Send ``count`` requests drawn from ``random.Random(seed)``, one at a time."""
    rng = random.Random(seed)
    summary = Summary()
    t0 = time.perf_counter()
    for _ in range(count):
        sent = draw(rng)
        found = summary.add(sent, send(servers.port, sent, timeout))
        if found is not None and on_problem is not None:
            on_problem(sent, found)
    summary.seconds = time.perf_counter() - t0
    return summary
