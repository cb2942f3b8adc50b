"""The active-task slots per key: waiting, the 429 when none comes free, keys and models apart."""
from __future__ import annotations

import asyncio
import gc

import pytest

from gateway.sdk import ProviderError
from gateway_black_forest_labs.slots import ActiveTasks


async def test_a_task_waits_for_a_slot_and_gets_it_when_one_ends():
    slots = ActiveTasks(limit=1)
    order = []

    async def task(name: str, hold: float) -> None:
        async with slots.slot("key", "flux-2-pro", wait=5):
            order.append(f"{name} in")
            await asyncio.sleep(hold)
            order.append(f"{name} out")

    await asyncio.gather(task("a", 0.05), task("b", 0))
    assert order == ["a in", "a out", "b in", "b out"]


async def test_no_slot_within_the_wait_is_a_429_and_takes_nothing():
    slots = ActiveTasks(limit=1)
    async with slots.slot("key", "flux-2-pro", wait=5):
        with pytest.raises(ProviderError) as info:
            async with slots.slot("key", "flux-2-pro", wait=0.05):
                pytest.fail("entered a slot that was taken")
        err = info.value
        assert (err.status, err.code) == (429, "rate_limit_exceeded")
        assert "limit of 1 active tasks" in err.message and "No task was created" in err.message
    # The failed waiter left no slot behind: the next one gets in at once.
    async with slots.slot("key", "flux-2-pro", wait=0.05):
        pass


async def test_keys_are_counted_apart_and_a_model_limit_within_the_account():
    slots = ActiveTasks(limit=3, model_limits={"flux-kontext-max": 1})
    async with slots.slot("key-a", "flux-kontext-max", wait=1):
        # Another key has slots of its own.
        async with slots.slot("key-b", "flux-kontext-max", wait=0.05):
            pass
        # The same key: the model's own limit is full, the account's is not.
        with pytest.raises(ProviderError, match="1 active tasks of flux-kontext-max"):
            async with slots.slot("key-a", "flux-kontext-max", wait=0.05):
                pass
        async with slots.slot("key-a", "flux-2-pro", wait=0.05):
            async with slots.slot("key-a", "flux-2-pro", wait=0.05):
                # Three of key-a's account slots in use: a fourth task of any model waits.
                with pytest.raises(ProviderError, match="limit of 3 active tasks"):
                    async with slots.slot("key-a", "flux-2-pro", wait=0.05):
                        pass


async def test_a_cancelled_waiter_and_a_failing_task_give_their_slots_back():
    slots = ActiveTasks(limit=1)
    with pytest.raises(RuntimeError):
        async with slots.slot("key", "flux-2-pro", wait=1):
            raise RuntimeError("the create request failed")
    async with slots.slot("key", "flux-2-pro", wait=1):
        waiter = asyncio.create_task(slots.slot("key", "flux-2-pro", wait=5).__aenter__())
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    async with slots.slot("key", "flux-2-pro", wait=0.05):
        pass


async def test_keys_nobody_uses_are_forgotten_and_not_kept_in_clear():
    slots = ActiveTasks(limit=2)
    async with slots.slot("bfl-secret-key", "flux-2-pro", wait=1):
        assert len(slots._slots) == 1
        assert all("bfl-secret-key" not in k[0] for k in slots._slots.keys())
    gc.collect()
    assert len(slots._slots) == 0
