"""The `Job` record: one post (or one album) bound for one destination, and how it ended."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field


class Mode(enum.StrEnum):
    """How a job reaches its destination."""

    FORWARD = "forward"
    FORWARD_HIDDEN = "forward_hidden"  # forwarded without the "forwarded from" header
    COPY = "copy"


class State(enum.StrEnum):
    """Where a job stands; every job ends as done, skipped or failed."""

    PENDING = "pending"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"


def derive_random_id(source_chat_id: int, message_id: int, destination_chat_id: int) -> int:
    """The signed 64-bit random_id of one message sent to one destination.

    It depends on nothing else, so a retry or a restart sends with the same id, and Telegram
    answers a random_id it has seen toward that peer with the earlier messages.
    """
    key = f"{source_chat_id}:{message_id}:{destination_chat_id}".encode()
    digest = hashlib.blake2b(key, digest_size=8, person=b"forwarder").digest()
    return int.from_bytes(digest, "big", signed=True) or 1


@dataclass(frozen=True)
class Job:
    """One post, or one album, to deliver from a source chat to a destination chat.

    `message_ids` holds a single id, or an album's ids in posting order. `job_id` is given by
    the journal when the job is recorded; a job that was never recorded has none.
    """

    source_chat_id: int
    message_ids: tuple[int, ...]
    destination_chat_id: int
    mode: Mode
    job_id: int | None = None
    attempts: int = 0
    random_ids: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.message_ids:
            raise ValueError("a job needs at least one message id")
        ids = tuple(
            derive_random_id(self.source_chat_id, message_id, self.destination_chat_id)
            for message_id in self.message_ids
        )
        object.__setattr__(self, "random_ids", ids)

    @property
    def is_album(self) -> bool:
        return len(self.message_ids) > 1

    @property
    def first_message_id(self) -> int:
        return self.message_ids[0]

    def describe(self) -> str:
        """Identifiers for a log line, as key=value pairs."""
        ids = ",".join(str(message_id) for message_id in self.message_ids)
        return (
            f"job={self.job_id} source={self.source_chat_id} messages={ids} "
            f"destination={self.destination_chat_id} mode={self.mode}"
        )


@dataclass(frozen=True)
class Outcome:
    """How a job ended: done, skipped or failed, with the reason for the last two."""

    state: State
    reason: str = ""

    @classmethod
    def done(cls) -> Outcome:
        return cls(State.DONE)

    @classmethod
    def skipped(cls, reason: str) -> Outcome:
        return cls(State.SKIPPED, reason)

    @classmethod
    def failed(cls, reason: str) -> Outcome:
        return cls(State.FAILED, reason)
