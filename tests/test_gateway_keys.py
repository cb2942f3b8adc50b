"""Named gateway keys: where the key comes from, scopes over the whole config tree, rate
limits and budgets, the key's name on the log line (and the key nowhere)."""
from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import gateway_azure_openai
import gateway_bedrock
import msgspec
import pytest
import structlog

from gateway.access import GatewayKey, KeyTable
from gateway import hookimpl
from gateway.app import create_app
from gateway.cache.backend import BoundedMemoryCache, CacheBackend
from gateway.errors import StartupError
from gateway.limits import KeyLimits, MemoryCounters, micros
from gateway.testing import Reply, fake_provider

GEN = "/v1/images/generations"
ALPHA = "gk-alpha-0123456789"
BETA = "gk-beta-0123456789"
FAKE = {"x-portkey-provider": "fake", "Authorization": "Bearer sk-own"}


def settings_for(fake_upstream, keys: dict[str, dict[str, Any]], **more: Any) -> dict[str, Any]:  # noqa: ANN001
    return {
        "providers": {"fake": {"base_url": fake_upstream.url + "/v1"}},
        "virtual_keys": {
            "fake-prod": {"provider": "fake", "api_key": "sk-stored-prod"},
            "fake-dev": {"provider": "fake", "api_key": "sk-stored-dev"},
        },
        "configs": {
            "pc-prod": {"virtual_key": "fake-prod"},
            "pc-both": {"strategy": {"mode": "fallback"},
                        "targets": [{"virtual_key": "fake-prod"}, {"virtual_key": "fake-dev"}]},
            "pc-hosted": {"provider": "fake", "custom_host": fake_upstream.url + "/v1", "api_key": "sk-saved"},
        },
        "gateway_keys": keys,
        **more,
    }


@pytest.fixture(autouse=True)
def within_one_minute() -> None:
    """Per-minute limits count fixed windows: start each test well inside one."""
    left = 60 - time.time() % 60
    if left < 3:
        time.sleep(left + 0.05)


@pytest.fixture
def make(aiohttp_client, fake_upstream, gateway_plugins):  # noqa: ANN001, ANN201
    fake_provider.install(fake_upstream)

    async def build(keys: dict[str, dict[str, Any]], **more: Any):  # noqa: ANN202
        app = create_app(settings_for(fake_upstream, keys, **more), plugins=gateway_plugins, load_entrypoints=False)
        return await aiohttp_client(app)

    return build


async def post(client, key: str | None, headers: dict[str, str], body: dict[str, Any] | None = None):  # noqa: ANN001, ANN201
    sent = dict(headers)
    if key is not None:
        sent["x-portkey-api-key"] = key
    return await client.post(GEN, json=body or {"prompt": "a fox"}, headers=sent)


async def refused(resp, status: int, code: str) -> dict[str, Any]:  # noqa: ANN001
    body = await resp.json()
    assert resp.status == status, body
    assert body["error"]["code"] == code, body
    assert resp.headers["Content-Type"].startswith("application/json")
    return body["error"]


# -- keys: where they come from, how they match, what the log says ---------------------------------


async def test_named_keys_from_env_file_and_inline_each_authenticate(make, fake_upstream, tmp_path, monkeypatch):  # noqa: ANN001
    monkeypatch.setenv("GK_ALPHA", ALPHA)
    (tmp_path / "beta.key").write_text(BETA + "\n")
    client = await make({"alpha": {"key_env": "GK_ALPHA"}, "beta": {"key_file": str(tmp_path / "beta.key")},
                         "gamma": {"key": "gk-gamma-inline"}})
    for key in (ALPHA, BETA, "gk-gamma-inline"):
        assert (await post(client, key, FAKE)).status == 200
    await refused(await post(client, "gk-nope", FAKE), 401, "invalid_api_key")
    await refused(await post(client, None, FAKE), 401, "missing_api_key")
    # Any bytes a header can carry are a wrong key, not a crash.
    await refused(await post(client, "gk-ünï", FAKE), 401, "invalid_api_key")


async def test_the_key_name_is_on_the_log_line_and_the_key_is_nowhere(make, fake_upstream, log_capture, monkeypatch):  # noqa: ANN001
    monkeypatch.setenv("GK_ALPHA", ALPHA)
    client = await make({"alpha": {"key_env": "GK_ALPHA", "requests_per_minute": 1}})
    assert (await post(client, ALPHA, FAKE)).status == 200
    await refused(await post(client, ALPHA, FAKE), 429, "rate_limit_exceeded")
    await refused(await post(client, "wrong-" + ALPHA, FAKE), 401, "invalid_api_key")
    lines = log_capture.events("request.finished")
    assert [line["key"] for line in lines] == ["alpha", "alpha", None]
    assert ALPHA not in log_capture.text
    assert ALPHA not in str(fake_upstream.requests[0].headers)


async def test_every_line_a_request_logs_names_its_key(aiohttp_client, fake_upstream, gateway_plugins,  # noqa: ANN001
                                                     log_capture):
    """A line logged while a keyed request runs (here a plugin's own) carries the key's name (an
    unnamed key's fingerprint); the next request on the same connection has its own."""
    fake_provider.install(fake_upstream)

    class Chatty:
        @hookimpl
        async def gateway_transform_request(self, ctx, attempt) -> None:  # noqa: ANN001
            structlog.get_logger("test").info("plugin.saw", provider=attempt.provider.name)

    app = create_app(settings_for(fake_upstream, {"alpha": {"key": ALPHA}}, security={"gateway_keys": ["gk-legacy-1"]}),
                     plugins=[*gateway_plugins, Chatty()], load_entrypoints=False)
    client = await aiohttp_client(app)
    assert (await post(client, ALPHA, FAKE)).status == 200
    assert (await post(client, "gk-legacy-1", FAKE)).status == 200
    saw = log_capture.events("plugin.saw")
    assert saw[0]["key"] == "alpha" and saw[1]["key"].startswith("key:") and len(saw) == 2
    assert ALPHA not in log_capture.text


async def test_the_security_list_keeps_working_and_is_named_by_fingerprint(make, fake_upstream, log_capture):  # noqa: ANN001
    client = await make({"alpha": {"key": ALPHA}}, security={"gateway_keys": ["gk-legacy-1"]})
    assert (await post(client, "gk-legacy-1", FAKE)).status == 200
    # An unnamed key keeps every permission it had: custom hosts, provider keys, no limits.
    resp = await post(client, "gk-legacy-1", {**FAKE, "x-portkey-custom-host": fake_upstream.url + "/v1"})
    assert resp.status == 200
    line = log_capture.events("request.finished")[0]
    assert line["key"].startswith("key:") and len(line["key"]) == 20
    assert "gk-legacy-1" not in log_capture.text


def test_the_key_table_compares_every_slot_of_a_fixed_size_table():
    assert len(KeyTable([])._digests) == 64
    keys = [GatewayKey(f"k{i}", f"gk:k{i}") for i in range(70)]
    table = KeyTable([(hashlib.sha256(f"key-{i}".encode()).digest(), k) for i, k in enumerate(keys)])
    assert len(table._digests) == 128  # the size says how many keys exist only in steps of 64
    assert table.match("key-0") is keys[0] and table.match("key-69") is keys[69]
    assert table.match("key-70") is None and table.match("\udcff") is None


# -- scopes: virtual keys, saved configs, providers ------------------------------------------------


async def test_a_virtual_key_by_header_is_allowed_or_refused_by_name(make, fake_upstream):  # noqa: ANN001
    client = await make({"alpha": {"key": ALPHA, "virtual_keys": ["fake-prod"]}})
    assert (await post(client, ALPHA, {"x-portkey-virtual-key": "fake-prod"})).status == 200
    assert fake_upstream.last.headers["Authorization"] == "Bearer sk-stored-prod"
    error = await refused(await post(client, ALPHA, {"x-portkey-virtual-key": "fake-dev"}), 403,
                          "virtual_key_not_allowed")
    assert "'fake-dev'" in error["message"] and "'alpha'" in error["message"]
    assert error["param"] == "x-portkey-virtual-key"
    assert len(fake_upstream.requests) == 1


async def test_a_virtual_key_in_an_inline_config_is_refused(make, fake_upstream):  # noqa: ANN001
    client = await make({"alpha": {"key": ALPHA, "virtual_keys": ["fake-prod"]}})
    ok = {"x-portkey-config": json.dumps({"virtual_key": "fake-prod"})}
    assert (await post(client, ALPHA, ok)).status == 200
    bad = {"x-portkey-config": json.dumps({"virtual_key": "fake-dev"})}
    error = await refused(await post(client, ALPHA, bad), 403, "virtual_key_not_allowed")
    assert error["param"] == "x-portkey-config"
    assert len(fake_upstream.requests) == 1


async def test_a_saved_config_id_is_allowed_or_refused_by_id(make, fake_upstream):  # noqa: ANN001
    client = await make({"alpha": {"key": ALPHA, "configs": ["pc-prod"]}})
    assert (await post(client, ALPHA, {"x-portkey-config": "pc-prod"})).status == 200
    error = await refused(await post(client, ALPHA, {"x-portkey-config": "pc-both"}), 403, "config_not_allowed")
    assert "'pc-both'" in error["message"]
    assert len(fake_upstream.requests) == 1


async def test_an_unknown_name_is_answered_with_the_callers_own_names_only(make, fake_upstream):  # noqa: ANN001
    client = await make({"alpha": {"key": ALPHA, "virtual_keys": ["fake-dev"], "configs": ["pc-prod"]},
                         "root": {"key": "gk-root-0123456789abcdef"}})
    cases = [({"x-portkey-config": json.dumps({"provider": "@fake-prd"})}, "unknown_provider_slug"),
             ({"x-portkey-config": json.dumps({"strategy": {"mode": "fallback"},
                                               "targets": [{"virtual_key": "fake-prd"}]})}, "unknown_virtual_key"),
             ({"x-portkey-provider": "@fake-prd"}, "unknown_provider_slug"),
             ({"x-portkey-config": "pc-bothh"}, "unknown_config")]
    for headers, code in cases:
        error = await refused(await post(client, ALPHA, headers), 400, code)
        assert "fake-prod" not in error["message"] and "pc-both" not in error["message"], error
        # The same request from a key without a scope names every one (the first answer was not kept for it).
        error = await refused(await post(client, "gk-root-0123456789abcdef", headers), 400, code)
        assert "fake-prod" in error["message"] or "pc-both" in error["message"], error
    error = await refused(await post(client, ALPHA, cases[0][0]), 400, "unknown_provider_slug")
    assert "@fake-dev" in error["message"]
    assert fake_upstream.requests == []


async def test_a_fallback_tree_with_one_disallowed_leaf_is_refused_before_any_upstream_call(make, fake_upstream):  # noqa: ANN001
    client = await make({"alpha": {"key": ALPHA, "virtual_keys": ["fake-prod"]}})
    # The saved fallback's second leaf uses fake-dev: the first leaf would have answered.
    error = await refused(await post(client, ALPHA, {"x-portkey-config": "pc-both"}), 403, "virtual_key_not_allowed")
    assert "'fake-dev'" in error["message"]
    inline = {"strategy": {"mode": "fallback"}, "targets": [
        {"virtual_key": "fake-prod"},
        {"strategy": {"mode": "loadbalance"}, "targets": [{"virtual_key": "fake-prod"}, {"virtual_key": "fake-dev"}]},
    ]}
    await refused(await post(client, ALPHA, {"x-portkey-config": json.dumps(inline)}), 403, "virtual_key_not_allowed")
    assert fake_upstream.requests == []


async def test_an_empty_list_allows_nothing_and_an_absent_one_everything(make, fake_upstream):  # noqa: ANN001
    client = await make({"none": {"key": ALPHA, "virtual_keys": [], "configs": []},
                         "all": {"key": BETA}})
    await refused(await post(client, ALPHA, {"x-portkey-virtual-key": "fake-prod"}), 403, "virtual_key_not_allowed")
    await refused(await post(client, ALPHA, {"x-portkey-config": "pc-prod"}), 403, "config_not_allowed")
    for headers in ({"x-portkey-virtual-key": "fake-dev"}, {"x-portkey-config": "pc-both"}):
        assert (await post(client, BETA, headers)).status == 200


async def test_providers_are_checked_however_they_are_named(make, fake_upstream):  # noqa: ANN001
    client = await make({"alpha": {"key": ALPHA, "providers": ["fake"]}, "beta": {"key": BETA, "providers": []}})
    assert (await post(client, ALPHA, FAKE)).status == 200
    assert (await post(client, ALPHA, {"x-portkey-virtual-key": "fake-prod"})).status == 200
    n = len(fake_upstream.requests)
    for headers in (FAKE, {"x-portkey-virtual-key": "fake-prod"}, {"x-portkey-config": "pc-prod"},
                    {"x-portkey-config": json.dumps({"provider": "fake", "api_key": "sk-own"})}):
        error = await refused(await post(client, BETA, headers), 403, "provider_not_allowed")
        assert "'fake'" in error["message"]
    # A provider that is not installed is the caller's own string: refused, not echoed.
    error = await refused(await post(client, ALPHA, {**FAKE, "x-portkey-provider": "sk-live-pasted-here"}), 403,
                          "provider_not_allowed")
    assert "sk-live-pasted-here" not in error["message"]
    assert len(fake_upstream.requests) == n


async def test_the_seed_rest_examples_work_with_a_named_key(make, fake_upstream):  # noqa: ANN001
    """``x-portkey-api-key`` with a virtual key, or with a saved config; the OpenAI SDK's own
    ``Authorization`` placeholder beside a virtual key is not the caller's provider key."""
    client = await make({"alpha": {"key": ALPHA, "virtual_keys": ["fake-prod"], "configs": ["pc-prod"],
                                    "allow_provider_keys": False}})
    assert (await post(client, ALPHA, {"x-portkey-virtual-key": "fake-prod"})).status == 200
    assert (await post(client, ALPHA, {"x-portkey-config": "pc-prod"})).status == 200
    resp = await post(client, ALPHA, {"x-portkey-virtual-key": "fake-prod", "Authorization": "Bearer placeholder"})
    assert resp.status == 200
    assert fake_upstream.last.headers["Authorization"] == "Bearer sk-stored-prod"


# -- scopes: the caller's own provider keys and custom hosts ---------------------------------------


async def test_own_provider_keys_are_refused_when_not_allowed(make, fake_upstream):  # noqa: ANN001
    client = await make({"alpha": {"key": ALPHA, "allow_provider_keys": False}, "beta": {"key": BETA}})
    error = await refused(await post(client, ALPHA, FAKE), 403, "provider_keys_not_allowed")
    assert error["param"] == "Authorization" and "sk-own" not in error["message"]
    inline = {"x-portkey-config": json.dumps({"provider": "fake", "api_key": "sk-own-inline"})}
    error = await refused(await post(client, ALPHA, inline), 403, "provider_keys_not_allowed")
    assert error["param"] == "x-portkey-config" and "sk-own-inline" not in error["message"]
    in_option = {"x-portkey-config": json.dumps({"virtual_key": "fake-prod", "azure_ad_token": "tok"})}
    await refused(await post(client, ALPHA, in_option), 403, "provider_keys_not_allowed")
    # Passthrough relays a key header as sent: refused too, but not beside a virtual key.
    resp = await client.get("/v1/models", headers={"x-portkey-api-key": ALPHA, "x-portkey-provider": "fake",
                                                    "x-api-key": "sk-own-header"})
    await refused(resp, 403, "provider_keys_not_allowed")
    assert fake_upstream.requests == []
    # Allowed by default.
    assert (await post(client, BETA, FAKE)).status == 200
    assert (await post(client, BETA, inline)).status == 200


async def test_provider_credential_headers_count_for_every_installed_provider(aiohttp_client, fake_upstream,  # noqa: ANN001
                                                                              gateway_plugins):
    raw = settings_for(fake_upstream, {"alpha": {"key": ALPHA, "allow_provider_keys": False}},
                       providers={"bedrock": {"base_url": fake_upstream.url}})
    raw["virtual_keys"]["bedrock-prod"] = {"provider": "bedrock", "aws_access_key_id": "AKIASTORED",
                                           "aws_secret_access_key": "stored", "aws_region": "us-east-1"}
    client = await aiohttp_client(create_app(raw, plugins=[*gateway_plugins, gateway_bedrock, gateway_azure_openai],
                                             load_entrypoints=False))
    # The caller's own AWS keys beside a virtual key would sign with the caller's identity.
    own = {"x-portkey-virtual-key": "bedrock-prod", "x-portkey-aws-access-key-id": "AKIAOWN",
           "x-portkey-aws-secret-access-key": "own-secret"}
    error = await refused(await post(client, ALPHA, own), 403, "provider_keys_not_allowed")
    assert error["param"] == "x-portkey-aws-access-key-id" and "AKIAOWN" not in error["message"]
    azure = {"x-portkey-provider": "azure-openai", "x-portkey-azure-ad-token": "eyJ-own"}
    await refused(await post(client, ALPHA, azure), 403, "provider_keys_not_allowed")
    assert fake_upstream.requests == []


async def test_custom_hosts_are_refused_for_named_keys_unless_allowed(make, fake_upstream):  # noqa: ANN001
    client = await make({"alpha": {"key": ALPHA}, "beta": {"key": BETA, "allow_custom_hosts": True}})
    host = fake_upstream.url + "/v1"
    error = await refused(await post(client, ALPHA, {**FAKE, "x-portkey-custom-host": host}), 403,
                          "custom_hosts_not_allowed")
    assert error["param"] == "x-portkey-custom-host" and host not in error["message"]
    inline = {"x-portkey-config": json.dumps({"strategy": {"mode": "fallback"}, "custom_host": host,
                                              "targets": [{"provider": "fake", "api_key": "sk-own"}]})}
    await refused(await post(client, ALPHA, inline), 403, "custom_hosts_not_allowed")
    assert fake_upstream.requests == []
    # A saved config's custom host is the operator's.
    assert (await post(client, ALPHA, {"x-portkey-config": "pc-hosted"})).status == 200
    assert (await post(client, BETA, {**FAKE, "x-portkey-custom-host": host})).status == 200


# -- rate limits and budgets -------------------------------------------------------------------------


async def test_requests_per_minute_answers_429_with_retry_after(make, fake_upstream):  # noqa: ANN001
    client = await make({"alpha": {"key": ALPHA, "requests_per_minute": 2}, "beta": {"key": BETA}})
    for _ in range(2):
        assert (await post(client, ALPHA, FAKE)).status == 200
    resp = await post(client, ALPHA, FAKE)
    error = await refused(resp, 429, "rate_limit_exceeded")
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert "'alpha'" in error["message"] and "2 requests per minute" in error["message"]
    assert error["param"] == "requests_per_minute"
    assert len(fake_upstream.requests) == 2
    # Another key has its own counters.
    assert (await post(client, BETA, FAKE)).status == 200


async def test_images_per_minute_counts_n(make, fake_upstream):  # noqa: ANN001
    client = await make({"alpha": {"key": ALPHA, "images_per_minute": 5}})
    assert (await post(client, ALPHA, FAKE, {"prompt": "x", "n": 3})).status == 200
    resp = await post(client, ALPHA, FAKE, {"prompt": "x", "n": 3})
    error = await refused(resp, 429, "rate_limit_exceeded")
    assert "asks for 3" in error["message"] and error["param"] == "images_per_minute"
    assert "Retry-After" in resp.headers
    # Nothing of the refused request was counted: two more images fit.
    assert (await post(client, ALPHA, FAKE, {"prompt": "x", "n": 2})).status == 200
    await refused(await post(client, ALPHA, FAKE), 429, "rate_limit_exceeded")


async def test_a_failed_request_gives_its_images_back(make, fake_upstream):  # noqa: ANN001
    client = await make({"alpha": {"key": ALPHA, "images_per_day": 2}})
    for _ in range(3):
        resp = await post(client, ALPHA, FAKE, {"prompt": "content_policy please", "n": 2})
        assert resp.status == 400
    assert (await post(client, ALPHA, FAKE, {"prompt": "x", "n": 2})).status == 200
    await refused(await post(client, ALPHA, FAKE), 429, "rate_limit_exceeded")


async def test_a_cache_hit_gives_its_images_back(make, fake_upstream):  # noqa: ANN001
    client = await make({"alpha": {"key": ALPHA, "images_per_day": 2}})
    cached = {"x-portkey-config": json.dumps({"provider": "fake", "api_key": "sk-own", "cache": {"mode": "simple"}})}
    assert (await post(client, ALPHA, cached)).status == 200
    for _ in range(20):  # the store runs just after the answer
        resp = await post(client, ALPHA, cached)
        assert resp.status == 200
        if resp.headers["x-portkey-cache-status"] == "HIT":
            break
    assert resp.headers["x-portkey-cache-status"] == "HIT"
    assert len(fake_upstream.requests) == 1
    # One image made, the hits counted nothing: one more fits, then the day is used up.
    assert (await post(client, ALPHA, FAKE, {"prompt": "another"})).status == 200
    await refused(await post(client, ALPHA, FAKE, {"prompt": "a third"}), 429, "rate_limit_exceeded")


async def test_cost_per_day_is_a_budget_counted_per_image(make, fake_upstream):  # noqa: ANN001
    # The price the answer settles to is the admission estimate's: only image_cost counts here.
    client = await make({"alpha": {"key": ALPHA, "cost_per_day": 0.12}, "beta": {"key": BETA, "cost_per_month": 1.0,
                                                                                "image_cost": 0.5}},
                        limits={"image_cost": 0.04}, prices={"fake": {"fake-image": {"per_image": 0.04}}})
    assert (await post(client, ALPHA, FAKE, {"prompt": "x", "n": 2})).status == 200
    resp = await post(client, ALPHA, FAKE, {"prompt": "x", "n": 2})
    error = await refused(resp, 429, "budget_exceeded")
    assert "0.12 per day" in error["message"] and "0.08" in error["message"]
    assert int(resp.headers["Retry-After"]) <= 86400
    assert (await post(client, ALPHA, FAKE)).status == 200  # 0.08 + 0.04 fits
    await refused(await post(client, ALPHA, FAKE), 429, "budget_exceeded")
    # A key's own image_cost wins over [limits] (and the request settles to its price, 0.04 an image).
    assert (await post(client, BETA, FAKE, {"prompt": "x", "n": 2})).status == 200
    await refused(await post(client, BETA, FAKE, {"prompt": "x", "n": 2}), 429, "budget_exceeded")


async def test_a_budget_settles_to_the_requests_cost_once_known(make, fake_upstream):  # noqa: ANN001
    # Admitted at images x image_cost (0.05 an image); charged what the answer cost: fake-image
    # at 1024x1024 is 0.02 an image (gateway.testing.fake_provider.PRICES), fake-hd in hd 0.08.
    client = await make({"alpha": {"key": ALPHA, "cost_per_day": 0.10, "image_cost": 0.05}})
    # Counted at the estimate, two would use the budget up; settled, a third fits (0.04 + 0.05).
    for _ in range(3):
        resp = await post(client, ALPHA, FAKE)
        assert resp.status == 200 and resp.headers["x-gateway-cost"] == "0.020000"
    error = await refused(await post(client, ALPHA, FAKE), 429, "budget_exceeded")  # 0.06 + 0.05
    assert "would cost 0.05" in error["message"]  # the admission estimate


async def test_a_request_costing_more_than_its_estimate_adds_the_difference(make, fake_upstream):  # noqa: ANN001
    client = await make({"alpha": {"key": ALPHA, "cost_per_day": 0.20, "image_cost": 0.01}})
    hd = {"prompt": "x", "model": "fake-hd", "quality": "hd", "size": "1024x1024"}
    resp = await post(client, ALPHA, FAKE, hd)
    assert resp.status == 200 and resp.headers["x-gateway-cost"] == "0.080000"
    assert (await post(client, ALPHA, FAKE, hd)).status == 200  # 0.08 counted, 0.01 admitted: fits
    # 0.16 counted: an estimate of 0.01 still fits, the next settles at 0.24, over the budget.
    assert (await post(client, ALPHA, FAKE, hd)).status == 200
    await refused(await post(client, ALPHA, FAKE, hd), 429, "budget_exceeded")


async def test_a_passthrough_post_counts_one_image_and_a_get_none(make, fake_upstream):  # noqa: ANN001
    fake_upstream.on("GET", "/v1/models", Reply(json={"data": []}))
    fake_upstream.on("POST", "/v1/native/generate", Reply(json={"ok": True}))
    client = await make({"alpha": {"key": ALPHA, "images_per_minute": 1}})
    headers = {**FAKE, "x-portkey-api-key": ALPHA}
    for _ in range(3):
        assert (await client.get("/v1/models", headers=headers)).status == 200
    assert (await client.post("/v1/native/generate", json={}, headers=headers)).status == 200
    await refused(await client.post("/v1/native/generate", json={}, headers=headers), 429, "rate_limit_exceeded")


class DownCounters(BoundedMemoryCache):
    """A cache backend whose shared counters are unreachable (as Redis is when it is down)."""

    async def take_counts(self, charges: Any) -> int:
        raise ConnectionError("connection refused")

    async def return_counts(self, refunds: Any) -> None:
        raise ConnectionError("connection refused")


class DownBackend(CacheBackend):
    name = "down"

    @classmethod
    def from_settings(cls, settings: Any) -> DownCounters:
        return DownCounters(1 << 20)


class DownStore:
    @hookimpl
    def gateway_register_cache_backends(self) -> list[type]:
        return [DownBackend]


@pytest.mark.parametrize("policy", ["local", "refuse"])
async def test_when_the_counter_store_is_down_the_operator_chooses(aiohttp_client, fake_upstream, gateway_plugins,  # noqa: ANN001
                                                                   log_capture, policy):
    fake_provider.install(fake_upstream)
    raw = settings_for(fake_upstream, {"alpha": {"key": ALPHA, "requests_per_minute": 2}, "beta": {"key": BETA}},
                       cache={"backend": "down"}, limits={"when_store_down": policy})
    client = await aiohttp_client(create_app(raw, plugins=[*gateway_plugins, DownStore()], load_entrypoints=False))
    statuses = [(await post(client, ALPHA, FAKE)).status for _ in range(3)]
    if policy == "local":
        assert statuses == [200, 200, 429]  # counted in this instance's memory meanwhile
    else:
        assert statuses == [503] * 3
        resp = await post(client, ALPHA, FAKE)
        await refused(resp, 503, "limits_unavailable")
        assert resp.headers["Retry-After"] == "5"
    # A key without limits never needs the store.
    assert (await post(client, BETA, FAKE)).status == 200
    outages = log_capture.events("limits.unavailable")
    assert len(outages) == 1 and outages[0]["policy"] == policy  # once per outage, not per request


def test_memory_counters_take_all_or_nothing_and_give_back():
    async def run() -> None:
        counters = MemoryCounters()
        assert await counters.take_counts([("a", 1, 2, 60), ("b", 5, 5, 60)]) == 0
        assert await counters.take_counts([("a", 1, 2, 60), ("b", 1, 5, 60)]) == 2
        assert counters._value("a", time.time()) == 1  # the refused take added nothing
        await counters.return_counts([("b", 5)])
        assert await counters.take_counts([("a", 1, 2, 60), ("b", 5, 5, 60)]) == 0

    asyncio.run(run())


def test_charges_fall_in_fixed_windows():
    limits = KeyLimits(requests_per_minute=10, images_per_day=5, cost_per_month=micros(1.0), image_cost=micros(0.25))
    now = 1_767_225_599.5  # 2025-12-31T23:59:59.5Z: the minute, the day and the month end in half a second
    charges = {c.setting: c for c in limits.charges("alpha", 2, now)}
    assert set(charges) == {"requests_per_minute", "images_per_day", "cost_per_month"}
    assert charges["requests_per_minute"].key == "gk:{alpha}:requests_per_minute:1767225540"
    assert charges["cost_per_month"].key == "gk:{alpha}:cost_per_month:1764547200"  # 2025-12-01
    assert {c.reset for c in charges.values()} == {1_767_225_600.0}
    assert charges["cost_per_month"].amount == 500_000
    assert limits.charges("alpha", 0, now)[0].setting == "requests_per_minute"


# -- settings: config check and schema ---------------------------------------------------------------


def test_bad_gateway_keys_stop_start_up_naming_each_path(fake_upstream, gateway_plugins, monkeypatch):  # noqa: ANN001
    monkeypatch.delenv("GK_UNSET", raising=False)
    raw = settings_for(fake_upstream, {
        "alpha": {"key_env": "GK_UNSET"},
        "beta": {"key": "k-beta", "virtual_keys": ["fake-prod", "fake-prd"], "configs": ["pc-nope"],
                 "providers": ["fak"]},
        "gamma": {"key": "k-beta"},
        "delta": {"key": "k-delta", "cost_per_day": 5},
        "bad name!": {"key": "k-x"},
        "eps": {"key": "k-eps", "key_file": "/nonexistent/key"},
    })
    with pytest.raises(StartupError) as e:
        create_app(raw, plugins=gateway_plugins, load_entrypoints=False)
    text = str(e.value)
    assert "settings [gateway_keys.alpha]: environment variable GK_UNSET is not set" in text
    assert "settings [gateway_keys.beta] virtual_keys[1]: unknown virtual key 'fake-prd' (did you mean 'fake-prod'" in text
    assert "settings [gateway_keys.beta] configs[0]: unknown saved config 'pc-nope'" in text
    assert "settings [gateway_keys.beta] providers[0]: unknown provider 'fak' (did you mean 'fake'" in text
    assert "settings [gateway_keys.gamma]: the same key as [gateway_keys.beta]" in text
    assert "settings [gateway_keys.delta]: a cost budget needs image_cost" in text
    assert "settings [gateway_keys.bad name!]: a key's name is" in text
    assert "settings [gateway_keys.eps]: set exactly one of" in text
    assert "k-beta" not in text


def test_config_check_and_schema_cover_gateway_keys(tmp_path):  # noqa: ANN001
    path = tmp_path / "gateway.toml"
    path.write_text('[plugins]\nentrypoints = false\n\n[gateway_keys.ci]\nkey = "k"\nrequests_per_minute = -1\n'
                    'images_per_day = 10\n\n[gateway_keys.ops]\nkey = "k2"\nallow_custom_host = true\n')
    gateway = str(Path(sys.executable).with_name("gateway"))
    proc = subprocess.run([gateway, "config", "check", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "`$.gateway_keys.ci.requests_per_minute`" in proc.stderr
    assert "unknown field `allow_custom_host` - at `$.gateway_keys.ops`" in proc.stderr
    proc = subprocess.run([gateway, "config", "schema"], capture_output=True, text=True, check=True)
    schema = msgspec.json.decode(proc.stdout)
    props = schema["$defs"]["Settings"]["properties"]
    assert props["gateway_keys"]["additionalProperties"]["$ref"] == "#/$defs/GatewayKeySettings"
    fields = schema["$defs"]["GatewayKeySettings"]["properties"]
    assert {"key_env", "key_file", "virtual_keys", "configs", "providers", "allow_provider_keys",
            "allow_custom_hosts", "requests_per_minute", "images_per_minute", "images_per_day", "cost_per_day",
            "cost_per_month", "image_cost"} <= set(fields)
    assert "limits" in props
