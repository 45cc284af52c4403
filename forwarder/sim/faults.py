"""Faults a test injects at the simulated server: errors, hangs, lost answers, slow answers."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyrogram.raw.core import TLObject

from forwarder.sim.world import RpcFault


class Action(enum.Enum):
    ERROR = "error"  # answer with an RPC error, do nothing
    HANG = "hang"  # never answer and do nothing, as if the request was lost on the way
    LOSE_ANSWER = "lose_answer"  # carry the request out, but the answer never arrives
    DELAY = "delay"  # carry it out and answer after `delay_s`


@dataclass
class Fault:
    """A rule: requests of `method` (for which `when` holds) meet `action`, `times` times."""

    method: type[TLObject[Any]]
    action: Action
    when: Callable[[TLObject[Any]], bool] | None = None
    times: int | None = 1  # None: every time
    error: RpcFault | None = None
    delay_s: float = 0.0
    hits: int = 0

    def matches(self, query: TLObject[Any]) -> bool:
        if not isinstance(query, self.method) or self.times == 0:
            return False
        return self.when is None or self.when(query)


class Faults:
    """The rules in force; the first that matches a request applies to it."""

    def __init__(self) -> None:
        self.rules: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        self.rules.append(fault)
        return fault

    def error(
        self,
        method: type[TLObject[Any]],
        code: int,
        message: str,
        *,
        when: Callable[[TLObject[Any]], bool] | None = None,
        times: int | None = 1,
    ) -> Fault:
        return self.add(Fault(method, Action.ERROR, when, times, RpcFault(code, message)))

    def flood_wait(self, method: type[TLObject[Any]], wait_s: int, **kwargs: object) -> Fault:
        return self.error(method, 420, f"FLOOD_WAIT_{wait_s}", **kwargs)  # type: ignore[arg-type]

    def hang(
        self,
        method: type[TLObject[Any]],
        *,
        when: Callable[[TLObject[Any]], bool] | None = None,
        times: int | None = None,
    ) -> Fault:
        return self.add(Fault(method, Action.HANG, when, times))

    def lose_answer(
        self,
        method: type[TLObject[Any]],
        *,
        when: Callable[[TLObject[Any]], bool] | None = None,
        times: int | None = 1,
    ) -> Fault:
        return self.add(Fault(method, Action.LOSE_ANSWER, when, times))

    def delay(
        self,
        method: type[TLObject[Any]],
        delay_s: float,
        *,
        when: Callable[[TLObject[Any]], bool] | None = None,
        times: int | None = 1,
    ) -> Fault:
        return self.add(Fault(method, Action.DELAY, when, times, delay_s=delay_s))

    def take(self, query: TLObject[Any]) -> Fault | None:
        """The rule that applies to `query`, counted as used; None when none does."""
        for fault in self.rules:
            if fault.matches(query):
                fault.hits += 1
                if fault.times is not None:
                    fault.times -= 1
                return fault
        return None
