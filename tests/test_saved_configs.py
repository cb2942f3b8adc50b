"""Saved configs and virtual keys from the gateway's settings file; the seed cookbook config."""
from __future__ import annotations

import base64
import types

import msgspec
import openai
import pytest
from portkey_ai import createHeaders

from gateway.app import create_app
from gateway.errors import StartupError
from gateway.keys import GATEWAY
from gateway.settings import read_file
from gateway.testing import Reply
import gateway_openai
from gateway_openai import testing as openai_fake
# This module runs through the first-party providers (their declared models, their fakes).
from first_party import FIRST_PARTY, gateway_plugins  # noqa: F401  (a fixture)


GEN = "/v1/images/generations"


@pytest.fixture
def settings_file(tmp_path, fake_upstream, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-from-env")
    (tmp_path / "key").write_text("sk-from-file\n")
    path = tmp_path / "gateway.toml"
    path.write_text(f"""
[providers.openai]
base_url = "{fake_upstream.url}/v1"

[virtual_keys.openai-prod]
provider = "openai"
api_key_env = "TEST_OPENAI_KEY"
openai_organization = "org-prod"

[virtual_keys.openai-backup]
provider = "openai"
api_key_file = "{tmp_path / 'key'}"

[configs.pc-images]
strategy = {{ mode = "fallback" }}
targets = [
  {{ virtual_key = "openai-prod", override_params = {{ model = "dall-e-3" }} }},
  {{ virtual_key = "openai-backup" }},
]
""")
    return path


@pytest.fixture
def gateway_settings(settings_file):  # noqa: ANN001, ANN201
    return read_file(settings_file)


async def test_virtual_key_header(gateway_client, fake_upstream, log_capture):  # noqa: ANN001
    openai_fake.install(fake_upstream)
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers={"x-portkey-virtual-key": "openai-prod"})
    assert resp.status == 200
    sent = fake_upstream.last.headers
    assert sent["Authorization"] == "Bearer sk-from-env" and sent["OpenAI-Organization"] == "org-prod"
    assert resp.headers["x-portkey-provider"] == "openai"
    assert "sk-from-env" not in log_capture.text
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers={"x-portkey-virtual-key": "openai-prd"})
    assert resp.status == 400
    assert "did you mean 'openai-prod'" in (await resp.json())["error"]["message"]


async def test_saved_config_by_id(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(500, json={"error": {"message": "down"}}), Reply(json={"created": 1, "data": [{"b64_json": "aGk="}]}))
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers={"x-portkey-config": "pc-images"})
    assert resp.status == 200
    first, second = fake_upstream.requests
    assert first.headers["Authorization"] == "Bearer sk-from-env" and first.json()["model"] == "dall-e-3"
    assert second.headers["Authorization"] == "Bearer sk-from-file" and "model" not in second.json()
    assert resp.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers={"x-portkey-config": "pc-imagez"})
    assert resp.status == 400
    msg = (await resp.json())["error"]["message"]
    assert "did you mean 'pc-images'" in msg


async def test_inline_config_naming_a_virtual_key(gateway_client, fake_upstream):  # noqa: ANN001
    openai_fake.install(fake_upstream)
    config = {"virtual_key": "openai-backup", "override_params": {"model": "dall-e-2"}}
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers={"x-portkey-config": msgspec.json.encode(config).decode()})
    assert resp.status == 200 and fake_upstream.last.headers["Authorization"] == "Bearer sk-from-file"
    config = {"strategy": {"mode": "fallback"}, "targets": [{"virtual_key": "nope"}]}
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers={"x-portkey-config": msgspec.json.encode(config).decode()})
    assert resp.status == 400
    assert "unknown virtual key 'nope' - at `$.targets[0].virtual_key`" in (await resp.json())["error"]["message"]


@pytest.mark.parametrize(("override", "field"), [({"model": 1}, "model"), ({"n": "2"}, "n"), ({"size": [1]}, "size"),
                                                 ({"prompt": {"a": 1}}, "prompt")])
async def test_an_override_of_the_wrong_type_is_a_400_naming_its_path(gateway_client, fake_upstream, override,  # noqa: ANN001
                                                                      field):  # noqa: ANN001
    openai_fake.install(fake_upstream)
    config = {"strategy": {"mode": "fallback"}, "targets": [{"virtual_key": "openai-backup"},
                                                            {"virtual_key": "openai-backup", "override_params": override}]}
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers={"x-portkey-config": msgspec.json.encode(config).decode()})
    assert resp.status == 400, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_config" and f"at `$.targets[1].override_params.{field}`" in error["message"]
    assert fake_upstream.requests == []  # refused before any provider was called


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ('[virtual_keys.k]\nprovider = "openai"\napi_key_env = "NOT_SET_ANYWHERE_X"\n', "NOT_SET_ANYWHERE_X is not set"),
        ('[virtual_keys.k]\nprovider = "opena"\napi_key = "x"\n', "did you mean 'openai'"),
        ('[virtual_keys.k]\nprovider = "openai"\napi_key = "x"\nresource_nme = "r"\n', "resource_nme"),
        ('[virtual_keys.k]\nprovider = "openai"\napi_key_file = "/no/such/file"\n', "cannot read api_key_file"),
        ('[configs.c]\nstrategy = { mode = "fallbak" }\ntargets = [{ provider = "openai" }]\n', "[configs.c]"),
        ('[configs.c]\nvirtual_key = "missing"\n', "unknown virtual key 'missing'"),
        # A saved target's provider options are checked at start-up, not by its first request.
        ('[configs.c]\nprovider = "openai"\nopenai_organizaton = "o"\n',
         "[configs.c]: Invalid option for provider 'openai': Object contains unknown field `openai_organizaton`"),
        ('[virtual_keys.k]\nprovider = "openai"\napi_key = "x"\n[configs.c]\nstrategy = { mode = "fallback" }\n'
         'targets = [{ provider = "openai" }, { virtual_key = "k", openai_project = 5 }]\n',
         "Expected `str | null`, got `int` - at `$.targets[1].openai_project`"),
    ],
)
def test_bad_saved_settings_stop_startup(tmp_path, toml, needle):  # noqa: ANN001
    import gateway_openai
    import gateway_route_fallback

    path = tmp_path / "g.toml"
    path.write_text(toml)
    with pytest.raises(StartupError) as info:
        create_app(read_file(path), plugins=[gateway_openai, gateway_route_fallback], load_entrypoints=False)
    assert needle in str(info.value)
    assert "sk-" not in str(info.value)


#: Step 3 of the seed cookbook: a fallback over a 50/50 load balance of DALL-E 3 and Stability,
#: then DALL-E 2.
COOKBOOK = {
    "strategy": {"mode": "fallback"},
    "targets": [
        {"strategy": {"mode": "loadbalance"}, "targets": [
            {"provider": "openai", "api_key": "sk-openai", "override_params": {"model": "dall-e-3"}},
            {"provider": "stability-ai", "api_key": "sk-stability",
             "override_params": {"model": "stable-diffusion-v1-6"}},
        ]},
        {"provider": "openai", "api_key": "sk-openai", "override_params": {"model": "dall-e-2"}},
    ],
}


async def cookbook_client(aiohttp_server, fake_upstream, draws: list[float], config: dict):  # noqa: ANN001, ANN201
    """The openai SDK against a gateway with the first-party plugins, the load balancer's
    draws fixed, and ``config`` in ``x-portkey-config``."""
    import gateway_stability_ai
    from gateway_stability_ai import testing as stability_fake

    stability_fake.install(fake_upstream)
    app = create_app(
        {"providers": {"openai": {"base_url": fake_upstream.url + "/v1"}, "stability-ai": {"base_url": fake_upstream.url}}},
        plugins=[*FIRST_PARTY, gateway_openai, gateway_stability_ai], load_entrypoints=False,
    )
    app[GATEWAY].registry.strategies["loadbalance"].rng = types.SimpleNamespace(random=iter(draws).__next__)
    server = await aiohttp_server(app)
    client = openai.AsyncOpenAI(api_key="unused", base_url=str(server.make_url("/v1")), max_retries=0,
                                default_headers=createHeaders(config=config))
    return client, app


async def test_seed_cookbook_config_through_the_openai_sdk(aiohttp_server, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(500, json={"error": {"message": "dall-e-3 down"}}), openai_fake.make_handler())
    # First draw lands on stability-ai, the second on openai dall-e-3.
    client, _ = await cookbook_client(aiohttp_server, fake_upstream, [0.9, 0.1], COOKBOOK)
    async with client:
        first = await client.images.with_raw_response.generate(prompt="a fox", size="512x512")
        second = await client.images.with_raw_response.generate(prompt="a fox", size="512x512")
    assert first.headers["x-portkey-provider"] == "stability-ai"
    assert first.headers["x-portkey-last-used-option-index"] == "config.targets[0].targets[1]"
    assert base64.b64decode(first.parse().data[0].b64_json) == openai_fake.PNG_1X1
    (to_stability,) = [r for r in fake_upstream.requests if r.path.startswith("/v1/generation/")]
    assert to_stability.path == "/v1/generation/stable-diffusion-v1-6/text-to-image"
    assert to_stability.headers["Authorization"] == "Bearer sk-stability"
    assert to_stability.json() == {"text_prompts": [{"text": "a fox", "weight": 1}], "samples": 1,
                                   "width": 512, "height": 512}
    assert second.headers["x-portkey-provider"] == "openai"
    assert second.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    assert second.parse().data[0].url
    models = [r.json().get("model") for r in fake_upstream.requests if r.path == GEN]
    assert models == ["dall-e-3", "dall-e-2"]
    assert all(r.headers["Authorization"] != "Bearer unused" for r in fake_upstream.requests)



@pytest.mark.parametrize("draws", [[0.9, 0.1], [0.1, 0.9], [0.9, 0.9], [0.1, 0.1]])
async def test_seed_cookbook_step_4_the_repeat_comes_from_the_cache_whichever_target_answered(
        aiohttp_server, fake_upstream, draws):  # noqa: ANN001
    """Step 3's config with ``cache`` on: the second identical request is a HIT and costs no
    image, whatever the load balancer would draw; the answer says which target made it."""
    # dall-e answers with URLs on the provider's own host, served by the fake.
    openai_fake.install(fake_upstream, url_base=fake_upstream.url + "/img")
    fake_upstream.on("GET", "/img-0.png", Reply(body=openai_fake.PNG_1X1, content_type="image/png"))
    client, app = await cookbook_client(aiohttp_server, fake_upstream, draws, {**COOKBOOK, "cache": {"mode": "simple"}})
    async with client:
        first = await client.images.with_raw_response.generate(prompt="a fox", size="1024x1024")
        await app[GATEWAY].drain()
        second = await client.images.with_raw_response.generate(prompt="a fox", size="1024x1024")
    assert (first.headers["x-portkey-cache-status"], second.headers["x-portkey-cache-status"]) == ("MISS", "HIT")
    assert len([r for r in fake_upstream.requests if r.method == "POST"]) == 1  # one image paid for
    for name in ("x-portkey-provider", "x-portkey-last-used-option-index"):
        assert second.headers[name] == first.headers[name]
    assert second.content == first.content
