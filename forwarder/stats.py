"""Counters of the pipeline, the periodic log line and the totals line at shutdown."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, fields

from forwarder.jobs import Outcome, State

log = logging.getLogger("forwarder.stats")


@dataclass
class Stats:
    """What happened since start; `pending` and `in_flight` are gauges, the rest only grow."""

    enqueued: int = 0
    pending: int = 0
    in_flight: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    retried: int = 0
    flood_wait_s: float = 0.0

    @property
    def ended(self) -> int:
        """Jobs that ended, however: done, skipped or failed."""
        return self.done + self.skipped + self.failed

    def queued(self, count: int = 1) -> None:
        self.enqueued += count
        self.pending += count

    def started(self) -> None:
        self.pending -= 1
        self.in_flight += 1

    def finished(self, outcome: Outcome) -> None:
        self.in_flight -= 1
        self.count(outcome)

    def count(self, outcome: Outcome) -> None:
        if outcome.state is State.DONE:
            self.done += 1
        elif outcome.state is State.SKIPPED:
            self.skipped += 1
        elif outcome.state is State.FAILED:
            self.failed += 1

    def line(self) -> str:
        parts = []
        for field in fields(self):
            value = getattr(self, field.name)
            parts.append(
                f"{field.name}={value:g}" if isinstance(value, float) else f"{field.name}={value}"
            )
        return " ".join(parts)


async def log_periodically(stats: Stats, interval_s: float) -> None:
    """Logs the counters every `interval_s` until cancelled."""
    while True:
        await asyncio.sleep(interval_s)
        log.info("stats %s", stats.line())
