"""The only place that sends: forwards, copies, albums and re-uploads, one job at a time.

Every send goes through the raw methods with the job's own random ids, never through
pyrogram's high-level senders, which draw new random ids on each call: Telegram answers a
random_id it has already seen toward a peer with the earlier messages, so a retry or a
restart after a crash sends nothing twice.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pyrogram import Client, errors, raw

from forwarder import media
from forwarder.errors import SourceMessageGone, Verdict, classify
from forwarder.jobs import Job, Mode, Outcome
from forwarder.retry import Retrier

log = logging.getLogger("forwarder.delivery")


class Delivery:
    """Delivers jobs through `client`; every call under the retrier's deadline and budget."""

    def __init__(
        self,
        client: Client,
        retrier: Retrier,
        *,
        temp_dir: Path,
        max_download_bytes: int,
        download_timeout_s: float,
    ) -> None:
        self.client = client
        self.retrier = retrier
        self.temp_dir = temp_dir
        self.max_download_bytes = max_download_bytes
        self.download_timeout_s = download_timeout_s
        self._peers: dict[int, Any] = {}

    async def deliver(self, job: Job) -> Outcome:
        """Sends the job and says how it ended; never raises but for cancellation."""
        try:
            await self._send(job)
        except Exception as error:
            return self._outcome_of(job, error)
        log.info("delivered %s", job.describe())
        return Outcome.done()

    def _outcome_of(self, job: Job, error: Exception) -> Outcome:
        verdict, reason = classify(error)
        if verdict is Verdict.SKIP:
            log.warning("skipped %s: %s", job.describe(), reason)
            return Outcome.skipped(reason)
        if verdict is Verdict.FAIL:
            # Unexpected: its traceback is logged once, here.
            log.error("failed %s: %s", job.describe(), reason, exc_info=error)
        else:
            log.error("failed %s: %s, retries spent", job.describe(), reason)
        return Outcome.failed(reason)

    # -- the Telegram calls ---------------------------------------------------------------

    async def invoke(self, query: Any, what: str) -> Any:
        """A raw call under the deadline; FloodWaits reach the retrier, not pyrogram's sleep."""
        timeout_s = self.retrier.policy.timeout_s
        return await self.retrier.run(
            what,
            lambda: self.client.invoke(query, retries=1, timeout=timeout_s, sleep_threshold=0),
        )

    async def peer(self, chat_id: int) -> Any:
        """The InputPeer of a chat, resolved once."""
        if chat_id not in self._peers:
            call = lambda: self.client.resolve_peer(chat_id)  # noqa: E731
            self._peers[chat_id] = await self.retrier.run(f"resolving chat {chat_id}", call)
        return self._peers[chat_id]

    async def fetch(self, job: Job) -> list[Any]:
        """The job's source messages as they are now; the deleted ones are left out."""
        channel = await self.peer(job.source_chat_id)
        ids: list[Any] = [
            raw.types.InputMessageID(id=message_id) for message_id in job.message_ids
        ]
        query = raw.functions.channels.GetMessages(channel=channel, id=ids)
        answer = await self.invoke(query, f"reading chat {job.source_chat_id}")
        found = [m for m in answer.messages if not isinstance(m, raw.types.MessageEmpty)]
        if not found:
            raise SourceMessageGone(job.describe())
        return found

    # -- the kinds of delivery ------------------------------------------------------------

    async def _send(self, job: Job) -> None:
        if job.mode is Mode.COPY:
            await self._copy(job)
            return
        try:
            await self.forward(job)
        except errors.ChatForwardsRestricted:
            log.info("chat %d restricts saving; re-uploading %s", job.source_chat_id, job.job_id)
            await self._reupload(job, await self.fetch(job))

    async def forward(self, job: Job) -> None:
        """One ForwardMessages for the whole job: an album goes in one call, never split."""
        query = raw.functions.messages.ForwardMessages(
            from_peer=await self.peer(job.source_chat_id),
            id=list(job.message_ids),
            random_id=list(job.random_ids),
            to_peer=await self.peer(job.destination_chat_id),
            drop_author=job.mode is Mode.FORWARD_HIDDEN or None,
        )
        await self.invoke(query, f"forward to chat {job.destination_chat_id}")

    async def _copy(self, job: Job) -> None:
        messages = await self.fetch(job)
        if any(getattr(message, "noforwards", False) for message in messages):
            await self._reupload(job, messages)
            return
        try:
            await media.copy(self, job, messages)
        except errors.ChatForwardsRestricted:
            await self._reupload(job, messages)

    async def _reupload(self, job: Job, messages: list[Any]) -> None:
        await media.reupload(self, job, messages)
