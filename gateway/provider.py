"""The Provider interface every provider plugin implements: declarations and translations.

A provider *declares* what it can do (:class:`Capabilities`, per model
:class:`ModelCapabilities`), which options a target may carry (``Options``),
which hosts it serves images from, and which request and answer headers matter
to the cache.  It *translates*: where its key goes (:meth:`Provider.auth_headers`),
how passthrough paths map to its URLs (:meth:`Provider.proxy_url`), one
:class:`~gateway.generation.GenerationRequest` into an upstream request
(:meth:`Provider.build_generation`), one :class:`~gateway.generation.EditRequest`
(:meth:`Provider.build_edit`), the answer into images
(:meth:`Provider.parse_generation`) and its errors into gateway errors
(:meth:`Provider.error_from_response`).

The core runs the pipeline (:mod:`gateway.endpoints`) and owns the HTTP client,
timeouts, retries, caching and relaying.  A provider whose API takes several
requests (create, then poll) overrides :meth:`Provider.generate`, which is
handed the core's :class:`~gateway.upstream.Upstream` client.
"""
from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec
from multidict import CIMultiDict

from gateway import json_decode
from gateway import headers as h
from gateway.context import IMAGES_EDITS, IMAGES_GENERATIONS, PROXY
from gateway.errors import BadRequest, GatewayError, ProviderError
from gateway.settings import ProviderSettings
from gateway.targets import located

if TYPE_CHECKING:  # pragma: no cover
    from gateway.attempt import Attempt
    from gateway.generation import EditRequest, GenerationRequest, GenerationResult
    from gateway.pricing import Prices
    from gateway.targets import Target
    from gateway.upstream import Answer, Upstream

__all__ = [
    "IMAGES_EDITS", "IMAGES_GENERATIONS", "PROXY", "Capabilities", "ModelCapabilities", "NoOptions", "Provider", "UpstreamRequest",
]

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
    #: The long side over the short one at most this (3.0: between 1:3 and 3:1), with the sides' range.
    max_ratio: float | None = None
    #: ``size: "auto"`` is taken as it is (with ``sizes``, list ``"auto"`` there instead).
    auto_size: bool = False
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
    #: images.edits: input images one edit takes (``image`` / ``image[]``), and whether it
    #: takes a ``mask`` or needs one.  More images, or a mask it cannot use, is a 400
    #: (in lenient mode too: an edit without its inputs is another edit).
    input_images: int = 1
    mask: bool = False
    needs_mask: bool = False
    #: Where the model's mask marks the area to edit: ``transparent`` (OpenAI's: alpha 0),
    #: ``white`` or ``black``.  The core turns a client's OpenAI mask into this convention
    #: before ``build_edit`` (:func:`gateway.images.masks.mask_for`).
    mask_edits: str = "transparent"


class Capabilities(msgspec.Struct, frozen=True, kw_only=True):
    """What a provider can serve."""

    endpoints: frozenset[str] = frozenset({IMAGES_GENERATIONS, PROXY})
    #: Unified (OpenAI-named) parameters the provider maps.
    parameters: frozenset[str] = frozenset({"prompt", "model", "n", "size", "response_format"})
    models: Mapping[str, ModelCapabilities] = msgspec.field(default_factory=dict)
    #: Model families: ``(fnmatch pattern, capabilities)`` tried in order for a model not in
    #: ``models`` (``("gpt-image-2*", ...), ("gpt-image-*", ...)``), so a new snapshot of a
    #: family works the day it ships; an exact entry in ``models`` overrides its family.
    families: tuple[tuple[str, ModelCapabilities], ...] = ()
    #: Capabilities of models neither listed nor in a family; None passes their parameters unchecked.
    any_model: ModelCapabilities | None = None
    default_model: str | None = None
    #: Whether parameters outside ``parameters`` are forwarded as they are.
    passes_unknown_parameters: bool = False
    #: Whether the API answers ``stream: true`` itself with Server-Sent Events (relayed as they
    #: come); else the gateway makes the stream from the whole answer.
    streams: bool = False
    #: images.edits, declared like generations: per model, by family, for any other model,
    #: and the model used when the request names none (add ``IMAGES_EDITS`` to ``endpoints``).
    edit_models: Mapping[str, ModelCapabilities] = msgspec.field(default_factory=dict)
    edit_families: tuple[tuple[str, ModelCapabilities], ...] = ()
    any_edit_model: ModelCapabilities | None = None
    default_edit_model: str | None = None

    def model(self, name: str | None) -> ModelCapabilities | None:
        """What ``name`` takes: its own entry, else its family's, else ``any_model``."""
        if name:
            found = self.models.get(name)
            if found is not None:
                return found
            for pattern, caps in self.families:
                if fnmatchcase(name, pattern):
                    return caps
        return self.any_model

    def edit_model(self, name: str | None) -> ModelCapabilities | None:
        """What ``name`` takes as an edit: its own entry, its family's, else ``any_edit_model``."""
        if name:
            found = self.edit_models.get(name)
            if found is not None:
                return found
            for pattern, caps in self.edit_families:
                if fnmatchcase(name, pattern):
                    return caps
        return self.any_edit_model


class NoOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Options of a provider that takes none."""


class UpstreamRequest:
    """One HTTP request to a provider, as the provider built it."""

    __slots__ = ("method", "url", "headers", "body", "decompress")

    def __init__(
        self,
        method: str,
        url: str,
        headers: CIMultiDict[str] | Mapping[str, str],
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


class Provider:
    """Base class of providers.  Subclasses set the class attributes and override
    the translations for the endpoints they serve."""

    #: The slug used in ``x-portkey-provider`` and configs.
    name: ClassVar[str] = ""
    #: The API base URL; a custom host or ``[providers.<name>] base_url`` replaces it.
    default_base_url: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities()
    #: What the models cost, as plain data (:mod:`gateway.pricing`: ``PerImage``,
    #: ``PerMegapixel``, ``PerToken`` rows, tried in order); a price not published is left out.
    prices: ClassVar[Prices] = ()
    #: Provider options accepted on a config target (``resource_name``, ...).
    Options: ClassVar[type[msgspec.Struct]] = NoOptions
    #: ``x-portkey-*`` request headers that set options: header name -> option name.
    header_options: ClassVar[Mapping[str, str]] = {}
    #: Other names configs may give options (Portkey's SDK spellings): alias -> option name.
    #: The provider's ``parse_options`` reads them; the settings schema lists them.
    option_aliases: ClassVar[Mapping[str, str]] = {}
    #: Settings under ``[providers.<name>]`` in the gateway's settings file.
    Settings: ClassVar[type[ProviderSettings]] = ProviderSettings
    #: Options that choose the host requests go to (Azure's ``resource_name``).  With a
    #: credential the caller did not send (a virtual key), only the stored value is used: a
    #: request naming another is refused, so a stored key never reaches a host of its choosing.
    host_options: ClassVar[tuple[str, ...]] = ()
    #: Hosts (fnmatch patterns, https only) the provider serves generated images from;
    #: the gateway fetches image URLs from these and from the API's own host, no others.
    image_hosts: ClassVar[tuple[str, ...]] = ()
    #: The provider's image URLs stop working soon (BFL's in minutes, Seedream's in a day):
    #: an answer that carries URLs gets the gateway's own instead, the image kept in the
    #: image store for ``images.ttl`` (a provider URL that cannot be fetched is handed on).
    result_urls_expire: ClassVar[bool] = False
    #: Upstream request headers that change what the provider answers: a cached
    #: passthrough answer is kept apart per value.
    cache_vary_headers: ClassVar[tuple[str, ...]] = ("accept", "accept-encoding")
    #: Answer headers not worth storing with a cached answer (per-request ids, timings).
    volatile_headers: ClassVar[frozenset[str]] = frozenset({"set-cookie", "x-request-id", "date", "age"})
    #: Whether passthrough needs the request body whole before building the request
    #: (a signature over its hash); else it is streamed as it arrives.
    proxy_reads_body: ClassVar[bool] = False

    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings
        self.base_url = (settings.base_url or self.default_base_url).rstrip("/")
        self._no_options = self.Options() if _all_default(self.Options) else None

    # -- options -----------------------------------------------------------------
    def parse_options(self, target: Target) -> Any:
        """The target's provider options as ``self.Options`` (400 naming a bad one)."""
        if not target.options and self._no_options is not None:
            return self._no_options
        # A config tree is parsed once and cached: so are its targets' options, per provider.
        cached = target.__dict__.get("parsed_options")
        if cached is not None and cached[0] is self:
            return cached[1]
        try:
            options = msgspec.convert(target.options, self.Options, strict=False)
        except msgspec.ValidationError as e:
            raise BadRequest(
                f"Invalid option for provider {self.name!r}: {located(e, target.path)}",
                param="x-portkey-config", code="invalid_provider_option",
            ) from None
        target.__dict__["parsed_options"] = (self, options)
        return options

    def options_from_headers(self, headers: Any) -> dict[str, Any]:
        """Provider options given as ``x-portkey-*`` headers (a header-only request)."""
        out = {}
        for header, option in self.header_options.items():
            value = headers.get(header)
            if value is not None:
                out[option] = value
        return out

    def billed_model(self, attempt: Attempt, req: GenerationRequest) -> str | None:
        """The model a call is priced as (:mod:`gateway.pricing`): the request's, which
        negotiation set to the provider's default when none was named.  None where what runs is
        not known (an Azure deployment decides): the cost is then unknown, not a guess."""
        return req.model

    def supports(self, endpoint: str) -> bool:
        return endpoint in self.capabilities.endpoints

    # -- every request -----------------------------------------------------------
    def auth_headers(self, attempt: Attempt) -> dict[str, str]:
        """Where the provider key goes.  Default: ``Authorization: Bearer <key>``."""
        return {"Authorization": f"Bearer {attempt.api_key}"} if attempt.api_key else {}

    async def authorize(self, attempt: Attempt, request: UpstreamRequest) -> None:
        """Last touch before a request the core built through this provider is sent
        (``build_generation``, ``build_proxy``), after transform plugins: a signature over
        the final bytes, URL and host.  A provider that sends further requests itself
        (polls) calls it for them.  Default: nothing."""

    # -- passthrough -------------------------------------------------------------
    def proxy_url(self, attempt: Attempt, path: str, query_string: str) -> str:
        """The provider URL for passthrough ``/v1{path}``.  Default: base URL + path."""
        url = attempt.base_url + path
        return f"{url}?{query_string}" if query_string else url

    def build_proxy(self, attempt: Attempt) -> UpstreamRequest:
        """The client's request as it goes to the provider's own API: the client's
        headers less hop-by-hop ones and every ``x-portkey-*``, plus the provider key."""
        inbound = attempt.inbound
        headers = h.passthrough_headers(inbound.headers)
        headers.update(self.auth_headers(attempt))
        body = inbound.body if inbound.body is not None else inbound.body_stream
        # A Content-Length only with the bytes it counts: a provider would wait for them.
        if inbound.body is not None:
            headers["Content-Length"] = str(len(inbound.body))
        elif body is not None and inbound.content_length is not None:
            headers["Content-Length"] = str(inbound.content_length)
        # Without this aiohttp would ask for gzip on the client's behalf and the
        # relayed bytes would arrive encoded to a client that never asked.
        if not headers.get("Accept-Encoding"):
            headers["Accept-Encoding"] = "identity"
        return UpstreamRequest(inbound.method, self.proxy_url(attempt, inbound.path, inbound.query_string),
                               headers, body=body, decompress=False)

    # -- images.generations --------------------------------------------------------
    def generation_params(self, attempt: Attempt) -> dict[str, Any]:
        """The unified parameters negotiation maps (default: ``attempt.params``); raise a
        ``BadRequest`` here for a target that cannot generate at all (a missing deployment)."""
        return attempt.params

    def build_generation(self, attempt: Attempt, req: GenerationRequest) -> UpstreamRequest:
        """The upstream request making ``req.n`` images (may be ``async``)."""
        raise BadRequest(f"images.generations is not supported by provider {self.name!r}")

    def parse_generation(self, attempt: Attempt, req: GenerationRequest, answer: Answer) -> GenerationResult:
        """A 2xx answer as images; raise ``MalformedAnswer`` (502) when it is not what the API
        documents, ``ContentPolicyViolation`` when the provider filtered the result."""
        raise BadRequest(f"images.generations is not supported by provider {self.name!r}")

    # -- images.edits --------------------------------------------------------------
    def build_edit(self, attempt: Attempt, req: EditRequest) -> UpstreamRequest:
        """The upstream request editing ``req.images`` into ``req.n`` images (may be ``async``).
        Its answer is read by :meth:`parse_generation` (``req`` is then the EditRequest)."""
        raise BadRequest(f"images.edits is not supported by provider {self.name!r}")

    async def generate(self, attempt: Attempt, req: GenerationRequest, upstream: Upstream) -> GenerationResult:
        """One upstream call of a generation or an edit: send ``attempt.upstream``, map errors, parse.

        A provider with a multi-step API (create, then poll) overrides this and sends
        its further requests through ``upstream``.
        """
        assert attempt.upstream is not None
        answer = await upstream.exchange(attempt.upstream)
        if not answer.ok:
            raise self.upstream_error(answer)
        result = self.parse_generation(attempt, req, answer)
        if result.headers is None:
            result.headers = h.relay_headers(answer.headers)
        return result

    # -- errors ------------------------------------------------------------------
    def upstream_error(self, answer: Answer) -> GatewayError:
        """A non-2xx answer as a gateway error carrying the upstream's headers (Retry-After)."""
        err = self.error_from_response(answer.status, answer.body, answer.content_type)
        err.upstream_headers = h.relay_headers(answer.headers)
        return err

    def error_from_response(self, status: int, body: bytes, content_type: str) -> GatewayError:
        """The provider's error as a gateway error with the provider's status and message.

        Default: OpenAI's ``{"error": {"message", "type", "param", "code"}}``,
        else the body's text.
        """
        message = type_ = param = code = None
        if body and "json" in content_type:
            try:
                data = json_decode.decode(body)
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


def _all_default(struct: type[msgspec.Struct]) -> bool:
    return len(struct.__struct_defaults__) == len(struct.__struct_fields__)
