"""The conformance suite every provider plugin runs.

Subclass :class:`ProviderContract` in the plugin's tests and set a few
attributes: the provider's slug, the plugin modules, a model, and how the
provider's API looks on the wire (where a generation goes, how many images an
upstream request asks for, how the provider answers with images, with an
error, with a content-policy refusal).  pytest collects the inherited tests:

- generation through the ``openai`` SDK, one response shape;
- ``n`` > 1 (split over parallel calls where the model makes fewer per call);
- size mapping, lenient (nearest, reported in ``x-portkey-adjusted-params``)
  and strict (400 naming ``size``, nothing sent upstream);
- ``response_format`` both ways (gateway URL that serves the image; base64);
- provider errors (status and message kept), content-policy refusals (one
  code), a malformed answer (502);
- auth placement, no ``x-portkey-*`` header upstream;
- the upstream request cancelled when the client disconnects or times out.

A provider whose API takes several requests per generation (create, then
poll) overrides the ``install_*`` methods.
"""
from __future__ import annotations

import asyncio
import base64
import itertools
import struct
import zlib
from typing import Any, ClassVar

import aiohttp
import msgspec
import pytest
from aiohttp import web

from gateway.app import create_app
from gateway.keys import GATEWAY
from gateway.testing import FakeUpstream, Recorded, Reply

__all__ = ["ProviderContract", "make_png"]


def make_png(k: int) -> bytes:
    """A valid 1x1 PNG whose colour encodes ``k`` (distinct images to tell apart)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    pixel = bytes([0, k & 0xFF, (k >> 8) & 0xFF, (k >> 16) & 0xFF])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(pixel)) + chunk(b"IEND", b""))


class ProviderContract:
    """Checks every provider plugin must pass.  Set the class attributes; override
    the answer builders for the provider's wire shapes."""

    #: The provider slug (``x-portkey-provider``).
    provider: ClassVar[str]
    #: Plugin modules to register (the provider's own package, at least).
    plugins: ClassVar[list[Any]]
    #: The entry-point name in the ``gateway`` group.
    entrypoint: ClassVar[str]
    #: A model the checks ask for.
    model: ClassVar[str]
    #: ``(method, path)`` on the fake upstream where a generation for ``model`` goes.
    route: ClassVar[tuple[str, str]]
    #: Appended to the fake's URL to make ``[providers.<slug>] base_url``.
    base_path: ClassVar[str] = ""
    #: The provider key the client sends.
    api_key: ClassVar[str] = "contract-key-0123456789"
    #: Provider options (config target fields) the requests need, if any.
    target_options: ClassVar[dict[str, Any]] = {}
    #: ``[providers.<slug>]`` settings besides ``base_url``.
    provider_settings: ClassVar[dict[str, Any]] = {}
    #: A ``size`` the model does not take as it is, and what lenient mode sends instead
    #: (as :meth:`sent_size` reads it); None when the provider takes any size.
    odd_size: ClassVar[str | None] = None
    mapped_size: ClassVar[str | None] = None
    #: Message text the provider's error answer carries (see :meth:`error_answer`).
    error_message: ClassVar[str] = "the prompt is too long for this model"

    # -- what the provider's API looks like: override these ------------------------------
    def images_asked(self, rec: Recorded) -> int:
        """How many images the upstream request ``rec`` asks for."""
        raise NotImplementedError

    def answer(self, images: list[bytes], fake: FakeUpstream, rec: Recorded) -> Reply:
        """The provider's success answer carrying ``images`` (``self.serve`` gives URLs)."""
        raise NotImplementedError

    def error_answer(self, status: int, message: str) -> Reply:
        """The provider's error answer with ``status`` and ``message``."""
        raise NotImplementedError

    def content_policy_answer(self, fake: FakeUpstream) -> Reply:
        """How the provider refuses a prompt or filters an image."""
        raise NotImplementedError

    def malformed_answer(self) -> Reply:
        """A 2xx answer that is not the documented shape."""
        return Reply(200, json={"unexpected": True})

    def sent_size(self, rec: Recorded) -> str:
        """The size (``WxH``) or aspect ratio (``W:H``) the upstream request asks for."""
        raise NotImplementedError

    def assert_auth(self, rec: Recorded) -> None:
        """Assert the provider key is where the provider's API wants it."""
        assert rec.headers.get("Authorization") == f"Bearer {self.api_key}"

    def request_headers(self) -> dict[str, str]:
        """Headers that route a request to this provider with its key."""
        if self.target_options:
            cfg = {"provider": self.provider, "api_key": self.api_key, **self.target_options}
            return {"x-portkey-config": msgspec.json.encode(cfg).decode()}
        return {"x-portkey-provider": self.provider, "Authorization": f"Bearer {self.api_key}"}

    # -- installing answers on the fake: override for multi-request APIs ----------------
    def install_success(self, fake: FakeUpstream, served: list[list[bytes]]) -> None:
        """Answer every generation with fresh distinct images; ``served`` gets each call's images."""
        counter = itertools.count(1)

        async def handle(request: web.Request, rec: Recorded) -> web.StreamResponse:
            images = [make_png(next(counter)) for _ in range(self.images_asked(rec))]
            served.append(images)
            return await fake.respond(request, self.answer(images, fake, rec))

        fake.on(*self.route, handle)

    def install_reply(self, fake: FakeUpstream, reply: Reply) -> None:
        """Answer every generation with ``reply``."""
        fake.on(*self.route, reply)

    def install_hang(self, fake: FakeUpstream) -> None:
        """Never answer a generation."""
        fake.on(*self.route, Reply(hang=True))

    def generation_requests(self, fake: FakeUpstream) -> list[Recorded]:
        """The upstream requests that asked for images."""
        method, path = self.route
        return [r for r in fake.requests if r.method == method and r.path == path]

    async def assert_upstream_cancelled(self, fake: FakeUpstream) -> None:
        """Assert the hanging upstream request was abandoned (its connection closed)."""
        await _eventually(lambda: fake.cancelled >= 1, "the upstream request was not cancelled")

    @staticmethod
    def serve(fake: FakeUpstream, data: bytes, content_type: str = "image/png") -> str:
        """Serve ``data`` from the fake at a fresh URL (for providers that answer with URLs)."""
        path = f"/contract-files/{zlib.crc32(data):08x}-{len(fake.requests)}.png"
        fake.on("GET", path, Reply(body=data, content_type=content_type))
        return fake.url + path

    # -- plumbing: the pytest plugin's fixtures, set from the class attributes ----------
    @pytest.fixture
    def gateway_plugins(self) -> list[Any]:
        return list(self.plugins)

    @pytest.fixture
    def gateway_settings(self, fake_upstream: FakeUpstream) -> dict[str, Any]:
        provider = {"base_url": fake_upstream.url + self.base_path, **self.provider_settings}
        return {"providers": {self.provider: provider}}

    async def generate(self, client: Any, headers: dict[str, str] | None = None, **body: Any) -> Any:
        """POST a generation for ``model`` through ``client`` (``gateway_client``)."""
        body = {"prompt": "a lighthouse at dusk", "model": self.model, **body}
        return await client.post("/v1/images/generations", json=body, headers={**self.request_headers(), **(headers or {})})

    # -- the checks -----------------------------------------------------------------------
    def test_plugin_is_installed_by_entry_point(self) -> None:
        app = create_app({}, load_entrypoints=True)
        state = app[GATEWAY]
        assert self.provider in state.registry.providers
        assert self.entrypoint in [name for name, _ in state.pm.list_name_plugin()]

    async def test_generation_through_the_openai_sdk(self, gateway_server: Any, fake_upstream: FakeUpstream) -> None:
        import openai

        served: list[list[bytes]] = []
        self.install_success(fake_upstream, served)
        headers = {k: v for k, v in self.request_headers().items() if k.lower() != "authorization"}
        async with openai.AsyncOpenAI(base_url=str(gateway_server.make_url("/v1")), api_key=self.api_key,
                                      default_headers=headers, max_retries=0) as sdk:
            raw = await sdk.images.with_raw_response.generate(
                model=self.model, prompt="a lighthouse at dusk", response_format="b64_json")
        doc = msgspec.json.decode(raw.content)
        assert set(doc) >= {"created", "data", "provider"}
        assert isinstance(doc["created"], int) and doc["provider"] == self.provider
        assert raw.headers["x-portkey-provider"] == self.provider
        result = raw.parse()
        assert [base64.b64decode(d.b64_json) for d in result.data] == served[0]

    async def test_n_images_come_back_in_order(self, gateway_client: Any, fake_upstream: FakeUpstream) -> None:
        served: list[list[bytes]] = []
        self.install_success(fake_upstream, served)
        resp = await self.generate(gateway_client, n=3, response_format="b64_json")
        assert resp.status == 200, await resp.text()
        got = [base64.b64decode(d["b64_json"]) for d in (await resp.json())["data"]]
        assert len(got) == 3 and len(set(got)) == 3
        # Each upstream call's images stay together and in the provider's order.
        calls = sorted(served, key=lambda images: got.index(images[0]))
        assert got == [img for images in calls for img in images]
        assert sum(self.images_asked(r) for r in self.generation_requests(fake_upstream)) == 3

    async def test_size_is_mapped_leniently_and_refused_strictly(self, gateway_client: Any, fake_upstream: FakeUpstream) -> None:
        if self.odd_size is None:
            pytest.skip("the provider takes any size")
        self.install_success(fake_upstream, [])
        resp = await self.generate(gateway_client, size=self.odd_size)
        assert resp.status == 200, await resp.text()
        assert self.sent_size(self.generation_requests(fake_upstream)[-1]) == self.mapped_size
        assert f"size={self.odd_size}->" in resp.headers["x-portkey-adjusted-params"]
        before = len(fake_upstream.requests)
        resp = await self.generate(gateway_client, {"x-portkey-strict-params": "true"}, size=self.odd_size)
        assert resp.status == 400
        err = (await resp.json())["error"]
        assert err["param"] == "size" and "allowed" in err["message"]
        assert len(fake_upstream.requests) == before

    async def test_response_format_url_serves_the_image(self, gateway_client: Any, fake_upstream: FakeUpstream) -> None:
        served: list[list[bytes]] = []
        self.install_success(fake_upstream, served)
        resp = await self.generate(gateway_client, response_format="url")
        assert resp.status == 200, await resp.text()
        url = (await resp.json())["data"][0]["url"]
        if url.startswith(fake_upstream.url):
            # A provider that answers with URLs: its own URL is handed on as it is.
            async with aiohttp.ClientSession() as session, session.get(url) as image:
                assert image.status == 200
                assert await image.read() == served[0][0]
            return
        assert url.startswith(str(gateway_client.make_url("/v1/images/files/")))
        image = await gateway_client.get("/" + url.split("://", 1)[1].partition("/")[2])
        assert image.status == 200
        assert image.headers["Content-Type"] == "image/png"
        assert await image.read() == served[0][0]

    async def test_response_format_b64_json(self, gateway_client: Any, fake_upstream: FakeUpstream) -> None:
        served: list[list[bytes]] = []
        self.install_success(fake_upstream, served)
        resp = await self.generate(gateway_client, response_format="b64_json")
        assert resp.status == 200, await resp.text()
        item = (await resp.json())["data"][0]
        assert "url" not in item
        assert base64.b64decode(item["b64_json"]) == served[0][0]

    async def test_provider_error_keeps_status_and_message(self, gateway_client: Any, fake_upstream: FakeUpstream) -> None:
        self.install_reply(fake_upstream, self.error_answer(422, self.error_message))
        resp = await self.generate(gateway_client)
        assert resp.status == 422, await resp.text()
        doc = await resp.json()
        assert self.error_message in doc["error"]["message"]
        assert doc["provider"] == self.provider
        assert resp.headers["Content-Type"].startswith("application/json")

    async def test_content_policy_refusal_has_one_code(self, gateway_client: Any, fake_upstream: FakeUpstream) -> None:
        self.install_reply(fake_upstream, self.content_policy_answer(fake_upstream))
        resp = await self.generate(gateway_client)
        assert 400 <= resp.status < 500, await resp.text()
        doc = await resp.json()
        assert doc["error"]["code"] == "content_policy_violation"
        assert doc["provider"] == self.provider

    async def test_malformed_answer_is_a_502(self, gateway_client: Any, fake_upstream: FakeUpstream) -> None:
        self.install_reply(fake_upstream, self.malformed_answer())
        resp = await self.generate(gateway_client)
        assert resp.status == 502, await resp.text()
        doc = await resp.json()
        assert doc["error"]["code"] == "invalid_provider_response"
        assert self.provider in doc["error"]["message"]

    async def test_auth_placement_and_no_gateway_headers_upstream(self, gateway_client: Any, fake_upstream: FakeUpstream) -> None:
        self.install_success(fake_upstream, [])
        resp = await self.generate(gateway_client, {
            "x-portkey-trace-id": "contract-trace", "x-portkey-metadata": '{"team": "contract"}',
            "x-portkey-cache-force-refresh": "false", "x-portkey-request-timeout": "30000"})
        assert resp.status == 200, await resp.text()
        for rec in fake_upstream.requests:
            leaked = [name for name in rec.headers if name.lower().startswith("x-portkey-")]
            assert not leaked, f"{rec.method} {rec.path} carried {leaked}"
        self.assert_auth(self.generation_requests(fake_upstream)[0])

    async def test_client_disconnect_cancels_the_upstream_request(self, gateway_server: Any, fake_upstream: FakeUpstream) -> None:
        self.install_hang(fake_upstream)
        body = {"prompt": "a lighthouse at dusk", "model": self.model}
        async with aiohttp.ClientSession() as session:
            with pytest.raises(asyncio.TimeoutError):
                await session.post(gateway_server.make_url("/v1/images/generations"), json=body,
                                   headers=self.request_headers(), timeout=aiohttp.ClientTimeout(total=0.5))
        await self.assert_upstream_cancelled(fake_upstream)

    async def test_request_timeout_cancels_the_upstream_request(self, gateway_client: Any, fake_upstream: FakeUpstream) -> None:
        self.install_hang(fake_upstream)
        resp = await self.generate(gateway_client, {"x-portkey-request-timeout": "300"})
        assert resp.status == 408
        await self.assert_upstream_cancelled(fake_upstream)


async def _eventually(check: Any, message: str, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(message)
        await asyncio.sleep(0.02)
