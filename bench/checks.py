"""What each scenario must answer: checked once per server, before it is measured.

A scenario declares its check (``Scenario.check``).  Each check sends a few
requests through the server under test and straight to the fake upstream, and
raises :class:`CheckFailed` (a ``RuntimeError``, which stops the bench) with a
message naming the scenario when the answer is wrong, so a bench never
measures, and reports, wrong answers.  What passed is returned as one line,
kept in the results.

* :class:`UpstreamBody`: the upstream's answer, byte for byte, or for a
  generation the upstream's JSON plus the gateway's ``provider`` field; with
  ``via_custom_host`` it also checks, through the fake's counter, that the
  gateway sent the request to the ``x-portkey-custom-host`` it was given; with
  ``sent_as_is``, through the fake's digest of the last edit it received, that
  the gateway sent the client's body byte for byte (an unchanged multipart
  edit is forwarded as it came).
* :class:`SameEvents`: a Server-Sent Events answer with the upstream's events:
  the same names and the same data (as JSON documents), in the same order.
* :class:`CachedImages`: a cacheable generation.  The gateway keeps the images
  of a cached ``url`` answer in its image store and answers with its own
  ``/v1/images/files/<id>`` URLs (provider URLs expire), so the answer is not
  the upstream's byte for byte.  Checked instead: a valid images answer with
  the upstream's number of items, each ``b64_json`` the upstream's, each
  ``url`` a gateway image-store URL (on the first, uncached request a provider
  URL is accepted too) that serves image bytes, every request after the first
  a cache hit, and the hits identical to each other.

The reference forwarder knows nothing of configs, caches or custom hosts: it
is always held to :data:`FORWARDED` (the upstream's bytes).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from processes import Answer, request

if TYPE_CHECKING:  # pragma: no cover
    from scenarios import Scenario

#: The path of the gateway's image store (``GET /v1/images/files/{id}``).
IMAGE_STORE_PATH = "/v1/images/files/"
#: The fake upstream's request counters (see ``fake_upstream.py``).
COUNTS_PATH = "/bench/counts"
CACHE_STATUS = "x-portkey-cache-status"


class CheckFailed(RuntimeError):
    """A server under test gave a wrong answer; the message names the scenario and the server."""


@dataclass(frozen=True)
class Server:
    """Where a check sends its requests."""

    name: str
    url: str
    #: The gateway (configs, caches, custom hosts, the ``provider`` field), not a bare forwarder.
    gateway: bool = True


class Check(Protocol):
    def run(self, sc: Scenario, server: Server, upstream_url: str) -> str:
        """Check ``sc`` through ``server`` against the upstream; what was checked, or raise CheckFailed."""
        ...


def _fail(sc: Scenario, where: str, why: str) -> CheckFailed:
    return CheckFailed(f"{sc.name}: {where}: {why}")


def _send(sc: Scenario, base_url: str) -> Answer:
    return request(base_url + sc.path, sc.method, sc.headers, sc.body)


def _expect_ok(sc: Scenario, where: str, ans: Answer) -> Answer:
    """A 200 of the scenario's content type and at least its size."""
    if ans.status != 200 or not ans.content_type.startswith(sc.content_type) or len(ans.body) < sc.min_bytes:
        raise _fail(sc, where, f"answered {ans.status} {ans.content_type!r} with {len(ans.body)} bytes "
                               f"(expected 200 {sc.content_type}, at least {sc.min_bytes} bytes): {ans.body[:300]!r}")
    return ans


def _counts(sc: Scenario, upstream_url: str) -> dict[str, int]:
    ans = request(upstream_url + COUNTS_PATH)
    if ans.status != 200:
        raise _fail(sc, "upstream", f"the fake's counters ({COUNTS_PATH}) answered {ans.status}")
    return json.loads(ans.body)


@dataclass(frozen=True)
class UpstreamBody:
    """The upstream's answer: byte for byte, or (``generation``, through the gateway) the
    upstream's JSON document plus a ``provider`` field, which the gateway adds."""

    generation: bool = True
    #: The request names the fake in ``x-portkey-custom-host`` (below ``/custom-host``):
    #: the gateway must have sent it there, not to the provider's configured base URL.
    via_custom_host: bool = False
    #: An edit: the fake must have received the client's body byte for byte.
    sent_as_is: bool = False

    def run(self, sc: Scenario, server: Server, upstream_url: str) -> str:
        custom = self.via_custom_host and server.gateway
        before = _counts(sc, upstream_url) if custom or self.sent_as_is else {}
        got = _expect_ok(sc, server.name, _send(sc, server.url))
        if custom:
            sent = _counts(sc, upstream_url)["custom_host_requests"] - before["custom_host_requests"]
            if sent != 1:
                raise _fail(sc, server.name, f"{sent} requests reached the x-portkey-custom-host "
                                             f"{sc.headers.get('x-portkey-custom-host')!r} (expected 1): "
                                             "the gateway did not use it")
        if self.sent_as_is:
            _check_sent_as_is(sc, server, before, _counts(sc, upstream_url))
        direct = _expect_ok(sc, "upstream", _send(sc, upstream_url))
        if self.generation and server.gateway:
            if not _same_generation(got.body, direct.body):
                raise _fail(sc, server.name, "the body is not the upstream's plus a `provider` field: "
                                             f"{got.body[:300]!r} against the upstream's {direct.body[:300]!r}")
            what = "the upstream's answer plus `provider`"
        else:
            if got.body != direct.body:
                raise _fail(sc, server.name, f"the body differs from the upstream's ({len(got.body)} against "
                                             f"{len(direct.body)} bytes): {got.body[:300]!r}")
            what = "the upstream's answer, byte for byte"
        return (what + (", through the custom host" if custom else "")
                + (", the request body sent upstream byte for byte" if self.sent_as_is else ""))


def _check_sent_as_is(sc: Scenario, server: Server, before: dict[str, int], after: dict[str, int]) -> None:
    """One edit reached the fake between ``before`` and ``after``, with the scenario's body as it is."""
    sent = after["edit_requests"] - before["edit_requests"]
    if sent != 1:
        raise _fail(sc, server.name, f"{sent} edit requests reached the upstream (expected 1)")
    if after["last_edit_sha256"] != hashlib.sha256(sc.body).hexdigest():
        raise _fail(sc, server.name, f"the upstream received a different body ({after['last_edit_bytes']} bytes "
                                     f"against the client's {len(sc.body)}): not forwarded byte for byte")


#: What the reference forwarder is held to in every scenario.
FORWARDED = UpstreamBody(generation=False)


def _same_generation(got: bytes, direct: bytes) -> bool:
    """A generation answer is the upstream's plus the gateway's ``provider`` field."""
    try:
        got_doc, direct_doc = json.loads(got), json.loads(direct)
    except ValueError:
        return False
    return (isinstance(got_doc, dict) and isinstance(got_doc.pop("provider", None), str)
            and got_doc == direct_doc)


def _events(sc: Scenario, where: str, body: bytes) -> list[tuple[str, Any]]:
    """``(event name, data as JSON)`` of each event of a Server-Sent Events body (comments skipped)."""
    out = []
    for block in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        name, data = "message", []
        for line in block.split(b"\n"):
            field, _, value = line.partition(b":")
            value = value[1:] if value.startswith(b" ") else value
            if field == b"event":
                name = value.decode()
            elif field == b"data":
                data.append(value)
        if not data:
            continue  # a blank block, or only comments (keep-alives)
        try:
            out.append((name, json.loads(b"\n".join(data))))
        except ValueError:
            raise _fail(sc, where, f"the data of event {len(out) + 1} ({name}) is not JSON: "
                                   f"{data[0][:200]!r}") from None
    return out


@dataclass(frozen=True)
class SameEvents:
    """A stream: the upstream's events, each with the same name and the same data (as JSON)."""

    def run(self, sc: Scenario, server: Server, upstream_url: str) -> str:
        got = _events(sc, server.name, _expect_ok(sc, server.name, _send(sc, server.url)).body)
        want = _events(sc, "upstream", _expect_ok(sc, "upstream", _send(sc, upstream_url)).body)
        if not want:
            raise _fail(sc, "upstream", "no events in the stream")
        if [n for n, _ in got] != [n for n, _ in want]:
            raise _fail(sc, server.name, f"events {[n for n, _ in got]}, the upstream sent {[n for n, _ in want]}")
        for i, ((name, g), (_, w)) in enumerate(zip(got, want, strict=True)):
            if g != w:
                raise _fail(sc, server.name, f"the data of event {i + 1} ({name}) differs from the upstream's: "
                                             f"{_differing(g, w)}")
        return f"the upstream's {len(want)} events ({', '.join(n.rsplit('.', 1)[-1] for n, _ in want)}), same data"


def _differing(got: Any, want: Any) -> str:
    if isinstance(got, dict) and isinstance(want, dict):
        return "fields " + ", ".join(sorted(k for k in got.keys() | want.keys() if got.get(k) != want.get(k)))
    return "the whole document"


def _items(sc: Scenario, where: str, body: bytes, *, provider: bool) -> list[dict[str, Any]]:
    """The ``data`` items of a valid images answer ``{"created", "data": [...], "provider"}``."""
    try:
        doc = json.loads(body)
    except ValueError:
        raise _fail(sc, where, f"not JSON: {body[:300]!r}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("created"), int) or not isinstance(doc.get("data"), list):
        raise _fail(sc, where, f"not an images answer {{\"created\", \"data\": [...]}}: {body[:300]!r}")
    if provider and not (isinstance(doc.get("provider"), str) and doc["provider"]):
        raise _fail(sc, where, f"no `provider` field: {body[:300]!r}")
    items = doc["data"]
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not any(isinstance(item.get(k), str) for k in ("url", "b64_json")):
            raise _fail(sc, where, f"data[{i}] has neither a `url` nor a `b64_json` string: {str(item)[:300]}")
    return items


def _store_path(url: str) -> str | None:
    """The path of a gateway image-store URL (``<scheme>://<gateway>/v1/images/files/<id>``), else None."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc and parts.path.startswith(IMAGE_STORE_PATH) \
            and len(parts.path) > len(IMAGE_STORE_PATH):
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return None


@dataclass(frozen=True)
class CachedImages:
    """A cacheable generation: a valid images answer like the upstream's, with its images
    in the gateway's image store where the upstream gave URLs; the requests after the
    first are cache hits, identical to each other."""

    #: Requests sent after the first, each of which must be a hit.
    hits: int = 2

    def run(self, sc: Scenario, server: Server, upstream_url: str) -> str:
        if not server.gateway:
            return FORWARDED.run(sc, server, upstream_url)
        direct = _expect_ok(sc, "upstream", _send(sc, upstream_url))
        want = _items(sc, "upstream", direct.body, provider=False)
        # The first request fills the cache (or hits an entry an earlier check left).
        first = _expect_ok(sc, server.name, _send(sc, server.url))
        self._match(sc, f"{server.name} (first request)", first, want, miss=True)
        hit_bodies = [first.body] if first.headers.get(CACHE_STATUS) == "HIT" else []
        for n in range(2, self.hits + 2):
            where = f"{server.name} (request {n})"
            ans = _expect_ok(sc, where, _send(sc, server.url))
            status = ans.headers.get(CACHE_STATUS)
            if status != "HIT":
                raise _fail(sc, where, f"not a cache hit ({CACHE_STATUS}: {status}): the first answer was not "
                                       "stored, so this scenario would measure misses")
            self._match(sc, where, ans, want, miss=False)
            hit_bodies.append(ans.body)
        if any(b != hit_bodies[0] for b in hit_bodies):
            raise _fail(sc, server.name, f"the cache hits differ from each other: {hit_bodies[0][:300]!r} "
                                         f"against {next(b for b in hit_bodies if b != hit_bodies[0])[:300]!r}")
        got = _items(sc, server.name, hit_bodies[0], provider=True)
        urls = [item["url"] for item in got if "url" in item]
        if urls:
            self._image(sc, server, upstream_url, urls[0], want, got)
        kinds = ", ".join(sorted({k for item in want for k in ("url", "b64_json") if k in item}))
        note = f"{len(want)} {kinds} item(s), {len(hit_bodies)} identical cache hits"
        if urls:
            first_urls = [item["url"] for item in _items(sc, server.name, first.body, provider=True) if "url" in item]
            first_kind = "gateway" if all(_store_path(u) for u in first_urls) else "provider"
            note += f", image-store URLs serving the image; first answer with {first_kind} URLs"
        return note

    def _match(self, sc: Scenario, where: str, ans: Answer, want: list[dict[str, Any]], *, miss: bool) -> None:
        """``ans`` holds the upstream's images: same count, same kinds, each base64 image the
        same; each URL one of the gateway's image store (or, on a ``miss``, the provider's)."""
        got = _items(sc, where, ans.body, provider=True)
        if len(got) != len(want):
            raise _fail(sc, where, f"{len(got)} images, the upstream answered {len(want)}")
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            if "b64_json" in w:
                if g.get("b64_json") != w["b64_json"]:
                    raise _fail(sc, where, f"data[{i}].b64_json is not the upstream's image")
                continue
            url = g.get("url")
            if not isinstance(url, str):
                raise _fail(sc, where, f"data[{i}] has no `url` (the upstream answered one): {str(g)[:300]}")
            if _store_path(url) is None and not (miss and url == w["url"]):
                raise _fail(sc, where, f"data[{i}].url is not a gateway image-store URL "
                                       f"(…{IMAGE_STORE_PATH}<id>): {url[:300]!r}")

    def _image(self, sc: Scenario, server: Server, upstream_url: str, url: str, want: list[dict[str, Any]],
               got: list[dict[str, Any]]) -> None:
        """One stored image, fetched from the server under test (whatever host the URL names:
        ``images.public_url`` may point elsewhere): image bytes, and the provider's bytes
        where the provider URL is the fake's own (never fetched from anywhere else)."""
        where = f"{server.name} (GET {url[:200]})"
        path = _store_path(url)
        assert path is not None
        auth = {k: v for k, v in sc.headers.items() if k.lower() == "x-portkey-api-key"}
        ans = request(server.url + path, "GET", auth)
        if ans.status != 200 or not ans.content_type.startswith("image/") or not ans.body:
            raise _fail(sc, where, f"answered {ans.status} {ans.content_type!r} with {len(ans.body)} bytes "
                                   f"(expected 200 image/*): {ans.body[:200]!r}")
        source = next(w["url"] for g, w in zip(got, want, strict=True) if g.get("url") == url)
        if source.startswith(upstream_url + "/"):
            orig = request(source)
            if orig.status != 200:
                raise _fail(sc, "upstream", f"GET {source[:200]} answered {orig.status}")
            if orig.body != ans.body:
                raise _fail(sc, where, f"the stored image ({len(ans.body)} bytes) is not the provider's "
                                       f"({len(orig.body)} bytes at {source[:200]})")
