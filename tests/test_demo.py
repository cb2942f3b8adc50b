"""``gateway demo``'s provider: its service (gateway/demo/api.py) and pictures, and the gateway
routing to it as to any provider (the command itself, as a process: tests/test_demo_cli.py)."""
from __future__ import annotations

import base64
import io
import random
import socket
import time
from typing import Any

import msgspec
import openai
import pytest
from aiohttp import FormData
from PIL import Image, ImageDraw

from gateway.demo import pictures
from gateway.demo.api import SIZES, DemoApi
from gateway.demo.plugin import DemoPlugin
from gateway.demo.settings import demo_settings
from gateway.requestlog.settings import AdminSettings, RequestLogSettings

HEADERS = {"x-portkey-provider": "demo"}


def png(width: int, height: int, colour: tuple[int, int, int] = (10, 20, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def mask_png(width: int, height: int, hole: tuple[int, int, int, int]) -> bytes:
    """OpenAI's mask: opaque, with a transparent rectangle where the edit goes."""
    image = Image.new("RGBA", (width, height), (0, 0, 0, 255))
    ImageDraw.Draw(image).rectangle(hole, fill=(0, 0, 0, 0))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image.convert("RGB")


# --------------------------------------------------------------------------- pictures


def test_a_prompt_gives_the_same_picture_and_another_prompt_another_colour() -> None:
    a = pictures.generate("a red fox", 256, 256)
    assert a == pictures.generate("a red fox", 256, 256)
    assert opened(a).size == (256, 256)
    assert pictures.prompt_colours("a red fox") != pictures.prompt_colours("a blue whale")
    # The gradient's light end is the prompt's colour (the top-left corner is free of discs
    # in at least one of a few images of the request).
    light, _ = pictures.prompt_colours("a red fox")
    corners = [opened(pictures.generate("a red fox", 256, 128, index=i)).getpixel((0, 0)) for i in range(4)]
    assert any(max(abs(c - l) for c, l in zip(px, light, strict=True)) <= 8 for px in corners), (corners, light)
    assert pictures.generate("a red fox", 256, 256, index=1) != a


def test_an_edit_paints_the_masked_area_and_keeps_the_rest() -> None:
    source = png(512, 512)
    out = opened(pictures.edit(source, "a hat", 512, 512, mask=mask_png(512, 512, (100, 100, 300, 300))))
    assert out.size == (512, 512)
    assert out.getpixel((450, 450)) == (10, 20, 200)  # outside the mask: the caller's pixels
    assert out.getpixel((110, 110)) != (10, 20, 200)  # inside: painted


def test_an_edit_without_a_mask_paints_a_band_at_the_bottom() -> None:
    out = opened(pictures.edit(png(300, 300), "night", 300, 300))
    assert out.getpixel((5, 5)) == (10, 20, 200)
    assert out.getpixel((5, 295)) != (10, 20, 200)


# --------------------------------------------------------------------------- the demo service


@pytest.fixture
async def service(aiohttp_client):  # noqa: ANN001, ANN201
    return await aiohttp_client(DemoApi(latency=0, rng=random.Random(1)).app())


async def test_generations_answer_openais_shape_with_pngs_of_the_size(service) -> None:  # noqa: ANN001
    resp = await service.post("/v1/images/generations", json={"prompt": "a fox", "n": 2, "size": "512x512"})
    assert resp.status == 200
    doc = await resp.json()
    assert [opened(base64.b64decode(d["b64_json"])).size for d in doc["data"]] == [(512, 512)] * 2
    assert doc["data"][0]["revised_prompt"] == "a fox"
    assert doc["output_format"] == "png" and doc["size"] == "512x512" and doc["quality"] == "medium"
    assert doc["usage"]["input_tokens"] == 2 and isinstance(doc["created"], int)


@pytest.mark.parametrize(("body", "param", "code"), [
    ({}, "prompt", None),
    ({"prompt": " "}, "prompt", None),
    ({"prompt": "x" * 4001}, "prompt", None),
    ({"prompt": "a", "n": 3}, "n", None),
    ({"prompt": "a", "n": True}, "n", None),
    ({"prompt": "a", "size": "100x100"}, "size", None),
    ({"prompt": "a", "quality": "ultra"}, "quality", None),
    ({"prompt": "a", "response_format": "url"}, "response_format", None),
    ({"prompt": "a", "model": "dall-e-3"}, "model", "model_not_found"),
    ({"prompt": "a", "steps": 4}, "steps", "unknown_parameter"),
])
async def test_generations_refuse_what_the_api_does_not_take(service, body: dict[str, Any], param: str,  # noqa: ANN001
                                                              code: str | None) -> None:
    resp = await service.post("/v1/images/generations", json=body)
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert (err["param"], err["code"], err["type"]) == (param, code, "invalid_request_error")
    assert err["message"]


async def test_a_body_that_is_not_json_and_an_unknown_path_get_openai_errors(service) -> None:  # noqa: ANN001
    resp = await service.post("/v1/images/generations", data=b"{", headers={"Content-Type": "application/json"})
    assert resp.status == 400 and "JSON" in (await resp.json())["error"]["message"]
    resp = await service.get("/v1/nothing")
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"


async def test_fail_rate_one_fails_every_call_with_a_503_in_openais_shape(aiohttp_client) -> None:  # noqa: ANN001
    client = await aiohttp_client(DemoApi(latency=0, fail_rate=1.0).app())
    resp = await client.post("/v1/images/generations", json={"prompt": "a fox"})
    assert resp.status == 503 and resp.headers["Retry-After"] == "1"
    assert (await resp.json())["error"] == {
        "message": "The demo provider is overloaded (a simulated failure). Try again.",
        "type": "server_error", "param": None, "code": "overloaded"}


async def test_fail_rate_fails_about_that_share_of_calls(aiohttp_client) -> None:  # noqa: ANN001
    client = await aiohttp_client(DemoApi(latency=0, fail_rate=0.5, rng=random.Random(7)).app())
    statuses = [(await client.post("/v1/images/generations", json={"prompt": "a", "size": "256x256"})).status
                for _ in range(40)]
    assert set(statuses) == {200, 503} and 10 <= statuses.count(503) <= 30


async def test_prompts_that_ask_for_a_failure_or_a_refusal_get_one(service) -> None:  # noqa: ANN001
    resp = await service.post("/v1/images/generations", json={"prompt": "a fox [fail]"})
    assert resp.status == 503
    resp = await service.post("/v1/images/generations", json={"prompt": "a fox [refuse]"})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "content_policy_violation"


async def test_latency_is_waited_for(aiohttp_client) -> None:  # noqa: ANN001
    client = await aiohttp_client(DemoApi(latency=0.2).app())
    started = time.perf_counter()
    resp = await client.post("/v1/images/generations", json={"prompt": "a", "size": "256x256"})
    assert resp.status == 200 and time.perf_counter() - started >= 0.15


async def test_edits_draw_on_the_image_within_the_mask(service) -> None:  # noqa: ANN001
    form = FormData()
    form.add_field("image", png(512, 512), filename="a.png", content_type="image/png")
    form.add_field("mask", mask_png(512, 512, (0, 0, 100, 100)), filename="m.png", content_type="image/png")
    form.add_field("prompt", "a hat")
    form.add_field("n", "2")
    resp = await service.post("/v1/images/edits", data=form)
    assert resp.status == 200, await resp.text()
    images = [opened(base64.b64decode(d["b64_json"])) for d in (await resp.json())["data"]]
    assert len(images) == 2
    for image in images:
        assert image.size == (512, 512)  # no size: the image's own, a size the demo makes
        assert image.getpixel((400, 400)) == (10, 20, 200) and image.getpixel((50, 50)) != (10, 20, 200)


@pytest.mark.parametrize(("fields", "message"), [
    ([("prompt", "a")], "at least one `image`"),
    ([("image", b"not an image"), ("prompt", "a")], "Invalid image"),
    ([("image", png(64, 64)), ("mask", png(32, 32)), ("prompt", "a")], "size of the first image"),
    ([("image", png(64, 64)), ("prompt", "a"), ("seed", "1")], "Unrecognized request argument"),
    ([("image", png(64, 64)), ("prompt", "a"), ("n", "two")], "`n` must be an integer"),
])
async def test_edits_refuse_what_the_api_does_not_take(service, fields: list[tuple[str, Any]],  # noqa: ANN001
                                                        message: str) -> None:
    form = FormData(default_to_multipart=True)
    for name, value in fields:
        if isinstance(value, bytes):
            form.add_field(name, value, filename="f.png", content_type="image/png")
        else:
            form.add_field(name, value)
    resp = await service.post("/v1/images/edits", data=form)
    assert resp.status == 400
    assert message in (await resp.json())["error"]["message"]


async def test_models_lists_the_demo_model(service) -> None:  # noqa: ANN001
    resp = await service.get("/v1/models")
    assert [m["id"] for m in (await resp.json())["data"]] == ["demo-1"]


# --------------------------------------------------------------------------- through the gateway


@pytest.fixture
def demo_api() -> DemoApi:
    return DemoApi(latency=0, rng=random.Random(3))


@pytest.fixture
def demo_plugin(demo_api: DemoApi) -> DemoPlugin:
    """The demo's plugin, its service on a port of its own (closed when the app stops)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return DemoPlugin(demo_api, sock)


@pytest.fixture
def gateway_plugins(demo_plugin: DemoPlugin) -> list[Any]:
    return [demo_plugin]


@pytest.fixture
def gateway_settings(demo_plugin: DemoPlugin) -> dict[str, Any]:
    return {"providers": {"demo": {"base_url": demo_plugin.base_url}}}


def sdk(gateway_server) -> openai.AsyncOpenAI:  # noqa: ANN001
    return openai.AsyncOpenAI(base_url=str(gateway_server.make_url("/v1")), api_key="demo",
                              default_headers=HEADERS, max_retries=0)


async def test_the_sdk_gets_n_urls_made_in_parallel_calls(gateway_server, gateway_client):  # noqa: ANN001, ANN201
    async with sdk(gateway_server) as client:
        result = await client.images.generate(model="demo-1", prompt="a lighthouse", n=3, size="1536x1024",
                                              response_format="url")
    assert len(result.data) == 3
    for item in result.data:
        assert item.url is not None
        resp = await gateway_client.get(item.url.split(str(gateway_server.make_url("")).rstrip("/"), 1)[1])
        assert resp.status == 200 and resp.content_type == "image/png"
        assert opened(await resp.read()).size == (1536, 1024)


async def test_a_size_the_model_lacks_is_mapped_to_one_it_makes(gateway_client) -> None:  # noqa: ANN001
    resp = await gateway_client.post("/v1/images/generations", headers=HEADERS,
                                     json={"prompt": "a fox", "size": "1000x1010", "response_format": "b64_json"})
    assert resp.status == 200
    assert "size" in resp.headers.get("x-portkey-adjusted-params", "")
    doc = await resp.json()
    assert opened(base64.b64decode(doc["data"][0]["b64_json"])).size == (1024, 1024)
    assert doc["provider"] == "demo"


async def test_an_edit_through_the_sdk_draws_on_the_callers_image(gateway_server) -> None:  # noqa: ANN001
    async with sdk(gateway_server) as client:
        result = await client.images.edit(model="demo-1", image=("a.png", io.BytesIO(png(1024, 1024)), "image/png"),
                                          prompt="add a hat", response_format="b64_json")
    image = opened(base64.b64decode(result.data[0].b64_json or ""))
    assert image.size == (1024, 1024) and image.getpixel((10, 10)) == (10, 20, 200)


async def test_a_simulated_failure_keeps_its_503(gateway_client, demo_api: DemoApi):  # noqa: ANN001, ANN201
    demo_api.fail_rate = 1.0
    resp = await gateway_client.post("/v1/images/generations", headers=HEADERS, json={"prompt": "a fox"})
    assert resp.status == 503
    doc = await resp.json()
    assert doc["error"]["code"] == "overloaded" and doc["error"]["message"].startswith("demo error: ")
    assert doc["provider"] == "demo"


async def test_a_refusal_is_a_content_policy_violation(gateway_client) -> None:  # noqa: ANN001
    resp = await gateway_client.post("/v1/images/generations", headers=HEADERS, json={"prompt": "x [refuse]"})
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "content_policy_violation"


async def test_passthrough_reaches_the_demo_service(gateway_client) -> None:  # noqa: ANN001
    resp = await gateway_client.get("/v1/models", headers=HEADERS)
    assert resp.status == 200
    assert msgspec.json.decode(await resp.read())["data"][0]["id"] == "demo-1"


# --------------------------------------------------------------------------- the demo's settings


def test_demo_settings_turn_the_request_log_on_and_make_an_admin_key() -> None:
    demo = demo_settings({"logging": {"level": "warning"}}, host=None, port=9000, base_url="http://127.0.0.1:1/v1",
                         sections={"request_log": RequestLogSettings, "admin": AdminSettings})
    raw = demo.raw
    assert raw["server"] == {"host": "127.0.0.1", "port": 9000, "workers": 1}
    assert raw["logging"] == {"level": "warning", "format": "console"}
    assert raw["providers"]["demo"] == {"base_url": "http://127.0.0.1:1/v1"}
    assert raw["request_log"]["enabled"] is True and raw["request_log"]["path"].endswith("requests.sqlite3")
    assert demo.admin and demo.admin_key is not None and len(demo.admin_key) >= 32
    assert raw["admin"] == {"key": demo.admin_key}


def test_demo_settings_keep_the_operators_admin_key_and_work_without_the_request_log() -> None:
    demo = demo_settings({"admin": {"key_env": "MY_KEY"}}, host="0.0.0.0", port=None, base_url="http://x/v1",
                         sections={"admin": AdminSettings})
    assert demo.admin and demo.admin_key is None and demo.raw["admin"] == {"key_env": "MY_KEY"}
    assert "request_log" not in demo.raw and demo.raw["server"]["host"] == "0.0.0.0"
    bare = demo_settings({}, host=None, port=None, base_url="http://x/v1", sections={})
    assert not bare.admin and "admin" not in bare.raw


def test_every_declared_size_is_one_the_service_makes() -> None:
    for size in SIZES:
        w, h = map(int, size.split("x"))
        assert opened(pictures.generate("a", w, h)).size == (w, h)


async def test_the_demo_prices_its_images_so_costs_show(gateway_client) -> None:  # noqa: ANN001
    resp = await gateway_client.post("/v1/images/generations", headers=HEADERS, json={"prompt": "a fox", "n": 3})
    assert resp.status == 200
    assert float(resp.headers["x-gateway-cost"]) == pytest.approx(0.03)
