"""Prometheus metrics at GET /metrics: what is counted and with which labels, bounded label
values, latency buckets up to ten minutes, requests in flight, and metrics off."""
from __future__ import annotations

import asyncio
import re
from pathlib import Path

import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import Metrics
from gateway.testing import Reply, fake_provider

ROOT = Path(__file__).resolve().parent.parent

GEN = "/v1/images/generations"
H = {"x-portkey-provider": "fake", "Authorization": "Bearer sk-test"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition by (name, sorted labels)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(all_samples: dict, name: str, **labels: str) -> float:
    return all_samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(client) -> dict:  # noqa: ANN001
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    return samples(await resp.text())


async def test_requests_images_and_latency_are_counted_with_their_labels(gateway_client, fake_upstream):  # noqa: ANN001
    fake_provider.install(fake_upstream)
    for body in ({"prompt": "a", "n": 2}, {"prompt": "b", "model": "fake-hd"}, {"prompt": "c", "model": "x" * 40}):
        resp = await gateway_client.post(GEN, json={**body, "response_format": "b64_json"}, headers=H)
        assert resp.status in (200, 404), await resp.text()
    assert (await gateway_client.post(GEN, json={}, headers=H)).status == 400
    got = await scrape(gateway_client)
    ok = {"endpoint": "images.generations", "provider": "fake", "cache": "DISABLED", "status": "200"}
    assert value(got, "gateway_requests_total", **ok, model="fake-image") == 1
    assert value(got, "gateway_requests_total", **ok, model="fake-hd") == 1
    assert value(got, "gateway_images_total", endpoint="images.generations", provider="fake", model="fake-image") == 2
    # A model name the provider does not declare is "other": callers cannot grow the label set.
    assert not [k for k in got if ("model", "x" * 40) in k[1]]
    assert value(got, "gateway_requests_total", endpoint="images.generations", provider="none", model="none",
                 status="400", cache="DISABLED") == 1
    # Buckets up to ten minutes; every request observed once.
    bucket = dict(endpoint="images.generations", provider="fake")
    assert value(got, "gateway_request_duration_seconds_bucket", **bucket, le="600.0") == 3
    assert value(got, "gateway_request_duration_seconds_count", **bucket) == 3
    assert value(got, "gateway_upstream_duration_seconds_count", **bucket) == 3
    assert value(got, "gateway_overhead_seconds_count", endpoint="images.generations") == 4
    assert value(got, "gateway_in_flight_requests") == 0


async def test_other_models_are_one_label_value(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(json={"created": 1, "data": [{"b64_json": "aGk="}]}))
    for model in ("m-1", "m-2", "m-3"):
        assert (await gateway_client.post(GEN, json={"prompt": "a", "model": model, "response_format": "b64_json"},
                                          headers=H)).status == 200
    got = await scrape(gateway_client)
    assert value(got, "gateway_requests_total", endpoint="images.generations", provider="fake", model="other",
                 status="200", cache="DISABLED") == 3


async def test_cache_retries_and_fallbacks_are_counted(gateway_client, fake_upstream):  # noqa: ANN001
    fake_provider.install(fake_upstream)
    cached = msgspec.json.encode({"provider": "fake", "api_key": "k", "cache": {"mode": "simple"}}).decode()
    for _ in range(2):
        resp = await gateway_client.post(GEN, json={"prompt": "same", "response_format": "b64_json"},
                                         headers={"x-portkey-config": cached})
        assert resp.status == 200
    fake_upstream.on("POST", "/v2/images/generations", Reply(503, json={"error": {"message": "busy"}}))
    fallback = msgspec.json.encode({"strategy": {"mode": "fallback"}, "targets": [
        {"provider": "fake", "api_key": "k", "custom_host": fake_upstream.url + "/v2", "retry": {"attempts": 1}},
        {"provider": "fake", "api_key": "k"}]}).decode()
    resp = await gateway_client.post(GEN, json={"prompt": "fb", "response_format": "b64_json"},
                                     headers={"x-portkey-config": fallback})
    assert resp.status == 200, await resp.text()
    got = await scrape(gateway_client)
    assert value(got, "gateway_cache_lookups_total", endpoint="images.generations", result="MISS") == 1
    assert value(got, "gateway_cache_lookups_total", endpoint="images.generations", result="HIT") == 1
    assert value(got, "gateway_retries_total", endpoint="images.generations", provider="fake") == 1
    assert value(got, "gateway_fallbacks_total", endpoint="images.generations", provider="fake") == 1


async def test_requests_in_flight(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(json={"created": 1, "data": [{"b64_json": "aGk="}]}, delay=0.5))
    slow = [asyncio.ensure_future(gateway_client.post(GEN, json={"prompt": "a", "response_format": "b64_json"},
                                                      headers=H)) for _ in range(3)]
    while len(fake_upstream.requests) < 3:
        await asyncio.sleep(0.01)
    assert value(await scrape(gateway_client), "gateway_in_flight_requests") == 3
    assert [r.status for r in await asyncio.gather(*slow)] == [200] * 3
    assert value(await scrape(gateway_client), "gateway_in_flight_requests") == 0


@pytest.mark.parametrize("gateway_settings", [{"metrics": {"enabled": False}}])
async def test_metrics_can_be_turned_off(gateway_client, gateway_settings):  # noqa: ANN001
    resp = await gateway_client.get("/metrics")
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"


def test_docs_list_every_metric_and_the_dashboard_queries_only_those() -> None:
    exported = set(re.findall(r"^# TYPE (\S+) ", Metrics({"fake": ["fake-image"]}).exposition().decode(), re.M))
    documented = set(re.findall(r"^\| `(gateway_\w+)` \|", (ROOT / "docs" / "metrics.md").read_text(), re.M))
    assert exported <= documented  # the rest: plugins' metrics (the next test reads a running gateway's)


async def test_docs_list_every_metric_a_running_gateway_exports(gateway_client):  # noqa: ANN001
    """The metrics of a gateway as it runs, its plugins' included (the request log's queue depth and
    drops), each have their row in docs/metrics.md, and each row is one of them."""
    text = await (await gateway_client.get("/metrics")).text()
    # prometheus-client adds a <counter>_created family per counter it has a value of (one process only):
    # the time the counter started, not a metric of the gateway's.
    exported = {name for name in re.findall(r"^# TYPE (\S+) ", text, re.M) if not name.endswith("_created")}
    documented = set(re.findall(r"^\| `(gateway_\w+)` \|", (ROOT / "docs" / "metrics.md").read_text(), re.M))
    assert {"gateway_request_log_queue", "gateway_request_log_dropped_total"} <= exported
    assert exported == documented, exported ^ documented
    # The dashboard queries these and no other.
    doc = msgspec.json.decode((ROOT / "deploy" / "grafana-dashboard.json").read_bytes())
    used = {re.sub(r"_(bucket|count|sum)$", "", m) for panel in doc["panels"] for target in panel["targets"]
            for m in re.findall(r"\bgateway_\w+", target["expr"])}
    assert {"gateway_cost_usd_total", "gateway_request_log_queue"} <= used and used <= exported, used - exported


async def test_each_metrics_labels_are_the_documented_ones(gateway_client, fake_upstream):  # noqa: ANN001
    """The label names of every series a running gateway exports are its row's in docs/metrics.md."""
    fake_upstream.on("POST", "/v1/images/generations", Reply(json={"created": 1, "data": [{"b64_json": "aGk="}]}))
    await gateway_client.post("/v1/images/generations", json={"prompt": "a fox"}, headers=H)
    await gateway_client.post("/v1/images/generations", json={"prompt": "a fox"},
                              headers={**H, "x-portkey-config": '{"cache": {"mode": "simple"}}'})
    text = await (await gateway_client.get("/metrics")).text()
    documented = {name: set() if labels.strip() == "—" else set(re.findall(r"`(\w+)`", labels))
                  for name, labels in re.findall(r"^\| `(gateway_\w+)` \| \w+ \| ([^|]+) \|",
                                                 (ROOT / "docs" / "metrics.md").read_text(), re.M)}
    seen: dict[str, set[str]] = {}
    for series, labels in re.findall(r"^(gateway_\w+?)(?:\{([^}]*)\})? ", text, re.M):
        name = re.sub(r"_(bucket|count|sum|created)$", "", series)
        if name not in documented and name + "_total" in documented:
            name += "_total"  # a counter's _created series
        seen.setdefault(name, set()).update(re.findall(r"(\w+)=", labels))
    for name, labels in seen.items():
        assert labels - {"le"} == documented[name], name
    # The request counter, the latency histograms and the cache lookups were all there to compare.
    assert {"gateway_requests_total", "gateway_request_duration_seconds", "gateway_cache_lookups_total"} <= set(seen)
