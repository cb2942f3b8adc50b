"""``aws_auth_type: assumedRole``: temporary credentials from STS AssumeRole.

``POST https://sts.{region}.amazonaws.com/`` with the Query API's form body ``Action=AssumeRole``,
``Version=2011-06-15``, ``RoleArn``, ``RoleSessionName``, ``DurationSeconds`` and (when the
role's trust policy asks for one) ``ExternalId``, signed with SigV4 (service ``sts``) by
botocore with the base credentials.  The answer is XML: ``AssumeRoleResponse/AssumeRoleResult/
Credentials`` holds ``AccessKeyId``, ``SecretAccessKey``, ``SessionToken`` and ``Expiration``
(ISO 8601); an error is ``ErrorResponse/Error`` with ``Code`` and ``Message``.  The request
goes out with a short-lived HTTP client of its own (see :func:`send`): the core hands
``authorize`` none.  No credential ever reaches a message.
"""
from __future__ import annotations

import datetime
import hashlib
import xml.etree.ElementTree as ET
from typing import NoReturn
from urllib.parse import urlencode

import aiohttp
from botocore.credentials import Credentials
from multidict import CIMultiDict

from gateway.sdk import MAX_ERROR_BODY, Answer, AuthError, GatewayError, ProviderError, UpstreamError, UpstreamRequest
from gateway_bedrock.auth import sign, wire_url

__all__ = ["API_VERSION", "DEFAULT_DURATION", "DEFAULT_SESSION_NAME", "Role", "read_assume_role_answer", "send"]

API_VERSION = "2011-06-15"
#: Seconds a session lasts unless ``aws_role_duration_seconds`` says (STS's own default).
DEFAULT_DURATION = 3600
DEFAULT_SESSION_NAME = "gateway"
#: Seconds to connect to STS.
CONNECT_TIMEOUT = 5.0


def _digest(*values: str) -> str:
    return hashlib.sha256("\0".join(values).encode("utf-8", "surrogateescape")).hexdigest()[:32]


class Role:
    """One role to assume with ``base`` credentials at ``endpoint``, signed for ``region``."""

    def __init__(self, endpoint: str, region: str, arn: str, base: Credentials, *, external_id: str | None,
                 session_name: str | None, duration: int | None, base_is: str) -> None:
        self.url = wire_url(endpoint.replace("{region}", region).rstrip("/") + "/")
        self.region = region
        self.arn = arn
        self.base = base
        self.params = {"Action": "AssumeRole", "Version": API_VERSION, "RoleArn": arn,
                       "RoleSessionName": session_name or DEFAULT_SESSION_NAME,
                       "DurationSeconds": str(duration or DEFAULT_DURATION)}
        if external_id:
            self.params["ExternalId"] = external_id
        #: Whose base credentials, as messages name them (never a key).
        self.base_is = base_is
        #: What the credentials are kept under: the role, the session and a digest of the base
        #: credentials (another caller's keys never get this one's session).
        self.key = "|".join((self.url, region, arn, external_id or "", self.params["RoleSessionName"],
                             self.params["DurationSeconds"],
                             _digest(base.access_key, base.secret_key, base.token or "")))

    def __repr__(self) -> str:
        return f"Role({self.arn})"

    def request(self) -> UpstreamRequest:
        """The AssumeRole call, signed with the base credentials."""
        body = urlencode(self.params).encode()
        headers: CIMultiDict[str] = CIMultiDict({"Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                                                 "Accept": "text/xml"})
        sign("POST", self.url, headers, body, self.base, self.region, service="sts")
        return UpstreamRequest("POST", self.url, headers, body)


async def send(request: UpstreamRequest, provider: str, timeout: float) -> Answer:
    """Send the AssumeRole call to the operator's STS endpoint and read the answer whole.  The
    core's per-attempt client sends every host but Bedrock's through the address guard, which
    would refuse a VPC endpoint's private address; credentials are fetched about once an hour
    per role, so a client of its own costs nothing that matters."""
    client_timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, CONNECT_TIMEOUT))
    try:
        async with aiohttp.ClientSession(timeout=client_timeout, cookie_jar=aiohttp.DummyCookieJar(),
                                         trust_env=False) as session:
            async with session.request(request.method, request.url, headers=request.headers, data=request.body,
                                       allow_redirects=False) as resp:
                body = bytearray()
                while len(body) < MAX_ERROR_BODY:
                    more = await resp.content.read(MAX_ERROR_BODY - len(body))
                    if not more:
                        break
                    body += more
                return Answer(resp.status, resp.headers, bytes(body))
    except (aiohttp.ClientError, TimeoutError) as e:
        why = "it did not answer in time" if isinstance(e, TimeoutError) else e.__class__.__name__
        raise UpstreamError(f"{provider}: AWS STS could not be reached to assume a role ({why})", provider=provider,
                            code="identity_endpoint_unreachable") from None


def _children(xml: bytes) -> dict[str, str]:
    """Every leaf element's text by its local name (STS's answers are flat enough for that).
    The operator's endpoint answers; expat (2.4.1 and later) also bounds entity expansion."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return {}
    return {el.tag.rpartition("}")[2]: (el.text or "").strip() for el in root.iter() if len(el) == 0}


def read_assume_role_answer(provider: str, role: Role, answer: Answer,
                            now: datetime.datetime | None = None) -> tuple[Credentials, float]:
    """The role's temporary credentials and the seconds they live, or the error STS answered."""
    fields = _children(answer.body) if answer.body else {}
    if not answer.ok:
        sts_error(provider, role, answer.status, fields)
    access, secret, token = fields.get("AccessKeyId"), fields.get("SecretAccessKey"), fields.get("SessionToken")
    expiration = _instant(fields.get("Expiration"))
    if not (access and secret and token) or expiration is None:
        raise UpstreamError(f"{provider}: STS answered AssumeRole of {role.arn} without credentials and their "
                            "Expiration", provider=provider, code="invalid_sts_response")
    now = now or datetime.datetime.now(datetime.UTC)
    return Credentials(access, secret, token), max((expiration - now).total_seconds(), 0.0)


def _instant(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    try:
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=datetime.UTC)


def sts_error(provider: str, role: Role, status: int, fields: dict[str, str]) -> NoReturn:
    """STS's refusal as a gateway error: a role the base credentials may not assume (or base
    credentials STS does not take) is a 401 naming the role and STS's code and message;
    throttling keeps a 429; anything else is STS failing (502)."""
    code, message = fields.get("Code", ""), fields.get("Message", "")
    said = ": ".join(p for p in (code, message.splitlines()[0] if message else "") if p)[:400] or f"HTTP {status}"
    err: GatewayError
    if code == "Throttling" or status == 429:
        err = ProviderError(f"{provider}: STS is throttling AssumeRole of {role.arn} ({said})", status=429,
                            provider=provider, code="rate_limit_exceeded")
    elif status in (400, 401, 403):
        err = AuthError(f"{provider}: STS refused to let {role.base_is} assume {role.arn} ({said})",
                        provider=provider, code="aws_assume_role_refused")
    else:
        err = UpstreamError(f"{provider}: STS failed to assume {role.arn} ({said})", provider=provider,
                            code="aws_sts_unavailable")
    raise err
