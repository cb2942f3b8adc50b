"""An in-process harness for unit tests of a provider's translations: no server, no socket.

``make_attempt`` builds a real :class:`~gateway.attempt.Attempt` the way the
router does (options parsed and checked, parameters merged, the plan
negotiated for generations), so ``build_generation``, ``parse_generation``,
``proxy_url`` and ``auth_headers`` can be called directly::

    attempt = make_attempt(SegmindProvider, body={"prompt": "a fox", "n": 3})
    req = attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    result = attempt.provider.parse_generation(attempt, attempt.plan.parts[0], answer(200, b"..."))

    edit = make_attempt(StabilityProvider, endpoint=IMAGES_EDITS, body={"prompt": "a hat"},
                        images=[PNG_1X1], mask=PNG_1X1)
    req = await edit.provider.build_edit(edit, edit.plan.parts[0])   # or without await, as it is defined
"""
from __future__ import annotations

import asyncio

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from multidict import CIMultiDict, CIMultiDictProxy

import aiohttp
from aiohttp import web

from gateway.app import create_app
from gateway.attempt import Attempt
from gateway.context import IMAGES_EDITS, IMAGES_GENERATIONS, PROXY, Inbound
from gateway.generation import InputImage
from gateway.hookspecs import hookimpl
from gateway.images.sniff import sniff
from gateway.images.urls import host_allowed
from gateway.negotiation import negotiate
from gateway.keys import GATEWAY
from gateway.provider import Provider
from gateway.services import Services
from gateway.targets import Secret, Target
from gateway.upstream import Answer

__all__ = ["ServicesProbe", "answer", "edit_form", "image_url_allowed", "make_app", "make_attempt", "make_provider",
           "record_sleeps", "services_of"]


class ServicesProbe:
    """A plugin that keeps the :class:`~gateway.services.Services` its app hands
    ``gateway_configure``: register it in ``gateway_plugins`` to reach an app a test builds
    later (``request.getfixturevalue("gateway_app")``) without holding the app itself."""

    services: Services | None = None

    @hookimpl
    def gateway_configure(self, services: Services) -> None:
        self.services = services

    @property
    def registry(self) -> Any:
        assert self.services is not None, "the app was not built"
        return self.services.registry


def record_sleeps(services: Services, *, most: float = 0.005) -> list[float]:
    """Make an app's waits (polls of asynchronous providers, retry back-off) record how long
    they would have slept, and sleep at most ``most`` seconds: the list of the waits asked."""
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)
        await asyncio.sleep(min(seconds, most))

    services.sleep = sleep
    return waited


def make_app(settings: Mapping[str, Any] | None = None, plugins: list[Any] | tuple[Any, ...] = (), *,
             entrypoints: bool = False) -> web.Application:
    """A gateway app as ``gateway serve`` builds it, with ``settings`` (a settings-file dict)
    and ``plugins``; installed plugins are discovered only with ``entrypoints``."""
    return create_app(dict(settings or {}), plugins=plugins, load_entrypoints=entrypoints)


def services_of(app: web.Application) -> Services:
    """The :class:`~gateway.services.Services` of an app (registry, ``sleep``, ``drain()``)."""
    return app[GATEWAY]


def make_provider(provider: type[Provider] | Provider, settings: Mapping[str, Any] | None = None) -> Provider:
    """An instance of ``provider`` with ``[providers.<name>]`` ``settings``."""
    if isinstance(provider, Provider):
        return provider
    return provider(msgspec.convert(dict(settings or {}), provider.Settings, strict=False))


def make_attempt(
    provider: type[Provider] | Provider,
    *,
    body: Mapping[str, Any] | bytes | None = None,
    headers: Mapping[str, str] | None = None,
    api_key: str | None = "test-key",
    options: Mapping[str, Any] | None = None,
    override_params: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    endpoint: str = IMAGES_GENERATIONS,
    method: str = "POST",
    path: str = "/images/generations",
    query_string: str = "",
    custom_host: str | None = None,
    images: Sequence[bytes] = (),
    mask: bytes | None = None,
) -> Attempt:
    """A real attempt at ``provider`` for a request with ``body`` and ``headers``.

    For images.generations the plan is negotiated (``attempt.plan``; a
    ``BadParam`` is raised as the gateway would answer it).  For an edit pass
    ``endpoint=IMAGES_EDITS``, the uploaded ``images`` (one is sent as ``image``,
    several as ``image[]``) and a ``mask``; ``body`` holds the text fields.  For
    passthrough pass ``endpoint=PROXY`` and the ``path`` below ``/v1``; ``body`` is
    then the raw bytes.
    """
    if endpoint == IMAGES_EDITS and path == "/images/generations":
        path = "/images/edits"
    instance = make_provider(provider, settings)
    raw_headers = CIMultiDictProxy(CIMultiDict(headers or {}))
    inbound = Inbound(endpoint, method, path, raw_headers, raw_path="/v1" + path, query_string=query_string,
                      raw_query_string=query_string, origin="http://gateway.test")
    inbound.read_control_headers()
    if endpoint == PROXY:
        inbound.body = body if isinstance(body, bytes) or body is None else msgspec.json.encode(body)
    else:
        params = dict(body) if isinstance(body, Mapping) else msgspec.json.decode(body or b"{}")
        params.setdefault("prompt", "a lighthouse at dusk")
        inbound.params = params
        if endpoint == IMAGES_EDITS:
            # The client's multipart bytes are not made here: a provider's edit is built from the form.
            field = "image" if len(images) == 1 else "image[]"
            inbound.form = [*((field, _input(field, data)) for data in images), *params.items()]
            if mask is not None:
                inbound.form.append(("mask", _input("mask", mask)))
        else:
            inbound.body = msgspec.json.encode(params)
    # As the config stage does: the provider's x-portkey-* header options, then the target's.
    merged = {**instance.options_from_headers(raw_headers), **(options or {})}
    target = Target(provider=instance.name, api_key=Secret(api_key) if api_key else None,
                    options=merged, override_params=dict(override_params) if override_params else None)
    attempt = Attempt(inbound, target, instance, custom_host=custom_host)
    if endpoint in (IMAGES_GENERATIONS, IMAGES_EDITS):
        attempt.plan = negotiate(attempt)
    return attempt


def edit_form(*images: bytes, mask: bytes | None = None, prompt: str = "add a hat",
              filenames: Sequence[str] | None = None, **fields: str) -> aiohttp.FormData:
    """An edit's multipart form as OpenAI's SDK sends it: one image as ``image``, several as
    ``image[]`` (named ``in0.png``, ``in1.png``, ... unless ``filenames`` says), a ``mask``,
    the ``prompt`` and other text ``fields``."""
    out = aiohttp.FormData(default_to_multipart=True)
    names = filenames or [f"in{i}.png" for i in range(len(images))]
    for name, data in zip(names, images, strict=True):
        out.add_field("image" if len(images) == 1 else "image[]", data, filename=name, content_type="image/png")
    if mask is not None:
        out.add_field("mask", mask, filename="m.png", content_type="image/png")
    for name, value in {"prompt": prompt, **fields}.items():
        out.add_field(name, value)
    return out


def _input(field: str, data: bytes) -> InputImage:
    return InputImage(field=field, data=data, media_type=sniff(data, "image/png"), filename=f"{field[:5]}.png",
                      content_type="image/png")


def answer(status: int = 200, body: bytes | Any = b"", headers: Mapping[str, str] | None = None,
           content_type: str | None = None) -> Answer:
    """A provider answer as ``parse_generation`` and ``error_from_response`` see it; a
    non-bytes ``body`` is sent as JSON."""
    out = CIMultiDict(headers or {})
    if not isinstance(body, bytes):
        body = msgspec.json.encode(body)
        out.setdefault("Content-Type", "application/json")
    if content_type is not None:
        out["Content-Type"] = content_type
    return Answer(status, CIMultiDictProxy(out), body)


def image_url_allowed(provider: type[Provider] | Provider, url: str, base_url: str | None = None) -> bool:
    """Whether the gateway would fetch an image the provider answered with ``url``: its API
    host (``base_url``, default the provider's) or one of its ``image_hosts``."""
    instance = make_provider(provider)
    return host_allowed(url, base_url or instance.base_url, instance.image_hosts)
