"""OpenTelemetry traces, received by an in-process OTLP/HTTP collector: one SERVER span per request
and one CLIENT span per try with the GenAI attributes, an incoming traceparent continued,
errors, sampling, export at shut-down, the settings, and tracing off by default."""
from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from gateway.app import create_app
from gateway.errors import StartupError
from gateway.keys import GATEWAY
from gateway.testing import PNG_1X1, Reply, edit_form, fake_provider
from gateway.tracing import TracingSettings, exporter_url

GEN = "/v1/images/generations"
H = {"x-portkey-provider": "fake", "Authorization": "Bearer sk-test"}
PROMPT = "a lighthouse painted by a secretive user"
B64 = base64.b64encode(PNG_1X1).decode()
COLLECTOR_TOKEN = "Bearer collector-secret-7f3a"


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    return None if kind is None else getattr(v, kind)


class Received(msgspec.Struct):
    """One span as the collector decoded it."""

    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    start: int
    end: int
    status: int
    status_message: str
    attributes: dict[str, Any]
    resource: dict[str, Any]


class Collector:
    """An OTLP/HTTP receiver on loopback: ``POST /v1/traces`` with a protobuf
    ``ExportTraceServiceRequest``, decoded into :class:`Received` spans."""

    def __init__(self) -> None:
        self.spans: list[Received] = []
        self.posts: list[dict[str, str]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Collector:
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _traces(self, request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        self.posts.append(dict(request.headers))
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        for rs in message.resource_spans:
            resource = {a.key: _value(a.value) for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                for s in ss.spans:
                    self.spans.append(Received(
                        s.name, s.kind, s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex(),
                        s.start_time_unix_nano, s.end_time_unix_nano, s.status.code, s.status.message,
                        {a.key: _value(a.value) for a in s.attributes}, resource))
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")

    def server(self) -> list[Received]:
        return [s for s in self.spans if s.kind == Span.SPAN_KIND_SERVER]

    def clients(self) -> list[Received]:
        return sorted((s for s in self.spans if s.kind == Span.SPAN_KIND_CLIENT), key=lambda s: s.start)


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    running = await Collector().start()
    try:
        yield running
    finally:
        await running.close()


@pytest.fixture
def tracing() -> dict[str, Any]:
    return {}


@pytest.fixture
def gateway_settings(fake_upstream: Any, collector: Collector, tracing: dict[str, Any]) -> dict[str, Any]:
    return {"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}},
            "tracing": {"endpoint": collector.url, **tracing}}


async def flush(services: Any) -> None:
    """Export what the batch processor holds (in a thread: the collector runs on this loop)."""
    plugin = services.pm.get_plugin("gateway.defaults.tracing")
    assert plugin.tracing is not None, "tracing should be on"
    assert await asyncio.to_thread(plugin.tracing.provider.force_flush, 10_000)


async def generate(client: Any, prompt: str = "a", **headers: str) -> None:
    resp = await client.post(GEN, json={"prompt": prompt, "response_format": "b64_json"}, headers={**H, **headers})
    assert resp.status == 200, await resp.text()


def gen_reply(**extra: Any) -> Reply:
    return Reply(json={"created": 1, "data": [{"b64_json": B64}], **extra})


async def test_a_generation_is_a_server_span_with_an_attempt_span_under_it(
        gateway_client: Any, gateway_services: Any, fake_upstream: Any, collector: Collector, log_capture: Any) -> None:
    fake_upstream.on("POST", GEN, gen_reply(usage={"input_tokens": 12, "output_tokens": 4160, "total_tokens": 4172}))
    resp = await gateway_client.post(GEN, json={"prompt": PROMPT, "model": "fake-hd", "response_format": "b64_json"},
                                     headers=H)
    assert resp.status == 200, await resp.text()
    await flush(gateway_services)
    [server], [client] = collector.server(), collector.clients()
    assert server.name == "generate_image fake-hd" and client.name == "generate_image fake-hd"
    assert client.trace_id == server.trace_id and client.parent_span_id == server.span_id
    assert server.parent_span_id == ""
    assert server.start <= client.start < client.end <= server.end
    assert server.resource["service.name"] == "gateway"
    assert server.attributes == {
        "http.request.method": "POST", "url.path": GEN, "http.route": GEN, "http.response.status_code": 200,
        "gateway.endpoint": "images.generations", "gateway.trace_id": resp.headers["x-portkey-trace-id"],
        "gen_ai.operation.name": "generate_image", "gen_ai.output.type": "image",
        "gen_ai.request.model": "fake-hd", "gen_ai.response.model": "fake-hd",
        "gen_ai.provider.name": "fake", "gateway.provider": "fake",
        "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 4160,
        "gateway.cache_status": "DISABLED", "gateway.target": "config", "gateway.retry_count": 0,
        "gateway.attempts": 1, "gateway.images": 1,
    }
    assert client.attributes == {
        "gen_ai.operation.name": "generate_image", "gen_ai.output.type": "image", "gen_ai.request.model": "fake-hd",
        "gen_ai.provider.name": "fake", "gateway.provider": "fake", "http.response.status_code": 200,
        "gateway.target": "config", "gateway.attempt": 0,
        "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 4160,
    }
    assert server.status == client.status == Status.STATUS_CODE_UNSET
    # No prompt by default, and the caller's credential nowhere.
    for span in (server, client):
        assert not [v for v in span.attributes.values() if isinstance(v, str) and ("lighthouse" in v or "sk-" in v)]
    # The log line names the trace, so logs and traces join.
    [line] = log_capture.events("request.finished")
    assert line["otel_trace_id"] == server.trace_id


async def test_a_fallback_is_one_span_per_try(
        gateway_client: Any, gateway_services: Any, fake_upstream: Any, collector: Collector, log_capture: Any) -> None:
    fake_provider.install(fake_upstream)
    fake_upstream.on("POST", "/v2/images/generations", Reply(503, json={"error": {"message": "busy"}}, delay=0.05))
    fallback = msgspec.json.encode({"strategy": {"mode": "fallback"}, "targets": [
        {"provider": "fake", "api_key": "k", "custom_host": fake_upstream.url + "/v2"},
        {"provider": "fake", "api_key": "k", "override_params": {"model": "fake-hd"}}]}).decode()
    resp = await gateway_client.post(GEN, json={"prompt": "fb", "response_format": "b64_json"},
                                     headers={"x-portkey-config": fallback})
    assert resp.status == 200, await resp.text()
    await flush(gateway_services)
    [server], [first, second] = collector.server(), collector.clients()
    assert {first.parent_span_id, second.parent_span_id} == {server.span_id}
    assert first.trace_id == second.trace_id == server.trace_id
    # One after the other, each with its own time, both inside the request's.
    assert server.start <= first.start < first.end and second.start < second.end <= server.end
    assert first.end <= second.start + 20_000  # the log's milliseconds have two decimals: 10 µs each
    assert first.end - first.start >= 50_000_000
    # Each try's span has the try's own start and length, as the log line's ``tries`` say.
    [line] = log_capture.events("request.finished")
    for span, tried in zip((first, second), line["tries"], strict=True):
        assert abs(span.start - server.start - tried["start_ms"] * 1e6) < 1_000
        assert abs(span.end - span.start - tried["ms"] * 1e6) < 1_000
    assert first.name == "generate_image fake-image" and second.name == "generate_image fake-hd"
    assert first.attributes["http.response.status_code"] == 503
    assert [s.attributes["gateway.target"] for s in (first, second)] == ["config.targets[0]", "config.targets[1]"]
    assert first.attributes["error.type"] and first.status == Status.STATUS_CODE_ERROR
    assert "error.type" not in second.attributes and second.status == Status.STATUS_CODE_UNSET
    assert server.attributes["gateway.attempts"] == 2 and server.attributes["gateway.target"] == "config.targets[1]"
    assert server.attributes["gen_ai.response.model"] == "fake-hd"
    assert server.status == Status.STATUS_CODE_UNSET


async def test_an_incoming_traceparent_is_continued(
        gateway_client: Any, gateway_services: Any, fake_upstream: Any, collector: Collector) -> None:
    fake_provider.install(fake_upstream)
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    resp = await gateway_client.post(GEN, json={"prompt": "a", "response_format": "b64_json"},
                                     headers={**H, "traceparent": f"00-{trace_id}-{parent}-01"})
    assert resp.status == 200
    await flush(gateway_services)
    [server], [client] = collector.server(), collector.clients()
    assert server.trace_id == client.trace_id == trace_id
    assert server.parent_span_id == parent and client.parent_span_id == server.span_id


async def test_errors_set_the_status_and_error_type(
        gateway_client: Any, gateway_services: Any, fake_upstream: Any, collector: Collector) -> None:
    fake_upstream.on("POST", GEN, Reply(500, json={"error": {"message": "upstream exploded", "type": "server_error"}}))
    resp = await gateway_client.post(GEN, json={"prompt": "a", "response_format": "b64_json"}, headers=H)
    assert resp.status == 500, await resp.text()
    # A caller's mistake: the span says which, and is not an error of the gateway's.
    bad = await gateway_client.post(GEN, json={"model": "fake-image"}, headers=H)
    assert bad.status == 400
    assert (await bad.json())["error"]["code"] == "missing_required_parameter"
    await flush(gateway_services)
    failed, refused = sorted(collector.server(), key=lambda s: s.start)
    assert failed.attributes["http.response.status_code"] == 500
    # The try's error code (here the provider's error type) names the failure.
    assert failed.status == Status.STATUS_CODE_ERROR and failed.attributes["error.type"] == "server_error"
    assert failed.status_message == failed.attributes["error.type"]
    [client] = collector.clients()
    assert client.parent_span_id == failed.span_id and client.status == Status.STATUS_CODE_ERROR
    assert client.attributes["http.response.status_code"] == 500
    assert refused.attributes["http.response.status_code"] == 400
    assert refused.attributes["error.type"] == "400"
    assert refused.status == Status.STATUS_CODE_UNSET
    assert refused.name == "generate_image fake-image"
    # The error's message (a provider's words) is not put on a span.
    assert not [s for s in collector.spans if "exploded" in repr(s)]


async def test_edits_and_the_passthrough(
        gateway_client: Any, gateway_services: Any, fake_upstream: Any, collector: Collector) -> None:
    fake_provider.install(fake_upstream)
    resp = await gateway_client.post("/v1/images/edits", data=edit_form(PNG_1X1, model="fake-hd",
                                                                       response_format="b64_json"), headers=H)
    assert resp.status == 200, await resp.text()
    fake_upstream.on("GET", "/v1/models", Reply(json={"data": []}))
    assert (await gateway_client.get("/v1/models?key=not-on-a-span", headers=H)).status == 200
    await flush(gateway_services)
    edit, proxy = sorted(collector.server(), key=lambda s: s.start)
    edit_try, proxy_try = collector.clients()
    assert edit.name == edit_try.name == "edit_image fake-hd"
    assert edit.attributes["gen_ai.operation.name"] == "edit_image"
    assert edit.attributes["http.route"] == "/v1/images/edits"
    # The passthrough speaks the provider's own API: HTTP names, no GenAI operation.
    assert proxy.name == "GET /v1/{path}" and proxy_try.name == "GET fake"
    assert proxy.attributes["url.path"] == "/v1/models" and proxy_try.parent_span_id == proxy.span_id
    assert "gen_ai.operation.name" not in proxy.attributes and proxy_try.attributes["gen_ai.provider.name"] == "fake"
    assert not [s for s in collector.spans if "not-on-a-span" in repr(s)]


@pytest.mark.parametrize("tracing", [{"capture_prompts": True}])
async def test_prompts_only_when_asked(
        gateway_client: Any, gateway_services: Any, fake_upstream: Any, collector: Collector) -> None:
    fake_provider.install(fake_upstream)
    await generate(gateway_client, PROMPT)
    await flush(gateway_services)
    [server] = collector.server()
    assert msgspec.json.decode(server.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": PROMPT}]}]


@pytest.mark.parametrize("tracing", [{"headers": {"Authorization": COLLECTOR_TOKEN}, "service_name": "images-edge"}])
async def test_collector_headers_are_sent_and_never_logged(
        gateway_client: Any, gateway_services: Any, fake_upstream: Any, collector: Collector, log_capture: Any) -> None:
    fake_provider.install(fake_upstream)
    await generate(gateway_client)
    await flush(gateway_services)
    assert collector.posts and all(p["Authorization"] == COLLECTOR_TOKEN for p in collector.posts)
    assert collector.spans[0].resource["service.name"] == "images-edge"
    assert "collector-secret" not in log_capture.text
    assert "collector-secret" not in repr(gateway_services.settings)


@pytest.mark.parametrize("tracing", [{"sample_ratio": 0.0}])
async def test_sampling_follows_the_ratio_and_the_callers_decision(
        gateway_client: Any, gateway_services: Any, fake_upstream: Any, collector: Collector, log_capture: Any) -> None:
    fake_provider.install(fake_upstream)
    await generate(gateway_client)
    sampled = "0af7651916cd43dd8448eb211c80319c"
    await generate(gateway_client, traceparent=f"00-{sampled}-b7ad6b7169203331-01")
    await flush(gateway_services)
    assert {s.trace_id for s in collector.spans} == {sampled} and len(collector.spans) == 2
    # Not recorded is still a trace id the log line can name.
    assert [len(line["otel_trace_id"]) for line in log_capture.events("request.finished")] == [32, 32]


async def test_spans_queued_at_shutdown_are_exported(
        gateway_client: Any, gateway_services: Any, fake_upstream: Any, collector: Collector) -> None:
    fake_provider.install(fake_upstream)
    await generate(gateway_client)
    plugin = gateway_services.pm.get_plugin("gateway.defaults.tracing")
    assert not collector.spans  # still queued: the batch goes out every few seconds, not per request
    await gateway_client.close()  # the app's clean-up shuts the provider down, exporting the queue
    assert len(collector.spans) == 2
    assert plugin.tracing is None


@pytest.mark.parametrize("gateway_settings", [{}])
async def test_tracing_is_off_by_default(
        gateway_client: Any, gateway_services: Any, collector: Collector, log_capture: Any) -> None:
    plugin = gateway_services.pm.get_plugin("gateway.defaults.tracing")
    assert plugin.url is None and plugin.tracing is None
    assert (await gateway_client.post(GEN, json={}, headers=H)).status == 400
    await gateway_client.close()
    assert not collector.posts
    [line] = log_capture.events("request.finished")
    assert "otel_trace_id" not in line


async def test_the_standard_environment_variables_turn_tracing_on(
        monkeypatch: pytest.MonkeyPatch, collector: Collector, fake_upstream: Any) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    app = create_app({"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}}},
                     plugins=[fake_provider.plugin], load_entrypoints=False)
    plugin = app[GATEWAY].pm.get_plugin("gateway.defaults.tracing")
    assert plugin.url == collector.url + "/v1/traces"
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert create_app({}, load_entrypoints=False)[GATEWAY].pm.get_plugin("gateway.defaults.tracing").url is None


def test_exporter_url() -> None:
    on = TracingSettings(endpoint="http://collector:4318")
    assert exporter_url(on, {}) == "http://collector:4318/v1/traces"
    assert exporter_url(TracingSettings(endpoint="https://c.example/otlp/v1/traces/"), {}) == \
        "https://c.example/otlp/v1/traces"
    assert exporter_url(TracingSettings(), {}) is None
    assert exporter_url(TracingSettings(), {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/custom"}) == \
        "http://c:4318/custom"
    assert exporter_url(TracingSettings(), {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}) == \
        "http://c:4318/v1/traces"
    # The settings win over the environment; OTEL_SDK_DISABLED turns everything off.
    assert exporter_url(on, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://other:4318"}) == "http://collector:4318/v1/traces"
    assert exporter_url(on, {"OTEL_SDK_DISABLED": "true"}) is None


def test_bad_settings_are_refused_at_startup() -> None:
    with pytest.raises(StartupError, match=r"\[tracing\] endpoint: expected an http:// or https:// URL"):
        create_app({"tracing": {"endpoint": "collector:4318"}}, load_entrypoints=False)
    with pytest.raises(StartupError, match=r"settings \[tracing\].*sample_ratio"):
        create_app({"tracing": {"endpoint": "http://c:4318", "sample_ratio": 1.5}}, load_entrypoints=False)
    with pytest.raises(StartupError, match="did you mean 'endpoint'"):
        create_app({"tracing": {"endpoint_url": "http://c:4318"}}, load_entrypoints=False)
