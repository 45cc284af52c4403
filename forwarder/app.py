"""Builds the pipeline from settings and a pyrogram Client, starts it and stops it.

The Client comes from outside (the CLI builds one from settings; tests, the demo and the
benchmarks hand in one wired to the simulated Telegram), so nothing here knows where
Telegram is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from pyrogram import Client, utils
from pyrogram.handlers import ConnectHandler, MessageHandler
from pyrogram.types import Message

from forwarder.delivery import Delivery
from forwarder.errors import Verdict, classify
from forwarder.intake import History, Intake, Route
from forwarder.jobs import Job, Outcome
from forwarder.journal import JOURNAL_FILE, Journal, JournalError
from forwarder.lanes import Lanes
from forwarder.retry import Retrier, RetryPolicy
from forwarder.settings import ChatRef, Settings
from forwarder.stats import Stats, log_periodically

log = logging.getLogger("forwarder.app")


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        timeout_s=settings.api_timeout_s,
        flood_max_attempts=settings.flood_max_attempts,
        flood_max_wait_s=settings.flood_max_wait_s,
        deadline_max_attempts=settings.deadline_max_attempts,
        retry_delay_s=min(1.0, settings.api_timeout_s),
    )


def make_data_dir(folder: Path) -> None:
    """Creates the data dir; one that cannot be made stops the start as the journal's errors do."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise JournalError(
            f"Cannot create the data dir {folder} for the journal: {error.strerror}; "
            "set FORWARDER_DATA_DIR to a folder the forwarder may create or write."
        ) from error


class Forwarder:
    """The running service: intake, journal, lanes and delivery around one Client."""

    def __init__(self, settings: Settings, client: Client) -> None:
        self.settings = settings
        self.client = client
        self.stats = Stats()
        self.delivery = Delivery(
            client,
            Retrier(retry_policy(settings), self.stats),
            temp_dir=settings.data_dir / "tmp",
            max_download_bytes=settings.max_download_bytes,
            download_timeout_s=settings.download_timeout_s,
        )
        self.history = History(self.delivery)
        self.lanes = Lanes(self.delivery.deliver, self._finish, self.stats)
        self.journal: Journal | None = None
        self.intake: Intake | None = None
        self._handlers: list[tuple[Any, int]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._started_client = False

    # -- start ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Opens the journal, starts the Client, resumes pending jobs, then takes in posts."""
        make_data_dir(self.settings.data_dir)
        self.journal = await Journal.open(self.settings.data_dir / JOURNAL_FILE)
        # Also on start: a forwarder restarted more often than the interval would never prune.
        await self._prune()
        if not self.client.is_connected:
            await self.client.start()
            self._started_client = True
        routes = await self._resolve_routes()
        self.intake = Intake(
            routes,
            self.history,
            self._record,
            self.lanes.put,
            self.stats,
            album_window_s=self.settings.album_window_s,
        )
        self.intake.start_at(await self._starting_points(self.intake.source_ids))
        await self._resume()
        self._listen(self.intake)
        self.intake.request_gap_fill()
        self._spawn(self.intake.run())
        self._spawn(log_periodically(self.stats, self.settings.stats_interval_s))
        self._spawn(self._every(self.settings.gap_fill_interval_s, self._fill_gaps))
        self._spawn(self._every(self.settings.prune_age_s / 10, self._prune))
        log.info("started: routes=%d sources=%d", len(routes), len(self.intake.source_ids))

    async def _resolve_routes(self) -> list[Route]:
        routes = []
        for route in self.settings.routes:
            source = await self._chat_id(route.source, "source")
            destinations = [await self._chat_id(ref, "destination") for ref in route.destinations]
            found = tuple(chat_id for chat_id in destinations if chat_id is not None)
            if source is not None and found:
                routes.append(Route(source, found, route.mode))
        return routes

    async def _chat_id(self, ref: ChatRef, role: str) -> int | None:
        """The numeric id of a chat given by id or @username; None (logged) when unknown.

        An unknown numeric destination is kept: its jobs are skipped one by one with a
        warning, and the route's other destinations go on.
        """
        try:
            return int(utils.get_peer_id(await self.delivery.peer(ref)))  # type: ignore[arg-type]
        except Exception as error:
            verdict, reason = classify(error)
            if verdict is Verdict.FAIL:
                raise
            if isinstance(ref, int) and role == "destination":
                log.warning("destination chat %s cannot be resolved (%s)", ref, reason)
                return ref
            log.error("%s chat %s cannot be resolved (%s); route left out", role, ref, reason)
            return None

    async def _starting_points(self, sources: set[int]) -> dict[int, int]:
        """The last id taken in per source; a new source starts at its newest message."""
        assert self.journal is not None
        last_seen = await self.journal.all_last_seen()
        for chat_id in sources - set(last_seen):
            last_seen[chat_id] = await self.history.newest_id(chat_id)
            await self.journal.set_last_seen(chat_id, last_seen[chat_id])
            log.info("chat %d is new: starting after message %d", chat_id, last_seen[chat_id])
        return {chat_id: last_seen[chat_id] for chat_id in sources}

    async def _resume(self) -> None:
        assert self.journal is not None
        pending = await self.journal.pending()
        for job in pending:
            self.lanes.put(job)
        if pending:
            log.info("resuming %d pending jobs", len(pending))

    def _listen(self, intake: Intake) -> None:
        async def on_message(client: Client, message: Message) -> None:
            intake.on_message(message)

        async def on_connect(client: Client, session: Any) -> None:
            intake.request_gap_fill()

        for handler in (MessageHandler(on_message), ConnectHandler(on_connect)):
            self._handlers.append(self.client.add_handler(handler))

    # -- the journal around each job ------------------------------------------------------

    async def _record(self, jobs: list[Job], last_seen: dict[int, int]) -> list[Job]:
        assert self.journal is not None
        return await self.journal.record(jobs, last_seen=last_seen)

    async def _finish(self, job: Job, outcome: Outcome) -> None:
        assert self.journal is not None
        await self.journal.finish(job, outcome, job.attempts + 1)

    # -- background rounds ----------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(coroutine))

    async def _every(self, interval_s: float, step: Any) -> None:
        while True:
            await asyncio.sleep(interval_s)
            await step()

    async def _fill_gaps(self) -> None:
        if self.intake is not None:
            self.intake.request_gap_fill()

    async def _prune(self) -> None:
        if self.journal is not None:
            await self.journal.prune(self.settings.prune_age_s)

    # -- stop -----------------------------------------------------------------------------

    async def wait_ended(self, count: int) -> None:
        """Waits until `count` jobs have ended and nothing more is queued or in flight.

        No deadline of its own: callers (the demo, tests, benchmarks) bound it.
        """
        # Polls counters the lanes update, so it needs no hook in the hot path.
        while self.stats.ended < count:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        await self.wait_idle()

    async def wait_idle(self) -> None:
        """Waits until every job taken in so far has ended (for tests, the demo, benchmarks)."""
        while True:
            await self.lanes.drain()
            await asyncio.sleep(0)
            if self.lanes.idle() and (self.intake is None or self.intake.incoming.empty()):
                return

    async def stop(self) -> None:
        """Stops taking posts in, lets jobs in flight finish within the grace period."""
        if self.journal is None:
            return  # never started: no "stopped" line after the error that prevented it
        for handler in self._handlers:
            with contextlib.suppress(Exception):
                self.client.remove_handler(*handler)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        left = await self.lanes.stop(self.settings.shutdown_grace_s)
        log.info("stopped: %s; %d jobs left pending for the next start", self.stats.line(), left)
        await self.journal.close()
        if self._started_client and self.client.is_connected:
            await self.client.stop()
