"""One test per hook (tests/test_meta.py checks that each hook has one).

Each test plugs a small plugin into a real app and drives real requests.
"""
from __future__ import annotations

import asyncio
import time
import types
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import pytest
from aiohttp import web

from gateway import hookimpl, hookspec
from gateway.app import create_app
from gateway.errors import AuthError, GatewayError, StartupError
from gateway.images.store import ImageStore, StoredImage, new_id
from gateway.images.urls import stored_path
from gateway.keys import GATEWAY
from gateway.sdk import CacheHit, LogRecord, LogStore, OpenAICompatibleProvider, Outcome, RoutingStrategy
from gateway.testing import fake_provider
from gateway.targets import Target

H = {"x-portkey-provider": "fake", "Authorization": "Bearer sk-test"}


async def client_for(aiohttp_client, fake_upstream, *plugins, settings=None):  # noqa: ANN001, ANN201
    fake_provider.install(fake_upstream)
    raw = {"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}}, **(settings or {})}
    app = create_app(raw, plugins=[fake_provider.plugin, *plugins], load_entrypoints=False)
    return await aiohttp_client(app), app


def test_hook_gateway_addhooks():
    spec_mod = types.ModuleType("extra_specs")

    @hookspec
    def gateway_extra_thing(value: int) -> int:
        """Mode: collected.  Async: no.  Returns: an int."""

    spec_mod.gateway_extra_thing = gateway_extra_thing

    class Adds:
        @hookimpl
        def gateway_addhooks(self, pm):  # noqa: ANN001
            pm.add_hookspecs(spec_mod)

    class Uses:
        @hookimpl
        def gateway_extra_thing(self, value):  # noqa: ANN001
            return value * 2

    app = create_app({}, plugins=[Adds(), Uses()], load_entrypoints=False)
    from gateway.keys import GATEWAY

    assert app[GATEWAY].pm.hook.gateway_extra_thing(value=21) == [42]


class TinyProvider(OpenAICompatibleProvider):
    """A whole OpenAI-compatible provider: a name and a base URL."""

    name = "tiny"
    default_base_url = "https://api.tiny.example/v1"


async def test_hook_gateway_register_providers(aiohttp_client, fake_upstream):  # noqa: ANN001
    class Plugin:
        @hookimpl
        def gateway_register_providers(self):
            return [TinyProvider]

    fake_provider.install(fake_upstream)
    app = create_app({"providers": {"tiny": {"base_url": fake_upstream.url + "/v1"}}}, plugins=[Plugin()],
                     load_entrypoints=False)
    client = await aiohttp_client(app)
    resp = await client.post("/v1/images/generations", json={"prompt": "x"},
                             headers={"x-portkey-provider": "tiny", "Authorization": "Bearer sk-tiny"})
    assert resp.status == 200
    assert resp.headers["x-portkey-provider"] == "tiny"
    assert fake_upstream.last.headers["Authorization"] == "Bearer sk-tiny"


class FirstStrategy(RoutingStrategy):
    """Tries targets in order, returns the first 2xx (a tiny fallback)."""

    name = "first-ok"

    async def route(self, ctx, node, router):  # noqa: ANN001, ANN201
        outcome = None
        for child in node.targets:
            if outcome is not None:
                outcome.release()
            outcome = await router.run(ctx, child)
            if outcome.ok:
                break
        return outcome


async def test_hook_gateway_register_routing_strategies(aiohttp_client, fake_upstream):  # noqa: ANN001
    class Plugin:
        @hookimpl
        def gateway_register_routing_strategies(self):
            return [FirstStrategy]

    client, _ = await client_for(aiohttp_client, fake_upstream, Plugin())
    cfg = msgspec.json.encode({
        "strategy": {"mode": "first-ok"},
        "targets": [
            {"provider": "fake", "api_key": "sk-a", "override_params": {"model": "no-such-model"}},
            {"provider": "fake", "api_key": "sk-b"},
        ],
    }).decode()
    resp = await client.post("/v1/images/generations", json={"prompt": "x"}, headers={"x-portkey-config": cfg})
    assert resp.status == 200
    assert resp.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    assert [r.headers["Authorization"] for r in fake_upstream.requests] == ["Bearer sk-a", "Bearer sk-b"]


class WidgetSettings(msgspec.Struct, forbid_unknown_fields=True):
    size: int = 3


def test_hook_gateway_register_config_sections():
    seen = {}

    class Plugin:
        @hookimpl
        def gateway_register_config_sections(self):
            return {"widget": WidgetSettings}

        @hookimpl
        def gateway_configure(self, settings):  # noqa: ANN001
            seen["widget"] = settings.sections["widget"]

    create_app({"widget": {"size": 7}}, plugins=[Plugin()], load_entrypoints=False)
    assert seen["widget"] == WidgetSettings(size=7)
    with pytest.raises(StartupError, match=r"\[widget\].*size"):
        create_app({"widget": {"size": "big"}}, plugins=[Plugin()], load_entrypoints=False)
    with pytest.raises(StartupError, match="did you mean 'widget'"):
        create_app({"widgt": {}}, plugins=[Plugin()], load_entrypoints=False)


def test_hook_gateway_configure():
    calls = []

    class Plugin:
        @hookimpl
        def gateway_configure(self, settings, registry):  # noqa: ANN001
            calls.append((settings.server.port, sorted(registry.providers)))

    create_app({"server": {"port": 9999}}, plugins=[fake_provider.plugin, Plugin()], load_entrypoints=False)
    assert calls == [(9999, ["fake"])]


async def test_hook_gateway_lifespan(aiohttp_client):  # noqa: ANN001
    events = []

    class Plugin:
        @hookimpl
        def gateway_lifespan(self, app):  # noqa: ANN001
            @asynccontextmanager
            async def cm():  # noqa: ANN202
                events.append("start")
                yield
                events.append("stop")

            return cm()

    app = create_app({}, plugins=[Plugin()], load_entrypoints=False)
    client = await aiohttp_client(app)
    assert events == ["start"]
    await client.close()
    assert events == ["start", "stop"]


async def test_hook_gateway_authenticate(aiohttp_client, fake_upstream, log_capture):  # noqa: ANN001
    class TeamAuth:
        @hookimpl
        def gateway_authenticate(self, ctx):  # noqa: ANN001
            team = ctx.headers.get("x-team")
            if team == "banned":
                raise AuthError("team banned", status=403)
            return f"team:{team}" if team else None

    class LogPrincipal:
        @hookimpl
        def gateway_log_fields(self, ctx):  # noqa: ANN001
            return {"principal": ctx.principal}

    client, _ = await client_for(aiohttp_client, fake_upstream, TeamAuth(), LogPrincipal())
    assert (await client.post("/v1/images/generations", json={"prompt": "x"}, headers={**H, "x-team": "red"})).status == 200
    assert log_capture.events("request.finished")[-1]["principal"] == "team:red"
    resp = await client.post("/v1/images/generations", json={"prompt": "x"}, headers={**H, "x-team": "banned"})
    assert resp.status == 403 and (await resp.json())["error"]["message"] == "team banned"
    # None falls through to the built-in (open, no gateway keys set)
    assert (await client.post("/v1/images/generations", json={"prompt": "x"}, headers=H)).status == 200
    assert log_capture.events("request.finished")[-1]["principal"] == "anonymous"


async def test_hook_gateway_resolve_config(aiohttp_client, fake_upstream):  # noqa: ANN001
    class Tenants:
        @hookimpl
        def gateway_resolve_config(self, ctx):  # noqa: ANN001
            if ctx.headers.get("x-tenant") == "acme":
                from gateway.targets import Secret

                return Target(provider="fake", api_key=Secret("sk-acme"), override_params={"model": "fake-hd"})
            return None

    client, _ = await client_for(aiohttp_client, fake_upstream, Tenants())
    resp = await client.post("/v1/images/generations", json={"prompt": "x"}, headers={"x-tenant": "acme"})
    assert resp.status == 200
    assert fake_upstream.last.headers["Authorization"] == "Bearer sk-acme"
    assert fake_upstream.last.json()["model"] == "fake-hd"


async def test_hook_gateway_admit(aiohttp_client, fake_upstream):  # noqa: ANN001
    seen = []

    class NoHdForTrial:
        @hookimpl
        def gateway_admit(self, ctx):  # noqa: ANN001
            # The resolved tree, before the cache or any upstream call.
            seen.append(ctx.config.provider)
            hd = ctx.config.override_params and ctx.config.override_params.get("model") == "fake-hd"
            if hd and ctx.headers.get("x-plan") == "trial":
                raise GatewayError("fake-hd is not in the trial plan", status=403, code="plan")

    client, _ = await client_for(aiohttp_client, fake_upstream, NoHdForTrial())
    config = {"x-portkey-config": '{"provider": "fake", "api_key": "sk-x", "override_params": {"model": "fake-hd"}}'}
    resp = await client.post("/v1/images/generations", json={"prompt": "x"}, headers={**config, "x-plan": "trial"})
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "plan"
    assert fake_upstream.requests == [] and seen == ["fake"]
    assert (await client.post("/v1/images/generations", json={"prompt": "x"}, headers=config)).status == 200
    assert (await client.get("/v1/models", headers=H)).status in (200, 404)
    assert seen == ["fake", "fake", "fake"]


async def test_hook_gateway_route(aiohttp_client, fake_upstream):  # noqa: ANN001
    class Maintenance:
        @hookimpl(tryfirst=True)
        def gateway_route(self, ctx):  # noqa: ANN001
            if ctx.metadata.get("mode") == "maintenance":
                return Outcome(503, body=b'{"maintenance": true}', provider="none")
            return None

    client, _ = await client_for(aiohttp_client, fake_upstream, Maintenance())
    resp = await client.post("/v1/images/generations", json={"prompt": "x"},
                             headers={**H, "x-portkey-metadata": '{"mode": "maintenance"}'})
    assert resp.status == 503 and await resp.json() == {"maintenance": True}
    assert fake_upstream.requests == []
    assert (await client.post("/v1/images/generations", json={"prompt": "x"}, headers=H)).status == 200


async def test_hook_gateway_cache_lookup(aiohttp_client, fake_upstream):  # noqa: ANN001
    class Canned:
        @hookimpl
        def gateway_cache_lookup(self, ctx, query):  # noqa: ANN001
            if ctx.inbound.params["prompt"] == "cached":
                return CacheHit(Outcome(200, body=b'{"created": 1, "data": [{"url": "https://c/1.png"}]}'))
            return None

    client, _ = await client_for(aiohttp_client, fake_upstream, Canned(),
                                 settings={"cache": {"default": {"mode": "simple"}}})
    resp = await client.post("/v1/images/generations", json={"prompt": "cached"}, headers=H)
    assert resp.headers["x-portkey-cache-status"] == "HIT"
    assert (await resp.json())["data"][0]["url"] == "https://c/1.png"
    assert fake_upstream.requests == []
    # None falls through to the built-in cache: a miss it fills.
    resp = await client.post("/v1/images/generations", json={"prompt": "fresh"}, headers=H)
    assert resp.headers["x-portkey-cache-status"] == "MISS" and len(fake_upstream.requests) == 1


async def test_hook_gateway_transform_request(aiohttp_client, fake_upstream):  # noqa: ANN001
    class Tagger:
        @hookimpl
        async def gateway_transform_request(self, ctx, attempt):  # noqa: ANN001
            await asyncio.sleep(0)
            attempt.upstream.headers["X-Request-Tag"] = ctx.trace_id

    client, _ = await client_for(aiohttp_client, fake_upstream, Tagger())
    resp = await client.post("/v1/images/generations", json={"prompt": "x"}, headers={**H, "x-portkey-trace-id": "t-9"})
    assert resp.status == 200
    assert fake_upstream.last.headers["X-Request-Tag"] == "t-9"


async def test_hook_gateway_log_fields(aiohttp_client, fake_upstream, log_capture):  # noqa: ANN001
    class Extra:
        @hookimpl
        def gateway_log_fields(self, ctx):  # noqa: ANN001
            return {"prompt_chars": len(ctx.inbound.params.get("prompt", ""))}

    client, _ = await client_for(aiohttp_client, fake_upstream, Extra())
    await client.post("/v1/images/generations", json={"prompt": "four"},
                      headers={**H, "x-portkey-metadata": '{"team": "a"}'})
    line = log_capture.events("request.finished")[-1]
    assert line["prompt_chars"] == 4
    assert line["metadata"] == {"team": "a"}
    for key in ("trace_id", "method", "path", "provider", "model", "status", "ms", "upstream_ms", "bytes_in",
                "bytes_out", "attempts"):
        assert key in line
    assert line["provider"] == "fake" and line["status"] == 200 and line["attempts"] == 1
    assert line["bytes_out"] > 0 and line["bytes_in"] == len(b'{"prompt": "four"}')


async def test_hook_gateway_add_routes(aiohttp_client, fake_upstream):  # noqa: ANN001
    class Admin:
        @hookimpl
        def gateway_add_routes(self, router, services):  # noqa: ANN001
            async def who(request: web.Request) -> web.Response:
                return web.json_response({"providers": sorted(services.registry.providers)})
            router.add_get("/v1/admin/who", who)  # below /v1: wins over the passthrough

    client, _ = await client_for(aiohttp_client, fake_upstream, Admin())
    resp = await client.get("/v1/admin/who")
    assert resp.status == 200 and await resp.json() == {"providers": ["fake"]}
    assert fake_upstream.requests == []
    assert (await client.get("/nope")).status == 404  # the JSON 404 still comes last


async def test_hook_gateway_request_started(aiohttp_client, fake_upstream):  # noqa: ANN001
    events: list[tuple[str, str, int]] = []

    class Pair:
        @hookimpl
        async def gateway_request_started(self, ctx):  # noqa: ANN001
            # Before any work: not authenticated, no status yet.
            events.append(("started", ctx.inbound.path, ctx.record.status))

        @hookimpl
        def gateway_request_finished(self, ctx, fields):  # noqa: ANN001
            events.append(("finished", ctx.inbound.path, fields["status"]))

    class Broken:
        @hookimpl
        def gateway_request_started(self, ctx):  # noqa: ANN001
            raise RuntimeError("boom")

    client, _ = await client_for(aiohttp_client, fake_upstream, Pair(), Broken(),
                                 settings={"security": {"gateway_keys": ["gk-1"]}})
    resp = await client.post("/v1/images/generations", json={"prompt": "x"}, headers=H)
    assert resp.status == 401  # refused by authentication, still started and finished
    assert events == [("started", "/images/generations", 0), ("finished", "/images/generations", 401)]


async def test_hook_gateway_request_finished(aiohttp_client, fake_upstream):  # noqa: ANN001
    seen: list[dict[str, Any]] = []

    class Accounting:
        @hookimpl
        async def gateway_request_finished(self, ctx, fields):  # noqa: ANN001
            seen.append({"status": fields["status"], "provider": ctx.record.provider})

    class Broken:
        @hookimpl
        def gateway_request_finished(self, ctx):  # noqa: ANN001
            raise RuntimeError("boom")

    client, _ = await client_for(aiohttp_client, fake_upstream, Accounting(), Broken())
    resp = await client.post("/v1/images/generations", json={"prompt": "x"}, headers=H)
    assert resp.status == 200
    assert seen == [{"status": 200, "provider": "fake"}]


async def test_hook_gateway_handle_error(aiohttp_client, fake_upstream):  # noqa: ANN001
    class Plain:
        @hookimpl
        def gateway_handle_error(self, ctx, error):  # noqa: ANN001
            if ctx.headers.get("accept") == "text/plain":
                return web.Response(status=error.status, text=f"error: {error.message}")
            return None

    client, _ = await client_for(aiohttp_client, fake_upstream, Plain())
    resp = await client.post("/v1/images/generations", data=b"[]", headers={**H, "accept": "text/plain",
                                                                           "Content-Type": "application/json"})
    assert resp.status == 400 and (await resp.text()).startswith("error: Request body must be")
    assert resp.headers["x-portkey-trace-id"]
    resp = await client.post("/v1/images/generations", data=b"[]", headers={**H, "Content-Type": "application/json"})
    assert resp.content_type == "application/json"


async def test_a_failing_plugin_is_a_clean_500(aiohttp_client, fake_upstream, log_capture):  # noqa: ANN001
    class Buggy:
        @hookimpl
        def gateway_transform_request(self, ctx, attempt):  # noqa: ANN001
            raise KeyError("oops")

    buggy = Buggy()
    client, app = await client_for(aiohttp_client, fake_upstream, buggy)
    from gateway.keys import GATEWAY

    buggy_name = app[GATEWAY].pm.get_name(buggy)
    resp = await client.post("/v1/images/generations", json={"prompt": "x"}, headers=H)
    assert resp.status == 500
    body = await resp.json()
    assert body["error"]["code"] == "plugin_error" and "Traceback" not in str(body)
    assert body["error"]["message"] == f"Internal error in plugin {buggy_name!r}"
    assert log_capture.events("plugin.error")


def test_driver_agrees_with_pluggy_on_order_and_results():
    """The async driver walks pluggy's own lists: same order, same first result."""
    from gateway.keys import GATEWAY

    order: list[str] = []

    def make(name: str, result: Any, **opts: Any):  # noqa: ANN202
        class P:
            @hookimpl(**opts)
            def gateway_log_fields(self, ctx):  # noqa: ANN001
                order.append(name)
                return {name: result}

            @hookimpl(**opts)
            def gateway_authenticate(self, ctx):  # noqa: ANN001
                order.append(name)
                return result

        P.__name__ = name
        return P()

    plugins = [make("a", None), make("b", "B", tryfirst=True), make("c", "C"), make("d", None, trylast=True)]
    # Leave out the built-ins that need a real request, so only these plugins answer.
    disable = {"plugins": {"disable": ["gateway.defaults.log_canonical", "gateway.defaults.auth_keys"]}}
    app = create_app(disable, plugins=plugins, load_entrypoints=False)
    state = app[GATEWAY]
    ctx = types.SimpleNamespace()
    for hook in ("gateway_authenticate", "gateway_log_fields"):
        order.clear()
        via_pluggy = getattr(state.pm.hook, hook)(ctx=ctx)
        pluggy_order = list(order)
        order.clear()
        via_driver = asyncio.run(getattr(state.chain, hook)(ctx=ctx))
        assert order == pluggy_order
        assert via_driver == via_pluggy
    assert order == ["b", "c", "a", "d"]


def test_hook_gateway_register_cache_backends():
    from gateway.cache.backend import BoundedMemoryCache, CacheBackend

    class Tiny(CacheBackend):
        name = "tiny"

        @classmethod
        def from_settings(cls, settings):  # noqa: ANN001, ANN206
            return BoundedMemoryCache(1000)

    class Plugin:
        @hookimpl
        def gateway_register_cache_backends(self):
            return [Tiny]

    app = create_app({"cache": {"backend": "tiny"}}, plugins=[Plugin()], load_entrypoints=False)
    from gateway.keys import GATEWAY

    assert app[GATEWAY].registry.cache_backends["tiny"] is Tiny
    with pytest.raises(StartupError, match="did you mean 'tiny'"):
        create_app({"cache": {"backend": "tinny"}}, plugins=[Plugin()], load_entrypoints=False)


class _Nothing(ImageStore):  # an image store that always has the same image
    name = "nothing"

    @classmethod
    def from_services(cls, services):  # noqa: ANN001, ANN206
        return cls()

    async def get(self, image_id):  # noqa: ANN001, ANN201
        return StoredImage("image/png", time.time() + 5, data=b"always-this")


async def test_hook_gateway_register_image_stores(aiohttp_client):  # noqa: ANN001
    class Plugin:
        @hookimpl
        def gateway_register_image_stores(self):
            return [_Nothing]

    app = create_app({"images": {"store": "nothing"}}, plugins=[Plugin()], load_entrypoints=False)
    client = await aiohttp_client(app)
    urls = app[GATEWAY].image_urls  # the store's images are served under URLs the gateway signed
    resp = await client.get(urls.signed(stored_path(new_id(), int(time.time()) + 60)))
    assert resp.status == 200 and await resp.read() == b"always-this"


class _ListStore(LogStore):
    """A log store in a list: what the request log writes reaches it."""

    name = "in-a-list"

    def __init__(self) -> None:
        self.records: list[LogRecord] = []
        self.started = False

    @classmethod
    def from_services(cls, services):  # noqa: ANN001, ANN206
        return cls()

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.started = False

    async def write(self, records):  # noqa: ANN001, ANN201
        self.records.extend(records)

    async def query(self, q):  # noqa: ANN001, ANN201
        return sorted(self.records, key=lambda r: (r.time, r.id), reverse=True)[:q.limit], None

    async def get(self, record_id):  # noqa: ANN001, ANN201
        return next((r for r in self.records if r.id == record_id), None)

    async def prune(self, now):  # noqa: ANN001, ANN201
        return 0


async def test_hook_gateway_register_log_stores(aiohttp_client, fake_upstream):  # noqa: ANN001
    class Plugin:
        @hookimpl
        def gateway_register_log_stores(self):
            return [_ListStore]

    admin = "admin-key-of-the-hook-test-0123"
    client, app = await client_for(aiohttp_client, fake_upstream, Plugin(), settings={
        "request_log": {"store": "in-a-list", "flush_interval": 0.01}, "admin": {"key": admin}})
    resp = await client.post("/v1/images/generations", json={"prompt": "x"}, headers={**H, "x-portkey-trace-id": "t-1"})
    assert resp.status == 200
    store = app[GATEWAY].log_store
    assert isinstance(store, _ListStore) and store.started
    for _ in range(100):
        if store.records:
            break
        await asyncio.sleep(0.01)
    assert [r.trace_id for r in store.records] == ["t-1"]
    listed = await (await client.get("/v1/logs", headers={"Authorization": f"Bearer {admin}"})).json()
    assert [r["trace_id"] for r in listed["data"]] == ["t-1"]
    with pytest.raises(StartupError, match="did you mean 'in-a-list'"):
        create_app({"request_log": {"store": "in-a-lst"}}, plugins=[Plugin()], load_entrypoints=False)
