"""A fast fake OpenAI upstream for the benchmark: raw asyncio HTTP/1.1 on loopback.

It has to cost far less CPU than the gateway so that the benchmark measures the
gateway, not the fake, so it is a hand-written keep-alive HTTP/1.1 server
with every answer prebuilt at start-up (no framework, no per-request
encoding).  Routes, any method:

* ``/v1/images/generations``: a ~200-byte JSON answer with an image ``url``
  on OpenAI's image host, or, when the request body mentions ``b64_json``, a
  ~1.5 MB answer ``{"created": .., "data": [{"b64_json": "<base64>"}]}``
  (~300 bytes when the prompt is ``a tiny fox``), or, for the prompt
  ``a stored fox``, a ~200-byte answer whose ``url`` is on this fake itself
  (so a gateway that stores the images of a cached answer can fetch them);
  markers are in the prompt, which the gateway never rewrites (unlike, say,
  ``quality``, which it maps to what the model takes);
  when the body asks ``"stream":true``, Server-Sent Events in OpenAI's shape
  (``partial_images`` partial-image events, at most 3, then the completed
  one, each with a few KB of ``b64_json``), all sent at once, chunked;
* ``/v1/images/edits``: the ~1.5 MB ``b64_json`` answer, whatever the
  (multipart) body; the last body received is kept, and its size and SHA-256
  are given at ``/bench/counts``, so a check can see that the gateway sent the
  client's bytes as they were;
* ``/bench-images/fox.png``: the small PNG those self-hosted URLs point at;
* any of these below ``/custom-host``: the same answer, counted (the bench's
  ``x-portkey-custom-host`` scenario points the gateway there, and reads the
  count at ``/bench/counts`` to see that the gateway really used it);
* ``/bench/counts``: those counters, as JSON;
* ``/v1/passthrough-png``: 1 MiB of ``image/png`` bytes (what a native
  provider endpoint relayed by passthrough would answer);
* anything else: 404.

Run ``python fake_upstream.py [--port N]``: the first line printed on stdout
is the port it listens on.  uvloop is used when installed.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import sys

GENERATIONS = "/v1/images/generations"
EDITS = "/v1/images/edits"
PASSTHROUGH_PNG = "/v1/passthrough-png"
#: Where the self-hosted image URLs point.
IMAGE_PATH = "/bench-images/fox.png"
#: A path prefix that answers like the root and is counted (the custom-host scenario).
CUSTOM_HOST_PREFIX = "/custom-host"
COUNTS = "/bench/counts"
#: Prompt markers (see the module docstring).
TINY_PROMPT = b'"a tiny fox"'
STORED_PROMPT = b'"a stored fox"'
#: A streamed request (compact JSON, as the bench and the gateway encode it).
STREAM_MARKERS = (b'"stream":true', b'"stream": true')
CREATED = 1_700_000_000
#: 1,125,000 raw bytes encode to exactly 1,500,000 base64 characters.
B64_RAW_BYTES = 1_125_000
PNG_BYTES = 1024 * 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Events of a streamed answer: this many partial images at most, then the completed one.
STREAM_PARTIALS = 3
#: Raw bytes of each streamed image (about 4 KB of base64: what a low-quality partial takes).
STREAM_IMAGE_BYTES = 3_000


def _response(body: bytes, content_type: str, status: str = "200 OK") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "x-request-id: req_bench\r\n"
        "openai-processing-ms: 12\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + body


def _chunked_response(chunks: list[bytes], content_type: str) -> bytes:
    """A chunked answer, one chunk per item (an SSE server writes one event per chunk)."""
    head = (
        "HTTP/1.1 200 OK\r\n"
        f"Content-Type: {content_type}\r\n"
        "Transfer-Encoding: chunked\r\n"
        "Cache-Control: no-cache\r\n"
        "x-request-id: req_bench\r\n"
        "openai-processing-ms: 12\r\n"
        "\r\n"
    )
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks)
    return head.encode("latin-1") + body + b"0\r\n\r\n"


def small_json_body() -> bytes:
    """About 200 bytes: what dall-e-3 answers with ``response_format=url``."""
    item = {
        "url": "https://oaidalleapiprodscus.blob.core.windows.net/private/org-bench/user-bench/"
               "img-0123456789abcdef.png?st=2025-01-01T00%3A00%3A00Z&sig=abc123",
        "revised_prompt": "A fox",
    }
    return json.dumps({"created": CREATED, "data": [item]}, separators=(",", ":")).encode()


def self_url_json_body(base_url: str) -> bytes:
    """About 200 bytes: a ``url`` answer whose image is served by this fake (``IMAGE_PATH``)."""
    item = {"url": f"{base_url}{IMAGE_PATH}?st=2025-01-01T00%3A00%3A00Z&sig=abc123", "revised_prompt": "A stored fox"}
    return json.dumps({"created": CREATED, "data": [item]}, separators=(",", ":")).encode()


def tiny_png() -> bytes:
    """A tiny image (the PNG signature and zeros): what the small answers carry or point at."""
    return PNG_SIGNATURE + b"\x00" * 150


def small_b64_json_body() -> bytes:
    """About 300 bytes: a tiny image as ``b64_json`` (asked with the prompt ``a tiny fox``)."""
    png = base64.b64encode(tiny_png()).decode()
    return json.dumps({"created": 1700000000, "data": [{"b64_json": png}]}).encode()


def b64_json_body() -> bytes:
    """About 1.5 MB: one image as ``b64_json`` (random bytes, so incompressible)."""
    raw = PNG_SIGNATURE + os.urandom(B64_RAW_BYTES - len(PNG_SIGNATURE))
    b64 = base64.b64encode(raw).decode("ascii")
    return json.dumps({"created": CREATED, "data": [{"b64_json": b64}]}, separators=(",", ":")).encode()


def stream_events(partials: int) -> list[bytes]:
    """OpenAI's ``stream: true`` answer for ``gpt-image-1``: ``partials`` partial-image
    events, then the completed one with ``usage`` (``event: <type>\\ndata: <json>\\n\\n``)."""
    common = {"background": "opaque", "created_at": CREATED, "output_format": "png", "quality": "high",
              "size": "1024x1024"}
    out = []
    for i in range(partials + 1):
        b64 = base64.b64encode(PNG_SIGNATURE + os.urandom(STREAM_IMAGE_BYTES - len(PNG_SIGNATURE))).decode()
        if i < partials:
            kind = "image_generation.partial_image"
            event = {"type": kind, "b64_json": b64, **common, "partial_image_index": i}
        else:
            kind = "image_generation.completed"
            event = {"type": kind, "b64_json": b64, **common,
                     "usage": {"input_tokens": 9, "input_tokens_details": {"image_tokens": 0, "text_tokens": 9},
                               "output_tokens": 4160, "total_tokens": 4169}}
        data = json.dumps(event, separators=(",", ":"))
        out.append(f"event: {kind}\ndata: {data}\n\n".encode())
    return out


def png_body() -> bytes:
    """1 MiB of PNG-looking bytes."""
    return PNG_SIGNATURE + os.urandom(PNG_BYTES - len(PNG_SIGNATURE))


class Answers:
    """Every answer the fake gives, encoded once."""

    def __init__(self, base_url: str) -> None:
        self.small = _response(small_json_body(), "application/json")
        self.b64 = _response(b64_json_body(), "application/json")
        self.small_b64 = _response(small_b64_json_body(), "application/json")
        self.self_url = _response(self_url_json_body(base_url), "application/json")
        self.image = _response(tiny_png(), "image/png")
        self.png = _response(png_body(), "image/png")
        #: By the number of partial images asked (0 to STREAM_PARTIALS).
        self.streams = [_chunked_response(stream_events(n), "text/event-stream") for n in range(STREAM_PARTIALS + 1)]
        self.not_found = _response(b'{"error":{"message":"not found"}}', "application/json", "404 Not Found")
        #: Requests answered below ``CUSTOM_HOST_PREFIX``.
        self.custom_host_requests = 0
        #: Edit requests, and the last one's body (hashed only when the counters are asked).
        self.edit_requests = 0
        self.last_edit: bytes | bytearray = b""

    def pick(self, path: str, body: bytes | bytearray) -> bytes:
        """The answer for a request to ``path`` with ``body``."""
        if path.startswith(CUSTOM_HOST_PREFIX):
            self.custom_host_requests += 1
            path = path[len(CUSTOM_HOST_PREFIX):]
        if path == GENERATIONS:
            if any(m in body for m in STREAM_MARKERS):
                return self.streams[_partial_images(body)]
            if b"b64_json" in body:
                return self.small_b64 if TINY_PROMPT in body else self.b64
            return self.self_url if STORED_PROMPT in body else self.small
        if path == EDITS:
            # Kept by reference (never copied) and hashed only when asked: hashing a 4 MB upload
            # per request would take ~2 ms of the load core, which wrk and the fake share.
            self.edit_requests += 1
            self.last_edit = body
            return self.b64
        if path == PASSTHROUGH_PNG:
            return self.png
        if path == IMAGE_PATH:
            return self.image
        if path == COUNTS:
            counts = {"custom_host_requests": self.custom_host_requests, "edit_requests": self.edit_requests,
                      "last_edit_bytes": len(self.last_edit),
                      "last_edit_sha256": hashlib.sha256(self.last_edit).hexdigest()}
            return _response(json.dumps(counts).encode(), "application/json")
        return self.not_found


def _partial_images(body: bytes | bytearray) -> int:
    """The request's ``partial_images`` (0 when absent), within what the fake streams."""
    at = body.find(b'"partial_images":')
    if at < 0:
        return 0
    digits = bytes(body[at + 17:at + 20]).lstrip()
    n = int(digits[:1]) if digits[:1].isdigit() else 0
    return min(n, STREAM_PARTIALS)


def _dechunk(buf: bytearray, pos: int) -> tuple[int, bytes]:
    """Decode a chunked body starting at ``pos``: (end offset, body), or (-1, b"") if incomplete."""
    out = bytearray()
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return -1, b""
        size = int(bytes(buf[pos:eol]).split(b";", 1)[0], 16)
        pos = eol + 2
        if size == 0:
            # No trailers: a bare CRLF; with trailers: up to the blank line.
            if buf[pos:pos + 2] == b"\r\n":
                return pos + 2, bytes(out)
            end = buf.find(b"\r\n\r\n", pos)
            return (-1, b"") if end < 0 else (end + 4, bytes(out))
        if len(buf) < pos + size + 2:
            return -1, b""
        out += buf[pos:pos + size]
        pos += size + 2


class HttpProtocol(asyncio.Protocol):
    """One keep-alive client connection: parse requests, write prebuilt answers."""

    def __init__(self, answers: Answers) -> None:
        self.answers = answers
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        #: The head of a request whose body is still arriving: (path, body start, chunked,
        #: Content-Length, close), so a large body's head is parsed once, not per read.
        self.head: tuple[str, int, bool, int, bool] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        """Answer every complete request in the buffer (pipelining works too)."""
        self.buf += data
        while self.transport is not None:
            if self.head is None:
                self.head = self._parse_head()
                if self.head is None:
                    return
            path, start, chunked, length, close = self.head
            if chunked:
                # Decoded from the start on every read: fine for the small chunked bodies the
                # bench sends (the gateway gives uploads a Content-Length).
                end, body = _dechunk(self.buf, start)
                if end < 0:
                    return
                del self.buf[:end]
            else:
                # The whole Content-Length is read before answering (a 4 MB upload arrives
                # in many reads); then the buffer becomes the body without a copy.
                end = start + length
                if len(self.buf) < end:
                    return
                body = self.buf
                self.buf = body[end:]  # the next, pipelined request: usually nothing
                del body[end:]
                del body[:start]  # a bytearray drops its front in place
            self.head = None
            self.transport.write(self.answers.pick(path, body))
            if close:
                self.transport.close()
                return

    def _parse_head(self) -> tuple[str, int, bool, int, bool] | None:
        """The head of the request at the start of the buffer, once all of it has arrived."""
        head_end = self.buf.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        lines = bytes(self.buf[:head_end]).decode("latin-1").split("\r\n")
        _method, target, _version = lines[0].split(" ", 2)
        length, chunked, close = 0, False, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value.lower()
            elif name == "connection":
                close = value.strip().lower() == "close"
        return target.split("?", 1)[0], head_end + 4, chunked, length, close

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(host: str, port: int) -> None:
    """Listen, print the port, serve until killed."""
    holder: list[Answers] = []
    loop = asyncio.get_running_loop()
    # Nobody connects before the port is printed, and the answers are built by then.
    server = await loop.create_server(lambda: HttpProtocol(holder[0]), host, port, backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    holder.append(Answers(f"http://{f'[{host}]' if ':' in host else host}:{bound}"))
    print(bound, flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    args = p.parse_args(argv)
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.host, args.port))
    else:
        uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
