"""The Provider interface every provider plugin implements.

A provider turns one target's call into upstream HTTP and the upstream answer
into an :class:`~gateway.outcome.Outcome`.  It declares what it can do
(:class:`Capabilities`), where its key goes (:meth:`Provider.auth_headers`),
how passthrough paths map to its URLs (:meth:`Provider.proxy_url`), and how its
errors read (:meth:`Provider.error_from_response`).  The core owns the HTTP
client, timeouts, retries, caching and relaying; a provider never creates a
session.
"""
from __future__ import annotations

import inspect
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp
import msgspec
from multidict import CIMultiDict

from gateway import headers as h
from gateway.context import IMAGES_GENERATIONS, PROXY
from gateway.errors import BadRequest, GatewayError, ProviderError, UpstreamError
from gateway.outcome import Outcome
from gateway.settings import ProviderSettings
from gateway.ssrf import check_custom_host
from gateway.targets import located

if TYPE_CHECKING:  # pragma: no cover
    from gateway.context import RequestContext
    from gateway.generation import GenerationPlan, GenerationRequest, GenerationResult
    from gateway.targets import Target

__all__ = [
    "IMAGES_GENERATIONS", "PROXY", "Call", "Capabilities", "ModelCapabilities", "NoOptions",
    "Provider", "UpstreamRequest",
]

#: Largest error body read from a provider to build an error message.
MAX_ERROR_BODY = 256 * 1024
#: OpenAI-style error codes meaning the prompt or image was refused on content grounds.
CONTENT_POLICY_CODES = frozenset({"content_policy_violation", "moderation_blocked", "content_filter"})


class ModelCapabilities(msgspec.Struct, frozen=True, kw_only=True):
    """What one model accepts.  ``size`` maps onto exactly one of: ``sizes``
    (a list of ``WxH``), ``aspect_ratios`` (``W:H``), or a range of sides
    (``min_side``/``max_side``/``side_multiple``/``min_pixels``/``max_pixels``);
    declaring none leaves ``size`` as sent."""

    sizes: tuple[str, ...] = ()
    aspect_ratios: tuple[str, ...] = ()
    min_side: int | None = None
    max_side: int | None = None
    side_multiple: int = 1
    min_pixels: int | None = None
    max_pixels: int | None = None
    #: Images one upstream call can make; more are made by parallel calls.
    max_n: int = 1
    #: Images one request may ask for in all.
    max_images: int = 10
    #: Quality tiers and styles the model takes; ``()`` none, None any (passed unchecked).
    qualities: tuple[str, ...] | None = ()
    styles: tuple[str, ...] | None = ()
    #: Native parameters this model takes (``steps``, ``seed``, ...); None: the provider's
    #: ``Capabilities.parameters``.
    parameters: frozenset[str] | None = None
    #: ``response_format`` values the upstream API itself takes (OpenAI-style APIs);
    #: ``()`` when it has no such parameter.  The gateway converts to what was asked either way.
    response_formats: tuple[str, ...] = ()


class Capabilities(msgspec.Struct, frozen=True, kw_only=True):
    """What a provider can serve."""

    endpoints: frozenset[str] = frozenset({IMAGES_GENERATIONS, PROXY})
    #: Unified (OpenAI-named) parameters the provider maps.
    parameters: frozenset[str] = frozenset({"prompt", "model", "n", "size", "response_format"})
    models: Mapping[str, ModelCapabilities] = msgspec.field(default_factory=dict)
    #: Capabilities of models not listed in ``models``; None passes their parameters unchecked.
    any_model: ModelCapabilities | None = None
    default_model: str | None = None
    #: Whether parameters outside ``parameters`` are forwarded as they are.
    passes_unknown_parameters: bool = False


class NoOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Options of a provider that takes none."""


class UpstreamRequest:
    """One HTTP request to a provider, as the provider built it."""

    __slots__ = ("method", "url", "headers", "body", "decompress")

    def __init__(
        self,
        method: str,
        url: str,
        headers: CIMultiDict[str] | dict[str, str],
        body: Any = None,
        decompress: bool = True,
    ) -> None:
        self.method = method
        self.url = url
        self.headers = headers if isinstance(headers, CIMultiDict) else CIMultiDict(headers)
        #: bytes, or a stream (passthrough), or None.
        self.body = body
        #: False relays the provider's encoded bytes untouched (content-encoding kept).
        self.decompress = decompress


class Call:
    """One attempt at one leaf target: what a provider builds its request from."""

    __slots__ = ("ctx", "target", "provider", "upstream", "base_url", "options", "attempt", "cache", "generation",
                 "_decompressed")

    def __init__(self, ctx: RequestContext, target: Target, provider: Provider, attempt: int = 0) -> None:
        self.ctx = ctx
        self.target = target
        self.provider = provider
        self.attempt = attempt
        self.upstream: UpstreamRequest | None = None
        #: Set by the cache lookup on a miss this call leads (gateway.cache.service.Pending).
        self.cache: Any = None
        #: images.generations: the negotiated plan (gateway.generation.GenerationPlan).
        self.generation: GenerationPlan | None = None
        self._decompressed = True
        self.options = provider.parse_options(target)
        if target.custom_host:
            self.base_url = check_custom_host(target.custom_host, ctx.gateway.trusted_hosts)
        else:
            self.base_url = provider.base_url

    @property
    def api_key(self) -> str | None:
        return self.target.api_key

    @property
    def endpoint(self) -> str:
        return self.ctx.endpoint

    @property
    def timeout_ms(self) -> int | None:
        """This attempt's time limit (``x-portkey-request-timeout`` or the target's
        ``request_timeout``), for APIs that can be told how long to wait."""
        from gateway.routing import attempt_timeout_ms

        return attempt_timeout_ms(self.ctx, self.target)

    @property
    def strict_params(self) -> bool:
        """Strict parameter mode: unsupported values are a 400, not mapped to the nearest."""
        raw = self.ctx.headers.get(h.STRICT_PARAMS)
        if raw is not None:
            return h.truthy(raw)
        return bool(self.target.strict_params)

    async def fork(self, part: GenerationRequest) -> Call:
        """A sibling call for another upstream request of the same attempt (``n`` split
        over parallel calls); transform plugins see its request too."""
        sibling = Call.__new__(Call)
        for name in Call.__slots__:
            setattr(sibling, name, getattr(self, name))
        built = self.provider.build_generation(sibling, part)
        sibling.upstream = await built if inspect.isawaitable(built) else built
        chain = self.ctx.gateway.chain
        if chain.has_impls("gateway_transform_request"):
            await chain.gateway_transform_request(ctx=self.ctx, call=sibling)
        return sibling

    @property
    def params(self) -> dict[str, Any]:
        """The unified request body with the target's ``override_params`` merged in."""
        params = self.ctx.params
        override = self.target.override_params
        return {**params, **override} if override else params

    def forwarded_headers(self) -> dict[str, str]:
        """Client headers the caller or config asked to forward (unified routes)."""
        names = self.ctx.headers.get(h.FORWARD_HEADERS)
        wanted = [n.strip() for n in names.split(",")] if names else (self.target.forward_headers or [])
        out = {}
        for name in wanted:
            low = name.lower()
            if not low or low.startswith(h.PREFIX) or low in h.REQUEST_DROP:
                continue
            value = self.ctx.headers.get(name)
            if value is not None:
                out[name] = value
        return out

    async def send(self, req: UpstreamRequest | None = None) -> aiohttp.ClientResponse:
        """Send ``req`` (default: ``self.upstream``); connection failures become 502."""
        req = req or self.upstream
        assert req is not None
        gw = self.ctx.gateway
        t0 = time.perf_counter()
        self._decompressed = req.decompress
        try:
            resp = await gw.session.request(
                req.method, req.url, headers=req.headers, data=req.body,
                allow_redirects=False, auto_decompress=req.decompress,
            )
        except aiohttp.ClientConnectorError as e:
            raise UpstreamError(
                f"Could not connect to {self.provider.name} at {e.host}:{e.port}: {e.os_error.strerror or e.os_error}",
                provider=self.provider.name, code="upstream_unreachable",
            ) from None
        except aiohttp.ServerDisconnectedError:
            raise UpstreamError(
                f"{self.provider.name} closed the connection before answering",
                provider=self.provider.name, code="upstream_disconnected",
            ) from None
        except aiohttp.ClientPayloadError as e:
            raise UpstreamError(f"Sending the request body to {self.provider.name} failed: {e}",
                                provider=self.provider.name, code="upstream_error") from None
        except aiohttp.ClientError as e:
            raise UpstreamError(
                f"Request to {self.provider.name} failed: {e.__class__.__name__}: {e}",
                provider=self.provider.name, code="upstream_error",
            ) from None
        finally:
            self.ctx.upstream_ms += (time.perf_counter() - t0) * 1000.0
        return resp

    async def read_body(self, resp: aiohttp.ClientResponse, limit: int | None = None) -> bytes:
        """Read a whole upstream body; a reset mid-body becomes a 502."""
        t0 = time.perf_counter()
        try:
            if limit is None:
                body = await resp.read()
            else:
                body = b""
                while len(body) < limit:
                    more = await resp.content.read(limit - len(body))
                    if not more:
                        break
                    body += more
            encoding = resp.headers.get("Content-Encoding", "").lower()
            if encoding in ("gzip", "deflate") and not self._decompressed:
                body = _inflate(body, encoding)
            return body
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as e:
            raise UpstreamError(
                f"{self.provider.name} closed the connection mid-response: {e.__class__.__name__}",
                provider=self.provider.name, code="upstream_reset",
            ) from None
        finally:
            self.ctx.upstream_ms += (time.perf_counter() - t0) * 1000.0


class Provider:
    """Base class of providers.  Subclasses set the class attributes and override
    the builders for the endpoints they serve."""

    #: The slug used in ``x-portkey-provider`` and configs.
    name: ClassVar[str] = ""
    #: The API base URL; a custom host or ``[providers.<name>] base_url`` replaces it.
    default_base_url: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities()
    #: Provider options accepted on a config target (``resource_name``, ...).
    Options: ClassVar[type[msgspec.Struct]] = NoOptions
    #: ``x-portkey-*`` request headers that set options: header name -> option name.
    header_options: ClassVar[Mapping[str, str]] = {}
    #: Settings under ``[providers.<name>]`` in the gateway's settings file.
    Settings: ClassVar[type[ProviderSettings]] = ProviderSettings
    #: Hosts (fnmatch patterns, https only) the provider serves generated images from;
    #: the gateway fetches image URLs from these and from the API's own host, no others.
    image_hosts: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings
        self.base_url = (settings.base_url or self.default_base_url).rstrip("/")
        self._no_options = self.Options() if _all_default(self.Options) else None

    # -- options -----------------------------------------------------------------
    def parse_options(self, target: Target) -> Any:
        """The target's provider options as ``self.Options`` (400 naming a bad one)."""
        if not target.options and self._no_options is not None:
            return self._no_options
        try:
            return msgspec.convert(target.options, self.Options, strict=False)
        except msgspec.ValidationError as e:
            raise BadRequest(
                f"Invalid option for provider {self.name!r}: {located(e, target.path)}",
                param="x-portkey-config", code="invalid_provider_option",
            ) from None

    def options_from_headers(self, headers: Any) -> dict[str, Any]:
        """Provider options given as ``x-portkey-*`` headers (a header-only request)."""
        out = {}
        for header, option in self.header_options.items():
            value = headers.get(header)
            if value is not None:
                out[option] = value
        return out

    # -- building requests -------------------------------------------------------
    def auth_headers(self, call: Call) -> dict[str, str]:
        """Where the provider key goes.  Default: ``Authorization: Bearer <key>``."""
        return {"Authorization": f"Bearer {call.api_key}"} if call.api_key else {}

    def proxy_url(self, call: Call, path: str, query_string: str) -> str:
        """The provider URL for passthrough ``/v1{path}``.  Default: base URL + path."""
        url = call.base_url + path
        return f"{url}?{query_string}" if query_string else url

    def supports(self, endpoint: str) -> bool:
        return endpoint in self.capabilities.endpoints

    def build_request(self, call: Call) -> Any:
        """The upstream request for ``call.endpoint`` (may be ``async``).

        images.generations: the core first maps the parameters onto the model's
        capabilities (``call.generation``), then asks for the first upstream call.
        """
        if call.endpoint == PROXY:
            return self.build_proxy(call)
        if call.endpoint == IMAGES_GENERATIONS:
            from gateway.negotiation import negotiate

            call.generation = negotiate(self, call)
            return self.build_generation(call, call.generation.parts[0])
        raise BadRequest(f"{call.endpoint} is not supported by provider {self.name!r}")

    def build_proxy(self, call: Call) -> UpstreamRequest:
        ctx = call.ctx
        headers = h.passthrough_headers(ctx.headers)
        headers.update(self.auth_headers(call))
        if ctx.request.content_length is not None:
            headers["Content-Length"] = str(ctx.request.content_length)
        # Without this aiohttp would ask for gzip on the client's behalf and the
        # relayed bytes would arrive encoded to a client that never asked.
        if not headers.get("Accept-Encoding"):
            headers["Accept-Encoding"] = "identity"
        return UpstreamRequest(
            ctx.request.method, self.proxy_url(call, ctx.path, ctx.request.query_string), headers,
            body=ctx.body_stream, decompress=False,
        )

    def build_generation(self, call: Call, req: GenerationRequest) -> UpstreamRequest:
        """The upstream request making ``req.n`` images (may be ``async``)."""
        raise BadRequest(f"images.generations is not supported by provider {self.name!r}")

    def parse_generation(self, call: Call, req: GenerationRequest, resp: aiohttp.ClientResponse,
                         body: bytes) -> GenerationResult:
        """A 2xx answer as images; raise ``MalformedAnswer`` (502) when it is not what the API
        documents, ``ContentPolicyViolation`` when the provider filtered the result."""
        raise NotImplementedError

    async def generate(self, call: Call, req: GenerationRequest) -> GenerationResult:
        """One upstream call of a generation: send ``call.upstream``, read, map errors, parse.

        Providers with a multi-step API (create, then poll) override this.
        """
        resp = await call.send()
        try:
            if not 200 <= resp.status < 300:
                body = await call.read_body(resp, MAX_ERROR_BODY)
                raise self.upstream_error(resp, body)
            body = await call.read_body(resp)
        finally:
            resp.release()
        result = self.parse_generation(call, req, resp, body)
        if result.headers is None:
            result.headers = h.relay_headers(resp.headers)
        return result

    def upstream_error(self, resp: aiohttp.ClientResponse, body: bytes) -> GatewayError:
        """A non-2xx answer as a gateway error carrying the upstream's headers (Retry-After)."""
        err = self.error_from_response(resp.status, body, resp.content_type)
        err.upstream_headers = h.relay_headers(resp.headers)  # type: ignore[attr-defined]
        return err

    # -- reading answers ---------------------------------------------------------
    async def execute(self, call: Call) -> Outcome:
        """Send ``call.upstream`` and turn the answer into an Outcome.

        Default: passthrough answers are relayed whatever their status (the
        provider's native API, unchanged); unified answers are relayed on 2xx
        and mapped to the OpenAI error shape otherwise.
        """
        if call.endpoint == IMAGES_GENERATIONS:
            from gateway.generation import execute_generation

            return await execute_generation(self, call)
        resp = await call.send()
        if call.endpoint == PROXY or 200 <= resp.status < 300:
            return Outcome(resp.status, h.relay_headers(resp.headers), relay=resp, provider=self.name)
        try:
            body = await call.read_body(resp, MAX_ERROR_BODY)
        finally:
            resp.release()
        err = self.error_from_response(resp.status, body, resp.content_type)
        outcome = Outcome.from_error(err, provider=self.name)
        outcome.headers = h.relay_headers(resp.headers)
        return outcome

    def error_from_response(self, status: int, body: bytes, content_type: str) -> GatewayError:
        """The provider's error as a gateway error with the provider's status and message.

        Default: OpenAI's ``{"error": {"message", "type", "param", "code"}}``,
        else the body's text.
        """
        message = type_ = param = code = None
        if body and "json" in content_type:
            try:
                data = msgspec.json.decode(body)
            except msgspec.DecodeError:
                data = None
            err = data.get("error") if isinstance(data, dict) else None
            if isinstance(err, dict):
                message, type_, param, code = err.get("message"), err.get("type"), err.get("param"), err.get("code")
            elif isinstance(err, str):
                message = err
            elif isinstance(data, dict) and isinstance(data.get("message"), str):
                message = data["message"]
        if not message:
            text = body[:500].decode("utf-8", "replace").strip()
            message = f"HTTP {status}" + (f": {text}" if text else "")
        if code in CONTENT_POLICY_CODES:
            code = "content_policy_violation"
        return ProviderError(
            f"{self.name} error: {message}", status=status, type=type_ if isinstance(type_, str) else None,
            param=param if isinstance(param, str) else None, code=code if isinstance(code, str) else None,
            provider=self.name,
        )


def _inflate(body: bytes, encoding: str) -> bytes:
    import zlib

    try:
        return zlib.decompress(body, 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
    except zlib.error:
        return body


def accept_encoding(value: str | None) -> str:
    """The client's Accept-Encoding limited to what the gateway can itself decode."""
    if not value:
        return "identity"
    kept = [p.strip() for p in value.split(",") if p.split(";")[0].strip().lower() in ("gzip", "deflate", "identity")]
    return ", ".join(kept) or "identity"


def _all_default(struct: type[msgspec.Struct]) -> bool:
    return len(struct.__struct_defaults__) == len(struct.__struct_fields__)
