"""Acks first (bot/bursts.py): a delivery alone starts its work at once; in a burst the work
waits until deliveries stop coming, or until the oldest held has waited long enough."""

from __future__ import annotations

import asyncio
import time

from bot.bursts import Bursts
from bot.tasks import Background


async def test_a_delivery_alone_starts_its_work_at_once() -> None:
    background = Background()
    bursts = Bursts(background, quiet_s=0.05)
    started: list[int] = []
    bursts.start(lambda: started.append(1), in_burst=bursts.delivered())
    assert await background.wait_idle(0.01)  # a loop turn or two, not a quiet time
    assert started == [1]
    await asyncio.sleep(0.06)
    bursts.start(lambda: started.append(2), in_burst=bursts.delivered())
    assert await background.wait_idle(0.01)
    assert started == [1, 2]


async def test_the_first_of_a_burst_read_in_one_loop_turn_waits_with_the_rest() -> None:
    """Deliveries read from the socket together reach the bot in the same loop turn: the
    first came alone as far as `delivered` can tell, yet its work is held with theirs."""
    bursts = Bursts(Background(), quiet_s=0.05, longest_s=10)
    started: list[int] = []
    for i in range(3):
        bursts.start(lambda i=i: started.append(i), in_burst=bursts.delivered())
    await asyncio.sleep(0.01)
    assert started == [] and bursts.held == 3
    await asyncio.sleep(0.06)
    assert started == [0, 1, 2]


async def test_a_burst_is_held_until_deliveries_stop_then_started_in_order() -> None:
    bursts = Bursts(Background(), quiet_s=0.05, longest_s=10)
    started: list[int] = []
    for i in range(5):
        bursts.start(lambda i=i: started.append(i), in_burst=bursts.delivered())
        await asyncio.sleep(0.01)
    # The first came alone (a loop turn before the next); the rest came within the quiet
    # time of the one before.
    assert started == [0] and bursts.held == 4
    await asyncio.sleep(0.02)
    assert started == [0], "released while deliveries were still coming"
    await asyncio.sleep(0.05)
    assert started == [0, 1, 2, 3, 4] and bursts.held == 0


async def test_unbroken_deliveries_hold_work_no_longer_than_the_limit() -> None:
    bursts = Bursts(Background(), quiet_s=0.05, longest_s=0.1)
    started: list[int] = []
    loop = asyncio.get_running_loop()
    begun = loop.time()
    i = 0
    while loop.time() - begun < 0.3:
        bursts.start(lambda i=i: started.append(i), in_burst=bursts.delivered())
        i += 1
        await asyncio.sleep(0.01)
    # Never quiet for 50 ms, yet work went out every 100 ms or so.
    assert len(started) >= i - 12
    assert started == sorted(started)


async def test_work_arriving_alone_waits_behind_work_held_before_it() -> None:
    bursts = Bursts(Background(), quiet_s=0.05, longest_s=10)
    started: list[str] = []
    bursts.delivered()
    bursts.start(lambda: started.append("burst"), in_burst=bursts.delivered())
    bursts.start(lambda: started.append("alone"), in_burst=False)
    assert started == []
    bursts.flush()
    assert started == ["burst", "alone"]


async def test_waiting_for_background_work_waits_for_held_work_and_what_it_spawns() -> None:
    background = Background()
    bursts = Bursts(background, quiet_s=0.05, longest_s=10)
    done: list[str] = []

    async def work() -> None:
        await asyncio.sleep(0.01)
        done.append("ran")

    bursts.delivered()
    bursts.start(lambda: background.spawn(work(), what="work"), in_burst=bursts.delivered())
    assert bursts.held == 1
    assert await background.wait_idle(1.0)
    assert done == ["ran"]


async def test_a_check_that_comes_late_waits_a_quiet_time_more() -> None:
    """A busy loop (the burst's own acks) fires the check late: deliveries may be waiting
    a few turns away, so the quiet time is counted again from then, not taken as over."""
    bursts = Bursts(Background(), quiet_s=0.05, longest_s=10)
    started: list[int] = []
    bursts.delivered()
    bursts.start(lambda: started.append(1), in_burst=bursts.delivered())
    # The loop blocked past the check's time by more than a quiet time, as a busy one does.
    time.sleep(0.12)  # noqa: ASYNC251
    await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    assert started == [], "released on a late check"
    bursts.start(lambda: started.append(2), in_burst=bursts.delivered())
    await asyncio.sleep(0.03)
    assert started == []
    await asyncio.sleep(0.06)
    assert started == [1, 2]
