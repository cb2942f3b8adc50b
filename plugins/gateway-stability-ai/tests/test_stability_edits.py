"""images.edits to Stability through the gateway, against the fake of Stability's edit routes:
the exact multipart parts each route received (names, file bytes, order), and every refusal
before an upstream call."""
from __future__ import annotations

import base64
from typing import Any

import aiohttp
import msgspec
import openai
import pytest

from gateway.testing import PNG_1X1, Recorded
from gateway.testing import edit_form as openai_form
from gateway_stability_ai import testing as fake_api

H = {"x-portkey-provider": "stability-ai", "Authorization": "Bearer sk-stab-1"}
EDITS = "/v1/images/edits"
EDIT = "/v2beta/stable-image/edit/"
#: Real PNGs of sizes Stability takes, told apart by trailing marker bytes.
IMAGE = fake_api.png(64, 64, marker=b"image")
TRANSPARENT = fake_api.png(64, 64, alpha=True, marker=b"transparent")
MASK = fake_api.png(64, 64, marker=b"mask")


def sdk(server) -> openai.AsyncOpenAI:  # noqa: ANN001
    return openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="sk-stab-sdk", max_retries=0,
                              default_headers={"x-portkey-provider": "stability-ai"})


def edit_form(*images: bytes, mask: bytes | None = None, **fields: str) -> aiohttp.FormData:
    return openai_form(*images, mask=mask, **{"prompt": "a red door", **fields})


async def files_of(rec: Recorded) -> list[tuple[str, str | None, bytes]]:
    """The file parts Stability received, in order: (name, file name, bytes)."""
    return [(p.name, p.filename, p.data) for p in await rec.form() if p.filename is not None]


async def texts_of(rec: Recorded) -> dict[str, str]:
    """The text parts Stability received (each name once)."""
    parts = [p for p in await rec.form() if p.filename is None]
    assert len({p.name for p in parts}) == len(parts)
    return {p.name: p.data.decode() for p in parts}


async def refused(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    assert resp.status == 400, await resp.text()
    return (await resp.json())["error"]


# -- the default: inpaint -------------------------------------------------------------------------

async def test_an_edit_with_a_mask_is_stabilitys_inpaint_through_the_openai_sdk(gateway_server, fake_upstream):  # noqa: ANN001
    async with sdk(gateway_server) as client:
        result = await client.images.edit(
            image=("photo.png", IMAGE, "image/png"), mask=("m.png", MASK, "image/png"), prompt="a red door",
            output_format="webp",
            extra_body={"negative_prompt": "blur", "seed": 42, "grow_mask": 10, "style": "anime"})
    assert base64.b64decode(result.data[0].b64_json) == fake_api.FORMAT_BYTES["webp"]
    sent = fake_upstream.last
    assert (sent.method, sent.path) == ("POST", EDIT + "inpaint")
    assert sent.headers["Authorization"] == "Bearer sk-stab-sdk"
    assert sent.headers["Accept"] == "application/json"
    assert sent.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    parts = await sent.form()
    # The image first, then the mask, each with the client's bytes, name and type.
    assert [(p.name, p.filename, p.content_type, p.data) for p in parts[:2]] == [
        ("image", "photo.png", "image/png", IMAGE), ("mask", "m.png", "image/png", MASK)]
    assert await texts_of(sent) == {"prompt": "a red door", "style_preset": "anime", "negative_prompt": "blur",
                                    "seed": "42", "grow_mask": "10", "output_format": "webp"}
    assert len(fake_upstream.requests) == 1


async def test_without_a_mask_the_images_transparency_is_inpainted(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await gateway_client.post(EDITS, data=edit_form(TRANSPARENT, response_format="url"), headers=H)
    assert resp.status == 200, await resp.text()
    assert "x-portkey-adjusted-params" not in resp.headers
    url = (await resp.json())["data"][0]["url"]
    image = await gateway_client.get("/" + url.split("://", 1)[1].partition("/")[2])
    assert await image.read() == PNG_1X1
    sent = fake_upstream.last
    assert sent.path == EDIT + "inpaint"
    assert await files_of(sent) == [("image", "in0.png", TRANSPARENT)]
    assert await texts_of(sent) == {"prompt": "a red door"}


@pytest.mark.parametrize("model", [None, "inpaint", "erase"])
async def test_no_mask_and_no_transparency_leaves_nothing_to_inpaint(gateway_client, fake_upstream, model):  # noqa: ANN001
    fields = {"model": model} if model else {}
    err = await refused(await gateway_client.post(EDITS, data=edit_form(IMAGE, **fields), headers=H))
    assert err["param"] == "mask" and "no alpha channel" in err["message"]
    assert fake_upstream.requests == []


# -- each edit model's route and form ------------------------------------------------------------

@pytest.mark.parametrize(
    ("model", "mask", "fields", "path", "texts"),
    [
        ("erase", MASK, {"grow_mask": "3", "seed": "9"}, EDIT + "erase",
         {"grow_mask": "3", "seed": "9"}),  # erase takes no prompt
        ("erase", None, {}, EDIT + "erase", {}),  # the transparent image's alpha is the mask
        ("outpaint", None, {"left": "128", "up": "64", "creativity": "0.4"}, EDIT + "outpaint",
         {"prompt": "a red door", "left": "128", "up": "64", "creativity": "0.4"}),
        ("search-and-replace", None, {"search_prompt": "the cat", "negative_prompt": "dog"},
         EDIT + "search-and-replace", {"prompt": "a red door", "search_prompt": "the cat", "negative_prompt": "dog"}),
        ("search-and-recolor", None, {"select_prompt": "the car", "grow_mask": "2"}, EDIT + "search-and-recolor",
         {"prompt": "a red door", "select_prompt": "the car", "grow_mask": "2"}),
        ("remove-background", None, {"output_format": "webp"}, EDIT + "remove-background", {"output_format": "webp"}),
        ("sd3.5-large", None, {"strength": "0.6", "cfg_scale": "5"}, "/v2beta/stable-image/generate/sd3",
         {"prompt": "a red door", "mode": "image-to-image", "model": "sd3.5-large", "strength": "0.6",
          "cfg_scale": "5"}),
        ("sd3.5-flash", None, {"strength": "1"}, "/v2beta/stable-image/generate/sd3",
         {"prompt": "a red door", "mode": "image-to-image", "model": "sd3.5-flash", "strength": "1"}),
        ("sd3", None, {"strength": "0.5"}, "/v2beta/stable-image/generate/sd3",
         {"prompt": "a red door", "mode": "image-to-image", "strength": "0.5"}),  # Stability's default model
        ("ultra", None, {"strength": "0.3", "seed": "4"}, "/v2beta/stable-image/generate/ultra",
         {"prompt": "a red door", "strength": "0.3", "seed": "4"}),
        ("stable-image-ultra", None, {"strength": "0.3"}, "/v2beta/stable-image/generate/ultra",
         {"prompt": "a red door", "strength": "0.3"}),
    ],
)
async def test_each_edit_model_reaches_its_route_with_its_fields(  # noqa: PLR0913
        gateway_client, fake_upstream, model, mask, fields, path, texts):  # noqa: ANN001
    image = TRANSPARENT if model == "erase" else IMAGE
    resp = await gateway_client.post(EDITS, data=edit_form(image, mask=mask, model=model, **fields), headers=H)
    assert resp.status == 200, await resp.text()
    assert base64.b64decode((await resp.json())["data"][0]["b64_json"]) in (PNG_1X1, fake_api.FORMAT_BYTES["webp"])
    sent = fake_upstream.last
    assert sent.path == path
    expected_files = [("image", "in0.png", image)] + ([("mask", "m.png", mask)] if mask else [])
    assert await files_of(sent) == expected_files
    assert await texts_of(sent) == texts


async def test_an_unlisted_sd3_variant_goes_to_the_sd3_model_field(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await gateway_client.post(EDITS, data=edit_form(IMAGE, model="sd3.7-huge", strength="0.5"), headers=H)
    # The fake knows the documented models only: Stability's own 400, relayed.
    assert resp.status == 400
    assert (await resp.json())["error"]["message"].startswith("stability-ai error: model: must be one of")
    assert (await texts_of(fake_upstream.last))["model"] == "sd3.7-huge"


# -- refused before any upstream call --------------------------------------------------------------

@pytest.mark.parametrize(
    ("model", "fields", "param"),
    [
        ("search-and-replace", {}, "search_prompt"),
        ("search-and-replace", {"search_prompt": "  "}, "search_prompt"),
        ("search-and-recolor", {}, "select_prompt"),
        ("sd3.5-large", {}, "strength"),
        ("sd3", {"cfg_scale": "4"}, "strength"),
        ("ultra", {}, "strength"),
        ("outpaint", {}, "left"),
        ("outpaint", {"left": "0", "down": "0"}, "left"),
    ],
)
async def test_a_routes_required_field_missing_is_a_400(gateway_client, fake_upstream, model, fields, param):  # noqa: ANN001
    err = await refused(await gateway_client.post(EDITS, data=edit_form(IMAGE, model=model, **fields), headers=H))
    assert (err["param"], err["code"]) == (param, "missing_required_parameter")
    assert model in err["message"]
    assert fake_upstream.requests == []


@pytest.mark.parametrize("model", ["outpaint", "search-and-replace", "search-and-recolor", "remove-background",
                                   "sd3.5-large", "ultra"])
async def test_a_mask_for_a_model_that_takes_none_is_a_400(gateway_client, fake_upstream, model):  # noqa: ANN001
    form = edit_form(IMAGE, mask=MASK, model=model, left="64", search_prompt="x", select_prompt="x", strength="0.5")
    err = await refused(await gateway_client.post(EDITS, data=form, headers=H))
    assert err["param"] == "mask"
    assert fake_upstream.requests == []


async def test_more_than_one_image_is_a_400(gateway_client, fake_upstream):  # noqa: ANN001
    err = await refused(await gateway_client.post(EDITS, data=edit_form(IMAGE, TRANSPARENT), headers=H))
    assert err["param"] == "image" and "1 image at most; 2 were sent" in err["message"]
    assert fake_upstream.requests == []


@pytest.mark.parametrize(
    ("model", "image", "fields", "why"),
    [
        ("inpaint", PNG_1X1, {}, "1x1 image: every side must be at least 64 pixels"),
        ("outpaint", fake_api.png(161, 64), {"left": "10"}, "aspect ratio must be between 1:2.5 and 2.5:1"),
        ("search-and-recolor", fake_api.png(64, 161), {"select_prompt": "x"}, "aspect ratio"),
        ("sd3.5-medium", fake_api.png(63, 200), {"strength": "0.5"}, "at least 64 pixels"),
    ],
)
async def test_an_image_outside_the_routes_limits_is_a_400(gateway_client, fake_upstream, model, image, fields, why):  # noqa: ANN001, PLR0913
    err = await refused(await gateway_client.post(EDITS, data=edit_form(image, model=model, **fields), headers=H))
    assert err["param"] == "image" and why in err["message"]
    assert fake_upstream.requests == []


async def test_a_shape_only_some_routes_refuse_reaches_the_others(gateway_client, fake_upstream):  # noqa: ANN001
    wide = fake_api.png(161, 64, alpha=True)
    resp = await gateway_client.post(EDITS, data=edit_form(wide), headers=H)  # inpaint: no aspect-ratio rule
    assert resp.status == 200, await resp.text()
    assert await files_of(fake_upstream.last) == [("image", "in0.png", wide)]


@pytest.mark.parametrize("model", ["dall-e-2", "core", "stable-diffusion-xl-1024-v1-0", "../edit/inpaint"])
async def test_a_model_that_names_no_stability_edit_is_a_400(gateway_client, fake_upstream, model):  # noqa: ANN001
    err = await refused(await gateway_client.post(EDITS, data=edit_form(IMAGE, model=model), headers=H))
    assert err["param"] == "model" and "search-and-replace" in err["message"]
    assert fake_upstream.requests == []


async def test_remove_background_answers_png_or_webp_only(gateway_client, fake_upstream):  # noqa: ANN001
    form = edit_form(IMAGE, model="remove-background", output_format="jpeg")
    err = await refused(await gateway_client.post(EDITS, data=form, headers=H))
    assert err["param"] == "output_format" and "png, webp" in err["message"]
    assert fake_upstream.requests == []


# -- what the routes do not take: dropped and reported, or refused in strict mode ------------------

async def test_size_is_dropped_and_reported(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await gateway_client.post(EDITS, data=edit_form(TRANSPARENT, size="1024x1024", quality="high"),
                                     headers=H)
    assert resp.status == 200, await resp.text()
    assert resp.headers["x-portkey-adjusted-params"] == "quality=high->(dropped); size=1024x1024->(dropped)"
    assert await texts_of(fake_upstream.last) == {"prompt": "a red door"}


async def test_size_auto_is_what_the_routes_do(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await gateway_client.post(EDITS, data=edit_form(TRANSPARENT, size="auto"), headers=H)
    assert resp.status == 200, await resp.text()
    assert "x-portkey-adjusted-params" not in resp.headers
    assert await texts_of(fake_upstream.last) == {"prompt": "a red door"}


@pytest.mark.parametrize(("fields", "param"), [({"size": "512x512"}, "size"), ({"quality": "high"}, "quality"),
                                               ({"model": "erase", "style": "anime"}, "style"),
                                               ({"steps": "30"}, "steps")])
async def test_strict_mode_refuses_what_the_route_does_not_take(gateway_client, fake_upstream, fields, param):  # noqa: ANN001
    resp = await gateway_client.post(EDITS, data=edit_form(TRANSPARENT, **fields),
                                     headers={**H, "x-portkey-strict-params": "true"})
    assert (await refused(resp))["param"] == param
    assert fake_upstream.requests == []


async def test_style_maps_onto_style_preset_and_the_native_one_wins(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await gateway_client.post(EDITS, data=edit_form(TRANSPARENT, style="anime", style_preset="origami"),
                                     headers=H)
    assert resp.status == 200, await resp.text()
    assert (await texts_of(fake_upstream.last))["style_preset"] == "origami"


# -- n, seeds and answers ---------------------------------------------------------------------------

async def test_n_is_parallel_calls_with_following_seeds(gateway_server, fake_upstream):  # noqa: ANN001
    async with sdk(gateway_server) as client:
        result = await client.images.edit(model="sd3.5-large-turbo", image=("a.png", IMAGE, "image/png"),
                                          prompt="a red door", n=3, extra_body={"seed": 42, "strength": 0.5})
    assert len(result.data) == 3
    assert len(fake_upstream.requests) == 3
    seeds = sorted([(await texts_of(r))["seed"] for r in fake_upstream.requests], key=int)
    assert seeds == ["42", "43", "44"]
    for rec in fake_upstream.requests:
        assert await files_of(rec) == [("image", "a.png", IMAGE)]


@pytest.mark.parametrize(
    ("fields", "status", "code", "message"),
    [
        ({"prompt": f"a door {fake_api.REFUSE}"}, 403, "content_policy_violation", "content moderation"),
        ({"prompt": f"a door {fake_api.BLUR}"}, 400, "content_policy_violation", "CONTENT_FILTERED"),
        ({"grow_mask": "101"}, 400, "bad_request", "stability-ai error: grow_mask: must be a whole number from 0 to 100"),
    ],
)
async def test_stabilitys_refusals_come_back_in_openais_shape(gateway_client, fields, status, code, message):  # noqa: ANN001
    resp = await gateway_client.post(EDITS, data=edit_form(TRANSPARENT, **fields), headers=H)
    assert resp.status == status, await resp.text()
    doc = await resp.json()
    assert doc["error"]["code"] == code and message in doc["error"]["message"]
    assert doc["provider"] == "stability-ai"


async def test_a_config_target_picks_the_edit_model(gateway_client, fake_upstream):  # noqa: ANN001
    cfg = {"provider": "stability-ai", "api_key": "sk-from-config",
           "override_params": {"model": "search-and-replace", "search_prompt": "the door", "seed": 7}}
    resp = await gateway_client.post(EDITS, data=edit_form(IMAGE, n="2"),
                                     headers={"x-portkey-config": msgspec.json.encode(cfg).decode()})
    assert resp.status == 200, await resp.text()
    assert {r.path for r in fake_upstream.requests} == {EDIT + "search-and-replace"}
    assert fake_upstream.last.headers["Authorization"] == "Bearer sk-from-config"
    # A number from the config: the core gives the second call the next seed, once.
    texts = sorted([await texts_of(r) for r in fake_upstream.requests], key=lambda t: t["seed"])
    assert texts == [{"prompt": "a red door", "search_prompt": "the door", "seed": "7"},
                     {"prompt": "a red door", "search_prompt": "the door", "seed": "8"}]
