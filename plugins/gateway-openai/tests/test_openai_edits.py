"""images.edits to OpenAI through the real openai SDK: the multipart forwarded byte for byte
when nothing changes, rebuilt with every file intact and in order when something does."""
from __future__ import annotations

import io

import openai
import pytest

from gateway.testing import PNG_1X1
from gateway_openai import testing as openai_fake

H = {"x-portkey-provider": "openai", "Authorization": "Bearer sk-openai-1"}
EDITS = "/v1/images/edits"
#: Distinct bytes per file (a real PNG signature, then a marker), so order and identity show.
IMAGES = [PNG_1X1 + bytes([i]) * 64 for i in range(3)]
MASK = PNG_1X1 + b"mask" * 16


def sdk(server, **headers: str) -> openai.AsyncOpenAI:  # noqa: ANN001
    return openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="sk-openai-1", max_retries=0,
                              default_headers={"x-portkey-provider": "openai", **headers})


def files(*blobs: bytes) -> list[tuple[str, io.BytesIO, str]]:
    return [(f"in{i}.png", io.BytesIO(b), "image/png") for i, b in enumerate(blobs)]


async def test_an_edit_with_several_images_and_a_mask_goes_byte_for_byte(gateway_server, fake_upstream):  # noqa: ANN001
    async with sdk(gateway_server) as client:
        result = await client.images.edit(model="gpt-image-1.5", image=files(*IMAGES), mask=("m.png", MASK),
                                          prompt="put them in one room", input_fidelity="high", size="1536x1024")
    assert result.data[0].b64_json and result.usage.input_tokens == 25
    sent = fake_upstream.last
    assert sent.path == "/v1/images/edits"
    # Nothing needed to change: the client's multipart went as it was, boundary and all.
    parts = await openai_fake.form_parts(sent)
    assert [(p.name, p.data) for p in parts if p.filename] == [("image[]", b) for b in IMAGES] + [("mask", MASK)]
    fields = {p.name: p.data.decode() for p in parts if not p.filename}
    assert fields == {"model": "gpt-image-1.5", "prompt": "put them in one room", "input_fidelity": "high",
                      "size": "1536x1024"}


async def test_a_large_upload_goes_whole_both_ways(gateway_server, fake_upstream):  # noqa: ANN001
    big = [PNG_1X1 + bytes([i]) * (4 * 1024 * 1024) for i in range(2)]
    async with sdk(gateway_server) as client:
        await client.images.edit(model="gpt-image-1", image=files(*big), prompt="a hat")  # as sent
        await client.images.edit(model="gpt-image-1", image=files(*big), prompt="a hat", size="1000x1000")  # rebuilt
    for rec in fake_upstream.requests:
        assert [p.data for p in await openai_fake.form_parts(rec) if p.filename] == big


async def test_the_forwarded_body_is_the_clients_own_bytes(gateway_client, fake_upstream):  # noqa: ANN001
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("image", IMAGES[0], filename="a.png", content_type="image/png")
    form.add_field("prompt", "a hat")
    form.add_field("model", "gpt-image-1")
    writer = form()
    body = await writer.as_bytes()
    resp = await gateway_client.post(EDITS, data=body, headers={**H, "Content-Type": writer.content_type})
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.body == body
    assert fake_upstream.last.headers["Content-Type"] == writer.content_type
    assert "x-portkey-adjusted-params" not in resp.headers


async def test_a_changed_edit_is_rebuilt_with_every_file_intact_and_in_order(gateway_server, fake_upstream):  # noqa: ANN001
    async with sdk(gateway_server) as client:
        result = await client.images.edit(model="gpt-image-1", image=files(*IMAGES), mask=("m.png", MASK),
                                          prompt="a hat", size="1792x1024", response_format="url", n=2)
    assert len(result.data) == 2 and all("/v1/images/files/" in d.url for d in result.data)
    parts = await openai_fake.form_parts(fake_upstream.last)
    assert [(p.name, p.data, p.filename) for p in parts if p.filename] == (
        [("image[]", b, f"in{i}.png") for i, b in enumerate(IMAGES)] + [("mask", MASK, "m.png")])
    fields = {p.name: p.data.decode() for p in parts if not p.filename}
    # The size mapped to the family's nearest, response_format kept by the gateway (the family refuses it).
    assert fields == {"model": "gpt-image-1", "prompt": "a hat", "size": "1536x1024", "n": "2"}


async def test_override_params_rebuild_the_form(gateway_client, fake_upstream):  # noqa: ANN001
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("image", IMAGES[1], filename="a.png", content_type="image/png")
    form.add_field("prompt", "a hat")
    config = '{"provider": "openai", "api_key": "sk-openai-1", "override_params": {"model": "gpt-image-2", "quality": "low"}}'
    resp = await gateway_client.post(EDITS, data=form, headers={"x-portkey-config": config})
    assert resp.status == 200, await resp.text()
    parts = await openai_fake.form_parts(fake_upstream.last)
    assert [(p.name, p.data) for p in parts if p.filename] == [("image", IMAGES[1])]
    assert {p.name: p.data.decode() for p in parts if not p.filename} == {
        "prompt": "a hat", "model": "gpt-image-2", "quality": "low"}


@pytest.mark.parametrize(("build", "status", "param", "code"), [
    (lambda f: f.add_field("prompt", "x"), 400, "image", "missing_required_parameter"),
    (lambda f: f.add_field("image", IMAGES[0], filename="a.png"), 400, "prompt", "missing_required_parameter"),
    (lambda f: (f.add_field("image", b"GIF89a not this", filename="a.gif"), f.add_field("prompt", "x")),
     400, "image", "invalid_image"),
    (lambda f: (f.add_field("doc", b"%PDF", filename="a.pdf"), f.add_field("prompt", "x")),
     400, "doc", "invalid_parameter"),
    (lambda f: [f.add_field("image[]", IMAGES[0], filename="a.png") for _ in range(17)] + [f.add_field("prompt", "x")],
     400, "image", "too_many_images"),
    (lambda f: (f.add_field("image", IMAGES[0], filename="a.png"), f.add_field("prompt", "x"),
                f.add_field("n", "two")), 400, "n", "invalid_parameter"),
])
async def test_bad_forms_are_400s_naming_the_problem_before_any_upstream_call(gateway_client, fake_upstream,  # noqa: ANN001
                                                                              build, status, param, code):
    import aiohttp

    form = aiohttp.FormData(default_to_multipart=True)
    build(form)
    resp = await gateway_client.post(EDITS, data=form, headers=H)
    assert resp.status == status, await resp.text()
    err = (await resp.json())["error"]
    assert (err["param"], err["code"]) == (param, code)
    assert fake_upstream.requests == []


async def test_a_truncated_or_non_multipart_body_is_a_clear_error(gateway_client, fake_upstream):  # noqa: ANN001
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("image", IMAGES[0], filename="a.png", content_type="image/png")
    form.add_field("prompt", "a hat")
    writer = form()
    body = await writer.as_bytes()
    resp = await gateway_client.post(EDITS, data=body[:-40], headers={**H, "Content-Type": writer.content_type})
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "invalid_multipart"
    resp = await gateway_client.post(EDITS, json={"prompt": "a hat"}, headers=H)
    assert resp.status == 415 and "multipart/form-data" in (await resp.json())["error"]["message"]
    assert fake_upstream.requests == []


async def test_a_file_over_the_limit_is_a_413(gateway_client, fake_upstream):  # noqa: ANN001
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("image", PNG_1X1 + b"\0" * 3000, filename="a.png", content_type="image/png")
    form.add_field("prompt", "a hat")
    resp = await gateway_client.post(EDITS, data=form, headers=H)
    assert resp.status == 413
    assert (await resp.json())["error"]["param"] == "image"


@pytest.fixture
def gateway_settings(fake_upstream, request):  # noqa: ANN001
    openai_fake.install(fake_upstream)
    images = {"max_input_file_bytes": 2048} if request.node.name.startswith("test_a_file_over") else {}
    return {"providers": {"openai": {"base_url": fake_upstream.url + "/v1"}}, "images": images}
