"""One queue and one consumer task per destination: a lane runs in order, lanes side by side.

A FloodWait met by one lane is slept out inside that lane's task, so it holds up no other
destination.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from forwarder.jobs import Job, Outcome
from forwarder.stats import Stats

log = logging.getLogger("forwarder.lanes")

Deliver = Callable[[Job], Awaitable[Outcome]]
Record = Callable[[Job, Outcome], Awaitable[None]]


class Lane:
    """The queue of one destination and the task that empties it."""

    def __init__(self, destination_chat_id: int, deliver: Deliver, record: Record, stats: Stats):
        self.destination_chat_id = destination_chat_id
        self.queue: asyncio.Queue[Job] = asyncio.Queue()
        self._deliver = deliver
        self._record = record
        self._stats = stats
        self.busy = False
        self._stopping = False
        self.task = asyncio.get_running_loop().create_task(
            self._consume(), name=f"lane {destination_chat_id}"
        )

    def put(self, job: Job) -> None:
        self.queue.put_nowait(job)
        self._stats.queued()

    async def stop(self, grace_s: float) -> int:
        """Lets the job in flight finish within `grace_s`; returns how many stay pending."""
        self._stopping = True
        if not self.busy:
            self.task.cancel()
        _, running = await asyncio.wait([self.task], timeout=grace_s)
        for task in running:
            task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        return self.queue.qsize() + len(running)

    async def _consume(self) -> None:
        while not self._stopping:
            job = await self.queue.get()
            self.busy = True
            self._stats.started()
            try:
                outcome = await self._deliver(job)
                # Shielded: a stop that cancels the lane now must not lose the outcome.
                await asyncio.shield(self._record(job, outcome))
                self._stats.finished(outcome)
            finally:
                self.busy = False
                self.queue.task_done()


class Lanes:
    """The lanes by destination, made on first use."""

    def __init__(self, deliver: Deliver, record: Record, stats: Stats) -> None:
        self._deliver = deliver
        self._record = record
        self._stats = stats
        self.lanes: dict[int, Lane] = {}

    def put(self, job: Job) -> None:
        lane = self.lanes.get(job.destination_chat_id)
        if lane is None:
            lane = Lane(job.destination_chat_id, self._deliver, self._record, self._stats)
            self.lanes[job.destination_chat_id] = lane
        lane.put(job)

    def idle(self) -> bool:
        return all(lane.queue.empty() and not lane.busy for lane in self.lanes.values())

    async def drain(self) -> None:
        """Waits until every job queued so far has ended."""
        await asyncio.gather(*(lane.queue.join() for lane in self.lanes.values()))

    async def stop(self, grace_s: float) -> int:
        """Stops every lane within `grace_s`; returns how many jobs were left pending.

        Jobs still queued stay pending in the journal and resume on the next start.
        """
        left = await asyncio.gather(*(lane.stop(grace_s) for lane in self.lanes.values()))
        return sum(left)
