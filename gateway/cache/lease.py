"""The contract between the core and a cache plugin: a lookup answers a hit, a lease, or nothing.

The core asks ``gateway_cache_lookup(ctx, query)`` once per request on the
unified routes (before any routing strategy draws a target, so a repeat is a hit
whichever target answered first) and once per target attempt on passthrough
(where only that target's native request exists).  The answer:

* :class:`CacheHit`: serve this outcome; nothing is sent upstream;
* a :class:`CacheLease`: a miss this request fills.  The core enters it (``async
  with``) around the work and the delivery; when the answer is complete and
  worth keeping it calls :meth:`CacheLease.keep` once; leaving the block
  without ``keep`` gives the lease up.  Whatever lock or single-flight state a
  plugin keeps stays behind the lease: the core never sees it;
* None: no cache for this request (the core records ``DISABLED``).
"""
from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:  # pragma: no cover
    from gateway.outcome import Outcome


class CacheQuery(msgspec.Struct, frozen=True, kw_only=True):
    """What the core asks a cache for."""

    #: A digest of everything the answer depends on: the request (unified
    #: parameters, or the provider-shaped request on passthrough), the caller's
    #: scope, and the config's identity (its targets and what they send).
    key: str
    #: ``simple`` (exact match) or ``semantic`` (a plugin's business).
    mode: str
    #: Seconds an entry stored now lives.
    max_age: int
    #: ``x-portkey-cache-force-refresh``: skip the lookup and overwrite the entry.
    refresh: bool = False
    #: The endpoint (``images.generations``, ``proxy``).
    endpoint: str = ""


class CacheHit:
    """A stored answer to serve as it is."""

    __slots__ = ("outcome", "status")

    def __init__(self, outcome: Outcome, status: str = "HIT") -> None:
        self.outcome = outcome
        #: ``x-portkey-cache-status`` (``HIT``, or ``SEMANTIC HIT``).
        self.status = status


class CacheLease:
    """A miss this request fills.  Subclasses implement :meth:`keep` and :meth:`release`."""

    #: ``x-portkey-cache-status``: ``MISS``, or ``REFRESH`` for a forced refresh.
    status: str = "MISS"
    #: Seconds an answer kept now lives: images it points at must live as long.
    max_age: int = 0

    def keep(self, outcome: Outcome, body: bytes) -> None:
        """The complete 2xx answer (``body`` is every byte the client got, except that images in
        the image store are host-free, unsigned paths: every delivery, a hit's included, renders
        them for its own caller, so no caller's Host is kept).  Store it without making the
        client wait; the lease ends once it is stored."""
        raise NotImplementedError

    async def release(self) -> None:
        """Give the lease up (an error, the client left, a body too big); after
        :meth:`keep` the store ends the lease instead, so this does nothing."""

    async def __aenter__(self) -> CacheLease:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.release()
