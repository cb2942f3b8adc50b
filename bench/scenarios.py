"""The benchmark scenarios and the targets each one is held to."""
from __future__ import annotations

from dataclasses import dataclass, field

GATEWAY_HEADERS = {
    "Content-Type": "application/json",
    "x-portkey-provider": "openai",
    "Authorization": "Bearer sk-bench",
}


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


SMALL_BODY = b'{"model":"dall-e-3","prompt":"a fox"}'
B64_BODY = b'{"model":"dall-e-3","prompt":"a fox","response_format":"b64_json"}'
PNG_BODY = b'{"prompt":"a fox"}'
SMALL_B64_BODY = b'{"model":"dall-e-3","prompt":"a fox","response_format":"b64_json","quality":"low"}'

def _config_headers(config: bytes) -> dict[str, str]:
    """Headers of a request routed by an inline config (no x-portkey-provider)."""
    return {"Content-Type": "application/json", "x-portkey-config": config.decode()}


#: The issue's fallback shape: two OpenAI targets, the first answers (routing overhead only).
FALLBACK_CONFIG = (b'{"strategy":{"mode":"fallback"},"targets":['
                   b'{"provider":"openai","api_key":"sk-bench","override_params":{"model":"dall-e-3"}},'
                   b'{"provider":"openai","api_key":"sk-bench","override_params":{"model":"dall-e-2"}}]}')
#: Every request after the first is a cache hit (memory backend, or Redis with --redis).
CACHE_CONFIG = b'{"provider":"openai","api_key":"sk-bench","cache":{"mode":"simple","max_age":3600}}'

SCENARIOS = (
    Scenario("small_c1", "small JSON (url), c=1", "/v1/images/generations", SMALL_BODY, 1,
             "application/json", 150, cpu_ms_target=0.35, added_p50_ms_target=0.5),
    Scenario("small_c32", "small JSON (url), c=32", "/v1/images/generations", SMALL_BODY, 32,
             "application/json", 150, cpu_ms_target=0.35),
    Scenario("b64_c8", "1.5 MB b64_json, c=8", "/v1/images/generations", B64_BODY, 8,
             "application/json", 1_500_000, cpu_ms_target=2.0, large=True),
    Scenario("png_c8", "1 MiB image/png passthrough, c=8", "/v1/passthrough-png", PNG_BODY, 8,
             "image/png", 1024 * 1024, cpu_ms_target=1.0, large=True),
    # Routing: held to the small-request figure plus 10 %.
    Scenario("fallback_c32", "small JSON through a fallback config, c=32", "/v1/images/generations", SMALL_BODY, 32,
             "application/json", 150, cpu_ms_target=0.385, headers=_config_headers(FALLBACK_CONFIG)),
    # Cache hits: a small hit must cost less than a small miss; a 1.5 MB hit at most 2 ms.
    Scenario("cache_small_c32", "small JSON cache hit, c=32", "/v1/images/generations", SMALL_B64_BODY, 32,
             "application/json", 150, cpu_ms_target=0.35, headers=_config_headers(CACHE_CONFIG)),
    Scenario("cache_b64_c8", "1.5 MB b64_json cache hit, c=8", "/v1/images/generations", B64_BODY, 8,
             "application/json", 1_500_000, cpu_ms_target=2.0, large=True, headers=_config_headers(CACHE_CONFIG)),
)

#: Gateway CPU milliseconds per request of other gateways on the same kind of
#: machine, one core each (small / b64 / png), for the report.
REFERENCES = {
    "60-line aiohttp forwarder": (0.24, 1.43, 0.78),
    "Portkey gateway (Node)": (1.12, 33.0, 21.0),
    "LiteLLM proxy": (10.1, 22.0, 13.0),
}
