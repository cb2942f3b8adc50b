"""The ``vertex-ai`` provider end to end: service-account tokens fetched through the gateway from
a fake token endpoint (the assertion verified with google-auth), cached and refreshed; caller
access tokens; virtual keys; passthrough; the conformance suite with both kinds of credential."""
from __future__ import annotations

import asyncio
import base64
import io
from typing import Any

import msgspec
import openai

from gateway.testing import FakeUpstream, Recorded, Reply, ServicesProbe
from gateway.testing.provider_contract import ProviderContract, make_png
from gateway_google import vertex_ai
from gateway_google.testing import (
    ACCESS_TOKEN,
    LOCATION,
    PROJECT,
    GoogleFake,
    TokenEndpoint,
    error_doc,
    install_token_endpoint,
    install_vertex,
    make_service_account,
    vertex_path,
)
from gateway_google.tokens import REFRESH_BEFORE

GEN = "/v1/images/generations"
PRO = "gemini-3-pro-image"
VK = {"x-portkey-virtual-key": "vertex-prod"}
CALLER = {"x-portkey-provider": "vertex-ai", "Authorization": f"Bearer {ACCESS_TOKEN}",
          "x-portkey-vertex-project-id": PROJECT, "x-portkey-vertex-region": LOCATION}


def config(**target: Any) -> dict[str, str]:
    return {"x-portkey-config": msgspec.json.encode({"provider": "vertex-ai", **target}).decode()}


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def clock_of(app_services: ServicesProbe) -> Clock:
    """The Vertex provider's token cache, on a clock the test moves."""
    clock = Clock()
    app_services.registry.providers["vertex-ai"].tokens.clock = clock
    return clock


async def test_a_service_account_token_is_fetched_once_and_shared(gateway_client, app_services,  # noqa: ANN001
                                                                  vertex: GoogleFake, token_endpoint: TokenEndpoint):
    clock_of(app_services)
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": PRO, "n": 3, "size": "1792x1024"},
                                     headers=VK)
    assert resp.status == 200, await resp.text()
    assert len((await resp.json())["data"]) == 3
    resp = await gateway_client.post(GEN, json={"prompt": "a fox"}, headers=VK)
    assert resp.status == 200, await resp.text()
    # Four calls, one token: the parallel calls of the split waited for the same fetch.
    [token] = token_endpoint.issued
    sent = vertex.generations()
    assert len(sent) == 4 and {r.headers["Authorization"] for r in sent} == {f"Bearer {token}"}
    assert [r.path for r in sent] == [vertex_path(PRO)] * 3 + [vertex_path("gemini-3.1-flash-image")]
    assert sent[0].json()["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "1K"}
    [claims] = token_endpoint.claims
    assert claims["iss"] == "gateway-test@test-project.iam.gserviceaccount.com"
    assert claims["aud"] == "https://oauth2.googleapis.com/token"
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert claims["exp"] - claims["iat"] == 3600


async def test_the_token_is_refreshed_five_minutes_before_it_expires(gateway_client, app_services,  # noqa: ANN001
                                                                     vertex: GoogleFake,
                                                                     token_endpoint: TokenEndpoint):
    clock = clock_of(app_services)
    for _ in range(2):
        assert (await gateway_client.post(GEN, json={"prompt": "a fox"}, headers=VK)).status == 200
    clock.now += token_endpoint.expires_in - REFRESH_BEFORE - 1
    assert (await gateway_client.post(GEN, json={"prompt": "a fox"}, headers=VK)).status == 200
    assert len(token_endpoint.issued) == 1
    clock.now += 2
    assert (await gateway_client.post(GEN, json={"prompt": "a fox"}, headers=VK)).status == 200
    first, second = token_endpoint.issued
    assert [r.headers["Authorization"] for r in vertex.generations()] == [f"Bearer {first}"] * 3 + [
        f"Bearer {second}"]


async def test_a_token_google_refuses_is_dropped_from_the_cache(gateway_client, vertex: GoogleFake,  # noqa: ANN001
                                                                token_endpoint: TokenEndpoint):
    assert (await gateway_client.post(GEN, json={"prompt": "a fox"}, headers=VK)).status == 200
    vertex.access_tokens.discard(token_endpoint.issued[0])  # revoked at Google
    assert (await gateway_client.post(GEN, json={"prompt": "a fox"}, headers=VK)).status == 401
    assert (await gateway_client.post(GEN, json={"prompt": "a fox"}, headers=VK)).status == 200
    first, second = token_endpoint.issued
    assert [r.headers["Authorization"] for r in vertex.generations()] == [f"Bearer {first}"] * 2 + [
        f"Bearer {second}"]


async def test_a_caller_access_token_and_portkeys_headers(gateway_server, vertex: GoogleFake,  # noqa: ANN001
                                                          token_endpoint: TokenEndpoint):
    headers = {k: v for k, v in CALLER.items() if k != "Authorization"}
    async with openai.AsyncOpenAI(base_url=str(gateway_server.make_url("/v1")), api_key=ACCESS_TOKEN,
                                  max_retries=0, default_headers=headers) as client:
        result = await client.images.generate(model=PRO, prompt="a fox", size="1024x1792", quality="hd",
                                              response_format="b64_json",
                                              extra_body={"person_generation": "ALLOW_ADULT"})
    assert base64.b64decode(result.data[0].b64_json) == vertex.served[0][0]
    [sent] = vertex.generations()
    assert sent.path == vertex_path(PRO, PROJECT, LOCATION)
    assert sent.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert sent.json()["generationConfig"] == {"responseModalities": ["IMAGE"], "imageConfig": {
        "aspectRatio": "9:16", "imageSize": "1K", "personGeneration": "ALLOW_ADULT"}}
    assert token_endpoint.requests() == []


async def test_an_inline_config_with_the_key_files_text(gateway_client, fake_upstream: FakeUpstream,  # noqa: ANN001
                                                        vertex: GoogleFake, token_endpoint: TokenEndpoint):
    account = make_service_account(fake_upstream.url + "/token", project_id="other-project")
    install_vertex(fake_upstream, project="other-project", location="global", api=vertex)
    headers = config(vertex_service_account_json=msgspec.json.encode(account).decode())
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": "gemini-2.5-flash-image"}, headers=headers)
    assert resp.status == 200, await resp.text()
    assert vertex.generations()[0].path == vertex_path("gemini-2.5-flash-image", "other-project", "global")


async def test_edits_on_vertex(gateway_server, vertex: GoogleFake, token_endpoint: TokenEndpoint):  # noqa: ANN001
    pngs = [make_png(7), make_png(8)]
    async with openai.AsyncOpenAI(base_url=str(gateway_server.make_url("/v1")), api_key="unused", max_retries=0,
                                  default_headers=VK) as client:
        result = await client.images.edit(
            model="gemini-3.1-flash-image", prompt="merge them", n=2, response_format="b64_json",
            image=[(f"in{i}.png", io.BytesIO(data), "image/png") for i, data in enumerate(pngs)])
    assert len(result.data) == 2
    sent = vertex.generations()
    assert len(sent) == 2 and len(token_endpoint.issued) == 1
    assert sent[0].json()["contents"][0]["parts"][1:] == [
        {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(data).decode()}} for data in pngs]


async def test_a_virtual_keys_project_and_region_stay_its_own(gateway_client, vertex: GoogleFake):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox"},
                                     headers={**VK, "x-portkey-vertex-region": "europe-west4"})
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "custom_host_not_allowed"
    assert vertex.generations() == []


async def test_a_refused_service_account_is_a_401_and_nothing_is_generated(gateway_client,  # noqa: ANN001
                                                                           vertex: GoogleFake,
                                                                           token_endpoint: TokenEndpoint):
    token_endpoint.refuse = (400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
    resp = await gateway_client.post(GEN, json={"prompt": "a fox"}, headers=VK)
    assert resp.status == 401
    err = (await resp.json())["error"]
    assert err["code"] == "invalid_service_account" and "Invalid JWT Signature." in err["message"]
    assert vertex.generations() == []


async def test_a_token_uri_off_google_is_refused(gateway_client, vertex: GoogleFake):  # noqa: ANN001
    account = make_service_account("https://tokens.example.com/token")
    resp = await gateway_client.post(GEN, json={"prompt": "a fox"}, headers=config(vertex_service_account_json=account))
    assert resp.status == 400
    assert "token_uri" in (await resp.json())["error"]["message"]
    assert vertex.generations() == []


async def test_passthrough_with_the_service_accounts_token(gateway_client, fake_upstream: FakeUpstream,  # noqa: ANN001
                                                          vertex: GoogleFake, token_endpoint: TokenEndpoint):
    body = {"contents": [{"role": "user", "parts": [{"text": "a fox"}]}],
            "generationConfig": {"responseModalities": ["IMAGE"]}}
    resp = await gateway_client.post("/v1/publishers/google/models/gemini-3-pro-image:generateContent", json=body,
                                     headers=VK)
    assert resp.status == 200, await resp.text()
    assert "inlineData" in (await resp.json())["candidates"][0]["content"]["parts"][-1]
    # A generation afterwards uses the token the passthrough fetched.
    assert (await gateway_client.post(GEN, json={"prompt": "a fox"}, headers=VK)).status == 200
    [token] = token_endpoint.issued
    sent = vertex.generations()
    assert sent[0].path == vertex_path(PRO) and sent[0].json() == body
    assert [r.headers["Authorization"] for r in sent] == [f"Bearer {token}"] * 2


async def test_passthrough_with_a_caller_token_keeps_the_paths_location(gateway_client,  # noqa: ANN001
                                                                        fake_upstream: FakeUpstream):
    path = f"/v1/projects/{PROJECT}/locations/europe-west4/endpoints"
    fake_upstream.on("GET", path, Reply(json={"endpoints": []}))
    resp = await gateway_client.get(path, headers={"x-portkey-provider": "vertex-ai",
                                                   "Authorization": f"Bearer {ACCESS_TOKEN}"})
    assert resp.status == 200
    assert fake_upstream.last.path == path
    assert fake_upstream.last.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"


async def test_vertex_errors_keep_their_status(gateway_client, fake_upstream: FakeUpstream):  # noqa: ANN001
    fake_upstream.on("POST", vertex_path(PRO), Reply(403, json=error_doc(
        403, "Permission 'aiplatform.endpoints.predict' denied on resource")))
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": PRO}, headers=CALLER)
    assert resp.status == 403
    err = (await resp.json())["error"]
    assert (err["code"], err["type"]) == ("permission_denied", "permission_error")


async def test_credentials_never_reach_the_log(gateway_client, log_capture, service_account,  # noqa: ANN001
                                               token_endpoint: TokenEndpoint):
    assert (await gateway_client.post(GEN, json={"prompt": "a fox"}, headers=VK)).status == 200
    assert (await gateway_client.post(GEN, json={"prompt": "a fox"}, headers=CALLER)).status == 200
    text = log_capture.text
    assert "request.finished" in text
    private_key_body = service_account["private_key"].splitlines()[1]
    for secret in (private_key_body, token_endpoint.issued[0], ACCESS_TOKEN):
        assert secret not in text


# -- the conformance suite, with a caller's access token and with a service account ---------

class TestContract(ProviderContract):
    provider = "vertex-ai"
    plugins = [vertex_ai]
    entrypoint = "vertex-ai"
    model = PRO
    route = ("POST", vertex_path(PRO))
    api_key = "ya29.contract-access-token"
    target_options = {"vertex_project_id": PROJECT, "vertex_region": LOCATION}
    odd_size = "1200x1000"
    mapped_size = "5:4"

    def install_success(self, fake: FakeUpstream, served: list[list[bytes]]) -> None:
        self.vertex = install_vertex(fake, access_tokens=(self.api_key,), served=served)

    def images_asked(self, rec: Recorded) -> int:
        return 1

    def error_answer(self, status: int, message: str) -> Reply:
        return Reply(status, json=error_doc(status, message))

    def content_policy_answer(self, fake: FakeUpstream) -> Reply:
        return Reply(json={"promptFeedback": {"blockReason": "SAFETY"}})

    def sent_size(self, rec: Recorded) -> str:
        return rec.json()["generationConfig"]["imageConfig"]["aspectRatio"]


class TestServiceAccountContract(TestContract):
    """The same checks with a service-account key in the config: every generation first needs a
    token from the (fake) token endpoint, which the fake Vertex AI then takes."""

    def install_token(self, fake: FakeUpstream) -> TokenEndpoint:
        self.fake_url = fake.url
        vertex = getattr(self, "vertex", None) or GoogleFake(fake, vertex=True, access_tokens=())
        return install_token_endpoint(fake, vertex=vertex)

    def install_success(self, fake: FakeUpstream, served: list[list[bytes]]) -> None:
        self.vertex = install_vertex(fake, access_tokens=(), served=served)
        self.tokens = self.install_token(fake)

    def install_reply(self, fake: FakeUpstream, reply: Reply) -> None:
        self.tokens = self.install_token(fake)
        super().install_reply(fake, reply)

    def install_hang(self, fake: FakeUpstream) -> None:
        self.tokens = self.install_token(fake)
        super().install_hang(fake)

    def request_headers(self) -> dict[str, str]:
        account = make_service_account(self.fake_url + "/token")
        return config(vertex_service_account_json=account, **self.target_options)

    def assert_auth(self, rec: Recorded) -> None:
        assert rec.headers["Authorization"] == f"Bearer {self.tokens.issued[0]}"

    async def assert_upstream_cancelled(self, fake: FakeUpstream) -> None:
        await super().assert_upstream_cancelled(fake)
        assert len(self.tokens.issued) == 1


async def test_a_slow_token_endpoint_is_bounded_by_the_request_timeout(gateway_client,  # noqa: ANN001
                                                                       fake_upstream: FakeUpstream,
                                                                       vertex: GoogleFake):
    fake_upstream.on("POST", "/token", Reply(hang=True))
    resp = await gateway_client.post(GEN, json={"prompt": "a fox"},
                                     headers={**VK, "x-portkey-request-timeout": "300"})
    assert resp.status == 408
    await asyncio.sleep(0)
    assert vertex.generations() == []
