"""Microsoft Entra ID sign-in for Azure OpenAI: ``azure_auth_mode`` ``entra`` (client credentials),
``managed`` (IMDS, App Service) and ``workload`` (a federated token file), against fake token
endpoints on loopback: one token fetched per identity and reused until shortly before it
expires, one fetch for concurrent requests, refusals named without secrets, and the gateway's
own identity (and a stored secret) used only as the operator configured it."""
from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
from urllib.parse import parse_qsl

import gateway_azure_openai
import httpx
import msgspec
import openai
import pytest
from portkey_ai import AsyncPortkey, createHeaders

from gateway.sdk import StartupError
from gateway.testing import Reply, answer, make_attempt
from gateway.testing.harness import make_provider
from gateway_azure_openai.identity import ClientSecret, ManagedIdentity, read_token_answer
from gateway_azure_openai.options import IDENTITY_OPTIONS, AzureOpenAIOptions
from gateway_azure_openai.provider import AzureOpenAIProvider
from gateway_azure_openai.testing import APP_SERVICE_PATH, IMDS_PATH, EntraFake, ManagedIdentityFake
from gateway_azure_openai.tokens import TokenCache

GEN = "/v1/images/generations"
TENANT = "contoso-tenant"
CLIENT = "11111111-2222-3333-4444-555555555555"
SECRET = "s3cr3t~Entra.Client_Secret-Value"
OTHER_CLIENT = "99999999-2222-3333-4444-555555555555"
OTHER_SECRET = "an0ther~Client.Secret_Value"
USER_ASSIGNED = "77777777-2222-3333-4444-555555555555"
ASSERTION = "eyJhbGciOiJSUzI1NiJ9.federated-service-account-token.sig"
ENTRA = {"azure_auth_mode": "entra", "azure_entra_client_id": CLIENT, "azure_entra_client_secret": SECRET,
         "azure_entra_tenant_id": TENANT}
RESOURCE = {"resource_name": "contoso", "deployment_id": "img", "api_version": "2025-04-01-preview"}
#: A header-only request's resource options.
AZURE_HEADERS = {"x-portkey-provider": "azure-openai", "x-portkey-azure-resource-name": "contoso",
                 "x-portkey-azure-deployment-id": "img", "x-portkey-azure-api-version": "2025-04-01-preview"}


class Clock:
    """The token cache's clock, moved on by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def entra(fake_upstream, azure):  # noqa: ANN001, ANN201
    return EntraFake(fake_upstream, azure, tenant=TENANT, clients={CLIENT: SECRET, OTHER_CLIENT: OTHER_SECRET},
                     federated={CLIENT: ASSERTION}).install()


@pytest.fixture
def imds(fake_upstream, azure):  # noqa: ANN001, ANN201
    return ManagedIdentityFake(fake_upstream, azure, user_assigned=(USER_ASSIGNED,)).install()


@pytest.fixture
def gateway_plugins():  # noqa: ANN201
    return [gateway_azure_openai]


@pytest.fixture
def gateway_settings(fake_upstream, azure, entra, imds):  # noqa: ANN001, ANN201
    return {
        "providers": {"azure-openai": {"base_url": fake_upstream.url + "/{resource_name}/openai",
                                       "authority_host": fake_upstream.url,
                                       "managed_identity_endpoint": fake_upstream.url + IMDS_PATH}},
        "virtual_keys": {
            "azure-entra": {"provider": "azure-openai", **RESOURCE, **ENTRA},
            "azure-managed": {"provider": "azure-openai", **RESOURCE, "azure_auth_mode": "managed"},
            "azure-user-assigned": {"provider": "azure-openai", **RESOURCE, "azure_auth_mode": "managed",
                                    "azure_managed_client_id": USER_ASSIGNED},
            "azure-workload": {"provider": "azure-openai", **RESOURCE, "azure_auth_mode": "workload"},
            "azure-key": {"provider": "azure-openai", "api_key": "azure-key-1", **RESOURCE},
        },
        "configs": {
            "pc-managed": {"provider": "azure-openai", **RESOURCE, "azure_auth_mode": "managed"},
            "pc-bare": {"retry": {"attempts": 0}},
        },
    }


@pytest.fixture
def clock(gateway_services) -> Clock:  # noqa: ANN001
    clock = Clock()
    gateway_services.registry.providers["azure-openai"].tokens.clock = clock
    return clock


def config(**node: object) -> dict[str, str]:
    return {"x-portkey-config": msgspec.json.encode(node).decode()}


def vk(name: str, **headers: str) -> dict[str, str]:
    return {"x-portkey-virtual-key": name, **headers}


def bearer(rec) -> str:  # noqa: ANN001
    return rec.headers["Authorization"].removeprefix("Bearer ")


def form(rec) -> dict[str, str]:  # noqa: ANN001
    return dict(parse_qsl(rec.body.decode()))


async def generate(client, headers: dict[str, str], **body: object):  # noqa: ANN001, ANN201
    return await client.post(GEN, json={"prompt": "a fox", **body}, headers=headers)


# -- entra: client credentials ------------------------------------------------------------------

async def test_a_token_is_fetched_once_and_reused_until_shortly_before_it_expires(  # noqa: ANN001
        gateway_client, fake_upstream, azure, entra, clock):
    for _ in range(3):
        resp = await generate(gateway_client, vk("azure-entra"))
        assert resp.status == 200, await resp.text()
        assert bearer(fake_upstream.last) == "entra-issued-1" and "api-key" not in fake_upstream.last.headers
    assert len(entra.requests) == 1
    sent = entra.requests[0]
    assert sent.path == f"/{TENANT}/oauth2/v2.0/token"
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form(sent) == {"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET,
                          "scope": "https://cognitiveservices.azure.com/.default"}
    # expires_in 3599: kept until five minutes before it runs out ...
    clock.now += 3599 - 301
    assert (await generate(gateway_client, vk("azure-entra"))).status == 200
    assert len(entra.requests) == 1
    # ... then replaced, and the new one is what the deployment gets.
    clock.now += 2
    resp = await generate(gateway_client, vk("azure-entra"))
    assert resp.status == 200, await resp.text()
    assert len(entra.requests) == 2 and bearer(fake_upstream.last) == "entra-issued-2"
    assert (await generate(gateway_client, vk("azure-entra"))).status == 200
    assert len(entra.requests) == 2


async def test_concurrent_requests_share_one_token_request(gateway_client, fake_upstream, azure, entra, clock):  # noqa: ANN001
    entra.delay = 0.2  # the token comes slowly: every request below waits for the same fetch
    answers = await asyncio.gather(*(generate(gateway_client, vk("azure-entra")) for _ in range(6)),
                                   generate(gateway_client, vk("azure-entra", **{
                                       "x-portkey-azure-deployment-id": "dalle"}), model="dall-e-3", n=3))
    assert [a.status for a in answers] == [200] * 7
    assert len(entra.requests) == 1
    api_calls = [r for r in fake_upstream.requests if "/images/" in r.path]
    assert len(api_calls) == 9 and {bearer(r) for r in api_calls} == {"entra-issued-1"}


async def test_callers_own_client_credentials_in_portkey_headers(gateway_server, fake_upstream, azure, entra):  # noqa: ANN001
    headers = createHeaders(provider="azure-openai", azure_auth_mode="entra", azure_entra_client_id=OTHER_CLIENT,
                            azure_entra_client_secret=OTHER_SECRET, azure_entra_tenant_id=TENANT,
                            azure_resource_name="contoso", azure_deployment_id="img",
                            azure_api_version="2025-04-01-preview")
    async with openai.AsyncOpenAI(api_key="unused", base_url=str(gateway_server.make_url("/v1")),
                                  default_headers=headers, max_retries=0) as sdk:
        result = await sdk.images.generate(model="gpt-image-1", prompt="a lighthouse")
    assert base64.b64decode(result.data[0].b64_json) == azure.served[0]
    assert form(entra.requests[0])["client_id"] == OTHER_CLIENT
    assert bearer(fake_upstream.last) == "entra-issued-1" and "api-key" not in fake_upstream.last.headers


async def test_a_portkey_config_with_the_sdk_names_of_the_azure_fields(gateway_server, fake_upstream, azure, entra):  # noqa: ANN001
    node = {"provider": "azure-openai", "azure_resource_name": "contoso", "azure_deployment_id": "img",
            "azure_api_version": "2025-04-01-preview", "azure_model_name": "gpt-image-1", **ENTRA}
    # Our own httpx client, closed here: the SDK leaves its default one open.
    async with httpx.AsyncClient() as http, AsyncPortkey(base_url=str(gateway_server.make_url("/v1")),
                                                         api_key="unused", config=node, http_client=http) as pk:
        result = await pk.images.generate(prompt="a lighthouse", size="1536x1024")
    assert base64.b64decode(result.data[0].b64_json) == azure.served[0]
    sent = fake_upstream.last
    assert sent.path == azure.dated_path("img") and sent.query == {"api-version": "2025-04-01-preview"}
    assert bearer(sent) == "entra-issued-1"


async def test_a_name_given_twice_with_different_values_is_a_400(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await generate(gateway_client, config(provider="azure-openai", resource_name="contoso",
                                                 azure_resource_name="fabrikam", deployment_id="img", api_key="k"))
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert "`azure_resource_name` and `resource_name`" in err["message"] and err["code"] == "invalid_provider_option"
    assert fake_upstream.requests == []


async def test_a_virtual_keys_resource_cannot_be_moved_by_its_other_name(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await generate(gateway_client, config(virtual_key="azure-key", azure_resource_name="fabrikam"))
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "custom_host_not_allowed"
    assert fake_upstream.requests == []


async def test_passthrough_and_streams_carry_the_token(gateway_client, fake_upstream, azure, entra, clock):  # noqa: ANN001
    fake_upstream.on("GET", "/contoso/openai/models", Reply(json={"data": []}))
    resp = await gateway_client.get("/v1/openai/models", headers=vk("azure-entra", **{"api-key": "client-own-key"}))
    assert resp.status == 200, await resp.text()
    assert bearer(fake_upstream.last) == "entra-issued-1" and "api-key" not in fake_upstream.last.headers
    resp = await generate(gateway_client, vk("azure-entra"), model="gpt-image-1", stream=True)
    assert resp.status == 200 and "image_generation.completed" in await resp.text()
    assert bearer(fake_upstream.last) == "entra-issued-1" and fake_upstream.last.json()["stream"] is True
    assert len(entra.requests) == 1


# -- refusals of the token endpoint -------------------------------------------------------------

async def test_a_refused_secret_is_a_401_naming_the_identity_not_the_secret(  # noqa: ANN001
        gateway_client, fake_upstream, log_capture):
    resp = await generate(gateway_client, config(provider="azure-openai", **RESOURCE, **{
        **ENTRA, "azure_entra_client_secret": "wrong-secret-value"}))
    assert resp.status == 401
    err = (await resp.json())["error"]
    assert err["code"] == "azure_identity_refused"
    assert f"refused application {CLIENT} of tenant {TENANT}" in err["message"]
    assert "invalid_client: AADSTS7000215: Invalid client secret provided" in err["message"]
    assert "Trace ID" not in err["message"] and "wrong-secret-value" not in err["message"]
    assert [r.path for r in fake_upstream.requests] == [f"/{TENANT}/oauth2/v2.0/token"]  # nothing went to Azure
    assert "wrong-secret-value" not in log_capture.text


async def test_an_unknown_application_is_a_401(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await generate(gateway_client, config(provider="azure-openai", **RESOURCE, **{
        **ENTRA, "azure_entra_client_id": "00000000-0000-0000-0000-000000000000"}))
    assert resp.status == 401
    assert "AADSTS700016: Application with identifier" in (await resp.json())["error"]["message"]


@pytest.mark.parametrize(("reply", "status", "code"), [
    (Reply(503, json={"error": "temporarily_unavailable", "error_description": "AADSTS50196: busy"}), 502,
     "azure_identity_unavailable"),
    (Reply(429, json={"error": "throttled", "error_description": "slow down"}), 429, "rate_limit_exceeded"),
    (Reply(200, json={"token_type": "Bearer"}), 502, "invalid_token_response"),
    (Reply(200, body=b"<html>login</html>", content_type="text/html"), 502, "invalid_token_response"),
])
async def test_a_failing_token_endpoint_is_named(gateway_client, fake_upstream, reply, status, code):  # noqa: ANN001
    fake_upstream.on("POST", f"/{TENANT}/oauth2/v2.0/token", reply)
    resp = await generate(gateway_client, vk("azure-entra"))
    assert resp.status == status
    err = (await resp.json())["error"]
    assert err["code"] == code and f"application {CLIENT} of tenant {TENANT}" in err["message"]
    assert SECRET not in err["message"]
    assert [r.path for r in fake_upstream.requests] == [f"/{TENANT}/oauth2/v2.0/token"]


async def test_an_unreachable_authority_is_a_502(request, aiohttp_client, gateway_settings, unused_tcp_port):  # noqa: ANN001
    gateway_settings["providers"]["azure-openai"]["authority_host"] = f"http://127.0.0.1:{unused_tcp_port}"
    client = await aiohttp_client(request.getfixturevalue("gateway_app"))
    resp = await generate(client, vk("azure-entra"))
    assert resp.status == 502
    err = (await resp.json())["error"]
    assert err["code"] == "identity_endpoint_unreachable"
    assert f"Microsoft Entra ID (http://127.0.0.1:{unused_tcp_port}) could not be reached" in err["message"]


async def test_a_failed_fetch_is_not_kept(gateway_client, fake_upstream, azure, entra, clock):  # noqa: ANN001
    fake_upstream.on("POST", f"/{TENANT}/oauth2/v2.0/token", Reply(500, json={"error": "server_error"}),
                     entra.handle)
    assert (await generate(gateway_client, vk("azure-entra"))).status == 502
    resp = await generate(gateway_client, vk("azure-entra"))
    assert resp.status == 200, await resp.text()
    assert bearer(fake_upstream.last) == "entra-issued-1"


async def test_no_secret_or_token_reaches_the_log(gateway_client, fake_upstream, azure, entra, log_capture):  # noqa: ANN001
    assert (await generate(gateway_client, vk("azure-entra"))).status == 200
    assert (await generate(gateway_client, config(provider="azure-openai", **RESOURCE, **{
        **ENTRA, "azure_entra_client_id": OTHER_CLIENT, "azure_entra_client_secret": OTHER_SECRET}))).status == 200
    fake_upstream.on("POST", azure.dated_path("img"), Reply(500, json={"error": {"message": "boom entra-issued-1"}}))
    assert (await generate(gateway_client, vk("azure-entra"))).status == 500
    assert log_capture.events("request.finished")
    for secret in (SECRET, OTHER_SECRET, "entra-issued-1", "entra-issued-2"):
        assert secret not in log_capture.text, secret


# -- the gateway's own identity: managed and workload ------------------------------------------

async def test_a_managed_identity_from_a_virtual_key(gateway_client, fake_upstream, azure, imds, clock):  # noqa: ANN001
    for _ in range(2):
        resp = await generate(gateway_client, vk("azure-managed"))
        assert resp.status == 200, await resp.text()
    assert len(imds.requests) == 1
    sent = imds.requests[0]
    assert sent.method == "GET" and sent.path == IMDS_PATH and sent.headers["Metadata"] == "true"
    assert sent.query == {"api-version": "2018-02-01", "resource": "https://cognitiveservices.azure.com/"}
    assert bearer(fake_upstream.last) == "managed-issued-1"
    # IMDS gives `expires_in` as a string: honoured like a number.
    clock.now += 3599 - 299
    assert (await generate(gateway_client, vk("azure-managed"))).status == 200
    assert len(imds.requests) == 2 and bearer(fake_upstream.last) == "managed-issued-2"


async def test_a_user_assigned_identity_and_a_saved_config(gateway_client, fake_upstream, imds):  # noqa: ANN001
    resp = await generate(gateway_client, vk("azure-user-assigned"))
    assert resp.status == 200, await resp.text()
    assert imds.requests[-1].query["client_id"] == USER_ASSIGNED
    resp = await generate(gateway_client, {"x-portkey-config": "pc-managed"})
    assert resp.status == 200, await resp.text()
    assert "client_id" not in imds.requests[-1].query and bearer(fake_upstream.last) == "managed-issued-2"


@pytest.mark.parametrize("headers", [
    config(provider="azure-openai", **RESOURCE, azure_auth_mode="managed"),
    {**AZURE_HEADERS, "x-portkey-azure-auth-mode": "managed"},
    config(provider="azure-openai", **RESOURCE, azure_auth_mode="workload"),
    config(virtual_key="azure-key", azure_auth_mode="managed"),
    vk("azure-key", **{"x-portkey-azure-auth-mode": "managed"}),
    {"x-portkey-config": "pc-bare", **AZURE_HEADERS, "x-portkey-azure-auth-mode": "managed"},
], ids=["inline-config", "headers", "inline-workload", "config-over-api-key-vk", "header-over-api-key-vk",
        "headers-under-a-saved-config"])
async def test_a_caller_cannot_pick_the_gateways_own_identity(gateway_client, fake_upstream, imds, headers):  # noqa: ANN001
    resp = await generate(gateway_client, headers)
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["code"] == "gateway_identity_not_allowed" and err["param"] == "azure_auth_mode"
    assert "the gateway's own Azure identity" in err["message"]
    assert fake_upstream.requests == []


@pytest.mark.parametrize(("name", "headers"), [
    ("azure-managed", {"x-portkey-azure-managed-client-id": USER_ASSIGNED}),
    ("azure-user-assigned", {"x-portkey-azure-managed-client-id": "88888888-2222-3333-4444-555555555555"}),
    ("azure-managed", {"x-portkey-azure-entra-scope": "https://management.azure.com/.default"}),
    ("azure-entra", {"x-portkey-azure-entra-tenant-id": "fabrikam-tenant"}),
    ("azure-entra", {"x-portkey-azure-entra-scope": "https://management.azure.com/.default"}),
], ids=["pick-a-user-assigned-identity", "change-it", "managed-scope", "stored-secret-tenant", "stored-secret-scope"])
async def test_a_caller_cannot_change_an_identity_the_operator_configured(  # noqa: ANN001
        gateway_client, fake_upstream, name, headers):
    resp = await generate(gateway_client, vk(name, **headers))
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["code"] == "gateway_identity_not_allowed" and "was set by the request" in err["message"]
    assert fake_upstream.requests == []


async def test_repeating_the_operators_values_is_fine(gateway_client, fake_upstream, entra, imds):  # noqa: ANN001
    resp = await generate(gateway_client, vk("azure-entra", **{"x-portkey-azure-auth-mode": "entra",
                                                               "x-portkey-azure-entra-tenant-id": TENANT}))
    assert resp.status == 200, await resp.text()
    resp = await generate(gateway_client, config(virtual_key="azure-user-assigned", azure_auth_mode="managed",
                                                 azure_managed_client_id=USER_ASSIGNED))
    assert resp.status == 200, await resp.text()


async def test_a_stored_identitys_token_goes_to_no_host_the_caller_chose(gateway_client, fake_upstream, imds):  # noqa: ANN001
    resp = await generate(gateway_client, {"x-portkey-config": "pc-managed",
                                           "x-portkey-custom-host": fake_upstream.url + "/contoso/openai"})
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["code"] == "custom_host_not_allowed" and "gateway" in err["message"]
    assert fake_upstream.requests == []
    resp = await generate(gateway_client, vk("azure-managed", **{
        "x-portkey-custom-host": fake_upstream.url + "/contoso/openai"}))
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "custom_host_not_allowed"
    assert fake_upstream.requests == []


async def test_a_managed_identity_refused_by_imds(gateway_client, fake_upstream, imds):  # noqa: ANN001
    imds.system_assigned = False
    resp = await generate(gateway_client, vk("azure-managed"))
    assert resp.status == 401
    err = (await resp.json())["error"]
    assert err["code"] == "azure_identity_refused"
    assert "refused the gateway's managed identity (system-assigned) (invalid_request: Identity not found)" in \
        err["message"]


async def test_app_service_identity_endpoint(request, aiohttp_client, gateway_settings, monkeypatch,  # noqa: ANN001
                                             fake_upstream, azure):
    app_service = ManagedIdentityFake(fake_upstream, azure, app_service=True, identity_header="hdr-value-42",
                                      user_assigned=(USER_ASSIGNED,)).install()
    monkeypatch.setenv("IDENTITY_ENDPOINT", fake_upstream.url + APP_SERVICE_PATH)
    monkeypatch.setenv("IDENTITY_HEADER", "hdr-value-42")
    client = await aiohttp_client(request.getfixturevalue("gateway_app"))
    for name in ("azure-managed", "azure-user-assigned", "azure-managed"):
        resp = await generate(client, vk(name))
        assert resp.status == 200, await resp.text()
    assert len(app_service.requests) == 2  # one per identity
    sent = app_service.requests[1]
    assert sent.headers["X-IDENTITY-HEADER"] == "hdr-value-42" and "Metadata" not in sent.headers
    assert sent.query == {"api-version": "2019-08-01", "resource": "https://cognitiveservices.azure.com/",
                          "client_id": USER_ASSIGNED}
    assert bearer(fake_upstream.last) == "managed-issued-1"


async def test_workload_identity_exchanges_the_federated_token(request, aiohttp_client, monkeypatch, tmp_path,  # noqa: ANN001
                                                               fake_upstream, azure, entra):
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(ASSERTION + "\n")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT)
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    client = await aiohttp_client(request.getfixturevalue("gateway_app"))
    clock = Clock()
    provider = request.getfixturevalue("gateway_services").registry.providers["azure-openai"]
    provider.tokens.clock = clock
    resp = await generate(client, vk("azure-workload"))
    assert resp.status == 200, await resp.text()
    assert form(entra.requests[0]) == {
        "grant_type": "client_credentials", "client_id": CLIENT,
        "scope": "https://cognitiveservices.azure.com/.default",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": ASSERTION}
    assert bearer(fake_upstream.last) == "entra-issued-1"
    # The kubelet rotates the file: the next fetch reads it anew.
    entra.federated[CLIENT] = "eyJ.rotated.sig"
    token_file.write_text("eyJ.rotated.sig")
    clock.now += 3600
    resp = await generate(client, vk("azure-workload"))
    assert resp.status == 200, await resp.text()
    assert form(entra.requests[1])["client_assertion"] == "eyJ.rotated.sig"
    assert bearer(fake_upstream.last) == "entra-issued-2"


async def test_workload_identity_for_another_application(request, aiohttp_client, monkeypatch, tmp_path,  # noqa: ANN001
                                                          fake_upstream, azure, entra):
    # One pod's federated token may be trusted by several applications: a virtual key names its own.
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(ASSERTION)
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT)
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    entra.federated[OTHER_CLIENT] = ASSERTION
    request.getfixturevalue("gateway_settings")["virtual_keys"]["azure-workload-other"] = {
        "provider": "azure-openai", **RESOURCE, "azure_auth_mode": "workload", "azure_workload_client_id": OTHER_CLIENT}
    client = await aiohttp_client(request.getfixturevalue("gateway_app"))
    for name in ("azure-workload-other", "azure-workload", "azure-workload-other"):
        resp = await generate(client, vk(name))
        assert resp.status == 200, await resp.text()
    # One token per application, each asked for once and reused.
    assert [form(r)["client_id"] for r in entra.requests] == [OTHER_CLIENT, CLIENT]
    assert {form(r)["client_assertion"] for r in entra.requests} == {ASSERTION}
    assert bearer(fake_upstream.last) == "entra-issued-1"


async def test_an_entra_scope_is_the_one_asked_for_and_its_token_kept_apart(  # noqa: ANN001
        gateway_client, fake_upstream, azure, entra, clock):
    scoped = config(provider="azure-openai", **RESOURCE, **ENTRA, azure_entra_scope="https://ai.azure.com/.default")
    plain = config(provider="azure-openai", **RESOURCE, **ENTRA)
    for headers in (scoped, plain, scoped, plain):
        resp = await generate(gateway_client, headers)
        assert resp.status == 200, await resp.text()
    assert [form(r)["scope"] for r in entra.requests] == ["https://ai.azure.com/.default",
                                                          "https://cognitiveservices.azure.com/.default"]
    assert bearer(fake_upstream.last) == "entra-issued-2"


async def test_a_scope_entra_refuses_is_a_4xx_naming_it(gateway_client, fake_upstream, entra):  # noqa: ANN001
    resp = await generate(gateway_client, config(provider="azure-openai", **RESOURCE, **ENTRA,
                                                 azure_entra_scope="https://cognitiveservices.azure.com"))
    assert resp.status == 401, await resp.text()
    err = (await resp.json())["error"]
    assert err["code"] == "azure_identity_refused" and "invalid_scope" in err["message"] and SECRET not in err["message"]
    assert [r for r in fake_upstream.requests if "/images/" in r.path] == []


async def test_workload_identity_without_its_environment_is_named(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await generate(gateway_client, vk("azure-workload"))
    assert resp.status == 502
    err = (await resp.json())["error"]
    assert err["code"] == "azure_identity_unavailable" and "AZURE_FEDERATED_TOKEN_FILE" in err["message"]
    assert fake_upstream.requests == []


# -- options and settings ---------------------------------------------------------------------------

def test_entra_needs_its_three_fields_and_known_modes():
    with pytest.raises(Exception, match="`azure_entra_client_secret`"):
        msgspec.convert({"azure_auth_mode": "entra", "azure_entra_client_id": CLIENT,
                         "azure_entra_tenant_id": TENANT}, AzureOpenAIOptions)
    with pytest.raises(Exception, match="must be one of apiKey, entra, managed, workload"):
        msgspec.convert({"azure_auth_mode": "entraFederated"}, AzureOpenAIOptions)
    with pytest.raises(Exception, match="azure_entra_tenant_id"):
        msgspec.convert({**ENTRA, "azure_entra_tenant_id": "../evil"}, AzureOpenAIOptions)
    assert SECRET not in repr(msgspec.convert(ENTRA, AzureOpenAIOptions))


def test_a_virtual_key_missing_its_secret_stops_start_up(request, gateway_settings):  # noqa: ANN001
    gateway_settings["virtual_keys"]["azure-entra"].pop("azure_entra_client_secret")
    with pytest.raises(StartupError, match="azure_entra_client_secret"):
        request.getfixturevalue("gateway_app")


def test_the_settings_schema_types_the_identity_options_on_targets_and_virtual_keys():
    proc = subprocess.run([sys.executable, "-m", "gateway.cli", "config", "schema"], capture_output=True, text=True,
                          timeout=60, check=True, env={k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")})
    schema = msgspec.json.decode(proc.stdout)
    defs = schema["$defs"]
    virtual_key = defs["Settings"]["properties"]["virtual_keys"]["additionalProperties"]
    for holder in (defs["NodeFields"], virtual_key):
        [clause] = [c for c in holder["allOf"] if c["if"]["properties"]["provider"] == {"const": "azure-openai"}]
        props = clause["then"]["properties"]
        assert set(IDENTITY_OPTIONS) | {"resource_name", "deployment_id", "api_version"} <= set(props)
        assert props["azure_auth_mode"]["anyOf"][0]["enum"] == ["apiKey", "entra", "managed", "workload"]
        assert props["azure_entra_client_secret"]["anyOf"][0]["type"] == "string"
        # Portkey's SDK spellings of the resource fields are described too.
        for alias, option in (("azure_resource_name", "resource_name"), ("azure_deployment_id", "deployment_id"),
                              ("azure_api_version", "api_version")):
            assert props[alias]["anyOf"] == props[option]["anyOf"] and option in props[alias]["description"]
    assert "allowed_custom_hosts" in virtual_key["properties"]


def test_config_check_names_a_saved_configs_identity_mistake(tmp_path):  # noqa: ANN001
    settings = tmp_path / "gateway.toml"
    settings.write_text(f"""
[virtual_keys.az]
provider = "azure-openai"
resource_name = "contoso"
azure_auth_mode = "managed"

[configs.pc-entra]
strategy = {{ mode = "fallback" }}
targets = [
  {{ virtual_key = "az" }},
  {{ provider = "azure-openai", azure_auth_mode = "entra", azure_entra_client_id = "{CLIENT}", azure_entra_tenant_id = "{TENANT}" }},
]

[configs.pc-mode]
virtual_key = "az"
azure_auth_mode = "entraa"
""")
    proc = subprocess.run([sys.executable, "-m", "gateway.cli", "config", "check", str(settings)],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")})
    assert proc.returncode == 2, proc.stderr
    assert ("[configs.pc-entra]: Invalid option for provider 'azure-openai': `azure_auth_mode` entra needs "
            "`azure_entra_client_secret`") in proc.stderr and "at `$.targets[1]`" in proc.stderr
    assert "[configs.pc-mode]" in proc.stderr and "not 'entraa'" in proc.stderr


def test_the_authority_host_for_sovereign_clouds():
    assert make_provider(AzureOpenAIProvider).authority == "https://login.microsoftonline.com"
    provider = AzureOpenAIProvider(make_provider(AzureOpenAIProvider).settings,
                                   environ={"AZURE_AUTHORITY_HOST": "https://login.microsoftonline.us/"})
    assert provider.authority == "https://login.microsoftonline.us"
    gov = make_provider(AzureOpenAIProvider, {"authority_host": "https://login.chinacloudapi.cn"})
    assert gov.authority == "https://login.chinacloudapi.cn"
    with pytest.raises(msgspec.ValidationError, match="authority_host"):
        msgspec.convert({"authority_host": "login.microsoftonline.us"}, AzureOpenAIProvider.Settings)
    attempt = make_attempt(gov, options={"resource_name": "contoso", "deployment_id": "img", **ENTRA})
    attempt.target.saved = True  # the operator's
    source = gov.identity(attempt)
    assert isinstance(source, ClientSecret)
    assert source.url == f"https://login.chinacloudapi.cn/{TENANT}/oauth2/v2.0/token"
    assert SECRET not in source.key and SECRET not in repr(source)


def test_token_answers_in_every_documented_shape():
    source = ManagedIdentity("http://169.254.169.254/metadata/identity/oauth2/token",
                             "https://cognitiveservices.azure.com/.default", None)
    assert source.url.endswith("?api-version=2018-02-01&resource=https%3A%2F%2Fcognitiveservices.azure.com%2F")

    def read(doc: object) -> tuple[str, float]:
        return read_token_answer("azure-openai", source, answer(200, doc), now=1_000_000)

    assert read({"access_token": "t", "expires_in": 3599}) == ("t", 3599)
    assert read({"access_token": "t", "expires_in": "3599", "expires_on": "1003599"}) == ("t", 3599)
    assert read({"access_token": "t", "expires_on": "1000600"}) == ("t", 600)


async def test_the_cache_keeps_a_short_lived_token_for_half_its_life():
    cache = TokenCache(clock=Clock())
    fetched = []

    async def fetch() -> tuple[str, float]:
        fetched.append(1)
        return f"t{len(fetched)}", 120

    assert await cache.get("k", fetch) == "t1"
    cache.clock.now += 59  # type: ignore[attr-defined]
    assert await cache.get("k", fetch) == "t1"
    cache.clock.now += 2  # type: ignore[attr-defined]
    assert await cache.get("k", fetch) == "t2"


async def test_a_waiter_that_goes_away_does_not_fail_the_others():
    cache = TokenCache()
    release = asyncio.Event()

    async def fetch() -> tuple[str, float]:
        await release.wait()
        return "t", 3600

    first = asyncio.ensure_future(cache.get("k", fetch))
    second = asyncio.ensure_future(cache.get("k", fetch))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert await second == "t"
    assert first.cancelled()
