"""What may be echoed of a value a caller put in a field that names something, and the
credential taken out of text that goes back out.

A key pasted into the wrong header (``x-portkey-virtual-key: sk-proj-...``) or a config's
``provider`` must not reach an error message or a log line as given: a value that reads as
a name is shown, anything else by its length and a fingerprint (enough to match two log
lines, not enough to find the value).  A provider's error message may quote the key it
was sent; :func:`scrub` takes it out before the message is logged or answered.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

__all__ = ["fingerprint", "is_credential_name", "looks_like_a_name", "scrub", "shown"]

#: How a name reads: short, a letter or digit first, then letters, digits and ``_ . : @ / -``.
_NAME = re.compile(r"[A-Za-z0-9@][A-Za-z0-9_.:@/-]{0,47}")
#: Beginnings of the keys providers hand out (OpenAI, Anthropic, AWS, Google, Replicate,
#: xAI, Groq, fal, Stability, BFL, Portkey, GitHub, Slack ...).
_KEY_PREFIXES = re.compile(r"(?i)^(sk[-_]|pk[-_]|rk[-_]|akia|asia|aiza|r8_|xai-|gsk_|fal[-_]|key[-_]|ghp_|gho_|xox[abp]-|bearer)")
#: Shortest credential :func:`scrub` looks for: anything shorter is not a key, and would
#: cut ordinary words out of a message.
_MIN_SECRET = 8
REDACTED = "[redacted]"
#: Words that make a provider option or a header a credential (``aws_secret_access_key``,
#: ``azure_ad_token``, ``x-api-key``, ``Authorization``).
_CREDENTIAL_WORDS = ("key", "secret", "token", "password", "credential", "authorization", "signature",
                     "service_account")


def fingerprint(value: str | bytes) -> str:
    """The start of the value's SHA-256 (16 hex digits)."""
    data = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    return hashlib.sha256(data).hexdigest()[:16]


def is_credential_name(name: str) -> bool:
    """True for an option or header name that holds a credential."""
    low = name.lower()
    return any(word in low for word in _CREDENTIAL_WORDS)


def looks_like_a_name(value: str) -> bool:
    """True for ``openai-prod``, ``pc-abc123``, ``@team/openai``; False for what reads as a key
    (a known key prefix, eight or more digits, a long unbroken run of letters and digits)."""
    if not _NAME.fullmatch(value) or _KEY_PREFIXES.match(value):
        return False
    if sum(c.isdigit() for c in value) >= 8:
        return False
    return not any(len(run) >= 24 for run in re.split(r"[_.:@/-]", value))


def shown(value: str) -> str:
    """``'openai-prod'`` for a name; ``a value of 51 characters (fingerprint 1a2b...)`` otherwise."""
    if looks_like_a_name(value):
        return repr(value)
    return f"a value of {len(value)} characters (fingerprint {fingerprint(value)})"


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every occurrence of each secret replaced by ``[redacted]``."""
    for secret in secrets:
        if secret and len(secret) >= _MIN_SECRET and secret in text:
            text = text.replace(secret, REDACTED)
    return text
