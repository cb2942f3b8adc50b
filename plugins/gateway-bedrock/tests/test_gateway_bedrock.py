"""The Bedrock provider against a fake bedrock-runtime that verifies SigV4 as AWS does."""
from __future__ import annotations

import base64

import msgspec
import openai
import pytest
from gateway_bedrock.testing import (
    ACCESS_KEY,
    API_KEY,
    SECRET_KEY,
    SESSION_TOKEN,
    TEMP_ACCESS_KEY,
    TEMP_SECRET_KEY,
    error,
    path_of,
)
from portkey_ai import createHeaders

from gateway.sdk import hookimpl
from gateway.testing import Reply
from gateway.testing.provider_contract import make_png

SIGV4 = {"x-portkey-provider": "bedrock", "x-portkey-aws-access-key-id": ACCESS_KEY,
         "x-portkey-aws-secret-access-key": SECRET_KEY}
BEARER = {"x-portkey-provider": "bedrock", "Authorization": f"Bearer {API_KEY}"}
NOVA = "amazon.nova-canvas-v1:0"
SD35 = "stability.sd3-5-large-v1:0"


def config(**node: object) -> dict[str, str]:
    return {"x-portkey-config": msgspec.json.encode({"provider": "bedrock", **node}).decode()}


async def generate(client, headers, **body):  # noqa: ANN001, ANN201
    return await client.post("/v1/images/generations", json={"prompt": "a red fox", **body}, headers=headers)


# -- what goes upstream, per model family ------------------------------------------------

@pytest.mark.parametrize(
    ("body", "sent"),
    [
        pytest.param(
            {"model": NOVA, "n": 2, "size": "1280x720", "quality": "hd", "style": "PHOTOREALISM", "seed": 5,
             "negative_prompt": "blur"},
            {"taskType": "TEXT_IMAGE",
             "textToImageParams": {"text": "a red fox", "negativeText": "blur", "style": "PHOTOREALISM"},
             "imageGenerationConfig": {"numberOfImages": 2, "width": 1280, "height": 720, "quality": "premium",
                                       "seed": 5}},
            id="nova-canvas"),
        pytest.param(
            {"model": "amazon.titan-image-generator-v2:0", "n": 3, "size": "1152x640", "cfg_scale": 7.5,
             "quality": "standard"},
            {"taskType": "TEXT_IMAGE", "textToImageParams": {"text": "a red fox"},
             "imageGenerationConfig": {"numberOfImages": 3, "width": 1152, "height": 640, "quality": "standard",
                                       "cfgScale": 7.5}},
            id="titan-v2"),
        pytest.param(
            {"model": "stability.stable-diffusion-xl-v1", "size": "1344x768", "style": "anime", "seed": 9,
             "steps": 30, "cfg_scale": 7, "negative_prompt": "blurry"},
            {"text_prompts": [{"text": "a red fox", "weight": 1.0}, {"text": "blurry", "weight": -1.0}],
             "width": 1344, "height": 768, "style_preset": "anime", "seed": 9, "steps": 30, "cfg_scale": 7},
            id="sdxl"),
        pytest.param(
            {"model": SD35, "size": "1344x756", "output_format": "jpeg", "negative_prompt": "rain", "seed": 4},
            {"prompt": "a red fox", "mode": "text-to-image", "aspect_ratio": "16:9", "output_format": "jpeg",
             "negative_prompt": "rain", "seed": 4},
            id="sd3.5-large"),
        pytest.param(
            {"model": "stability.stable-image-ultra-v1:0", "size": "1024x1024"},
            {"prompt": "a red fox", "aspect_ratio": "1:1"},
            id="stable-image-ultra"),
        pytest.param(
            {"model": "stability.stable-image-core-v1:0"},
            {"prompt": "a red fox"},
            id="stable-image-core"),
    ],
)
async def test_each_family_sends_its_documented_body(gateway_client, bedrock, fake_upstream, body, sent):  # noqa: ANN001
    resp = await generate(gateway_client, SIGV4, response_format="b64_json", **body)
    assert resp.status == 200, await resp.text()
    doc = await resp.json()
    rec = fake_upstream.last
    assert rec.path == path_of(body["model"])
    assert rec.json() == sent
    assert rec.headers["Content-Type"] == "application/json"
    assert rec.headers["Accept"] == "application/json"
    assert doc["provider"] == "bedrock"
    assert [base64.b64decode(d["b64_json"]) for d in doc["data"]] == bedrock.served[-1]
    # Lenient mapping says what it changed (OpenAI's "hd" is Amazon's "premium").
    assert resp.headers.get("x-portkey-adjusted-params") == ("quality=hd->premium" if body.get("quality") == "hd"
                                                             else None)


async def test_default_model_is_nova_canvas(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await gateway_client.post("/v1/images/generations", json={"prompt": "a red fox"}, headers=SIGV4)
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.path == path_of(NOVA)
    assert fake_upstream.last.json() == {"taskType": "TEXT_IMAGE", "textToImageParams": {"text": "a red fox"},
                                         "imageGenerationConfig": {"numberOfImages": 1}}


async def test_sizes_map_to_the_nearest_documented_one(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await generate(gateway_client, SIGV4, model="amazon.titan-image-generator-v1", size="1200x700")
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.json()["imageGenerationConfig"] == {"numberOfImages": 1, "width": 1280, "height": 768}
    assert resp.headers["x-portkey-adjusted-params"] == "size=1200x700->1280x768"


async def test_nova_canvas_ratio_beyond_4_to_1_is_cut_or_refused(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await generate(gateway_client, SIGV4, model=NOVA, size="4096x512")
    assert resp.status == 200, await resp.text()
    config_sent = fake_upstream.last.json()["imageGenerationConfig"]
    assert (config_sent["width"], config_sent["height"]) == (2048, 512)
    assert resp.headers["x-portkey-adjusted-params"] == "size=4096x512->2048x512"
    before = len(fake_upstream.requests)
    resp = await generate(gateway_client, {**SIGV4, "x-portkey-strict-params": "true"}, model=NOVA, size="4096x512")
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["param"] == "size" and "1:4 to 4:1" in err["message"]
    assert len(fake_upstream.requests) == before


async def test_native_parameter_another_family_takes_is_dropped_or_refused(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await generate(gateway_client, SIGV4, model=NOVA, steps=30, seed=3)
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.json()["imageGenerationConfig"] == {"numberOfImages": 1, "seed": 3}
    assert resp.headers["x-portkey-adjusted-params"] == "steps=(dropped)"
    resp = await generate(gateway_client, {**SIGV4, "x-portkey-strict-params": "true"}, model=NOVA, steps=30)
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == "steps"


async def test_n_over_one_per_call_is_split_with_successive_seeds(gateway_client, bedrock, fake_upstream):  # noqa: ANN001
    resp = await generate(gateway_client, SIGV4, model="stability.stable-diffusion-xl-v1", n=2, seed=10,
                          response_format="b64_json")
    assert resp.status == 200, await resp.text()
    assert sorted(r.json()["seed"] for r in fake_upstream.requests) == [10, 11]
    got = [base64.b64decode(d["b64_json"]) for d in (await resp.json())["data"]]
    assert sorted(got) == sorted(img for images in bedrock.served for img in images)
    assert len(bedrock.signed) == 2


async def test_unknown_model_family_is_a_400_naming_model(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await generate(gateway_client, SIGV4, model="meta.llama3-70b-instruct-v1:0")
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["param"] == "model" and "/v1/model/{modelId}/invoke" in err["message"]
    assert fake_upstream.requests == []


# -- model ids: region prefixes, ARNs -----------------------------------------------------

@pytest.mark.parametrize("prefix", ["us.", "eu.", "apac.", "us-gov.", "global.", "jp.", "au.", "ca."])
async def test_region_prefixed_ids_keep_the_id_and_use_the_models_limits(gateway_client, fake_upstream, prefix):  # noqa: ANN001
    resp = await generate(gateway_client, SIGV4, model=prefix + SD35, size="1024x1792")
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.path == path_of(prefix + SD35)
    assert fake_upstream.last.json()["aspect_ratio"] == "9:16"
    assert resp.headers["x-portkey-adjusted-params"] == "size=1024x1792->9:16"


async def test_inference_profile_arn_is_one_signed_path_segment(gateway_client, bedrock, fake_upstream):  # noqa: ANN001
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-canvas-v1:0"
    fake_upstream.on("POST", path_of(arn), bedrock.handle)
    resp = await generate(gateway_client, SIGV4, model=arn, size="1024x1024")
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.path == path_of(arn)
    # One path segment on the wire; the signature covered it as sent.
    assert bedrock.raw_paths == [
        "/model/arn:aws:bedrock:us-east-1:123456789012:inference-profile%2Fus.amazon.nova-canvas-v1:0/invoke"]
    assert len(bedrock.signed) == 1


async def test_application_profile_names_its_model_in_aws_bedrock_model(gateway_client, bedrock, fake_upstream):  # noqa: ANN001
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3"
    bedrock.profiles[arn] = "stability.stable-image-core-v1:1"
    fake_upstream.on("POST", path_of(arn), bedrock.handle)
    resp = await generate(gateway_client, SIGV4, model=arn)
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == "model"
    resp = await generate(gateway_client, {**SIGV4, "x-portkey-aws-bedrock-model": "stability.stable-image-core-v1:1"},
                          model=arn)
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.json() == {"prompt": "a red fox"}


# -- authentication ---------------------------------------------------------------------

async def test_sigv4_signs_host_date_content_headers_and_body(gateway_client, bedrock, fake_upstream):  # noqa: ANN001
    resp = await generate(gateway_client, {**SIGV4, "x-portkey-trace-id": "t-1"}, model=NOVA)
    assert resp.status == 200, await resp.text()
    [signed] = bedrock.signed
    assert (signed.access_key, signed.region, signed.service) == (ACCESS_KEY, "us-east-1", "bedrock")
    assert signed.signed_headers == ["accept", "content-type", "host", "x-amz-date"]
    rec = fake_upstream.last
    assert rec.headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert rec.headers["Host"] == fake_upstream.url.removeprefix("http://")
    assert not [k for k in rec.headers if k.lower().startswith("x-portkey-")]
    assert SECRET_KEY not in str(dict(rec.headers))


async def test_session_token_is_sent_and_signed(gateway_client, bedrock, fake_upstream):  # noqa: ANN001
    headers = {"x-portkey-provider": "bedrock", "x-portkey-aws-access-key-id": TEMP_ACCESS_KEY,
               "x-portkey-aws-secret-access-key": TEMP_SECRET_KEY, "x-portkey-aws-session-token": SESSION_TOKEN}
    resp = await generate(gateway_client, headers, model=NOVA)
    assert resp.status == 200, await resp.text()
    [signed] = bedrock.signed
    assert "x-amz-security-token" in signed.signed_headers and signed.token == SESSION_TOKEN


async def test_region_picks_the_signing_scope_and_a_mismatch_is_awss_403(gateway_client, bedrock):  # noqa: ANN001
    bedrock.region = "eu-west-1"
    resp = await generate(gateway_client, {**SIGV4, "x-portkey-aws-region": "eu-west-1"}, model=NOVA)
    assert resp.status == 200, await resp.text()
    assert bedrock.signed[-1].region == "eu-west-1"
    resp = await generate(gateway_client, SIGV4, model=NOVA)  # signed for us-east-1
    assert resp.status == 403
    err = (await resp.json())["error"]
    assert err["message"].startswith("bedrock error: Credential should be scoped")
    assert err["type"] == "InvalidSignatureException"


async def test_wrong_secret_fails_the_signature_check(gateway_client, bedrock):  # noqa: ANN001
    resp = await generate(gateway_client, {**SIGV4, "x-portkey-aws-secret-access-key": "not-the-secret"}, model=NOVA)
    assert resp.status == 403
    err = (await resp.json())["error"]
    assert "signature we calculated does not match" in err["message"]
    assert bedrock.signed == []


async def test_region_template_in_base_url(make_client, fake_upstream, bedrock):  # noqa: ANN001
    bedrock.region = "ap-southeast-2"
    fake_upstream.on("POST", "/ap-southeast-2" + path_of(NOVA), bedrock.handle)
    client = await make_client(providers={"bedrock": {"base_url": fake_upstream.url + "/{region}"}})
    resp = await generate(client, {**SIGV4, "x-portkey-aws-region": "ap-southeast-2"}, model=NOVA)
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.path == "/ap-southeast-2" + path_of(NOVA)


class _Redirect:
    """A transform plugin: records the URL the provider built, then points it at the fake."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.built: list[str] = []

    @hookimpl
    def gateway_transform_request(self, ctx, attempt) -> None:  # noqa: ANN001
        self.built.append(attempt.upstream.url)
        attempt.upstream.url = attempt.upstream.url.replace("https://bedrock-runtime.eu-central-1.amazonaws.com",
                                                            self.target)


async def test_default_url_is_the_regions_runtime_and_signing_follows_a_transform(
        make_client, fake_upstream, bedrock):  # noqa: ANN001
    bedrock.region = "eu-central-1"
    redirect = _Redirect(fake_upstream.url)
    client = await make_client(redirect, providers={})
    resp = await generate(client, {**SIGV4, "x-portkey-aws-region": "eu-central-1"}, model="eu." + NOVA)
    assert resp.status == 200, await resp.text()
    assert redirect.built == ["https://bedrock-runtime.eu-central-1.amazonaws.com/model/eu.amazon.nova-canvas-v1:0/invoke"]
    assert bedrock.signed[-1].region == "eu-central-1"  # signed for the host it was sent to


async def test_bedrock_api_key_goes_as_bearer(gateway_client, bedrock, fake_upstream):  # noqa: ANN001
    resp = await generate(gateway_client, BEARER, model=SD35)
    assert resp.status == 200, await resp.text()
    rec = fake_upstream.last
    assert rec.headers["Authorization"] == f"Bearer {API_KEY}"
    assert "X-Amz-Date" not in rec.headers
    assert bedrock.bearer_used == 1 and bedrock.signed == []


async def test_aws_keys_win_over_a_bearer_key_unless_auth_type_is_api_key(gateway_client, bedrock, fake_upstream):  # noqa: ANN001
    resp = await generate(gateway_client, {**SIGV4, "Authorization": "Bearer sk-placeholder"}, model=NOVA)
    assert resp.status == 200, await resp.text()
    assert len(bedrock.signed) == 1
    headers = {**SIGV4, "Authorization": f"Bearer {API_KEY}", "x-portkey-aws-auth-type": "apiKey"}
    resp = await generate(gateway_client, headers, model=NOVA)
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.headers["Authorization"] == f"Bearer {API_KEY}"
    assert bedrock.bearer_used == 1


async def test_portkey_sdk_headers_and_openai_sdk(gateway_server, bedrock, fake_upstream):  # noqa: ANN001
    headers = createHeaders(provider="bedrock", aws_access_key_id=TEMP_ACCESS_KEY,
                            aws_secret_access_key=TEMP_SECRET_KEY, aws_session_token=SESSION_TOKEN,
                            aws_region="us-east-1")
    async with openai.AsyncOpenAI(base_url=str(gateway_server.make_url("/v1")), api_key="placeholder",
                                  default_headers=headers, max_retries=0) as sdk:
        result = await sdk.images.generate(model="us." + NOVA, prompt="a red fox", n=2, size="1024x1024",
                                           response_format="b64_json")
    assert [base64.b64decode(d.b64_json) for d in result.data] == bedrock.served[0]
    [signed] = bedrock.signed
    assert signed.access_key == TEMP_ACCESS_KEY and signed.token == SESSION_TOKEN
    assert fake_upstream.last.json()["imageGenerationConfig"] == {"numberOfImages": 2, "width": 1024, "height": 1024}


async def test_config_target_options(gateway_client, bedrock):  # noqa: ANN001
    bedrock.region = "us-west-2"
    resp = await generate(gateway_client, config(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                                                 aws_region="us-west-2"), model=SD35)
    assert resp.status == 200, await resp.text()
    assert bedrock.signed[-1].region == "us-west-2"


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY, "aws_region": "evil.example/x"},
         "`aws_region` 'evil.example/x' is not an AWS region"),
        ({"aws_access_key_id": ACCESS_KEY}, "must be given together"),
        ({"aws_auth_type": "assumedRole", "aws_role_arn": "arn:aws:iam::1:role/x"},
         "`aws_role_arn` 'arn:aws:iam::1:role/x' is not an IAM role ARN"),
        ({"aws_auth_type": "assumedRole"}, "`aws_auth_type` assumedRole needs `aws_role_arn`"),
        ({"aws_auth_type": "assumedRole", "aws_role_arn": "arn:aws:iam::123456789012:role/r",
          "aws_role_duration_seconds": 60}, "`aws_role_duration_seconds` must be between 900 and 43200"),
        ({"aws_auth_type": "assumedRole", "aws_role_arn": "arn:aws:iam::123456789012:role/r",
          "aws_external_id": "x"}, "`aws_external_id` must be 2 to 1224"),
    ],
)
async def test_bad_options_are_a_400_naming_them(gateway_client, fake_upstream, options, says):  # noqa: ANN001
    resp = await generate(gateway_client, config(**options), model=NOVA)
    assert resp.status == 400
    assert says in (await resp.json())["error"]["message"]
    assert fake_upstream.requests == []


async def test_virtual_key_holds_aws_credentials(make_client, fake_upstream, bedrock):  # noqa: ANN001
    client = await make_client(virtual_keys={"bedrock-prod": {
        "provider": "bedrock", "aws_access_key_id": TEMP_ACCESS_KEY, "aws_secret_access_key": TEMP_SECRET_KEY,
        "aws_session_token": SESSION_TOKEN}})
    resp = await generate(client, {"x-portkey-virtual-key": "bedrock-prod"}, model=NOVA)
    assert resp.status == 200, await resp.text()
    assert bedrock.signed[-1].access_key == TEMP_ACCESS_KEY


async def test_secrets_never_reach_the_log(gateway_client, log_capture):  # noqa: ANN001
    headers = {"x-portkey-provider": "bedrock", "x-portkey-aws-access-key-id": TEMP_ACCESS_KEY,
               "x-portkey-aws-secret-access-key": TEMP_SECRET_KEY, "x-portkey-aws-session-token": SESSION_TOKEN}
    resp = await generate(gateway_client, headers, model=NOVA)
    assert resp.status == 200
    resp = await generate(gateway_client, {**headers, "x-portkey-aws-region": "bad region!"}, model=NOVA)
    assert resp.status == 400
    assert log_capture.events("request.finished")
    assert TEMP_SECRET_KEY not in log_capture.text and SESSION_TOKEN not in log_capture.text


# -- the gateway's own AWS identity -----------------------------------------------------------

async def own_client(make_client, fake_upstream, **settings):  # noqa: ANN001, ANN201
    """The gateway built after the test set its AWS environment up (the provider reads it once)."""
    return await make_client(providers={"bedrock": {"base_url": fake_upstream.url, **settings}})


async def test_environment_credentials_and_region(make_client, fake_upstream, bedrock, monkeypatch):  # noqa: ANN001
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", TEMP_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEMP_SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    bedrock.region = "us-west-2"
    client = await own_client(make_client, fake_upstream)
    for _ in range(2):
        resp = await generate(client, {"x-portkey-provider": "bedrock"}, model=NOVA)
        assert resp.status == 200, await resp.text()
    assert [(s.access_key, s.region, s.token) for s in bedrock.signed] == [
        (TEMP_ACCESS_KEY, "us-west-2", SESSION_TOKEN)] * 2
    # An OpenAI SDK client must send some key: serviceRole says "sign with the gateway's own".
    resp = await generate(client, {"x-portkey-provider": "bedrock", "Authorization": "Bearer placeholder",
                                   "x-portkey-aws-auth-type": "serviceRole"}, model=NOVA)
    assert resp.status == 200, await resp.text()
    assert len(bedrock.signed) == 3


async def test_environment_bedrock_api_key(make_client, fake_upstream, bedrock, monkeypatch):  # noqa: ANN001
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", API_KEY)
    client = await own_client(make_client, fake_upstream)
    resp = await generate(client, {"x-portkey-provider": "bedrock"}, model=NOVA)
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.headers["Authorization"] == f"Bearer {API_KEY}"


async def test_no_credentials_anywhere_is_a_401(make_client, fake_upstream, bedrock):  # noqa: ANN001
    client = await own_client(make_client, fake_upstream)
    resp = await generate(client, {"x-portkey-provider": "bedrock"}, model=NOVA)
    assert resp.status == 401
    doc = await resp.json()
    assert "no AWS credentials" in doc["error"]["message"] and doc["provider"] == "bedrock"
    assert fake_upstream.requests == []


async def test_own_credentials_never_go_to_a_custom_host(make_client, fake_upstream, bedrock, monkeypatch):  # noqa: ANN001
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", API_KEY)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    client = await own_client(make_client, fake_upstream)
    resp = await generate(client, {"x-portkey-provider": "bedrock", "x-portkey-custom-host": fake_upstream.url},
                          model=NOVA)
    assert resp.status == 401
    assert "custom host" in (await resp.json())["error"]["message"]
    assert fake_upstream.requests == []
    # The caller's own keys may go to the custom host.
    resp = await generate(client, {**SIGV4, "x-portkey-custom-host": fake_upstream.url}, model=NOVA)
    assert resp.status == 200, await resp.text()


async def test_own_credentials_can_be_turned_off(make_client, fake_upstream, bedrock, monkeypatch):  # noqa: ANN001
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    client = await own_client(make_client, fake_upstream, environment_credentials=False)
    resp = await generate(client, {"x-portkey-provider": "bedrock"}, model=NOVA)
    assert resp.status == 401
    assert "turned off" in (await resp.json())["error"]["message"]
    assert fake_upstream.requests == []



async def test_environment_is_asked_again_when_it_had_nothing(monkeypatch):  # noqa: ANN001
    from gateway_bedrock.auth import EnvironmentCredentials

    env = EnvironmentCredentials()
    assert await env.get() is None
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    assert await env.get() is None  # kept for RETRY_AFTER seconds
    env.RETRY_AFTER = 0.0
    creds = await env.get()
    assert (creds.access_key, creds.secret_key, creds.token) == (ACCESS_KEY, SECRET_KEY, None)


async def test_own_credentials_that_cannot_be_refreshed_are_a_502(make_client, app_services, fake_upstream,
                                                                  bedrock):  # noqa: ANN001
    from botocore.exceptions import CredentialRetrievalError

    class Expiring:
        def refresh_needed(self) -> bool:
            return True

        def get_frozen_credentials(self) -> None:
            raise CredentialRetrievalError(provider="container-role", error_msg="connection timed out")

    client = await own_client(make_client, fake_upstream)
    app_services.registry.providers["bedrock"].environment._resolve = Expiring
    resp = await generate(client, {"x-portkey-provider": "bedrock"}, model=NOVA)
    assert resp.status == 502
    err = (await resp.json())["error"]
    assert err["code"] == "credentials_unavailable" and "connection timed out" in err["message"]
    assert fake_upstream.requests == []

# -- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("status", "kind", "message"),
    [
        (400, "ValidationException", "Malformed input request: #: extraneous key [x] is not permitted"),
        (403, "AccessDeniedException", "You don't have access to the model with the specified model ID."),
        (408, "ModelTimeoutException", "Model has timed out in processing the request."),
        (429, "ThrottlingException", "Too many requests, please wait before trying again."),
        (500, "InternalServerException", "The server encountered an error processing your request."),
        (503, "ServiceUnavailableException", "Bedrock is unable to process your request."),
    ],
)
async def test_bedrock_errors_keep_status_type_and_message(gateway_client, fake_upstream, status, kind, message):  # noqa: ANN001
    fake_upstream.on("POST", path_of(NOVA), error(status, kind, message))
    resp = await generate(gateway_client, SIGV4, model=NOVA)
    assert resp.status == status
    doc = await resp.json()
    assert doc["error"]["message"] == f"bedrock error: {message}"
    assert doc["error"]["type"] == kind
    assert doc["provider"] == "bedrock"


async def test_throttling_is_retried_after_a_new_signature(gateway_client, no_sleep, fake_upstream, bedrock):  # noqa: ANN001
    fake_upstream.on("POST", path_of(NOVA), error(429, "ThrottlingException", "Too many requests"), bedrock.handle)
    client = gateway_client
    headers = config(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, retry={"attempts": 1})
    resp = await generate(client, headers, model=NOVA)
    assert resp.status == 200, await resp.text()
    assert resp.headers["x-portkey-retry-attempt-count"] == "1"
    assert len(fake_upstream.requests) == 2 and len(bedrock.signed) == 1


@pytest.mark.parametrize(
    ("model", "prompt"),
    [
        (NOVA, "forbidden fruit"),  # ValidationException: blocked by our content filters
        (NOVA, "filtered-output"),  # 200 with `error`
        ("amazon.titan-image-generator-v2:0", "filtered-output"),
        ("stability.stable-diffusion-xl-v1", "filtered-output"),  # finishReason CONTENT_FILTERED
        (SD35, "forbidden fruit"),  # finish_reasons: ["Filter reason: prompt"]
        ("stability.stable-image-ultra-v1:0", "filtered-output"),  # "Filter reason: output image"
    ],
)
async def test_content_filter_refusals_have_one_code(gateway_client, model, prompt):  # noqa: ANN001
    resp = await gateway_client.post("/v1/images/generations", json={"prompt": prompt, "model": model}, headers=SIGV4)
    assert resp.status == 400, await resp.text()
    doc = await resp.json()
    assert doc["error"]["code"] == "content_policy_violation"
    assert doc["error"]["message"].startswith("bedrock error: ")
    assert doc["provider"] == "bedrock"


@pytest.mark.parametrize(
    ("model", "answer"),
    [
        (NOVA, Reply(json={"unexpected": True})),
        (NOVA, Reply(body=b"<html>oops</html>", content_type="text/html")),
        (NOVA, Reply(json={"images": [base64.b64encode(make_png(1)).decode()] * 2})),  # asked for 1
        (SD35, Reply(json={"seeds": [1], "finish_reasons": [None], "images": [7]})),
        ("stability.stable-diffusion-xl-v1", Reply(json={"result": "success", "artifacts": []})),
    ],
)
async def test_malformed_answers_are_502(gateway_client, fake_upstream, model, answer):  # noqa: ANN001
    fake_upstream.on("POST", path_of(model), answer)
    resp = await generate(gateway_client, SIGV4, model=model)
    assert resp.status == 502, await resp.text()
    doc = await resp.json()
    assert doc["error"]["code"] == "invalid_provider_response"
    assert "bedrock" in doc["error"]["message"]


# -- passthrough -----------------------------------------------------------------------------

async def test_passthrough_invoke_is_signed_over_the_exact_bytes(gateway_client, bedrock, fake_upstream):  # noqa: ANN001
    body = b'{ "prompt":  "a red fox",\n  "aspect_ratio": "3:2" }'
    resp = await gateway_client.post(f"/v1/model/{SD35}/invoke", data=body, headers={
        **SIGV4, "Content-Type": "application/json", "Accept": "application/json",
        "X-Amz-Date": "20000101T000000Z", "X-Amzn-Bedrock-Trace": "ENABLED"})
    assert resp.status == 200, await resp.text()
    doc = await resp.json()
    assert set(doc) == {"seeds", "finish_reasons", "images"}  # Bedrock's own answer, relayed
    rec = fake_upstream.last
    assert rec.body == body
    assert rec.headers["X-Amzn-Bedrock-Trace"] == "ENABLED"
    [signed] = bedrock.signed
    assert signed.signed_headers == ["accept", "content-type", "host", "x-amz-date", "x-amzn-bedrock-trace"]
    assert rec.headers["X-Amz-Date"] != "20000101T000000Z"


async def test_passthrough_chunked_body_encoded_model_id_and_query(gateway_client, bedrock, fake_upstream):  # noqa: ANN001
    async def chunks():  # noqa: ANN202
        yield b'{"taskType": "TEXT_IMAGE", '
        yield b'"textToImageParams": {"text": "a red fox"}}'

    resp = await gateway_client.post("/v1/model/us.amazon.nova-canvas-v1%3A0/invoke?b=2&a=%2F1", data=chunks(),
                                     headers={**SIGV4, "Content-Type": "application/json"})
    assert resp.status == 200, await resp.text()
    assert bedrock.raw_paths == ["/model/us.amazon.nova-canvas-v1:0/invoke?b=2&a=/1"]
    assert len(bedrock.signed) == 1  # path and query as sent
    assert "images" in await resp.json()
    assert fake_upstream.last.path == path_of("us." + NOVA)
    assert fake_upstream.last.body == b'{"taskType": "TEXT_IMAGE", "textToImageParams": {"text": "a red fox"}}'


async def test_passthrough_relays_bedrock_errors_as_they_are(gateway_client, bedrock):  # noqa: ANN001
    resp = await gateway_client.post(f"/v1/model/{NOVA}/invoke", json={"taskType": "TEXT_IMAGE"}, headers=SIGV4)
    assert resp.status == 400
    assert resp.headers["x-amzn-ErrorType"].startswith("ValidationException")
    assert (await resp.json()) == {"message": "required key [textToImageParams] not found"}


async def test_passthrough_retry_resends_the_same_body_signed_again(gateway_client, no_sleep, fake_upstream,
                                                                    bedrock):  # noqa: ANN001
    fake_upstream.on("POST", path_of(SD35), error(503, "ServiceUnavailableException", "try later"), bedrock.handle)
    client = gateway_client
    headers = config(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, retry={"attempts": 1})
    resp = await client.post(f"/v1/model/{SD35}/invoke", data=b'{"prompt": "a red fox"}',
                             headers={**headers, "Content-Type": "application/json"})
    assert resp.status == 200, await resp.text()
    assert [r.body for r in fake_upstream.requests] == [b'{"prompt": "a red fox"}'] * 2
    assert len(bedrock.signed) == 1


async def test_passthrough_body_over_the_limit_is_413(make_client, fake_upstream, bedrock):  # noqa: ANN001
    client = await make_client(server={"max_body_bytes": 64})

    async def chunks():  # noqa: ANN202
        for _ in range(10):
            yield b"x" * 16

    resp = await client.post(f"/v1/model/{SD35}/invoke", data=chunks(), headers=SIGV4)
    assert resp.status == 413
    assert fake_upstream.requests == []


# -- the fake itself: its signature check is not vacuous -------------------------------------

def _signed_request(url: str, body: bytes, region: str = "us-east-1") -> dict[str, str]:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from gateway_bedrock.auth import host_header

    req = AWSRequest(method="POST", url=url, data=body, headers={
        "Host": host_header(url), "Content-Type": "application/json", "Accept": "application/json"})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "bedrock", region).add_auth(req)
    return dict(req.headers.items())


@pytest.mark.parametrize("tamper", [None, "body", "path", "host", "header", "region"])
async def test_the_fake_rejects_what_was_not_signed(fake_upstream, bedrock, tamper):  # noqa: ANN001
    import aiohttp

    body = b'{"prompt": "a red fox"}'
    url = fake_upstream.url + path_of(SD35)
    headers = _signed_request(url, body, region="us-west-2" if tamper == "region" else "us-east-1")
    if tamper == "body":
        body = b'{"prompt": "a red cat"}'
    elif tamper == "path":
        url = fake_upstream.url + path_of("stability.stable-image-core-v1:0")
    elif tamper == "host":
        headers["Host"] = "bedrock-runtime.us-east-1.amazonaws.com"
    elif tamper == "header":
        headers["Accept"] = "*/*"
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as resp:
        doc = await resp.json()
        if tamper is None:
            assert resp.status == 200 and "images" in doc
        else:
            assert resp.status == 403, doc
            assert resp.headers["x-amzn-ErrorType"].startswith("InvalidSignatureException")


def test_every_listed_model_and_limit_is_in_the_readme():
    from pathlib import Path

    from gateway_bedrock.models import MODELS, NOVA_STYLES, SDXL_SIZES, STABILITY_RATIOS, TITAN_SIZES

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    limits = readme.split("## Sizes and limits", 1)[1]
    for value in (*MODELS, *SDXL_SIZES, *STABILITY_RATIOS, *TITAN_SIZES, *NOVA_STYLES):
        assert value in limits, value
