"""The plugin SDK: everything a provider, routing strategy, cache or image-store plugin
needs, in one module.  Import from here only; the rest of ``gateway`` is internal
and may change between releases (a meta-test keeps ``plugins/`` to this module
and ``gateway.testing``).

Providers::

    from gateway.sdk import Capabilities, ModelCapabilities, OpenAICompatibleProvider, hookimpl

    class AcmeProvider(OpenAICompatibleProvider):
        name = "acme"
        default_base_url = "https://api.acme.example/v1"
        capabilities = Capabilities(models={"acme-1": ModelCapabilities(sizes=("1024x1024",))})

    @hookimpl
    def gateway_register_providers():
        return [AcmeProvider]

Unit tests of a provider's translations run in process with
:func:`gateway.testing.make_attempt`; its behaviour end to end with
:class:`gateway.testing.provider_contract.ProviderContract`.
"""
from __future__ import annotations

from gateway import headers
from gateway.attempt import Attempt
from gateway.cache.backend import BytesSerializer, CacheBackend
from gateway.cache.lease import CacheHit, CacheLease, CacheQuery
from gateway.cache.service import Unavailable as CacheUnavailable
from gateway.context import IMAGES_EDITS, IMAGES_GENERATIONS, PROXY, RequestContext, StashKey
from gateway.errors import (
    CONTENT_POLICY,
    AuthError,
    BadParam,
    BadRequest,
    CannotServe,
    ConfigError,
    ContentPolicyViolation,
    GatewayError,
    MalformedAnswer,
    ProviderError,
    StartupError,
    UpstreamError,
)
from gateway.forms import build_form
from gateway.generation import (
    EditRequest,
    GenerationPlan,
    GenerationRequest,
    GenerationResult,
    Image,
    InputImage,
    decode_json,
)
from gateway.hookspecs import hookimpl, hookspec
from gateway.images.masks import mask_for
from gateway.images.sniff import sniff
from gateway.natives import InputType, typed_natives
from gateway.negotiation import drop_size
from gateway.images.store import ImageStore, StoredImage
from gateway.openai_compatible import OpenAICompatibleProvider, OpenAIOptions
from gateway.outcome import Outcome
from gateway.polling import AFTERWARDS_TIMEOUT, TRANSIENT, Poll, poll, send_afterwards
from gateway.pricing import PerImage, PerMegapixel, PerToken, Price, Prices
from gateway.provider import Capabilities, ModelCapabilities, NoOptions, Provider, UpstreamRequest
from gateway.requestlog.record import LogImage, LogRecord
from gateway.requestlog.store import MAX_LIMIT as LOG_MAX_LIMIT
from gateway.requestlog.store import InvalidQuery, LogQuery, LogStore, encode_cursor
from gateway.services import Services
from gateway.settings import Base, ProviderSettings
from gateway.strategy import Router, RoutingStrategy, StrategyConfig
from gateway.targets import Target
from gateway.upstream import MAX_ERROR_BODY, Answer, Upstream

__all__ = [
    "AFTERWARDS_TIMEOUT", "CONTENT_POLICY", "IMAGES_EDITS", "IMAGES_GENERATIONS", "LOG_MAX_LIMIT", "MAX_ERROR_BODY",
    "PROXY", "TRANSIENT",
    "Answer", "Attempt", "AuthError", "BadParam", "BadRequest", "Base", "BytesSerializer", "CacheBackend",
    "CacheHit", "CacheLease", "CacheQuery", "CacheUnavailable", "CannotServe", "Capabilities", "ConfigError", "ContentPolicyViolation",
    "EditRequest", "GatewayError", "InputType", "GenerationPlan", "GenerationRequest", "GenerationResult", "Image", "ImageStore",
    "InputImage", "InvalidQuery", "LogImage", "LogQuery", "LogRecord", "LogStore",
    "MalformedAnswer", "ModelCapabilities", "NoOptions", "OpenAICompatibleProvider", "OpenAIOptions", "Outcome",
    "PerImage", "PerMegapixel", "PerToken", "Poll", "Price", "Prices",
    "Provider", "ProviderError", "ProviderSettings", "RequestContext", "Router", "RoutingStrategy", "Services",
    "StartupError", "StashKey", "StoredImage", "StrategyConfig", "Target", "Upstream", "UpstreamError",
    "UpstreamRequest", "build_form", "decode_json", "drop_size", "encode_cursor",
    "headers", "hookimpl", "hookspec", "mask_for", "poll",
    "send_afterwards", "sniff", "typed_natives",
]
