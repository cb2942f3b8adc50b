"""The benchmark scenarios and the targets each one is held to."""
from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field

from checks import CachedImages, Check, SameEvents, UpstreamBody

GATEWAY_HEADERS = {
    "Content-Type": "application/json",
    "x-portkey-provider": "openai",
    "Authorization": "Bearer sk-bench",
}
#: In a header value: the fake upstream's base URL (``http://127.0.0.1:<port>``), known once it runs.
UPSTREAM = "{upstream}"


@dataclass(frozen=True)
class Scenario:
    """One kind of request, sent through the gateway and straight to the upstream."""

    name: str
    title: str
    path: str
    body: bytes
    connections: int
    #: Expected answer: content type and a lower bound on its size.
    content_type: str
    min_bytes: int
    #: Most gateway CPU milliseconds one request may cost.
    cpu_ms_target: float
    #: Most the gateway may add to the median latency (milliseconds), if held to it.
    added_p50_ms_target: float | None = None
    #: Big bodies: watch the gateway's memory across the run.
    large: bool = False
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=lambda: dict(GATEWAY_HEADERS))
    #: What the answer must be (checked once per server before it is measured); see checks.py.
    check: Check = UpstreamBody()
    #: The scenario this one is the same request as, plus one feature; its CPU per request
    #: is held to that one's plus ``compare_max`` (a fraction) in the report.
    compare_with: str | None = None
    compare_max: float | None = None
    #: A Server-Sent Events answer: also measure the time to its first event (see firstevent.py),
    #: through the gateway and straight to the upstream, held to ``added_first_event_ms_target``.
    first_event: bool = False
    added_first_event_ms_target: float | None = None

    def bound(self, upstream_url: str) -> Scenario:
        """This scenario with ``UPSTREAM`` in its header values replaced by ``upstream_url``."""
        if not any(UPSTREAM in v for v in self.headers.values()):
            return self
        return dataclasses.replace(self, headers={k: v.replace(UPSTREAM, upstream_url)
                                                  for k, v in self.headers.items()})


SMALL_BODY = b'{"model":"dall-e-3","prompt":"a fox"}'
B64_BODY = b'{"model":"dall-e-3","prompt":"a fox","response_format":"b64_json"}'
PNG_BODY = b'{"prompt":"a fox"}'
#: The fake answers ~300 bytes of b64_json for this prompt (a marker in the prompt: the
#: gateway maps parameters such as ``quality`` to what the model takes, never the prompt).
SMALL_B64_BODY = b'{"model":"dall-e-3","prompt":"a tiny fox","response_format":"b64_json"}'
#: The fake answers a ``url`` on its own address for this prompt, so the gateway can fetch the
#: image into its store when it caches the answer.
STORED_URL_BODY = b'{"model":"dall-e-3","prompt":"a stored fox"}'

#: OpenAI's streamed generation: three partial images, then the completed one.
STREAM_BODY = b'{"model":"gpt-image-1","prompt":"a fox","stream":true,"partial_images":3}'

#: A fixed boundary, so the form is built once and wrk sends the same bytes every time.
EDIT_BOUNDARY = "bench-boundary-7f3a9c2e5d1b4086"
#: The edit's input image: PNG-signature-prefixed random bytes (incompressible), ~4 MB.
EDIT_IMAGE_BYTES = 4_000_000


def _form_part(disposition: str, value: bytes, content_type: str = "") -> bytes:
    """One part of a multipart form, closed by its CRLF."""
    head = f"--{EDIT_BOUNDARY}\r\nContent-Disposition: form-data; {disposition}\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    return (head + "\r\n").encode() + value + b"\r\n"


def _edit_form(image_bytes: int) -> bytes:
    """An edit form as OpenAI's SDK shapes it: ``model``, ``prompt``, then one ``image`` file."""
    # Seeded: the same bytes in every session (and no 4 MB read from the kernel's entropy).
    image = b"\x89PNG\r\n\x1a\n" + random.Random(4).randbytes(image_bytes - 8)
    return (_form_part('name="model"', b"gpt-image-1") + _form_part('name="prompt"', b"a fox wearing a hat")
            + _form_part('name="image"; filename="fox.png"', image, "image/png")
            + f"--{EDIT_BOUNDARY}--\r\n".encode())


EDIT_BODY = _edit_form(EDIT_IMAGE_BYTES)
EDIT_HEADERS = {**GATEWAY_HEADERS, "Content-Type": f"multipart/form-data; boundary={EDIT_BOUNDARY}"}


def _config_headers(config: bytes) -> dict[str, str]:
    """Headers of a request routed by an inline config (no x-portkey-provider)."""
    return {"Content-Type": "application/json", "x-portkey-config": config.decode()}


#: The issue's fallback shape: two OpenAI targets, the first answers (routing overhead only).
FALLBACK_CONFIG = (b'{"strategy":{"mode":"fallback"},"targets":['
                   b'{"provider":"openai","api_key":"sk-bench","override_params":{"model":"dall-e-3"}},'
                   b'{"provider":"openai","api_key":"sk-bench","override_params":{"model":"dall-e-2"}}]}')
#: Every request after the first is a cache hit (memory backend, or Redis with --redis).
CACHE_CONFIG = b'{"provider":"openai","api_key":"sk-bench","cache":{"mode":"simple","max_age":3600}}'
#: The small request, with the provider's base URL replaced by the fake's (below a prefix it
#: counts, so the check sees that the custom host was used; the fake runs on loopback, which
#: the bench's settings list in ``security.trusted_hosts``).
CUSTOM_HOST_HEADERS = {**GATEWAY_HEADERS, "x-portkey-custom-host": UPSTREAM + "/custom-host/v1"}

SCENARIOS = (
    Scenario("small_c1", "small JSON (url), c=1", "/v1/images/generations", SMALL_BODY, 1,
             "application/json", 150, cpu_ms_target=0.35, added_p50_ms_target=0.5),
    Scenario("small_c32", "small JSON (url), c=32", "/v1/images/generations", SMALL_BODY, 32,
             "application/json", 150, cpu_ms_target=0.35),
    # The same request naming the provider's host: within 5 % of the same without it.
    Scenario("small_custom_host_c32", "small JSON with x-portkey-custom-host, c=32", "/v1/images/generations",
             SMALL_BODY, 32, "application/json", 150, cpu_ms_target=0.3675, headers=CUSTOM_HOST_HEADERS,
             check=UpstreamBody(via_custom_host=True), compare_with="small_c32", compare_max=0.05),
    Scenario("b64_c8", "1.5 MB b64_json, c=8", "/v1/images/generations", B64_BODY, 8,
             "application/json", 1_500_000, cpu_ms_target=2.0, large=True),
    Scenario("png_c8", "1 MiB image/png passthrough, c=8", "/v1/passthrough-png", PNG_BODY, 8,
             "image/png", 1024 * 1024, cpu_ms_target=1.0, large=True,
             check=UpstreamBody(generation=False)),  # passthrough: relayed byte for byte
    # Routing: held to the small-request figure plus 10 %.
    Scenario("fallback_c32", "small JSON through a fallback config, c=32", "/v1/images/generations", SMALL_BODY, 32,
             "application/json", 150, cpu_ms_target=0.385, headers=_config_headers(FALLBACK_CONFIG),
             compare_with="small_c32", compare_max=0.10),
    # Cache hits: a small hit must cost less than a small miss; a 1.5 MB hit at most 2 ms.
    # Not the upstream's bytes (a cached url answer points at the gateway's image store):
    # checked as images answers whose hits are identical.
    Scenario("cache_small_c32", "small JSON cache hit, c=32", "/v1/images/generations", SMALL_B64_BODY, 32,
             "application/json", 150, cpu_ms_target=0.35, headers=_config_headers(CACHE_CONFIG),
             check=CachedImages()),
    Scenario("cache_url_c32", "small JSON (url) cache hit, c=32", "/v1/images/generations", STORED_URL_BODY, 32,
             "application/json", 100, cpu_ms_target=0.35, headers=_config_headers(CACHE_CONFIG),
             check=CachedImages()),
    Scenario("cache_b64_c8", "1.5 MB b64_json cache hit, c=8", "/v1/images/generations", B64_BODY, 8,
             "application/json", 1_500_000, cpu_ms_target=2.0, large=True, headers=_config_headers(CACHE_CONFIG),
             check=CachedImages()),
    # An edit: a 4 MB multipart upload, forwarded byte for byte, answered with the 1.5 MB
    # b64_json.  No target was set for it: its CPU bound is a regression bound, a little above
    # what it cost when it was added (11.2-12.2 ms in short runs; see docs/performance.md).
    Scenario("edit_c8", "4 MB multipart edit, 1.5 MB b64_json, c=8", "/v1/images/edits", EDIT_BODY, 8,
             "application/json", 1_500_000, cpu_ms_target=13.0, large=True, headers=EDIT_HEADERS,
             check=UpstreamBody(sent_as_is=True)),
    # A streamed generation: 3 partial images and the completed one, relayed event by event.
    # Held to the bound on the time to the first event (wrk times whole answers); its
    # CPU bound is a regression bound, like the edit's (0.51-0.54 ms when it was added).
    Scenario("stream_c1", "streamed generation (4 SSE events), c=1", "/v1/images/generations", STREAM_BODY, 1,
             "text/event-stream", 12_000, cpu_ms_target=0.6, check=SameEvents(), first_event=True,
             added_first_event_ms_target=1.0),
)

#: Gateway CPU milliseconds per request of other gateways on the same kind of
#: machine, one core each (small / b64 / png), for the report.
REFERENCES = {
    "60-line aiohttp forwarder": (0.24, 1.43, 0.78),
    "Portkey gateway (Node)": (1.12, 33.0, 21.0),
    "LiteLLM proxy": (10.1, 22.0, 13.0),
}
