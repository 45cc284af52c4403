"""The deadline and retry budget, on tiny real coroutines."""

from __future__ import annotations

import asyncio
import logging

import pytest
from pyrogram import errors

from forwarder.retry import Retrier, RetryPolicy
from forwarder.stats import Stats


def retrier(**policy: float) -> Retrier:
    values = {"timeout_s": 0.05, "retry_delay_s": 0.0, "deadline_max_attempts": 3}
    values.update(policy)
    return Retrier(RetryPolicy(**values), Stats())  # type: ignore[arg-type]


class Flaky:
    """Raises the given errors in turn, then answers 'ok'; counts its calls."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


async def test_a_flood_wait_is_slept_out_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    retry = retrier(flood_max_attempts=3)
    call = Flaky(errors.FloodWait(value=0))

    with caplog.at_level(logging.WARNING, "forwarder.retry"):
        assert await retry.run("forward to chat -1001", call) == "ok"

    assert call.calls == 2
    assert retry.stats.retried == 1
    assert "FloodWait 0 s on forward to chat -1001, attempt 2 of 3" in caplog.text


async def test_a_flood_wait_longer_than_the_budget_is_let_through() -> None:
    retry = retrier(flood_max_wait_s=10)
    call = Flaky(errors.FloodWait(value=11))

    with pytest.raises(errors.FloodWait):
        await retry.run("forward", call)
    assert call.calls == 1


async def test_flood_premium_wait_is_honoured_too() -> None:
    call = Flaky(errors.FloodPremiumWait(value=0))
    assert await retrier().run("upload", call) == "ok"


async def test_flood_attempts_are_bounded() -> None:
    retry = retrier(flood_max_attempts=2)
    call = Flaky(*[errors.FloodWait(value=0)] * 5)

    with pytest.raises(errors.FloodWait):
        await retry.run("forward", call)
    assert call.calls == 2


async def test_a_hung_call_is_cut_off_and_tried_again_within_the_budget() -> None:
    calls = 0

    async def hangs() -> None:
        nonlocal calls
        calls += 1
        await asyncio.Event().wait()

    with pytest.raises(TimeoutError):
        await retrier(deadline_max_attempts=3).run("forward", hangs)
    assert calls == 3


async def test_a_lost_connection_is_retried() -> None:
    call = Flaky(ConnectionError("reset"), OSError("down"))
    assert await retrier().run("forward", call) == "ok"
    assert call.calls == 3


async def test_a_skip_or_fail_error_is_not_retried() -> None:
    call = Flaky(errors.ChannelPrivate())

    with pytest.raises(errors.ChannelPrivate):
        await retrier().run("forward", call)
    assert call.calls == 1


async def test_the_decorator_form() -> None:
    retry = retrier()
    call = Flaky(TimeoutError())

    @retry.wrap("reading")
    async def read() -> str:
        return await call()

    assert await read() == "ok"
