"""The custom-host guard (``x-portkey-custom-host`` / ``custom_host``): where a caller may point the gateway."""
from __future__ import annotations

import msgspec
import pytest

from gateway.errors import BadRequest
from gateway.ssrf import LOOPBACK_HOSTS, AddressPolicy, check_custom_host
from gateway.testing import Reply
from gateway.testing import fake_provider

DEFAULT_TRUSTED = AddressPolicy(LOOPBACK_HOSTS)
NONE_TRUSTED = AddressPolicy()

REFUSED = [
    # scheme
    ("ftp://example.com", "only http and https"),
    ("file:///etc/passwd", "only http and https"),
    ("gopher://example.com:70/", "only http and https"),
    ("//example.com/v1", "only http and https"),
    # credentials
    ("https://user:pw@example.com", "credentials"),
    ("https://user@example.com/v1", "credentials"),
    ("http://127.0.0.1%2f@evil.example", "credentials"),
    ("http://10.0.0.1:80@example.com", "credentials"),
    # cloud metadata
    ("http://169.254.169.254/latest/meta-data", "metadata"),
    ("http://metadata.google.internal/computeMetadata/v1", "metadata"),
    ("http://metadata", "metadata"),
    ("http://[fd00:ec2::254]/", "metadata"),
    # private, loopback, link-local, reserved IPv4
    ("http://10.0.0.1/v1", "private"),
    ("http://10.255.255.255", "private"),
    ("http://172.16.0.1", "private"),
    ("http://172.31.255.254:8080", "private"),
    ("http://192.168.1.1", "private"),
    ("http://127.0.0.2", "private"),
    ("http://127.255.255.254", "private"),
    ("http://169.254.0.1", "private"),
    ("http://100.64.0.1", "private"),
    ("http://0.0.0.0", "private"),
    ("http://224.0.0.1", "private"),
    # IPv6
    ("http://[fc00::1]", "private"),
    ("http://[fd12:3456::1]/v1", "private"),
    ("http://[fe80::1]", "private"),
    ("http://[::]", "private"),
    # IPv4 inside IPv6
    ("http://[::ffff:127.0.0.1]", "private"),
    ("http://[::ffff:7f00:1]", "private"),
    ("http://[::FFFF:10.0.0.1]", "private"),
    ("http://[0:0:0:0:0:ffff:192.168.0.1]", "private"),
    ("http://[::ffff:169.254.169.254]", "metadata"),
    ("http://[::127.0.0.1]", "private"),  # IPv4-compatible
    ("http://[::10.0.0.1]", "private"),
    ("http://[::ffff:0:a00:1]", "private"),  # IPv4-translated
    ("http://[64:ff9b::a9fe:a9fe]", "metadata"),  # NAT64 of 169.254.169.254
    ("http://[2002:a00:1::]", "private"),  # 6to4 of 10.0.0.1
    # numeric host forms resolvers accept but are not dotted quads
    ("http://2130706433", "numeric"),
    ("http://0x7f000001", "numeric"),
    ("http://017700000001", "numeric"),
    ("http://0177.0.0.1", "numeric"),
    ("http://0x7f.0.0.1", "numeric"),
    ("http://0x7f.1", "numeric"),
    ("http://127.1", "numeric"),
    ("http://10.1", "numeric"),
    ("http://08.08.08.08", "numeric"),
    ("http://①⓪.⓪.⓪.①", "private"),  # IDNA maps these digits to 10.0.0.1
    ("http://0", "numeric"),
    # local and special-use names
    ("http://printer.local", "special-use"),
    ("http://db.internal/v1", "special-use"),
    ("http://app.localhost", "special-use"),
    ("http://router.lan", "special-use"),
    ("http://example.com.", "special-use"),
    ("http://10.0.0.1.", "special-use"),
    # malformed
    ("https:///v1", "no host"),
    ("https://exa mple.com", "control characters"),
    ("https://example.com\n/v1", "control characters"),
    ("https://example.com:99999", "not a URL"),
    ("https://api.example.com/v1?key=1", "query or fragment"),
    ("https://api.example.com/v1#x", "query or fragment"),
    ("https://bücher.example", "non-ASCII"),
]


@pytest.mark.parametrize(("value", "why"), REFUSED)
def test_refused(value: str, why: str) -> None:
    with pytest.raises(BadRequest) as info:
        check_custom_host(value, DEFAULT_TRUSTED)
    err = info.value
    assert err.status == 400
    assert err.code == "invalid_custom_host"
    assert err.param == "x-portkey-custom-host"
    shown = value if "@" not in value else value.split("//")[0] + "//***@" + value.split("@", 1)[1]
    shown = shown.split("?")[0].split("#")[0]  # a key may hide in a query: never echoed
    assert repr(shown) in err.message
    assert why in err.message


@pytest.mark.parametrize(
    "value",
    [
        "https://sk-secret-user:sk-secret-pass@api.example.com/v1",
        "https://sk-secret-user@10.0.0.1/v1",
        "ftp://sk-secret-user:sk-secret-pass@example.com",
        "https://sk-secret-user:sk-secret pass@example.com",
        "https://sk-secret-user:sk-secret-pass@example.com:99999",
    ],
)
def test_credentials_never_echoed(value: str) -> None:
    # The message is answered to the caller and written to the request log.
    with pytest.raises(BadRequest) as info:
        check_custom_host(value, DEFAULT_TRUSTED)
    assert "sk-secret" not in info.value.message
    assert "***@" in info.value.message


LOOPBACK = [
    ("http://localhost:8080/v1/", "http://localhost:8080/v1"),
    ("http://LOCALHOST:8080", "http://localhost:8080"),
    ("http://127.0.0.1:9000/", "http://127.0.0.1:9000"),
    ("http://[::1]:8080/v1", "http://[::1]:8080/v1"),
    ("https://[::1]/", "https://[::1]"),
]


@pytest.mark.parametrize(("value", "expected"), LOOPBACK)
def test_loopback_allowed_when_trusted_by_default(value: str, expected: str) -> None:
    assert check_custom_host(value, DEFAULT_TRUSTED) == expected


@pytest.mark.parametrize(("value", "_expected"), LOOPBACK)
def test_loopback_refused_when_not_trusted(value: str, _expected: str) -> None:
    with pytest.raises(BadRequest, match="refused unless listed in security.trusted_hosts"):
        check_custom_host(value, NONE_TRUSTED)


@pytest.mark.parametrize(
    ("value", "trusted", "expected"),
    [
        ("http://10.0.0.1/v1/", AddressPolicy(["10.0.0.1"]), "http://10.0.0.1/v1"),
        ("http://models.internal:8000/", AddressPolicy(["models.internal"]), "http://models.internal:8000"),
        ("http://192.168.1.10", AddressPolicy(["192.168.1.10"]), "http://192.168.1.10"),
        ("https://xn--bcher-kva.internal/", AddressPolicy(["xn--bcher-kva.internal"]), "https://xn--bcher-kva.internal"),
        ("https://bücher.internal/", AddressPolicy(["bücher.internal"]), "https://xn--bcher-kva.internal"),
    ],
)
def test_private_hosts_allowed_when_trusted(value: str, trusted: AddressPolicy, expected: str) -> None:
    assert check_custom_host(value, trusted) == expected
    with pytest.raises(BadRequest):
        check_custom_host(value, NONE_TRUSTED)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://api.example.com/v1/", "https://api.example.com/v1"),
        ("https://api.example.com/v1", "https://api.example.com/v1"),
        ("https://api.example.com//", "https://api.example.com"),
        ("HTTPS://API.Example.COM/V1/", "https://api.example.com/V1"),
        ("http://8.8.8.8/v1", "http://8.8.8.8/v1"),
        ("http://1.1.1.1:443", "http://1.1.1.1:443"),
        ("http://[2606:4700:4700::1111]/", "http://[2606:4700:4700::1111]"),
        ("http://[::ffff:8.8.8.8]", "http://[::ffff:808:808]"),  # mapped public IPv4
        ("https://my-resource.openai.azure.com/openai", "https://my-resource.openai.azure.com/openai"),
        ("https://xn--bcher-kva.example/", "https://xn--bcher-kva.example"),
    ],
)
def test_public_hosts_allowed_and_trailing_slash_stripped(value: str, expected: str) -> None:
    assert check_custom_host(value, NONE_TRUSTED) == expected
    assert check_custom_host(value, DEFAULT_TRUSTED) == expected


# --------------------------------------------------------------------------- through the gateway


@pytest.fixture
def provider_upstream(fake_upstream):  # noqa: ANN001, ANN201
    return fake_provider.install(fake_upstream)


def _headers(**extra: str) -> dict[str, str]:
    return {"x-portkey-provider": "fake", "Authorization": "Bearer sk-x", "Content-Type": "application/json", **extra}


async def test_private_custom_host_header_is_a_400_and_nothing_is_sent(gateway_client, provider_upstream):  # noqa: ANN001
    resp = await gateway_client.post(
        "/v1/images/generations", data=b'{"prompt":"x"}',
        headers=_headers(**{"x-portkey-custom-host": "http://10.0.0.1/v1"}),
    )
    assert resp.status == 400
    assert resp.content_type == "application/json"
    body = await resp.json()
    err = body["error"]
    assert "http://10.0.0.1/v1" in err["message"]
    assert "custom host" in err["message"]
    assert err["code"] == "invalid_custom_host"
    assert err["param"] == "x-portkey-custom-host"
    assert provider_upstream.requests == []


async def test_private_custom_host_in_config_is_refused_on_passthrough(gateway_client, provider_upstream):  # noqa: ANN001
    config = msgspec.json.encode({"provider": "fake", "api_key": "sk-x", "custom_host": "http://169.254.169.254"})
    resp = await gateway_client.get("/v1/models", headers={"x-portkey-config": config.decode()})
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert "http://169.254.169.254" in err["message"] and err["code"] == "invalid_custom_host"
    assert provider_upstream.requests == []


async def test_trusted_loopback_custom_host_is_used(gateway_client, fake_upstream):  # noqa: ANN001
    # The configured base URL is dead; only the custom host reaches the fake provider.
    fake_upstream.on("POST", "/custom/images/generations", Reply(json={"created": 1, "data": [{"b64_json": "aGk="}]}))
    resp = await gateway_client.post(
        "/v1/images/generations", data=b'{"prompt":"x"}',
        headers=_headers(**{"x-portkey-custom-host": fake_upstream.url + "/custom/"}),
    )
    assert resp.status == 200, await resp.text()
    assert [r.path for r in fake_upstream.requests] == ["/custom/images/generations"]


class TestNothingTrusted:
    @pytest.fixture
    def gateway_settings(self, fake_upstream):  # noqa: ANN001, ANN201
        return {
            "providers": {"fake": {"base_url": fake_upstream.url + "/v1"}},
            "security": {"trusted_hosts": []},
        }

    async def test_loopback_custom_host_is_refused(self, gateway_client, provider_upstream):  # noqa: ANN001
        resp = await gateway_client.post(
            "/v1/images/generations", data=b'{"prompt":"x"}',
            headers=_headers(**{"x-portkey-custom-host": provider_upstream.url + "/v1"}),
        )
        assert resp.status == 400
        assert provider_upstream.url in (await resp.json())["error"]["message"]
        assert provider_upstream.requests == []

    async def test_operator_base_url_is_not_subject_to_the_guard(self, gateway_client, provider_upstream):  # noqa: ANN001
        # [providers.openai] base_url is operator-set and trusted even on loopback.
        resp = await gateway_client.post("/v1/images/generations", data=b'{"prompt":"x"}', headers=_headers())
        assert resp.status == 200, await resp.text()
        assert len(provider_upstream.requests) == 1
