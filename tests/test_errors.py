"""Every row of the error table, and what falls outside it."""

from __future__ import annotations

import pytest
from pyrogram import errors

from forwarder.errors import TABLE, SourceMessageGone, Uncopyable, Verdict, classify


def _instance(cls: type[BaseException]) -> BaseException:
    if issubclass(cls, errors.RPCError):
        return cls(value=3)
    return cls("test")


@pytest.mark.parametrize(("cls", "verdict", "reason"), TABLE, ids=lambda row: str(row))
def test_each_row_of_the_table_decides_for_its_class(
    cls: type[BaseException], verdict: Verdict, reason: str
) -> None:
    assert classify(_instance(cls)) == (verdict, reason)


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        (ValueError("Peer id invalid: -100123"), Verdict.SKIP),
        (KeyError("ID not found: -100123"), Verdict.SKIP),
        (SourceMessageGone("job=1"), Verdict.SKIP),
        (Uncopyable("a poll cannot be copied"), Verdict.SKIP),
        (errors.ChatWriteForbidden403(), Verdict.SKIP),
        (ValueError("something else"), Verdict.FAIL),
        (KeyError("other"), Verdict.FAIL),
        (RuntimeError("boom"), Verdict.FAIL),
        (errors.BadRequest("ODD_ERROR"), Verdict.FAIL),
    ],
)
def test_errors_outside_the_table(error: BaseException, verdict: Verdict) -> None:
    assert classify(error)[0] is verdict


def test_a_failure_names_the_exception() -> None:
    assert classify(RuntimeError("boom")) == (Verdict.FAIL, "RuntimeError: boom")


def test_flood_premium_wait_is_retried_though_not_a_flood_wait() -> None:
    assert not issubclass(errors.FloodPremiumWait, errors.FloodWait)
    assert classify(errors.FloodPremiumWait(value=4))[0] is Verdict.RETRY
