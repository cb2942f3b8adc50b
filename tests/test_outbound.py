"""Where the gateway connects on a caller's behalf: stored credentials stay home, and every
connection a caller can influence reaches public addresses only.

Probed as an attacker would: a second fake server on loopback stands in for the attacker's
public host, and a stub resolver (``gateway.testing.dns.StaticResolver``) for DNS.
"""
from __future__ import annotations

import base64
import ipaddress
from typing import Any

import aiohttp
import msgspec
import pytest

import gateway_azure_openai
import gateway_bedrock
from gateway.app import create_app
from gateway.ssrf import AddressPolicy, BlockedAddress, GuardedResolver
from gateway.testing import FakeUpstream, Reply, fake_provider
from gateway.testing.dns import StaticResolver
from first_party import FIRST_PARTY

GEN = "/v1/images/generations"
STORED = "sk-stored-secret-0123456789"
SAVED = "sk-saved-secret-0123456789"
PNG = fake_provider.PNG_1X1


@pytest.fixture
async def attacker():  # noqa: ANN201
    """The attacker's server: answers like a provider, so anything that reaches it shows."""
    server = await FakeUpstream().start()
    fake_provider.install(server)
    yield server
    await server.close()


@pytest.fixture
def gateway_plugins() -> list[Any]:
    return [*FIRST_PARTY, gateway_azure_openai, gateway_bedrock]


@pytest.fixture
def gateway_settings(fake_upstream, attacker) -> dict[str, Any]:  # noqa: ANN001
    evil = f"http://attacker.example:{attacker.port}/v1"
    return {
        "providers": {"fake": {"base_url": fake_upstream.url + "/v1"},
                      "azure-openai": {"base_url": fake_upstream.url},
                      "bedrock": {"base_url": fake_upstream.url, "environment_credentials": False}},
        "virtual_keys": {
            "fake-prod": {"provider": "fake", "api_key": STORED},
            "fake-proxy": {"provider": "fake", "api_key": STORED, "allowed_custom_hosts": [evil]},
            "azure-prod": {"provider": "azure-openai", "api_key": STORED, "resource_name": "contoso",
                           "deployment_id": "gpt-image-1", "api_version": "2025-04-01-preview"},
            "bedrock-keys": {"provider": "bedrock", "aws_access_key_id": "AKIASTOREDKEY0000000",
                             "aws_secret_access_key": STORED, "aws_region": "us-east-1"},
            "bedrock-api-key": {"provider": "bedrock", "api_key": STORED, "aws_auth_type": "apiKey",
                                "aws_region": "us-east-1"},
        },
        "configs": {
            "pc-saved-key": {"provider": "fake", "api_key": SAVED},
            "pc-vk": {"virtual_key": "fake-prod"},
            # The operator's own choice of host (resolved by the system's DNS: an address here).
            "pc-operator-host": {"virtual_key": "fake-prod", "custom_host": attacker.url + "/v1"},
        },
    }


@pytest.fixture(autouse=True)
def dns(gateway_services) -> StaticResolver:  # noqa: ANN001
    resolver = StaticResolver({
        "attacker.example": ["127.0.0.1"],
        "internal-test.example": ["127.0.0.1"],
        "localtest.me": ["127.0.0.1"],  # a public name whose real DNS answers loopback
        "kubernetes.default.svc": ["10.96.0.1"],
        "gateway-redis": ["10.96.12.7"],
        "169.254.169.254.nip.io": ["169.254.169.254"],
        "mixed.example": ["93.184.216.34", "10.0.0.8"],
        "mapped.example": ["::ffff:10.0.0.8"],
    })
    gateway_services.resolver = resolver
    return resolver


def _evil(attacker: FakeUpstream) -> str:
    return f"http://attacker.example:{attacker.port}/v1"


def _post(client, headers: dict[str, str], body: dict[str, Any] | None = None):  # noqa: ANN001, ANN202
    return client.post(GEN, data=msgspec.json.encode(body or {"prompt": "a fox"}),
                       headers={"Content-Type": "application/json", **headers})


def _sent_credential(fake: FakeUpstream) -> bool:
    return any(STORED in str(r.headers) or SAVED in str(r.headers) or STORED.encode() in r.body for r in fake.requests)


# -- 1. stored credentials never go to a host the caller chose ------------------------------


def _refused_cases(evil: str) -> list[tuple[str, str, dict[str, str]]]:
    tree = {"custom_host": evil, "strategy": {"mode": "fallback"},
            "targets": [{"provider": "fake", "api_key": "sk-callers-own"}, {"virtual_key": "fake-prod"}]}
    return [
        ("POST", GEN, {"x-portkey-virtual-key": "fake-prod", "x-portkey-custom-host": evil}),
        ("POST", GEN, {"x-portkey-config": "pc-saved-key", "x-portkey-custom-host": evil}),
        ("POST", GEN, {"x-portkey-config": "pc-vk", "x-portkey-custom-host": evil}),
        ("POST", GEN, {"x-portkey-config": "pc-operator-host", "x-portkey-custom-host": evil + "/other"}),
        ("POST", GEN, {"x-portkey-config": msgspec.json.encode(
            {"virtual_key": "fake-prod", "custom_host": evil}).decode()}),
        # A fallback tree whose leaves inherit the custom host: refused before its first leaf runs.
        ("POST", GEN, {"x-portkey-config": msgspec.json.encode(tree).decode()}),
        ("POST", GEN, {"x-portkey-virtual-key": "fake-proxy", "x-portkey-custom-host": evil.replace("/v1", "/v2")}),
        ("POST", GEN, {"x-portkey-virtual-key": "azure-prod", "x-portkey-custom-host": evil}),
        ("POST", GEN, {"x-portkey-virtual-key": "bedrock-keys", "x-portkey-custom-host": evil}),
        ("POST", GEN, {"x-portkey-virtual-key": "bedrock-api-key", "x-portkey-custom-host": evil}),
        ("GET", "/v1/models", {"x-portkey-virtual-key": "fake-prod", "x-portkey-custom-host": evil}),
        ("POST", "/v1/chat/completions", {"x-portkey-config": "pc-saved-key", "x-portkey-custom-host": evil}),
    ]


@pytest.mark.parametrize("case", range(12))
async def test_a_stored_credential_is_not_sent_to_a_custom_host_the_caller_chose(
        case, gateway_client, fake_upstream, attacker, log_capture):  # noqa: ANN001
    method, path, headers = _refused_cases(_evil(attacker))[case]
    resp = await gateway_client.request(method, path, data=b'{"prompt":"a fox"}',
                                        headers={"Content-Type": "application/json", **headers})
    body = await resp.json()
    assert resp.status == 400, body
    assert body["error"]["code"] == "custom_host_not_allowed"
    assert body["error"]["param"] == "x-portkey-custom-host"
    assert "allowed_custom_hosts" in body["error"]["message"]
    assert attacker.requests == [] and fake_upstream.requests == []
    assert STORED not in log_capture.text and SAVED not in log_capture.text


async def test_the_callers_own_key_may_go_to_a_custom_host(gateway_client, attacker):  # noqa: ANN001
    resp = await _post(gateway_client, {"x-portkey-provider": "fake", "Authorization": "Bearer sk-callers-own",
                                        "x-portkey-custom-host": _evil(attacker)})
    assert resp.status == 200, await resp.text()
    assert attacker.last.headers["Authorization"] == "Bearer sk-callers-own"


async def test_a_virtual_key_goes_to_the_custom_hosts_it_lists(gateway_client, attacker):  # noqa: ANN001
    resp = await _post(gateway_client, {"x-portkey-virtual-key": "fake-proxy",
                                        "x-portkey-custom-host": _evil(attacker)})
    assert resp.status == 200, await resp.text()
    assert attacker.last.headers["Authorization"] == f"Bearer {STORED}"


async def test_a_saved_configs_own_custom_host_is_the_operators_choice(gateway_client, attacker):  # noqa: ANN001
    resp = await _post(gateway_client, {"x-portkey-config": "pc-operator-host"})
    assert resp.status == 200, await resp.text()
    assert attacker.last.headers["Authorization"] == f"Bearer {STORED}"


async def test_an_inline_config_with_its_own_key_may_take_a_custom_host(gateway_client, attacker):  # noqa: ANN001
    config = {"provider": "fake", "api_key": "sk-callers-own", "custom_host": _evil(attacker)}
    resp = await _post(gateway_client, {"x-portkey-config": msgspec.json.encode(config).decode()})
    assert resp.status == 200, await resp.text()
    assert attacker.last.headers["Authorization"] == "Bearer sk-callers-own"
    assert not _sent_credential(attacker)


@pytest.mark.parametrize("how", ["header", "config"])
async def test_a_virtual_keys_azure_resource_is_its_own(how, gateway_client, fake_upstream):  # noqa: ANN001
    # The resource name is the host (<resource>.openai.azure.com): choosing another one would send
    # the stored api-key to a resource the caller picked.
    if how == "header":
        headers = {"x-portkey-virtual-key": "azure-prod", "x-portkey-azure-resource-name": "attacker-resource"}
    else:
        headers = {"x-portkey-config": msgspec.json.encode(
            {"virtual_key": "azure-prod", "resource_name": "attacker-resource"}).decode()}
    resp = await _post(gateway_client, headers)
    body = await resp.json()
    assert resp.status == 400, body
    assert body["error"]["code"] == "custom_host_not_allowed" and "resource_name" in body["error"]["message"]
    assert fake_upstream.requests == []


# -- 2. names are checked by the addresses they resolve to ---------------------------------------


class TestResolvedAddresses:
    @pytest.fixture
    def gateway_settings(self, fake_upstream) -> dict[str, Any]:  # noqa: ANN001
        # Nothing trusted, as by default on a gateway bound to a non-loopback address: loopback
        # (internal-test.example, localtest.me) is refused although the test server listens there.
        return {"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}},
                "security": {"trusted_hosts": []}}

    @pytest.mark.parametrize("host", ["internal-test.example", "localtest.me", "kubernetes.default.svc",
                                      "gateway-redis", "169.254.169.254.nip.io",
                                      "mixed.example", "mapped.example"])
    @pytest.mark.parametrize("route", ["generations", "passthrough"])
    async def test_a_name_resolving_to_an_internal_address_is_refused(
            self, host, route, gateway_client, fake_upstream, dns):  # noqa: ANN001
        custom = f"http://{host}:{fake_upstream.port}/v1"
        headers = {"x-portkey-provider": "fake", "Authorization": "Bearer sk-own", "x-portkey-custom-host": custom}
        if route == "generations":
            resp = await _post(gateway_client, headers)
        else:
            resp = await gateway_client.get("/v1/models", headers=headers)
        body = await resp.json()
        assert resp.status == 400, body
        assert body["error"]["code"] == "blocked_address"
        assert host in body["error"]["message"] and "resolves to" in body["error"]["message"]
        assert fake_upstream.requests == []
        assert host in dns.lookups

    async def test_a_trusted_range_lets_a_name_through(self, gateway_app, gateway_services):  # noqa: ANN001
        # Checked at the resolver: the operator's CIDR range admits what a name resolves to.
        resolver = GuardedResolver(AddressPolicy(["10.96.0.0/12"]), StaticResolver({"kubernetes.default.svc": ["10.96.0.1"]}))
        assert [r["host"] for r in await resolver.resolve("kubernetes.default.svc", 443)] == ["10.96.0.1"]

    async def test_the_operators_base_url_is_not_guarded(self, gateway_client, fake_upstream):  # noqa: ANN001
        fake_provider.install(fake_upstream)
        resp = await _post(gateway_client, {"x-portkey-provider": "fake", "Authorization": "Bearer sk-own"})
        assert resp.status == 200, await resp.text()


async def test_rebinding_cannot_pass_the_check():
    # The connector connects to exactly the addresses the guard returned: a name is checked on
    # every lookup, and the second (internal) answer is refused, not connected to.
    stub = StaticResolver({"rebind.example": [["93.184.216.34"], ["127.0.0.1"]]})
    resolver = GuardedResolver(AddressPolicy(), stub)
    first = await resolver.resolve("rebind.example", 80)
    assert [r["host"] for r in first] == ["93.184.216.34"]
    with pytest.raises(BlockedAddress, match="private, loopback"):
        await resolver.resolve("rebind.example", 80)


@pytest.mark.parametrize(("bind", "trusted"), [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                               ("0.0.0.0", False), ("10.1.2.3", False), ("::", False)])
def test_loopback_is_trusted_by_default_only_while_listening_on_loopback(bind: str, trusted: bool) -> None:
    policy = AddressPolicy.from_settings(None, bind)
    assert (policy.refusal(ipaddress.ip_address("127.0.0.1")) is None) is trusted
    assert policy.trusts_name("localhost") is trusted
    assert AddressPolicy.from_settings(["10.0.0.0/8"], "0.0.0.0").refusal(ipaddress.ip_address("10.2.3.4")) is None


@pytest.mark.parametrize(("bind", "allowed"), [("0.0.0.0", False), ("127.0.0.1", True)])
async def test_a_loopback_custom_host_depends_on_where_the_gateway_listens(
        bind, allowed, aiohttp_server, fake_upstream):  # noqa: ANN001
    """End to end, ``security.trusted_hosts`` unset: a gateway listening on every address
    (a real server bound to 0.0.0.0, on an ephemeral port) refuses a loopback custom host with a
    400 before connecting; the same gateway listening on loopback uses it."""
    fake_provider.install(fake_upstream)  # the loopback service a caller points the gateway at
    app = create_app({"server": {"host": bind}}, plugins=FIRST_PARTY, load_entrypoints=False)
    server = await aiohttp_server(app, host=bind, port=0)
    assert server.runner.addresses[0][0] == bind
    headers = {"x-portkey-provider": "fake", "Authorization": "Bearer sk-own", "Content-Type": "application/json",
               "x-portkey-custom-host": f"http://127.0.0.1:{fake_upstream.port}/v1"}
    async with aiohttp.ClientSession() as session, session.post(
            f"http://127.0.0.1:{server.port}{GEN}", data=b'{"prompt":"a fox"}', headers=headers) as resp:
        body = await resp.json()
    if allowed:
        assert resp.status == 200, body
        assert [r.path for r in fake_upstream.requests] == ["/v1/images/generations"]
    else:
        assert resp.status == 400, body
        assert body["error"]["code"] == "invalid_custom_host" and "security.trusted_hosts" in body["error"]["message"]
        assert fake_upstream.requests == []


@pytest.mark.parametrize(("bind", "allowed"), [("0.0.0.0", False), ("127.0.0.1", True)])
async def test_a_loopback_custom_host_on_the_passthrough_depends_on_where_the_gateway_listens(
        bind, allowed, aiohttp_server, fake_upstream):  # noqa: ANN001
    """The same on the passthrough (``/v1/<path>`` relayed below the custom host): bound to every
    address with ``security.trusted_hosts`` unset, a loopback custom host is a 400 and the
    loopback service sees nothing; bound to loopback, the request is relayed to it."""
    fake_upstream.on("GET", "/v1/internal/secrets", Reply(json={"secret": "on loopback"}))
    app = create_app({"server": {"host": bind}}, plugins=FIRST_PARTY, load_entrypoints=False)
    server = await aiohttp_server(app, host=bind, port=0)
    assert server.runner.addresses[0][0] == bind
    headers = {"x-portkey-provider": "fake", "Authorization": "Bearer sk-own",
               "x-portkey-custom-host": f"http://127.0.0.1:{fake_upstream.port}/v1"}
    async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{server.port}/v1/internal/secrets", headers=headers) as resp:
        body = await resp.json()
    if allowed:
        assert resp.status == 200, body
        assert body == {"secret": "on loopback"}
        assert [r.path for r in fake_upstream.requests] == ["/v1/internal/secrets"]
    else:
        assert resp.status == 400, body
        assert body["error"]["code"] == "invalid_custom_host" and "security.trusted_hosts" in body["error"]["message"]
        assert fake_upstream.requests == []


# -- 3. image URLs in answers: only the provider's own hosts and ports, through the guard ---------


async def test_an_image_url_on_another_port_of_the_providers_host_is_not_fetched(gateway_client, fake_upstream):  # noqa: ANN001
    other = await FakeUpstream().start()
    try:
        other.on("GET", "/secret.png", Reply(body=PNG, content_type="image/png"))
        fake_upstream.on("POST", "/v1/images/generations",
                         Reply(json={"created": 1, "data": [{"url": f"{other.url}/secret.png"}]}))
        resp = await _post(gateway_client, {"x-portkey-provider": "fake", "Authorization": "Bearer sk-own"},
                           {"prompt": "a fox", "response_format": "b64_json"})
        body = await resp.json()
        # Not fetched; the image was made, so its URL is handed on, with the reason.
        assert resp.status == 200, body
        assert body["data"] == [{"url": f"{other.url}/secret.png"}]
        assert "own hosts" in resp.headers["x-portkey-adjusted-params"]
        assert other.requests == []
    finally:
        await other.close()


async def test_an_image_url_from_a_custom_host_is_fetched_through_the_guard(gateway_client, attacker, dns):  # noqa: ANN001
    # The caller's custom host answers with a URL on its own host: fetched, but only after its
    # name resolved to an allowed address (here loopback, trusted while the gateway is).
    attacker.on("POST", "/v1/images/generations", Reply(json={
        "created": 1, "data": [{"url": f"http://attacker.example:{attacker.port}/img.png"}]}))
    attacker.on("GET", "/img.png", Reply(body=PNG, content_type="image/png"))
    resp = await _post(gateway_client, {"x-portkey-provider": "fake", "Authorization": "Bearer sk-own",
                                        "x-portkey-custom-host": _evil(attacker)},
                       {"prompt": "a fox", "response_format": "b64_json"})
    assert resp.status == 200, await resp.text()
    assert base64.b64decode((await resp.json())["data"][0]["b64_json"]) == PNG
    assert dns.lookups.count("attacker.example") >= 1


class TestImageURLToAnInternalName:
    @pytest.fixture
    def gateway_settings(self, fake_upstream) -> dict[str, Any]:  # noqa: ANN001
        return {"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}},
                "security": {"trusted_hosts": ["attacker.example"]}}

    async def test_a_provider_url_resolving_inside_is_never_fetched(self, gateway_client, attacker, fake_upstream):  # noqa: ANN001
        # The custom host is trusted by name; the image URL it answers with names another host
        # of its own answer's choosing (metadata): not on the provider's hosts, never fetched.
        attacker.on("POST", "/v1/images/generations", Reply(json={
            "created": 1, "data": [{"url": "http://169.254.169.254.nip.io/latest/meta-data/"}]}))
        resp = await _post(gateway_client, {"x-portkey-provider": "fake", "Authorization": "Bearer sk-own",
                                            "x-portkey-custom-host": _evil(attacker)},
                           {"prompt": "a fox", "response_format": "b64_json"})
        assert resp.status == 200
        assert (await resp.json())["data"] == [{"url": "http://169.254.169.254.nip.io/latest/meta-data/"}]
        assert "not on fake's own hosts" in resp.headers["x-portkey-adjusted-params"]
        assert [r.path for r in attacker.requests] == ["/v1/images/generations"]


class TestCachedURLCopy:
    """The cache's URL copy (``Delivery.keep``): an answer that will be cached gets gateway URLs
    for the provider's image URLs, copied from the provider's own hosts only; an answer that
    hands a provider URL on instead is not cached."""

    @pytest.fixture
    def gateway_settings(self, fake_upstream, tmp_path) -> dict[str, Any]:  # noqa: ANN001
        return {"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}},
                "images": {"directory": str(tmp_path / "images")}}

    @pytest.mark.parametrize("where", ["attacker-name", "loopback-port", "metadata-name"])
    async def test_an_image_url_off_the_providers_hosts_is_neither_fetched_nor_stored(
            self, where, gateway_client, gateway_services, fake_upstream, attacker, dns, tmp_path):  # noqa: ANN001
        # attacker.example resolves to loopback, which the guard trusts while the gateway listens
        # there: only the provider-host check stands between the copy and the attacker's server.
        url = {"attacker-name": f"http://attacker.example:{attacker.port}/img.png",
               "loopback-port": f"http://127.0.0.1:{attacker.port}/img.png",
               "metadata-name": "http://169.254.169.254.nip.io/latest/meta-data/img.png"}[where]
        attacker.on("GET", "/img.png", Reply(body=PNG, content_type="image/png"))
        fake_upstream.on("POST", GEN, Reply(json={"created": 1, "data": [{"url": url}]}))
        config = {"provider": "fake", "api_key": "sk-own", "cache": {"mode": "simple", "max_age": 600}}
        for _ in range(2):
            resp = await _post(gateway_client, {"x-portkey-config": msgspec.json.encode(config).decode()})
            body = await resp.json()
            # As designed: the provider's own URL is handed on, uncopied, and the answer not
            # cached (a second identical request is a miss, not a hit on a copied image).
            assert resp.status == 200, body
            assert resp.headers["x-portkey-cache-status"] == "MISS"
            assert body["data"][0]["url"] == url
            await gateway_services.drain()
        assert attacker.requests == []
        assert [r.method for r in fake_upstream.requests] == ["POST", "POST"]
        assert not any(name.endswith((".example", ".nip.io")) for name in dns.lookups)  # not even resolved
        stored = tmp_path / "images"
        assert not stored.exists() or [p.name for p in stored.iterdir() if not p.name.startswith(".")] == []

    @pytest.mark.parametrize("why", ["failing", "off-host"])
    async def test_a_b64_json_answer_whose_image_was_handed_on_is_not_cached(
            self, why, gateway_client, gateway_services, fake_upstream, attacker):  # noqa: ANN001
        # The image's URL could not be fetched for b64_json (its host answers 503, or it is not
        # the provider's), so the answer carries the provider's URL: caching that would serve a
        # URL that fails, or expires, to every later caller instead of asking the provider again.
        url = {"failing": f"{fake_upstream.url}/img/busy.png", "off-host": f"{attacker.url}/img.png"}[why]
        fake_upstream.on("GET", "/img/busy.png", Reply(503, body=b"busy"))
        attacker.on("GET", "/img.png", Reply(body=PNG, content_type="image/png"))
        fake_upstream.on("POST", GEN, Reply(json={"created": 1, "data": [{"url": url}]}))
        config = {"provider": "fake", "api_key": "sk-own", "cache": {"mode": "simple", "max_age": 600}}
        for _ in range(2):
            resp = await _post(gateway_client, {"x-portkey-config": msgspec.json.encode(config).decode()},
                               {"prompt": "a fox", "response_format": "b64_json"})
            body = await resp.json()
            assert resp.status == 200, body
            assert resp.headers["x-portkey-cache-status"] == "MISS"
            assert body["data"] == [{"url": url}]
            assert "response_format=b64_json->url" in resp.headers["x-portkey-adjusted-params"]
            await gateway_services.drain()
        assert [r.method for r in fake_upstream.requests if r.path == GEN] == ["POST", "POST"]
        assert attacker.requests == []


@pytest.mark.parametrize("origin", ["provider", "custom-host"])
async def test_a_redirect_from_an_image_host_to_an_internal_name_is_not_followed(
        origin, gateway_client, fake_upstream, attacker):  # noqa: ANN001
    """An image URL on the provider's own host (or the caller's custom host) that answers 302
    to an internal name: the redirect is not followed (``allow_redirects=False``), the fetch
    fails (the image made and billed, the caller gets the provider's URL and the reason) and the
    internal server sees nothing."""
    internal = await FakeUpstream().start()  # an internal service, reachable from the gateway's host
    try:
        internal.on("GET", "/latest/meta-data/", Reply(body=PNG, content_type="image/png"))
        if origin == "provider":
            # Resolved by the system (the operator's base URL uses the plain pool).
            image_host, target, headers = fake_upstream, f"http://localhost:{internal.port}/latest/meta-data/", {}
            image_url = f"{fake_upstream.url}/v1/files/img.png"
        else:
            # Resolved by the guard's resolver (the stub: internal-test.example is 127.0.0.1), which
            # lets loopback through while the gateway listens there: only not following the
            # redirect keeps the internal server unreached.
            image_host, target = attacker, f"http://internal-test.example:{internal.port}/latest/meta-data/"
            headers = {"x-portkey-custom-host": _evil(attacker)}
            image_url = f"http://attacker.example:{attacker.port}/v1/files/img.png"
        image_host.on("POST", GEN, Reply(json={"created": 1, "data": [{"url": image_url}]}))
        image_host.on("GET", "/v1/files/img.png", Reply(302, headers={"Location": target}))
        resp = await _post(gateway_client, {"x-portkey-provider": "fake", "Authorization": "Bearer sk-own", **headers},
                           {"prompt": "a fox", "response_format": "b64_json"})
        body = await resp.json()
        assert resp.status == 200, body
        assert body["data"] == [{"url": image_url}]
        assert "response_format=b64_json->url" in resp.headers["x-portkey-adjusted-params"]
        assert "HTTP 302" in resp.headers["x-portkey-adjusted-params"]
        assert [r.path for r in image_host.requests] == ["/v1/images/generations", "/v1/files/img.png"]
        assert internal.requests == []
    finally:
        await internal.close()
