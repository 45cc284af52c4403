"""From new posts to jobs: route matching, ordering by message id, album grouping, gap filling.

The update handler only hands the message to the intake task and returns. That task puts the
posts of each source back in message-id order (pyrogram may dispatch updates out of order),
groups the parts of an album into one job, records the jobs in the journal and then queues
them. A hole in the ids that does not close within the window is filled from history; ids
that history does not have either were deleted and are passed over.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pyrogram import raw, utils
from pyrogram.types import Message

from forwarder.jobs import Job, Mode
from forwarder.stats import Stats

log = logging.getLogger("forwarder.intake")

ALBUM_MAX_ITEMS = 10
HISTORY_PAGE = 100


@dataclass(frozen=True)
class Route:
    """A source chat and where its posts go, with chats as resolved numeric ids."""

    source_chat_id: int
    destination_chat_ids: tuple[int, ...]
    mode: Mode


class Reader(Protocol):
    """The read calls intake needs; `Delivery` provides them under deadlines and retries."""

    client: Any

    async def peer(self, chat_id: int) -> Any: ...

    async def invoke(self, query: Any, what: str) -> Any: ...


Record = Callable[[list[Job], dict[int, int]], Awaitable[list[Job]]]
Enqueue = Callable[[Job], None]


@dataclass
class _Source:
    """One source's place in its stream of message ids."""

    chat_id: int
    next_id: int
    held: dict[int, Message] = field(default_factory=dict)
    album: list[Message] = field(default_factory=list)
    album_since: float = 0.0
    hole_since: float | None = None


class History:
    """Reads a source's messages newer than an id, oldest first."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader

    async def newest_id(self, chat_id: int) -> int:
        page = await self._page(chat_id, min_id=0, offset_id=0, limit=1)
        return page[0].id if page else 0

    async def newer_than(self, chat_id: int, min_id: int) -> list[Message]:
        found: list[Message] = []
        offset_id = 0
        while True:
            page = await self._page(chat_id, min_id=min_id, offset_id=offset_id)
            found += page
            if len(page) < HISTORY_PAGE:
                return sorted(found, key=lambda message: message.id)
            offset_id = min(message.id for message in page)

    async def _page(
        self, chat_id: int, *, min_id: int, offset_id: int, limit: int = HISTORY_PAGE
    ) -> list[Message]:
        query = raw.functions.messages.GetHistory(
            peer=await self.reader.peer(chat_id),
            offset_id=offset_id,
            offset_date=0,
            add_offset=0,
            limit=limit,
            max_id=0,
            min_id=min_id,
            hash=0,
        )
        answer = await self.reader.invoke(query, f"reading the history of chat {chat_id}")
        messages = await utils.parse_messages(self.reader.client, answer, replies=0)
        return [message for message in messages if not message.empty]


class Intake:
    """Turns the posts of the route sources into recorded, queued jobs, in order."""

    def __init__(
        self,
        routes: Sequence[Route],
        history: History,
        record: Record,
        enqueue: Enqueue,
        stats: Stats,
        *,
        album_window_s: float,
    ) -> None:
        self.routes = list(routes)
        self.history = history
        self._record = record
        self._enqueue = enqueue
        self.stats = stats
        self.album_window_s = album_window_s
        self.sources: dict[int, _Source] = {}
        self.incoming: asyncio.Queue[Message] = asyncio.Queue()
        self._gap_fill_wanted = asyncio.Event()

    @property
    def source_ids(self) -> set[int]:
        return {route.source_chat_id for route in self.routes}

    def start_at(self, last_seen: dict[int, int]) -> None:
        """Sets where each source goes on from: the message after the last one recorded."""
        for chat_id, last_id in last_seen.items():
            self.sources[chat_id] = _Source(chat_id, last_id + 1)

    def on_message(self, message: Message) -> None:
        """The update handler's whole work: hand the message over, never wait."""
        if message.chat is not None and message.chat.id in self.sources:
            self.incoming.put_nowait(message)

    def request_gap_fill(self) -> None:
        self._gap_fill_wanted.set()

    # -- the intake task ------------------------------------------------------------------

    async def run(self) -> None:
        """Takes messages in, emits jobs in order; runs until cancelled."""
        while True:
            await self._wait_for_work()
            while not self.incoming.empty():
                self._hold(self.incoming.get_nowait())
            if self._gap_fill_wanted.is_set():
                self._gap_fill_wanted.clear()
                await self.fill_gaps()
            for source in self.sources.values():
                await self._advance(source)

    async def _wait_for_work(self) -> None:
        timeout_s = self._next_deadline_s()
        getter = asyncio.ensure_future(self.incoming.get())
        gap_fill = asyncio.ensure_future(self._gap_fill_wanted.wait())
        try:
            await asyncio.wait(
                [getter, gap_fill], timeout=timeout_s, return_when="FIRST_COMPLETED"
            )
        finally:
            for task in (getter, gap_fill):
                task.cancel()
            if getter.done() and not getter.cancelled():
                self._hold(getter.result())

    def _next_deadline_s(self) -> float | None:
        now = asyncio.get_running_loop().time()
        deadlines = []
        for source in self.sources.values():
            if source.album:
                deadlines.append(source.album_since + self.album_window_s)
            if source.hole_since is not None:
                deadlines.append(source.hole_since + self.album_window_s)
        return max(0.0, min(deadlines) - now) if deadlines else None

    def _hold(self, message: Message) -> None:
        chat_id = message.chat.id if message.chat is not None else None
        source = self.sources.get(chat_id) if chat_id is not None else None
        if source is not None and message.id >= source.next_id:
            source.held[message.id] = message

    async def _advance(self, source: _Source) -> None:
        now = asyncio.get_running_loop().time()
        while source.next_id in source.held:
            await self._take(source, source.held.pop(source.next_id), now)
            source.next_id += 1
        if source.album and now - source.album_since >= self.album_window_s:
            await self._close_album(source)
        await self._mind_the_hole(source, now)

    async def _mind_the_hole(self, source: _Source, now: float) -> None:
        if not source.held:
            source.hole_since = None
            return
        if source.hole_since is None:
            source.hole_since = now
            return
        if now - source.hole_since < self.album_window_s:
            return
        source.hole_since = None
        await self._fill_source(source)
        if source.held and source.next_id not in source.held:
            log.debug("chat %d: ids from %d were deleted", source.chat_id, source.next_id)
            source.next_id = min(source.held)
        await self._advance(source)

    async def _take(self, source: _Source, message: Message, now: float) -> None:
        group = message.media_group_id
        if source.album and (group is None or group != source.album[0].media_group_id):
            await self._close_album(source)
        if group is None:
            await self._emit(source.chat_id, [message])
            return
        source.album.append(message)
        source.album_since = now
        if len(source.album) == ALBUM_MAX_ITEMS:
            await self._close_album(source)

    async def _close_album(self, source: _Source) -> None:
        album, source.album = source.album, []
        await self._emit(source.chat_id, album)

    async def _emit(self, chat_id: int, messages: list[Message]) -> None:
        last_id = messages[-1].id
        if messages[0].service:
            self.stats.skipped += 1
            log.info("chat %d: message %d is a service message, not delivered", chat_id, last_id)
            await self._record([], {chat_id: last_id})
            return
        ids = tuple(message.id for message in messages)
        jobs = list(self._jobs_for(chat_id, ids))
        for job in await self._record(jobs, {chat_id: last_id}):
            self._enqueue(job)

    def _jobs_for(self, chat_id: int, message_ids: tuple[int, ...]) -> Iterable[Job]:
        for route in self.routes:
            if route.source_chat_id == chat_id:
                for destination in route.destination_chat_ids:
                    yield Job(chat_id, message_ids, destination, route.mode)

    # -- gap filling ----------------------------------------------------------------------

    async def fill_gaps(self) -> None:
        """Reads every source's history past the last id taken in; failures wait a round."""
        for source in self.sources.values():
            await self._fill_source(source)

    async def _fill_source(self, source: _Source) -> None:
        after = source.next_id - 1  # next_id is past the parts of an open album already
        try:
            messages = await self.history.newer_than(source.chat_id, after)
        except Exception as error:
            log.warning(
                "chat %d: gap filling failed, tried again later: %s", source.chat_id, error
            )
            return
        for message in messages:
            self._hold(message)
