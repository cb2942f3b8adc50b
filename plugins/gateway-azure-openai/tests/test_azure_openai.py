"""The Azure OpenAI provider plugin against a fake of Azure's documented images API."""
from __future__ import annotations

import base64
from fnmatch import fnmatch
from urllib.parse import urlsplit

import gateway_azure_openai
import msgspec
import openai
import pytest
from portkey_ai import createHeaders

from gateway.sdk import (
    PROXY,
    BadParam,
    BadRequest,
    ContentPolicyViolation,
    MalformedAnswer,
    StartupError,
)
from gateway.testing import Reply, answer, make_attempt
from gateway.testing.harness import make_provider
from gateway.testing.provider_contract import ProviderContract, make_png
from gateway_azure_openai import testing as fake_api
from gateway_azure_openai.provider import AzureOpenAIProvider
from gateway_azure_openai.testing import content_policy_refusal, filter_results

GEN = "/v1/images/generations"
KEY = "azure-key-1"
#: A header-only request to the fake's resource and gpt-image-1 deployment.
H = {
    "x-portkey-provider": "azure-openai", "Authorization": f"Bearer {KEY}",
    "x-portkey-azure-resource-name": "contoso", "x-portkey-azure-deployment-id": "img",
    "x-portkey-azure-api-version": "2025-04-01-preview",
}


def config(**target: object) -> dict[str, str]:
    node = {"provider": "azure-openai", "api_key": KEY, "resource_name": "contoso", **target}
    return {"x-portkey-config": msgspec.json.encode(node).decode()}


def no_gateway_headers(rec) -> bool:  # noqa: ANN001
    return not [name for name in rec.headers if name.lower().startswith("x-portkey-")]


# -- where requests go, what they carry -------------------------------------------------

async def test_header_only_request_goes_to_the_deployment(gateway_client, fake_upstream, azure):  # noqa: ANN001
    body = {"prompt": "a red fox", "model": "gpt-image-1", "size": "1536x1024", "quality": "low",
            "output_format": "jpeg", "background": "opaque"}
    resp = await gateway_client.post(GEN, json=body, headers=H)
    assert resp.status == 200, await resp.text()
    doc = await resp.json()
    assert base64.b64decode(doc["data"][0]["b64_json"]) == azure.served[0]
    assert doc["provider"] == "azure-openai" and doc["usage"]["total_tokens"] == 4172
    sent = fake_upstream.last
    assert sent.path == "/contoso/openai/deployments/img/images/generations"
    assert sent.query == {"api-version": "2025-04-01-preview"}
    assert sent.headers["api-key"] == KEY and "Authorization" not in sent.headers
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.json() == body
    assert no_gateway_headers(sent)
    assert resp.headers["x-portkey-provider"] == "azure-openai"
    assert resp.headers["apim-request-id"] == "fake-apim-1"


async def test_openai_sdk_with_portkey_headers(gateway_server, fake_upstream, azure):  # noqa: ANN001
    headers = createHeaders(provider="azure-openai")
    headers.update({k: v for k, v in H.items() if k.startswith("x-portkey-azure-")})
    headers["x-portkey-azure-deployment-id"] = "mini"
    async with openai.AsyncOpenAI(api_key=KEY, base_url=str(gateway_server.make_url("/v1")),
                                  default_headers=headers, max_retries=0) as sdk:
        result = await sdk.images.generate(model="gpt-image-1-mini", prompt="a lighthouse", n=2, size="1024x1536")
    assert [base64.b64decode(d.b64_json) for d in result.data] == azure.served
    sent = fake_upstream.last
    assert sent.path == "/contoso/openai/deployments/mini/images/generations"
    assert sent.json() == {"model": "gpt-image-1-mini", "prompt": "a lighthouse", "n": 2, "size": "1024x1536"}
    assert sent.headers["api-key"] == KEY and no_gateway_headers(sent)


async def test_config_target_fields(gateway_client, fake_upstream, azure):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "x", "model": "dall-e-3", "response_format": "b64_json"},
                                     headers=config(deployment_id="dalle", api_version="2024-02-01"))
    assert resp.status == 200, await resp.text()
    item = (await resp.json())["data"][0]
    assert base64.b64decode(item["b64_json"]) == azure.served[0]
    assert item["revised_prompt"] == "A revised x"
    assert fake_upstream.last.path == azure.dated_path("dalle")
    assert fake_upstream.last.query == {"api-version": "2024-02-01"}


async def test_virtual_key_carries_resource_deployment_and_version(gateway_client, fake_upstream, azure):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "x", "model": "dall-e-3"},
                                     headers={"x-portkey-virtual-key": "azure-prod"})
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.path == azure.dated_path("dalle")
    assert fake_upstream.last.query == {"api-version": "2024-10-21"}
    assert fake_upstream.last.headers["api-key"] == KEY
    # A config target naming the virtual key may pick another deployment of the same resource.
    node = {"virtual_key": "azure-prod", "deployment_id": "img", "api_version": "2025-04-01-preview"}
    resp = await gateway_client.post(GEN, json={"prompt": "x", "model": "gpt-image-1"},
                                     headers={"x-portkey-config": msgspec.json.encode(node).decode()})
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.path == azure.dated_path("img")
    # So may the provider's own headers next to x-portkey-virtual-key.
    resp = await gateway_client.post(GEN, json={"prompt": "x", "model": "gpt-image-1"}, headers={
        "x-portkey-virtual-key": "azure-prod", "x-portkey-azure-deployment-id": "img",
        "x-portkey-azure-api-version": "2025-04-01-preview"})
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.path == azure.dated_path("img")
    assert fake_upstream.last.query == {"api-version": "2025-04-01-preview"}
    assert fake_upstream.last.headers["api-key"] == KEY


async def test_api_version_defaults_to_the_settings_value(gateway_client, fake_upstream, azure):  # noqa: ANN001
    headers = {k: v for k, v in H.items() if k != "x-portkey-azure-api-version"}
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=headers)
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.query == {"api-version": "2025-04-01-preview"}


async def test_v1_api_takes_the_deployment_as_model(gateway_client, fake_upstream, azure):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "x", "model": "gpt-image-1", "n": 2},
                                     headers={**H, "x-portkey-azure-api-version": "v1"})
    assert resp.status == 200, await resp.text()
    sent = fake_upstream.last
    assert sent.path == "/contoso/openai/v1/images/generations" and sent.query == {}
    assert sent.json() == {"prompt": "x", "model": "img", "n": 2}
    # Without a deployment option the client's model is the deployment, as on Azure's v1 API.
    headers = {k: v for k, v in H.items() if k != "x-portkey-azure-deployment-id"}
    resp = await gateway_client.post(GEN, json={"prompt": "x", "model": "mini"},
                                     headers={**headers, "x-portkey-azure-api-version": "preview"})
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.query == {"api-version": "preview"}
    assert fake_upstream.last.json() == {"prompt": "x", "model": "mini"}


async def test_entra_token_goes_as_bearer_instead_of_api_key(gateway_client, fake_upstream, azure):  # noqa: ANN001
    headers = {k: v for k, v in H.items() if k != "Authorization"}
    resp = await gateway_client.post(GEN, json={"prompt": "x"},
                                     headers={**headers, "x-portkey-azure-ad-token": "Bearer entra-token-1"})
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.headers["Authorization"] == "Bearer entra-token-1"
    assert "api-key" not in fake_upstream.last.headers
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=config(
        deployment_id="img", azure_ad_token="entra-token-1"))
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.headers["Authorization"] == "Bearer entra-token-1"
    assert "api-key" not in fake_upstream.last.headers


# -- what is missing or wrong is named before anything is sent --------------------------

@pytest.mark.parametrize(("drop", "named"), [
    ("x-portkey-azure-resource-name", "resource_name"),
    ("x-portkey-azure-deployment-id", "deployment_id"),
])
async def test_missing_resource_or_deployment_is_a_400(gateway_client, fake_upstream, drop, named):  # noqa: ANN001
    headers = {k: v for k, v in H.items() if k != drop}
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=headers)
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["param"] == drop and f"`{named}`" in err["message"] and drop in err["message"]
    assert fake_upstream.requests == []


@pytest.mark.parametrize(("header", "value"), [
    ("x-portkey-azure-resource-name", "evil.example.com/x?"),
    ("x-portkey-azure-deployment-id", "../../admin"),
    ("x-portkey-azure-api-version", "2024-10-21&x=1"),
])
async def test_values_that_would_change_the_url_are_refused(gateway_client, fake_upstream, header, value):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers={**H, header: value})
    assert resp.status == 400
    assert header in (await resp.json())["error"]["message"]
    assert fake_upstream.requests == []


@pytest.mark.parametrize("gateway_settings", [
    {"virtual_keys": {"bad": {"provider": "azure-openai", "api_key": "k", "resource_name": "a.b"}}}])
def test_a_bad_virtual_key_option_stops_start_up(request, gateway_settings):  # noqa: ANN001
    with pytest.raises(StartupError, match="resource_name"):
        request.getfixturevalue("gateway_app")


# -- capabilities: the deployment is not the model ----------------------------------------

async def test_dall_e_3_n_is_split_and_links_are_handed_on(gateway_client, fake_upstream, azure):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "x", "model": "dall-e-3", "n": 2, "style": "natural",
                                                "quality": "hd"}, headers={**H, "x-portkey-azure-deployment-id": "dalle"})
    assert resp.status == 200, await resp.text()
    data = (await resp.json())["data"]
    assert [d["url"].split("?")[0].rsplit("/", 2)[1] for d in data] in (["0001", "0002"], ["0002", "0001"])
    assert all(d["url"].startswith("https://dalleprodsec.blob.core.windows.net/") for d in data)
    assert [r.json() for r in fake_upstream.requests] == [
        {"prompt": "x", "model": "dall-e-3", "n": 1, "style": "natural", "quality": "hd"}] * 2


async def test_without_a_model_the_default_models_limits_apply(gateway_client, fake_upstream, azure):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "x", "size": "1792x1024", "response_format": "url"},
                                     headers=H)
    assert resp.status == 200, await resp.text()
    assert resp.headers["x-portkey-adjusted-params"] == "size=1792x1024->1536x1024"
    # gpt-image answers base64 only: the gateway keeps the image and hands out its own URL.
    assert (await resp.json())["data"][0]["url"].startswith(str(gateway_client.make_url("/v1/images/files/")))
    # No model goes upstream: the deployment decides it.
    assert fake_upstream.last.json() == {"prompt": "x", "size": "1536x1024"}


async def test_azure_model_name_names_the_deployments_model(gateway_client, fake_upstream, azure):  # noqa: ANN001
    headers = {**H, "x-portkey-azure-deployment-id": "dalle", "x-portkey-azure-model-name": "dall-e-3"}
    resp = await gateway_client.post(GEN, json={"prompt": "x", "n": 2, "size": "1536x1024"}, headers=headers)
    assert resp.status == 200, await resp.text()
    assert resp.headers["x-portkey-adjusted-params"] == "size=1536x1024->1792x1024"
    assert [r.json() for r in fake_upstream.requests] == [
        {"prompt": "x", "model": "dall-e-3", "n": 1, "size": "1792x1024"}] * 2


async def test_an_unknown_model_name_passes_unchecked(gateway_client, fake_upstream, azure):  # noqa: ANN001
    body = {"prompt": "x", "model": "my-image-deployment", "size": "1536x1024", "n": 3}
    resp = await gateway_client.post(GEN, json=body, headers=H)
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.json() == body and len(fake_upstream.requests) == 1


# -- errors ---------------------------------------------------------------------------------

async def test_content_policy_refusal(gateway_client, fake_upstream, azure):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a content_policy test"}, headers=H)
    assert resp.status == 400
    doc = await resp.json()
    assert doc["error"]["code"] == "content_policy_violation" and doc["provider"] == "azure-openai"
    assert doc["error"]["message"].startswith("azure-openai error: Your request was rejected")
    assert doc["error"]["message"].endswith("(filtered: violence)")


@pytest.mark.parametrize("answer", [
    # The image guide's shape of a refused prompt.
    Reply(400, json={"created": 1698435368, "error": {
        "code": "contentFilter", "message": "Your task failed as a result of our safety system."}}),
    # The chat API's shape, which Azure's front door also uses.
    Reply(400, json={"error": {"message": "The response was filtered", "type": None, "param": "prompt",
                               "code": "content_filter", "status": 400, "innererror": {
                                   "code": "ResponsibleAIPolicyViolation",
                                   "content_filter_result": filter_results(sexual="high")}}}),
    # A 2xx whose image was filtered after generation.
    Reply(200, json={"created": 1, "data": [{"error": {
        "code": "contentFilter", "message": "Generated image was filtered as a result of our safety system."}}]}),
    Reply(200, json={"created": 1, "data": [{"content_filter_results": filter_results(hate="high")}]}),
    Reply(200, json={"created": 1, "error": {"code": "contentFilter", "message": "Your task failed."}}),
])
async def test_every_documented_refusal_shape_is_one_code(gateway_client, fake_upstream, answer):  # noqa: ANN001
    fake_upstream.on("POST", "/contoso/openai/deployments/img/images/generations", answer)
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=H)
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"]["code"] == "content_policy_violation"


async def test_azure_errors_keep_status_code_and_message(gateway_client, fake_upstream, azure):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers={**H, "Authorization": "Bearer wrong"})
    assert resp.status == 401
    err = (await resp.json())["error"]
    assert err["message"].startswith("azure-openai error: Access denied due to invalid subscription key")
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers={**H, "x-portkey-azure-deployment-id": "gone"})
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "DeploymentNotFound"
    resp = await gateway_client.post(GEN, json={"prompt": "x", "model": "gpt-image-1", "output_format": "webp"},
                                     headers=H)
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == "output_format"


async def test_throttling_keeps_retry_after(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", "/contoso/openai/deployments/img/images/generations", Reply(
        429, json={"error": {"code": "429", "message": "Requests to the Images_Generations_Create Operation have "
                                                       "exceeded call rate limit."}},
        headers={"Retry-After": "7", "x-ms-retry-after-ms": "7000"}))
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=H)
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "7"
    assert (await resp.json())["error"]["code"] == "429"


@pytest.mark.parametrize("answer", [
    Reply(200, json={"created": 1}),
    Reply(200, json={"created": 1, "data": [{"revised_prompt": "no image"}]}),
    Reply(200, body=b"<html>gateway timeout</html>", content_type="text/html"),
    Reply(200, json={"created": 1, "data": []}),
])
async def test_malformed_answers_are_502(gateway_client, fake_upstream, answer):  # noqa: ANN001
    fake_upstream.on("POST", "/contoso/openai/deployments/img/images/generations", answer)
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=H)
    assert resp.status == 502
    err = (await resp.json())["error"]
    assert err["code"] == "invalid_provider_response" and "azure-openai" in err["message"]


# -- passthrough --------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "headers", "upstream_path", "query"), [
    # Azure's own paths, kept; api-version added when missing, kept when sent.
    ("/v1/openai/deployments/img/images/edits", {}, "/contoso/openai/deployments/img/images/edits",
     {"api-version": "2025-04-01-preview"}),
    ("/v1/openai/deployments/img/images/edits?api-version=2024-10-21&x=1", {},
     "/contoso/openai/deployments/img/images/edits", {"api-version": "2024-10-21", "x": "1"}),
    ("/v1/openai/v1/images/edits", {}, "/contoso/openai/v1/images/edits", {}),
    # OpenAI-shaped paths: per deployment, or below /openai, or below the v1 API.
    # (/v1/images/edits itself is the unified edits route; variations stay on passthrough.)
    ("/v1/images/variations", {}, "/contoso/openai/deployments/img/images/variations",
     {"api-version": "2025-04-01-preview"}),
    ("/v1/models", {}, "/contoso/openai/models", {"api-version": "2025-04-01-preview"}),
    ("/v1/images/variations", {"x-portkey-azure-api-version": "v1"}, "/contoso/openai/v1/images/variations", {}),
])
async def test_passthrough_paths(gateway_client, fake_upstream, path, headers, upstream_path, query):  # noqa: ANN001
    fake_upstream.on("POST", upstream_path, Reply(json={"created": 1, "data": []}))
    resp = await gateway_client.post(path, data=b"--b\r\n\r\n--b--\r\n", headers={
        **H, **headers, "Content-Type": "multipart/form-data; boundary=b"})
    assert resp.status == 200, await resp.text()
    sent = fake_upstream.last
    assert (sent.path, sent.query) == (upstream_path, query)
    assert sent.body == b"--b\r\n\r\n--b--\r\n"
    assert sent.headers["api-key"] == KEY and no_gateway_headers(sent)


async def test_azure_sdk_through_passthrough(gateway_server, fake_upstream, azure):  # noqa: ANN001
    # The AzureOpenAI client builds Azure's own paths and sends its key as `api-key`.
    headers = {"x-portkey-provider": "azure-openai", "x-portkey-azure-resource-name": "contoso"}
    async with openai.AsyncAzureOpenAI(azure_endpoint=str(gateway_server.make_url("/v1")), api_key=KEY,
                                       api_version="2024-10-21", default_headers=headers, max_retries=0) as sdk:
        result = await sdk.images.generate(model="dalle", prompt="a harbour", response_format="b64_json")
    assert base64.b64decode(result.data[0].b64_json) == azure.served[0]
    sent = fake_upstream.last
    assert (sent.path, sent.query) == (azure.dated_path("dalle"), {"api-version": "2024-10-21"})
    assert sent.headers["api-key"] == KEY and no_gateway_headers(sent)


async def test_passthrough_with_an_entra_token_sends_no_client_api_key(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("GET", "/contoso/openai/models", Reply(json={"data": []}))
    headers = {k: v for k, v in H.items() if k != "Authorization"}
    resp = await gateway_client.get("/v1/models", headers={
        **headers, "x-portkey-azure-ad-token": "entra-token-1", "api-key": "client-own-key"})
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.headers["Authorization"] == "Bearer entra-token-1"
    assert "api-key" not in fake_upstream.last.headers


async def test_passthrough_needs_the_resource(gateway_client, fake_upstream):  # noqa: ANN001
    headers = {k: v for k, v in H.items() if k != "x-portkey-azure-resource-name"}
    resp = await gateway_client.get("/v1/openai/models", headers=headers)
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == "x-portkey-azure-resource-name"
    assert fake_upstream.requests == []


async def test_custom_host_replaces_the_resource_url(gateway_client, fake_upstream):  # noqa: ANN001
    # An API Management front door, say: no resource name needed.
    fake_api.install(fake_upstream, root="/apim/openai")
    headers = {k: v for k, v in H.items() if k != "x-portkey-azure-resource-name"}
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers={
        **headers, "x-portkey-custom-host": fake_upstream.url + "/apim/openai"})
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.path == "/apim/openai/deployments/img/images/generations"


# -- settings and registration ----------------------------------------------------------------------

def test_default_base_url_and_settings():
    provider = make_provider(AzureOpenAIProvider)
    assert provider.base_url == "https://{resource_name}.openai.azure.com/openai"
    assert provider.settings.api_version == "2025-04-01-preview"
    provider = make_provider(AzureOpenAIProvider, {"base_url": "https://{resource_name}.openai.azure.us/openai/",
                                                   "api_version": "2024-10-21"})
    assert provider.base_url == "https://{resource_name}.openai.azure.us/openai"
    assert provider.settings.api_version == "2024-10-21"


async def test_images_are_fetched_only_from_azures_image_storage(gateway_client, fake_upstream):  # noqa: ANN001
    # The core's host check (gateway.images.urls.host_allowed) is not part of gateway.sdk or
    # gateway.testing: a URL the gateway must refuse is refused through the gateway itself; one it
    # may fetch would be fetched from Azure over the network, so the declaration is checked instead.
    provider = make_provider(AzureOpenAIProvider)
    for url, ok in [
        ("https://dalleprodsec.blob.core.windows.net/private/images/1/generated_00.png?se=1", True),
        ("https://dalletipusw2.blob.core.windows.net/private/images/1/generated_00.png", True),
        ("http://dalleprodsec.blob.core.windows.net/private/images/1.png", False),
        ("https://attacker.blob.core.windows.net/x.png", False),
        ("https://169.254.169.254/latest/meta-data", False),
    ]:
        parts = urlsplit(url)
        declared = parts.scheme == "https" and any(fnmatch(parts.hostname or "", p) for p in provider.image_hosts)
        assert declared is ok, url
        if ok:
            continue
        fake_upstream.on("POST", "/contoso/openai/deployments/img/images/generations",
                         Reply(json={"created": 1, "data": [{"url": url}]}))
        resp = await gateway_client.post(GEN, json={"prompt": "x", "model": "dall-e-3", "response_format": "b64_json"},
                                         headers=H)
        # Never fetched; the image was made (and billed), so its URL is handed on with the reason.
        assert resp.status == 200, url
        assert (await resp.json())["data"] == [{"url": url}]
        assert f"not on azure-openai's own hosts ({parts.hostname})" in resp.headers["x-portkey-adjusted-params"], url
        assert fake_upstream.last.path == "/contoso/openai/deployments/img/images/generations", url


def test_options_never_show_the_entra_token():
    from gateway_azure_openai.options import AzureOpenAIOptions

    assert "secret-token" not in repr(AzureOpenAIOptions(azure_ad_token="secret-token"))


# -- the translations, in process (no server) ------------------------------------------------

#: Options of a target on the fake's resource and its gpt-image-1 deployment.
OPTIONS = {"resource_name": "contoso", "deployment_id": "img"}


def b64_item(k: int = 1) -> dict[str, str]:
    return {"b64_json": base64.b64encode(make_png(k)).decode()}


def test_the_clients_body_goes_as_sent_to_the_deployment():
    attempt = make_attempt(AzureOpenAIProvider, body={"prompt": "x", "model": "gpt-image-1", "size": "1024x1024"},
                           options=OPTIONS, api_key=KEY)
    req = attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    assert req.url == ("https://contoso.openai.azure.com/openai/deployments/img/images/generations"
                       "?api-version=2025-04-01-preview")
    assert req.body is attempt.inbound.body
    assert req.headers["api-key"] == KEY and "Authorization" not in req.headers


def test_azure_model_name_drives_the_mapping_and_goes_in_the_body():
    attempt = make_attempt(AzureOpenAIProvider, body={"prompt": "x", "size": "1536x1024"},
                           options={**OPTIONS, "deployment_id": "dalle", "azure_model_name": "dall-e-3"})
    part = attempt.plan.parts[0]
    assert part.model == "dall-e-3" and part.size == "1792x1024"
    assert attempt.plan.adjusted == ["size=1536x1024->1792x1024"]
    # The substituted model is a change: the client's bytes (which name none) cannot go as they are,
    # even when nothing else was adjusted.
    attempt = make_attempt(AzureOpenAIProvider, body={"prompt": "x"},
                           options={**OPTIONS, "deployment_id": "dalle", "azure_model_name": "dall-e-3"})
    part = attempt.plan.parts[0]
    assert not part.changed and not attempt.target.override_params
    assert attempt.provider.body_as_sent(attempt, part) is False
    req = attempt.provider.build_generation(attempt, part)
    assert msgspec.json.decode(req.body) == {"prompt": "x", "model": "dall-e-3"}
    # A model the plugin knows wins over the option.
    attempt = make_attempt(AzureOpenAIProvider, body={"prompt": "x", "model": "gpt-image-1"},
                           options={**OPTIONS, "azure_model_name": "dall-e-3"})
    assert attempt.plan.parts[0].model == "gpt-image-1"
    assert attempt.provider.body_as_sent(attempt, attempt.plan.parts[0]) is True


def test_v1_api_url_and_model_in_process():
    attempt = make_attempt(AzureOpenAIProvider, body={"prompt": "x", "model": "mini"},
                           options={"resource_name": "contoso", "api_version": "preview"})
    req = attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    assert req.url == "https://contoso.openai.azure.com/openai/v1/images/generations?api-version=preview"
    assert msgspec.json.decode(req.body) == {"prompt": "x", "model": "mini"}
    attempt = make_attempt(AzureOpenAIProvider, body={"prompt": "x", "model": "gpt-image-1"},
                           options={**OPTIONS, "api_version": "v1"})
    req = attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    assert req.url == "https://contoso.openai.azure.com/openai/v1/images/generations"
    assert msgspec.json.decode(req.body) == {"prompt": "x", "model": "img"}


def test_a_custom_host_needs_no_resource_name():
    attempt = make_attempt(AzureOpenAIProvider, options={"deployment_id": "img"},
                           custom_host="https://apim.example.com/openai")
    req = attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    assert req.url.startswith("https://apim.example.com/openai/deployments/img/images/generations?")


@pytest.mark.parametrize(("options", "body", "error", "param"), [
    ({"deployment_id": "img"}, {}, BadRequest, "x-portkey-azure-resource-name"),
    ({"resource_name": "contoso"}, {}, BadRequest, "x-portkey-azure-deployment-id"),
    ({"resource_name": "contoso", "api_version": "v1"}, {}, BadRequest, "x-portkey-azure-deployment-id"),
    (OPTIONS, {"stream": True, "model": "dall-e-3"}, BadParam, "stream"),
    ({**OPTIONS, "api_version": "2024-10-21"}, {"stream": True}, BadParam, "stream"),
])
def test_a_target_that_cannot_generate_is_refused_before_mapping(options, body, error, param):  # noqa: ANN001
    with pytest.raises(error) as info:
        make_attempt(AzureOpenAIProvider, body={"prompt": "x", **body}, options=options)
    assert info.value.param == param and info.value.status == 400


def test_parse_generation_counts_the_images():
    attempt = make_attempt(AzureOpenAIProvider, body={"prompt": "x", "n": 2}, options=OPTIONS)
    part = attempt.plan.parts[0]
    result = attempt.provider.parse_generation(
        attempt, part, answer(200, {"created": 1, "data": [b64_item(1), b64_item(2)], "usage": {"total_tokens": 3}}))
    assert len(result.images) == 2 and result.extra == {"usage": {"total_tokens": 3}}
    with pytest.raises(MalformedAnswer, match="asked for 2 images, got 1"):
        attempt.provider.parse_generation(attempt, part, answer(200, {"created": 1, "data": [b64_item()]}))


def test_a_filtered_item_of_a_2xx_answer_is_a_refusal():
    attempt = make_attempt(AzureOpenAIProvider, options=OPTIONS)
    with pytest.raises(ContentPolicyViolation, match=r"\(filtered: hate\)"):
        attempt.provider.parse_generation(attempt, attempt.plan.parts[0], answer(200, {
            "created": 1, "data": [{"content_filter_results": filter_results(hate="high")}]}))


def test_upstream_errors_in_process():
    provider = make_provider(AzureOpenAIProvider)
    refusal = content_policy_refusal()
    err = provider.upstream_error(answer(400, refusal.body, content_type="application/json"))
    assert isinstance(err, ContentPolicyViolation) and err.status == 400
    assert err.code == "content_policy_violation" and err.message.endswith("(filtered: violence)")
    err = provider.upstream_error(answer(429, {"error": {"code": "429", "message": "rate limit"}},
                                         {"Retry-After": "7"}))
    assert (err.status, err.code) == (429, "429")
    assert err.upstream_headers["Retry-After"] == "7"


@pytest.mark.parametrize(("path", "query", "options", "url"), [
    ("/images/edits", "", OPTIONS,
     "https://contoso.openai.azure.com/openai/deployments/img/images/edits?api-version=2025-04-01-preview"),
    ("/openai/deployments/img/images/edits", "api-version=2024-10-21&x=1", OPTIONS,
     "https://contoso.openai.azure.com/openai/deployments/img/images/edits?api-version=2024-10-21&x=1"),
    ("/models", "", OPTIONS, "https://contoso.openai.azure.com/openai/models?api-version=2025-04-01-preview"),
    ("/images/edits", "", {**OPTIONS, "api_version": "v1"}, "https://contoso.openai.azure.com/openai/v1/images/edits"),
])
def test_proxy_url_in_process(path, query, options, url):  # noqa: ANN001
    attempt = make_attempt(AzureOpenAIProvider, endpoint=PROXY, path=path, query_string=query, options=options)
    assert attempt.provider.proxy_url(attempt, attempt.inbound.path, attempt.inbound.query_string) == url


def test_build_proxy_with_an_entra_token_drops_the_clients_api_key():
    attempt = make_attempt(AzureOpenAIProvider, endpoint=PROXY, method="GET", path="/models", api_key=None,
                           headers={"api-key": "client-own-key"},
                           options={"resource_name": "contoso", "azure_ad_token": "Bearer entra-token-1"})
    req = attempt.provider.build_proxy(attempt)
    assert req.headers["Authorization"] == "Bearer entra-token-1" and "api-key" not in req.headers
    attempt = make_attempt(AzureOpenAIProvider, endpoint=PROXY, method="GET", path="/models", api_key=None,
                           headers={"api-key": "client-own-key"}, options={"resource_name": "contoso"})
    assert attempt.provider.build_proxy(attempt).headers["api-key"] == "client-own-key"


# -- the conformance suite ----------------------------------------------------------------------------

class TestContract(ProviderContract):
    provider = "azure-openai"
    plugins = [gateway_azure_openai]
    entrypoint = "azure-openai"
    model = "gpt-image-1"
    route = ("POST", "/contoso/openai/deployments/img/images/generations")
    base_path = "/{resource_name}/openai"
    api_key = KEY
    target_options = {"resource_name": "contoso", "deployment_id": "img", "api_version": "2025-04-01-preview"}
    odd_size = "1792x1024"
    mapped_size = "1536x1024"

    def images_asked(self, rec):  # noqa: ANN001, ANN201
        return rec.json().get("n", 1)

    def answer(self, images, fake, rec):  # noqa: ANN001, ANN201
        assert rec.query == {"api-version": "2025-04-01-preview"}
        assert "response_format" not in rec.json()  # gpt-image answers base64 only
        data = [{"b64_json": base64.b64encode(img).decode()} for img in images]
        return Reply(json={"created": 1700000000, "data": data, "usage": {"total_tokens": 1}})

    def error_answer(self, status, message):  # noqa: ANN001, ANN201
        return Reply(status, json={"error": {"code": "BadRequest", "message": message, "param": None,
                                             "type": "invalid_request_error"}})

    def content_policy_answer(self, fake):  # noqa: ANN001, ANN201
        refusal = content_policy_refusal()
        return Reply(refusal.status, body=refusal.body, content_type="application/json")

    def sent_size(self, rec):  # noqa: ANN001, ANN201
        return rec.json()["size"]

    def assert_auth(self, rec) -> None:  # noqa: ANN001
        assert rec.headers.get("api-key") == self.api_key
        assert "Authorization" not in rec.headers


def test_gpt_image_deployments_follow_the_family_rules():
    # A snapshot the table does not list takes its family's rule: gpt-image-2's 3:1 and multiples of 16.
    attempt = make_attempt(AzureOpenAIProvider, body={"prompt": "x", "size": "4000x1000"},
                           options={**OPTIONS, "azure_model_name": "gpt-image-2-2026-04-21"})
    assert attempt.plan.parts[0].size == "2976x992"
    assert attempt.plan.adjusted == ["size=4000x1000->2976x992"]
    # The family takes no response_format: the gateway answers url itself.
    attempt = make_attempt(AzureOpenAIProvider, body={"prompt": "x", "model": "gpt-image-1.5", "response_format": "url"},
                           options=OPTIONS)
    part = attempt.plan.parts[0]
    assert "response_format" not in msgspec.json.decode(attempt.provider.build_generation(attempt, part).body)
    # A family model the client names wins over azure_model_name, as a listed one does.
    attempt = make_attempt(AzureOpenAIProvider, body={"prompt": "x", "model": "chatgpt-image-latest"},
                           options={**OPTIONS, "azure_model_name": "dall-e-3"})
    assert attempt.plan.parts[0].model == "chatgpt-image-latest"
