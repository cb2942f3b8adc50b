"""``aws_auth_type: assumedRole``: temporary credentials from STS AssumeRole (a fake that verifies
SigV4 for service ``sts``), kept until shortly before they expire, one call for concurrent
requests; the gateway's own credentials and stored keys assume only the role the operator
configured; STS's refusals named without secrets."""
from __future__ import annotations

import asyncio
import datetime
import os
import subprocess
import sys
from typing import Any
from urllib.parse import parse_qsl

import msgspec
import pytest
from gateway_bedrock.provider import BedrockProvider
from gateway_bedrock.sts import Role, read_assume_role_answer
from botocore.credentials import Credentials
from gateway_bedrock.testing import (
    ACCESS_KEY,
    ACCOUNT,
    ROLE_ARN,
    SECRET_KEY,
    SESSION_TOKEN,
    TEMP_ACCESS_KEY,
    TEMP_SECRET_KEY,
    StsFake,
    TrustPolicy,
)
from portkey_ai import createHeaders

from gateway.testing import Reply, answer

NOVA = "amazon.nova-canvas-v1:0"
SD35 = "stability.sd3-5-large-v1:0"
EXTERNAL_ID = "tenant-7f3a"
OTHER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/callers-own-role"
ROLE = {"aws_auth_type": "assumedRole", "aws_role_arn": ROLE_ARN, "aws_external_id": EXTERNAL_ID}
HEADERS = {"x-portkey-provider": "bedrock"}


class Clock:
    """The credential cache's clock, moved on by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sts(fake_upstream, bedrock) -> StsFake:  # noqa: ANN001
    return StsFake(fake_upstream, bedrock, {
        ROLE_ARN: TrustPolicy((ACCESS_KEY,), external_id=EXTERNAL_ID),
        OTHER_ROLE: TrustPolicy((TEMP_ACCESS_KEY,)),
    }).install()


@pytest.fixture
def gateway_settings(fake_upstream, bedrock, sts) -> dict[str, Any]:  # noqa: ANN001
    return {
        "providers": {"bedrock": {"base_url": fake_upstream.url, "sts_endpoint": fake_upstream.url}},
        "virtual_keys": {
            "bedrock-role": {"provider": "bedrock", **ROLE},
            "bedrock-role-keys": {"provider": "bedrock", **ROLE, "aws_access_key_id": ACCESS_KEY,
                                  "aws_secret_access_key": SECRET_KEY},
            "bedrock-keys": {"provider": "bedrock", "aws_access_key_id": ACCESS_KEY,
                             "aws_secret_access_key": SECRET_KEY},
        },
        "configs": {"pc-role": {"provider": "bedrock", **ROLE}},
    }


@pytest.fixture
def own_keys(monkeypatch) -> None:  # noqa: ANN001
    """The gateway's own AWS credentials (the environment), set before the app is built."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)


@pytest.fixture
async def client(make_client, own_keys):  # noqa: ANN001, ANN201
    return await make_client()


@pytest.fixture
def clock(client, app_services) -> Clock:  # noqa: ANN001
    clock = Clock()
    app_services.registry.providers["bedrock"].roles.clock = clock
    return clock


def config(**node: object) -> dict[str, str]:
    return {"x-portkey-config": msgspec.json.encode({"provider": "bedrock", **node}).decode()}


def vk(name: str, **headers: str) -> dict[str, str]:
    return {"x-portkey-virtual-key": name, **headers}


async def generate(client, headers: dict[str, str], **body: object):  # noqa: ANN001, ANN201
    return await client.post("/v1/images/generations", json={"prompt": "a red fox", "model": NOVA, **body},
                             headers=headers)


def form(rec) -> dict[str, str]:  # noqa: ANN001
    return dict(parse_qsl(rec.body.decode()))


# -- assuming the role, and keeping its credentials ------------------------------------------------

async def test_a_role_is_assumed_once_and_its_credentials_reused_until_shortly_before_expiry(  # noqa: ANN001
        client, clock, sts, bedrock, fake_upstream):
    for _ in range(3):
        resp = await generate(client, vk("bedrock-role"))
        assert resp.status == 200, await resp.text()
    assert len(sts.requests) == 1
    sent = sts.requests[0]
    assert sent.method == "POST" and sent.path == "/"
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded; charset=utf-8"
    assert form(sent) == {"Action": "AssumeRole", "Version": "2011-06-15", "RoleArn": ROLE_ARN,
                          "RoleSessionName": "gateway", "DurationSeconds": "3600", "ExternalId": EXTERNAL_ID}
    # Signed for STS with the gateway's own keys; Bedrock signed with the role's session.
    assert (sts.signed[0].access_key, sts.signed[0].service, sts.signed[0].region) == (ACCESS_KEY, "sts", "us-east-1")
    assert [(s.access_key, s.token, s.service) for s in bedrock.signed] == [
        (sts.issued[0], "sts-fake-session-1", "bedrock")] * 3
    # Kept until five minutes before the session expires ...
    clock.now += 3600 - 301
    assert (await generate(client, vk("bedrock-role"))).status == 200
    assert len(sts.requests) == 1
    # ... then assumed again, and the new session signs.
    clock.now += 2
    resp = await generate(client, vk("bedrock-role"))
    assert resp.status == 200, await resp.text()
    assert len(sts.requests) == 2 and bedrock.signed[-1].access_key == sts.issued[1]


async def test_concurrent_requests_share_one_assume_role_call(client, clock, sts, bedrock):  # noqa: ANN001
    sts.delay = 0.2
    answers = await asyncio.gather(*(generate(client, vk("bedrock-role")) for _ in range(5)),
                                   generate(client, vk("bedrock-role"), model=SD35, n=3))  # 3 calls
    assert [a.status for a in answers] == [200] * 6
    assert len(sts.requests) == 1
    assert len(bedrock.signed) == 8 and {s.access_key for s in bedrock.signed} == {sts.issued[0]}


async def test_a_saved_config_and_the_session_options(make_client, own_keys, sts, bedrock):  # noqa: ANN001
    client = await make_client(configs={"pc-role": {"provider": "bedrock", **ROLE, "aws_region": "us-east-1",
                                                     "aws_role_session_name": "images@prod",
                                                     "aws_role_duration_seconds": 900}})
    resp = await generate(client, {"x-portkey-config": "pc-role"})
    assert resp.status == 200, await resp.text()
    assert form(sts.requests[0])["RoleSessionName"] == "images@prod"
    assert form(sts.requests[0])["DurationSeconds"] == "900"


async def test_the_callers_own_keys_assume_a_role_of_its_choosing(client, sts, bedrock):  # noqa: ANN001
    headers = createHeaders(provider="bedrock", aws_auth_type="assumedRole", aws_role_arn=OTHER_ROLE,
                            aws_access_key_id=TEMP_ACCESS_KEY, aws_secret_access_key=TEMP_SECRET_KEY,
                            aws_session_token=SESSION_TOKEN)
    resp = await generate(client, headers)
    assert resp.status == 200, await resp.text()
    assert sts.signed[0].access_key == TEMP_ACCESS_KEY and sts.signed[0].token == SESSION_TOKEN
    assert form(sts.requests[0])["RoleArn"] == OTHER_ROLE and "ExternalId" not in form(sts.requests[0])
    assert bedrock.signed[-1].access_key == sts.issued[0]


async def test_passthrough_is_signed_with_the_roles_session(client, sts, bedrock):  # noqa: ANN001
    body = msgspec.json.encode({"taskType": "TEXT_IMAGE", "textToImageParams": {"text": "a fox"},
                                "imageGenerationConfig": {"numberOfImages": 1, "width": 1024, "height": 1024}})
    resp = await client.post(f"/v1/model/{NOVA}/invoke", data=body, headers=vk(
        "bedrock-role", **{"Content-Type": "application/json"}))
    assert resp.status == 200, await resp.text()
    assert bedrock.signed[-1].access_key == sts.issued[0] and bedrock.signed[-1].token == "sts-fake-session-1"


# -- whose credentials may assume which role --------------------------------------------------------

@pytest.mark.parametrize("headers", [
    config(**ROLE),
    {**HEADERS, "x-portkey-aws-auth-type": "assumedRole", "x-portkey-aws-role-arn": ROLE_ARN,
     "x-portkey-aws-external-id": EXTERNAL_ID},
    config(virtual_key="bedrock-keys", aws_auth_type="assumedRole", aws_role_arn=ROLE_ARN),
    vk("bedrock-keys", **{"x-portkey-aws-auth-type": "assumedRole", "x-portkey-aws-role-arn": ROLE_ARN}),
], ids=["inline-config", "headers", "stored-keys-config", "stored-keys-headers"])
async def test_a_caller_cannot_have_the_gateways_or_stored_credentials_assume_a_role(  # noqa: ANN001
        client, sts, fake_upstream, headers):
    resp = await generate(client, headers)
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["code"] == "gateway_identity_not_allowed"
    assert fake_upstream.requests == []


@pytest.mark.parametrize(("name", "headers"), [
    ("bedrock-role", {"x-portkey-aws-role-arn": OTHER_ROLE}),
    ("bedrock-role", {"x-portkey-aws-external-id": "another-tenant"}),
    ("bedrock-role-keys", {"x-portkey-aws-role-arn": OTHER_ROLE}),
], ids=["own-role", "own-external-id", "stored-keys-role"])
async def test_a_caller_cannot_change_the_operators_role(client, fake_upstream, name, headers):  # noqa: ANN001
    resp = await generate(client, vk(name, **headers))
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["code"] == "gateway_identity_not_allowed"
    assert "as the operator configured it" in err["message"] or "assumes only a role" in err["message"]
    assert fake_upstream.requests == []


async def test_repeating_the_operators_role_and_stored_keys(client, sts, bedrock):  # noqa: ANN001
    resp = await generate(client, vk("bedrock-role-keys", **{"x-portkey-aws-role-arn": ROLE_ARN,
                                                             "x-portkey-aws-auth-type": "assumedRole"}))
    assert resp.status == 200, await resp.text()
    assert sts.signed[0].access_key == ACCESS_KEY


async def test_a_role_of_the_gateways_own_credentials_goes_to_no_custom_host(client, sts, fake_upstream):  # noqa: ANN001
    resp = await generate(client, {"x-portkey-config": "pc-role", "x-portkey-custom-host": fake_upstream.url})
    assert resp.status == 401
    assert "custom host" in (await resp.json())["error"]["message"]
    resp = await generate(client, vk("bedrock-role-keys", **{"x-portkey-custom-host": fake_upstream.url}))
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "custom_host_not_allowed"
    assert fake_upstream.requests == []


async def test_without_the_gateways_own_credentials(make_client, sts, fake_upstream):  # noqa: ANN001
    client = await make_client()
    resp = await generate(client, vk("bedrock-role"))
    assert resp.status == 401
    assert "has no AWS credentials to assume the role with" in (await resp.json())["error"]["message"]
    assert fake_upstream.requests == []


# -- STS's refusals ----------------------------------------------------------------------------------

async def test_access_denied_is_a_401_naming_the_role_not_the_keys(client, sts, fake_upstream, log_capture):  # noqa: ANN001
    resp = await generate(client, config(aws_auth_type="assumedRole", aws_role_arn=ROLE_ARN,
                                         aws_external_id="wrong-tenant", aws_access_key_id=ACCESS_KEY,
                                         aws_secret_access_key=SECRET_KEY))
    assert resp.status == 401
    err = (await resp.json())["error"]
    assert err["code"] == "aws_assume_role_refused"
    assert f"STS refused to let the request's AWS keys assume {ROLE_ARN} (AccessDenied: User: " in err["message"]
    assert "sts:AssumeRole" in err["message"] and SECRET_KEY not in err["message"]
    assert [r.path for r in fake_upstream.requests] == ["/"]
    assert SECRET_KEY not in log_capture.text


async def test_a_session_longer_than_the_role_allows(client, sts):  # noqa: ANN001
    resp = await generate(client, config(aws_auth_type="assumedRole", aws_role_arn=OTHER_ROLE,
                                         aws_role_duration_seconds=7200, aws_access_key_id=TEMP_ACCESS_KEY,
                                         aws_secret_access_key=TEMP_SECRET_KEY, aws_session_token=SESSION_TOKEN))
    assert resp.status == 401
    assert "ValidationError: The requested DurationSeconds exceeds the MaxSessionDuration" in \
        (await resp.json())["error"]["message"]


async def test_a_wrong_base_secret_is_stss_signature_refusal(client, sts):  # noqa: ANN001
    resp = await generate(client, config(aws_auth_type="assumedRole", aws_role_arn=ROLE_ARN,
                                         aws_external_id=EXTERNAL_ID, aws_access_key_id=ACCESS_KEY,
                                         aws_secret_access_key="not-the-secret-key-value"))
    assert resp.status == 401
    message = (await resp.json())["error"]["message"]
    assert "(SignatureDoesNotMatch: The request signature we calculated" in message
    assert "not-the-secret-key-value" not in message


@pytest.mark.parametrize(("reply", "status", "code"), [
    (Reply(500, body=b"<ErrorResponse><Error><Code>InternalFailure</Code><Message>oops</Message></Error>"
                     b"</ErrorResponse>", content_type="text/xml"), 502, "aws_sts_unavailable"),
    (Reply(400, body=b"<ErrorResponse><Error><Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
                     b"</ErrorResponse>", content_type="text/xml"), 429, "rate_limit_exceeded"),
    (Reply(200, body=b"<AssumeRoleResponse><AssumeRoleResult/></AssumeRoleResponse>", content_type="text/xml"),
     502, "invalid_sts_response"),
    (Reply(200, body=b"not xml", content_type="text/plain"), 502, "invalid_sts_response"),
])
async def test_a_failing_sts_is_named(client, fake_upstream, reply, status, code):  # noqa: ANN001
    fake_upstream.on("POST", "/", reply)
    resp = await generate(client, vk("bedrock-role"))
    assert resp.status == status
    err = (await resp.json())["error"]
    assert err["code"] == code and ROLE_ARN in err["message"]
    assert [r.path for r in fake_upstream.requests] == ["/"]


async def test_an_unreachable_sts_is_a_502(make_client, own_keys, fake_upstream, unused_tcp_port):  # noqa: ANN001
    client = await make_client(providers={"bedrock": {"base_url": fake_upstream.url,
                                                      "sts_endpoint": f"http://127.0.0.1:{unused_tcp_port}"}})
    resp = await generate(client, vk("bedrock-role"))
    assert resp.status == 502
    err = (await resp.json())["error"]
    assert err["code"] == "identity_endpoint_unreachable" and "AWS STS could not be reached" in err["message"]


async def test_a_failed_call_is_not_kept(client, fake_upstream, sts, bedrock):  # noqa: ANN001
    fake_upstream.on("POST", "/", Reply(503, body=b"<ErrorResponse/>", content_type="text/xml"), sts.handle)
    assert (await generate(client, vk("bedrock-role"))).status == 502
    resp = await generate(client, vk("bedrock-role"))
    assert resp.status == 200, await resp.text()
    assert bedrock.signed[-1].access_key == sts.issued[0]


async def test_no_credential_reaches_the_log(client, sts, bedrock, fake_upstream, log_capture):  # noqa: ANN001
    assert (await generate(client, vk("bedrock-role"))).status == 200
    assert (await generate(client, config(aws_auth_type="assumedRole", aws_role_arn=OTHER_ROLE,
                                          aws_access_key_id=TEMP_ACCESS_KEY, aws_secret_access_key=TEMP_SECRET_KEY,
                                          aws_session_token=SESSION_TOKEN))).status == 200
    fake_upstream.on("POST", f"/model/{NOVA}/invoke", Reply(500, json={"message": "boom sts-fake-session-1"}))
    assert (await generate(client, vk("bedrock-role"))).status == 500
    assert log_capture.events("request.finished")
    for secret in (SECRET_KEY, TEMP_SECRET_KEY, SESSION_TOKEN, "sts-fake-secret-1", "sts-fake-session-1",
                   "sts-fake-secret-2", "sts-fake-session-2"):
        assert secret not in log_capture.text, secret


# -- in process ---------------------------------------------------------------------------------------

def test_the_answer_and_the_cache_key():
    role = Role("https://sts.{region}.amazonaws.com", "eu-west-1", ROLE_ARN, Credentials(ACCESS_KEY, SECRET_KEY),
                external_id=EXTERNAL_ID, session_name=None, duration=None, base_is="the request's AWS keys")
    assert role.url == "https://sts.eu-west-1.amazonaws.com/"
    assert SECRET_KEY not in role.key and SECRET_KEY not in repr(role)
    request = role.request()
    assert "/eu-west-1/sts/aws4_request" in request.headers["Authorization"]
    assert request.headers["Host"] == "sts.eu-west-1.amazonaws.com"
    xml = (b'<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials>'
           b"<AccessKeyId>ASIAX</AccessKeyId><SecretAccessKey>sk</SecretAccessKey><SessionToken>st</SessionToken>"
           b"<Expiration>2026-01-01T01:00:00Z</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>")
    creds, lifetime = read_assume_role_answer("bedrock", role, answer(200, xml, content_type="text/xml"),
                                              now=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC))
    assert (creds.access_key, creds.secret_key, creds.token, lifetime) == ("ASIAX", "sk", "st", 3600)


def test_settings_name_the_sts_endpoint():
    settings = msgspec.convert({"sts_endpoint": "https://sts.{region}.amazonaws.com.cn"}, BedrockProvider.Settings)
    assert BedrockProvider(settings).settings.sts_endpoint == "https://sts.{region}.amazonaws.com.cn"
    with pytest.raises(msgspec.ValidationError, match="sts_endpoint"):
        msgspec.convert({"sts_endpoint": "sts.amazonaws.com"}, BedrockProvider.Settings)


# -- the settings file's tools ------------------------------------------------------------------------

def _cli(*args: str, cwd: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd, env={k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")})


def test_the_settings_schema_types_the_role_options(tmp_path):  # noqa: ANN001
    proc = _cli("config", "schema", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    schema = msgspec.json.decode(proc.stdout)
    virtual_key = schema["$defs"]["Settings"]["properties"]["virtual_keys"]["additionalProperties"]
    for holder in (schema["$defs"]["NodeFields"], virtual_key):
        [clause] = [c for c in holder["allOf"] if c["if"]["properties"]["provider"] == {"const": "bedrock"}]
        props = clause["then"]["properties"]
        assert props["aws_auth_type"]["anyOf"][0]["enum"] == ["apiKey", "serviceRole", "assumedRole"]
        for name in ("aws_role_arn", "aws_external_id", "aws_role_session_name", "aws_region"):
            assert props[name]["anyOf"][0]["type"] == "string", name
        assert props["aws_role_duration_seconds"]["anyOf"][0]["type"] == "integer"


def test_config_check_names_a_saved_configs_role_mistakes(tmp_path):  # noqa: ANN001
    settings = tmp_path / "gateway.toml"
    settings.write_text(f"""
[virtual_keys.bedrock-role]
provider = "bedrock"
aws_region = "us-east-1"
aws_auth_type = "assumedRole"
aws_role_arn = "{ROLE_ARN}"

[configs.pc-no-role]
provider = "bedrock"
aws_auth_type = "assumedRole"

[configs.pc-bad-external-id]
strategy = {{ mode = "fallback" }}
targets = [ {{ virtual_key = "bedrock-role" }}, {{ virtual_key = "bedrock-role", aws_external_id = "x" }} ]
""")
    proc = _cli("config", "check", str(settings), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "[configs.pc-no-role]" in proc.stderr and "assumedRole needs `aws_role_arn`" in proc.stderr
    assert "[configs.pc-bad-external-id]" in proc.stderr and "`aws_external_id`" in proc.stderr
    assert "at `$.targets[1]`" in proc.stderr
