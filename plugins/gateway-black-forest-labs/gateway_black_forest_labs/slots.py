"""How many tasks this gateway process keeps running at Black Forest Labs at once, per key.

BFL runs at most 24 active tasks per account (6 for ``flux-kontext-max``) and answers a task
over the limit with a 429.  A request's ``n`` images are ``n`` tasks, and many requests share
one key: rather than send a task BFL would refuse, the gateway waits for one of its own tasks
on that key to end.  A slot is held from the create request until the task ends, succeeded,
failed or given up on.  Waiting counts against the task's ``max_wait`` (and the request's own
timeout); a slot still not free by then is a 429 naming the limit, and nothing was created.

Keys are told apart by a digest (the key itself is not kept); the limits of a key nobody is
using are forgotten.  Other processes or instances using the same key are not counted: their
tasks beyond BFL's limit get BFL's own 429, which a fallback config can route around.
"""
from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager

from gateway.sdk import ProviderError

__all__ = ["ACCOUNT_LIMIT", "MODEL_LIMITS", "ActiveTasks"]

#: BFL's limit of active tasks per account.
ACCOUNT_LIMIT = 24
#: Models with a lower limit of their own.
MODEL_LIMITS: Mapping[str, int] = {"flux-kontext-max": 6}


class ActiveTasks:
    """Slots per key (and per model with a limit of its own)."""

    def __init__(self, limit: int = ACCOUNT_LIMIT, model_limits: Mapping[str, int] = MODEL_LIMITS) -> None:
        self.limit = limit
        self.model_limits = dict(model_limits)
        # Held by the waiters and holders of each slot set only: a key nobody uses is dropped.
        self._slots: weakref.WeakValueDictionary[tuple[str, str], asyncio.Semaphore] = weakref.WeakValueDictionary()

    def _semaphore(self, digest: str, scope: str, limit: int) -> asyncio.Semaphore:
        sem = self._slots.get((digest, scope))
        if sem is None:
            sem = self._slots[(digest, scope)] = asyncio.Semaphore(limit)
        return sem

    @asynccontextmanager
    async def slot(self, key: str | None, model: str, wait: float) -> AsyncIterator[None]:
        """Hold one task's slot for ``key`` (and ``model``'s own, where it has one), waiting at
        most ``wait`` seconds for it; a 429 naming the limit when none came free."""
        digest = _digest(key)
        # Always the model's slot first, then the account's: two requests never hold one each
        # and wait for the other's.
        wanted = []
        own = self.model_limits.get(model)
        if own is not None:
            wanted.append((self._semaphore(digest, model, own), f"{own} active tasks of {model}"))
        wanted.append((self._semaphore(digest, "", self.limit), f"{self.limit} active tasks"))
        async with AsyncExitStack() as held:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + max(wait, 0.0)
            for sem, what in wanted:
                try:
                    async with asyncio.timeout_at(deadline):
                        await sem.acquire()
                except TimeoutError:
                    raise ProviderError(
                        f"black-forest-labs: this gateway already runs BFL's limit of {what} on this key; "
                        f"none ended within {wait:g} s. No task was created.",
                        status=429, type="rate_limit_error", code="rate_limit_exceeded", provider="black-forest-labs",
                    ) from None
                held.callback(sem.release)
            yield


def _digest(key: str | None) -> str:
    return hashlib.sha256((key or "").encode("utf-8", "surrogatepass")).hexdigest()[:32]
