"""images.edits to Azure OpenAI deployments, through the real openai SDK and raw forms: the
client's multipart forwarded byte for byte when nothing changes, rebuilt with every file intact
and in order when the deployment's model, the config or the size mapping changes something;
the dated and the v1 API; what a deployment cannot edit refused before any upstream call."""
from __future__ import annotations

import base64
import io

import aiohttp
import msgspec
import openai
import pytest

from gateway.sdk import IMAGES_EDITS, BadParam
from gateway.testing import PNG_1X1, Recorded, make_attempt
from gateway_azure_openai import testing as fake_api
from gateway_azure_openai.provider import AzureOpenAIProvider

EDITS = "/v1/images/edits"
KEY = "azure-key-1"
#: A header-only request to the fake's resource and its gpt-image-1 deployment, on the dated API.
AZURE = {
    "x-portkey-provider": "azure-openai", "x-portkey-azure-resource-name": "contoso",
    "x-portkey-azure-deployment-id": "img", "x-portkey-azure-api-version": "2025-04-01-preview",
}
H = {**AZURE, "Authorization": f"Bearer {KEY}"}
#: Distinct bytes per file (a real PNG signature, then a marker), so order and identity show.
IMAGES = [PNG_1X1 + bytes([i]) * 64 for i in range(3)]
MASK = PNG_1X1 + b"mask" * 16
JPEG = b"\xff\xd8\xff\xe0" + b"jpeg" * 16
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"webp" * 16
OPTIONS = {"resource_name": "contoso", "deployment_id": "img"}


def sdk(server, **headers: str) -> openai.AsyncOpenAI:  # noqa: ANN001
    return openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key=KEY, max_retries=0,
                              default_headers={**AZURE, **headers})


def files(*blobs: bytes) -> list[tuple[str, io.BytesIO, str]]:
    return [(f"in{i}.png", io.BytesIO(b), "image/png") for i, b in enumerate(blobs)]


def form(*fields: tuple[str, str | bytes]) -> aiohttp.FormData:
    """A multipart form of ``fields`` in order; bytes go as files."""
    out = aiohttp.FormData(default_to_multipart=True)
    for i, (name, value) in enumerate(fields):
        if isinstance(value, bytes):
            out.add_field(name, value, filename=f"f{i}.bin", content_type="application/octet-stream")
        else:
            out.add_field(name, value)
    return out


async def raw(form_data: aiohttp.FormData) -> tuple[bytes, str]:
    writer = form_data()
    return await writer.as_bytes(), writer.content_type


async def sent_parts(rec) -> tuple[list[tuple[str, bytes, str | None]], dict[str, str]]:  # noqa: ANN001
    """The files (name, bytes, file name) in order, and the text fields, of an edit the fake received."""
    parts = await fake_api.form_parts(rec)
    return ([(p.name, p.data, p.filename) for p in parts if p.filename is not None],
            {p.name: p.data.decode() for p in parts if p.filename is None})


# -- forwarded as sent, or rebuilt --------------------------------------------------------------

async def test_an_edit_with_several_images_and_a_mask_reaches_the_deployment(gateway_server, fake_upstream, azure):  # noqa: ANN001
    async with sdk(gateway_server) as client:
        result = await client.images.edit(model="gpt-image-1", image=files(*IMAGES), mask=("m.png", MASK),
                                          prompt="put them in one room", size="1536x1024", quality="low",
                                          input_fidelity="high")
    assert base64.b64decode(result.data[0].b64_json) == azure.served[0]
    assert result.usage.input_tokens_details.image_tokens == 120  # the fake's 40 per input image
    sent = fake_upstream.last
    assert sent.path == azure.dated_path("img", "edits") and sent.query == {"api-version": "2025-04-01-preview"}
    assert sent.headers["api-key"] == KEY and "Authorization" not in sent.headers
    assert not [name for name in sent.headers if name.lower().startswith("x-portkey-")]
    got_files, fields = await sent_parts(sent)
    assert got_files == [("image[]", b, f"in{i}.png") for i, b in enumerate(IMAGES)] + [("mask", MASK, "m.png")]
    assert fields == {"model": "gpt-image-1", "prompt": "put them in one room", "size": "1536x1024",
                      "quality": "low", "input_fidelity": "high"}


async def test_the_forwarded_body_is_the_clients_own_bytes(gateway_client, fake_upstream, azure):  # noqa: ANN001
    body, content_type = await raw(form(("image", JPEG), ("prompt", "a hat"), ("model", "gpt-image-1"),
                                        ("mask", MASK)))
    resp = await gateway_client.post(EDITS, data=body, headers={**H, "Content-Type": content_type})
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.body == body
    assert fake_upstream.last.headers["Content-Type"] == content_type
    assert "x-portkey-adjusted-params" not in resp.headers


async def test_a_mapped_size_rebuilds_the_form_with_every_file_intact_and_in_order(gateway_server, fake_upstream,  # noqa: ANN001
                                                                                     azure):
    async with sdk(gateway_server) as client:
        raw_resp = await client.images.with_raw_response.edit(
            model="gpt-image-1", image=files(*IMAGES), mask=("m.png", MASK), prompt="a hat", size="1792x1024",
            response_format="url", n=2)
    assert raw_resp.headers["x-portkey-adjusted-params"] == "size=1792x1024->1536x1024"
    result = raw_resp.parse()
    assert len(result.data) == 2 and all("/v1/images/files/" in d.url for d in result.data)
    got_files, fields = await sent_parts(fake_upstream.last)
    assert got_files == [("image[]", b, f"in{i}.png") for i, b in enumerate(IMAGES)] + [("mask", MASK, "m.png")]
    # The gpt-image family takes no response_format: the gateway keeps the images and answers with its URLs.
    assert fields == {"model": "gpt-image-1", "prompt": "a hat", "size": "1536x1024", "n": "2"}


async def test_azure_model_name_adds_the_model_to_the_rebuilt_form(gateway_client, fake_upstream, azure):  # noqa: ANN001
    data = form(("image[]", IMAGES[0]), ("prompt", "a hat"), ("image[]", IMAGES[1]), ("size", "1024x1024"))
    resp = await gateway_client.post(EDITS, data=data, headers={**H, "x-portkey-azure-model-name": "gpt-image-1"})
    assert resp.status == 200, await resp.text()
    parts = await fake_api.form_parts(fake_upstream.last)
    # Every part where the client put it; the deployment's model, which the client did not send, at the end.
    assert [(p.name, p.data) for p in parts] == [
        ("image[]", IMAGES[0]), ("prompt", b"a hat"), ("image[]", IMAGES[1]), ("size", b"1024x1024"),
        ("model", b"gpt-image-1")]


async def test_override_params_rebuild_the_form(gateway_client, fake_upstream, azure):  # noqa: ANN001
    node = {"provider": "azure-openai", "api_key": KEY, "resource_name": "contoso", "deployment_id": "img",
            "override_params": {"quality": "low", "output_format": "jpeg"}}
    resp = await gateway_client.post(EDITS, data=form(("image", IMAGES[2]), ("prompt", "a hat"), ("quality", "high")),
                                     headers={"x-portkey-config": msgspec.json.encode(node).decode()})
    assert resp.status == 200, await resp.text()
    got_files, fields = await sent_parts(fake_upstream.last)
    assert [(name, data) for name, data, _ in got_files] == [("image", IMAGES[2])]
    assert fields == {"prompt": "a hat", "quality": "low", "output_format": "jpeg"}
    assert fake_upstream.last.query == {"api-version": "2025-04-01-preview"}  # the settings' default


async def test_v1_api_names_the_deployment_in_model(gateway_client, fake_upstream, azure):  # noqa: ANN001
    data = form(("model", "gpt-image-1"), ("image[]", IMAGES[0]), ("image[]", IMAGES[1]), ("prompt", "a hat"),
                ("mask", MASK))
    resp = await gateway_client.post(EDITS, data=data, headers={**H, "x-portkey-azure-api-version": "v1"})
    assert resp.status == 200, await resp.text()
    sent = fake_upstream.last
    assert sent.path == "/contoso/openai/v1/images/edits" and sent.query == {}
    parts = await fake_api.form_parts(sent)
    # `model` becomes the deployment, in the place the client gave it.
    assert [(p.name, p.data) for p in parts] == [
        ("model", b"img"), ("image[]", IMAGES[0]), ("image[]", IMAGES[1]), ("prompt", b"a hat"), ("mask", MASK)]


async def test_v1_api_without_a_deployment_option_takes_the_model_as_the_deployment(gateway_client, fake_upstream,  # noqa: ANN001
                                                                                     azure):
    headers = {k: v for k, v in H.items() if k != "x-portkey-azure-deployment-id"}
    body, content_type = await raw(form(("image", IMAGES[0]), ("prompt", "a hat"), ("model", "mini")))
    resp = await gateway_client.post(EDITS, data=body, headers={
        **headers, "x-portkey-azure-api-version": "preview", "Content-Type": content_type})
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.path == "/contoso/openai/v1/images/edits"
    assert fake_upstream.last.query == {"api-version": "preview"}
    assert fake_upstream.last.body == body  # the model is the deployment already: nothing to change


# -- refused before anything is sent ------------------------------------------------------------

@pytest.mark.parametrize(("fields", "headers", "param"), [
    ((), {"x-portkey-azure-deployment-id": None}, "x-portkey-azure-deployment-id"),
    ((), {"x-portkey-azure-resource-name": None}, "x-portkey-azure-resource-name"),
    ((("model", "dall-e-3"),), {"x-portkey-azure-deployment-id": "dalle"}, "model"),
    ((), {"x-portkey-azure-deployment-id": "dalle", "x-portkey-azure-model-name": "dall-e-3"}, "model"),
    ((), {"x-portkey-azure-api-version": "2024-10-21"}, "x-portkey-azure-api-version"),
    ((("image[]", WEBP),), {}, "image"),
    ((("mask", JPEG),), {}, "mask"),
    ((("model", "gpt-image-1-mini"), ("input_fidelity", "high")), {"x-portkey-azure-deployment-id": "mini"},
     "input_fidelity"),
])
async def test_what_the_target_cannot_edit_is_a_400_before_any_upstream_call(gateway_client, fake_upstream,  # noqa: ANN001
                                                                              fields, headers, param):
    sent = {**H, **headers}
    data = form(("image[]", IMAGES[0]), ("prompt", "a hat"), *fields)
    resp = await gateway_client.post(EDITS, data=data, headers={k: v for k, v in sent.items() if v is not None})
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"]["param"] == param
    assert fake_upstream.requests == []


async def test_a_content_refusal_of_an_edit(gateway_client, fake_upstream, azure):  # noqa: ANN001
    resp = await gateway_client.post(EDITS, data=form(("image", IMAGES[0]), ("prompt", "a content_policy hat")),
                                     headers=H)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "content_policy_violation" and error["message"].endswith("(filtered: violence)")


async def test_a_missing_deployment_keeps_azures_answer(gateway_client, fake_upstream, azure):  # noqa: ANN001
    resp = await gateway_client.post(EDITS, data=form(("image", IMAGES[0]), ("prompt", "a hat")),
                                     headers={**H, "x-portkey-azure-deployment-id": "gone"})
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "DeploymentNotFound"


# -- the fake holds to Azure's rules (reached through passthrough, which forwards as sent) ----------

@pytest.mark.parametrize(("path", "fields", "status", "code", "param"), [
    ("deployments/img/images/edits?api-version=2024-10-21", (), 404, "404", None),
    ("deployments/img/images/edits?api-version=2025-04-01-preview", (("image", WEBP),), 400,
     "invalid_request_error", "image"),
    ("deployments/img/images/edits?api-version=2025-04-01-preview", (("mask", JPEG),), 400,
     "invalid_request_error", "mask"),
    ("deployments/img/images/edits?api-version=2025-04-01-preview", [("image[]", PNG_1X1)] * 17, 400,
     "invalid_request_error", "image"),
    ("deployments/img/images/edits?api-version=2025-04-01-preview", (("partial_images", "4"), ("stream", "true")),
     400, "invalid_request_error", "partial_images"),
    ("deployments/mini/images/edits?api-version=2025-04-01-preview", (("input_fidelity", "high"),), 400,
     "invalid_request_error", "input_fidelity"),
    ("deployments/dalle/images/edits?api-version=2025-04-01-preview", (), 400, "OperationNotSupported", None),
    ("deployments/gone/images/edits?api-version=2025-04-01-preview", (), 404, "DeploymentNotFound", None),
    ("v1/images/edits", (), 400, "invalid_request_error", "model"),
])
async def test_the_fake_refuses_what_azure_refuses(gateway_client, fake_upstream, azure, path, fields, status, code,  # noqa: ANN001
                                                   param):
    data = form(("image", IMAGES[0]), ("prompt", "a hat"), *fields)
    resp = await gateway_client.post(f"/v1/openai/{path}", data=data, headers=H)
    assert resp.status == status, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == code and error.get("param") == param


# -- in process -----------------------------------------------------------------------------------

async def test_edit_urls_and_the_v1_model_in_process():
    attempt = make_attempt(AzureOpenAIProvider, endpoint=IMAGES_EDITS, images=[IMAGES[0]], options=OPTIONS)
    req = await attempt.provider.build_edit(attempt, attempt.plan.parts[0])
    assert req.url == ("https://contoso.openai.azure.com/openai/deployments/img/images/edits"
                       "?api-version=2025-04-01-preview")
    assert attempt.plan.parts[0].model == "gpt-image-1"  # the default edit model's limits, no model sent
    assert "model" not in {p.name for p in await _parts(req)}
    attempt = make_attempt(AzureOpenAIProvider, endpoint=IMAGES_EDITS, images=IMAGES[:2], mask=MASK,
                           body={"model": "gpt-image-1.5"}, options={**OPTIONS, "api_version": "v1"})
    req = await attempt.provider.build_edit(attempt, attempt.plan.parts[0])
    assert req.url == "https://contoso.openai.azure.com/openai/v1/images/edits"
    assert [(p.name, p.data) for p in await _parts(req)] == [
        ("image[]", IMAGES[0]), ("image[]", IMAGES[1]), ("model", b"img"), ("prompt", b"a lighthouse at dusk"),
        ("mask", MASK)]


def test_gpt_image_2_edits_follow_its_size_rule():
    attempt = make_attempt(AzureOpenAIProvider, endpoint=IMAGES_EDITS, images=IMAGES, body={"size": "4000x1000"},
                           options={**OPTIONS, "azure_model_name": "gpt-image-2"})
    assert attempt.plan.parts[0].size == "2976x992"
    assert len(attempt.plan.parts[0].images) == 3


def test_a_dall_e_deployment_does_not_edit_in_process():
    with pytest.raises(BadParam) as info:
        make_attempt(AzureOpenAIProvider, endpoint=IMAGES_EDITS, images=[IMAGES[0]],
                     options={**OPTIONS, "azure_model_name": "dall-e-3"})
    assert info.value.param == "model" and "do not edit" in info.value.message


async def _parts(req):  # noqa: ANN001, ANN202
    """The parts of a built multipart request, read as the fake reads what it receives."""
    return await Recorded("POST", "/", {}, req.headers, req.body).form()
