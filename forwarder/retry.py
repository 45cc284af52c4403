"""Deadlines and retries around every Telegram call.

Each attempt runs under `asyncio.timeout`. A FloodWait is slept out when it is no longer than
`flood_max_wait_s`, up to `flood_max_attempts` times; a call cut off by its deadline, or lost
with the connection, is tried again up to `deadline_max_attempts` times, since Telegram may
have carried it out and the same random ids make the repeat harmless. The last error is let
through once the budget is spent.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from pyrogram import errors

from forwarder.errors import Verdict, classify
from forwarder.stats import Stats

log = logging.getLogger("forwarder.retry")

T = TypeVar("T")
P = ParamSpec("P")


@dataclass(frozen=True)
class RetryPolicy:
    timeout_s: float = 30.0
    flood_max_attempts: int = 5
    flood_max_wait_s: float = 300.0
    deadline_max_attempts: int = 3
    retry_delay_s: float = 1.0  # pause before repeating a call that was cut off or lost


def flood_wait_s(error: BaseException) -> int | None:
    """The seconds a FloodWait (or FloodPremiumWait, not a subclass of it) asks for."""
    if isinstance(error, errors.FloodWait | errors.FloodPremiumWait):
        return int(error.value or 0)  # type: ignore[arg-type]  # always a number for these
    return None


class Retrier:
    """Runs calls under the policy's deadline and retries, counting into `stats`."""

    def __init__(self, policy: RetryPolicy, stats: Stats) -> None:
        self.policy = policy
        self.stats = stats

    async def run(
        self, what: str, call: Callable[[], Awaitable[T]], *, timeout_s: float | None = None
    ) -> T:
        """Awaits `call()` under the deadline; `what` names the call and the chat in logs."""
        floods = failures = 0
        while True:
            try:
                async with asyncio.timeout(timeout_s or self.policy.timeout_s):
                    return await call()
            except Exception as error:
                verdict, reason = classify(error)
                if verdict is not Verdict.RETRY:
                    raise
                flood_s = flood_wait_s(error)
                if flood_s is not None:
                    floods += 1
                    self._check_flood_budget(error, what, flood_s, floods)
                    self.stats.flood_wait_s += flood_s
                    pause_s: float = flood_s
                else:
                    failures += 1
                    pause_s = self._check_failure_budget(error, what, reason, failures)
                self.stats.retried += 1
                await asyncio.sleep(pause_s)

    def _check_flood_budget(self, error: Exception, what: str, wait_s: int, attempt: int) -> None:
        policy = self.policy
        if wait_s > policy.flood_max_wait_s or attempt >= policy.flood_max_attempts:
            raise error
        log.warning(
            "FloodWait %d s on %s, attempt %d of %d",
            wait_s,
            what,
            attempt + 1,
            policy.flood_max_attempts,
        )

    def _check_failure_budget(
        self, error: Exception, what: str, reason: str, attempt: int
    ) -> float:
        if attempt >= self.policy.deadline_max_attempts:
            raise error
        log.warning(
            "%s: %s, attempt %d of %d",
            what,
            reason,
            attempt + 1,
            self.policy.deadline_max_attempts,
        )
        return self.policy.retry_delay_s

    def wrap(self, what: str) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
        """The same as `run`, as a decorator."""

        def decorate(func: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
            @functools.wraps(func)
            async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
                return await self.run(what, lambda: func(*args, **kwargs))

            return wrapper

        return decorate
