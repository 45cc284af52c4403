"""The journal: the durable record of jobs and of the last message id seen per source chat.

One SQLite file in the data dir, in WAL mode with synchronous=NORMAL, owned by this module
alone. All SQLite work runs on one worker thread that holds the only connection, so the event
loop never waits on the disk and calls are applied in the order they were made.

A file that cannot be used raises `JournalError` and is left as it was: the journal never
starts empty over a file it could not read. Times are UNIX seconds from the injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import functools
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from forwarder.jobs import Job, Mode, Outcome, State

logger = logging.getLogger("forwarder.journal")

SCHEMA_VERSION = 1  # kept in PRAGMA user_version
JOURNAL_FILE = "journal.sqlite3"  # inside the data dir

_P = ParamSpec("_P")
_T = TypeVar("_T")

_SQLITE_MAGIC = b"SQLite format 3\x00"
_MOVE_ASIDE = "move it aside or restore it from a backup"
_GRANT_ACCESS = "give the forwarder's user read and write access to it and to its folder"
_JOB_COLUMNS = "job_id, source_chat_id, message_ids, destination_chat_id, mode, attempts"

_SCHEMA = (
    # AUTOINCREMENT: a pruned job's id is never given again, so ids in old logs stay unique.
    """
    CREATE TABLE jobs (
        job_id INTEGER PRIMARY KEY AUTOINCREMENT,
        source_chat_id INTEGER NOT NULL,
        first_message_id INTEGER NOT NULL,
        message_ids TEXT NOT NULL,
        destination_chat_id INTEGER NOT NULL,
        mode TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        last_error TEXT NOT NULL DEFAULT '',
        recorded_at REAL NOT NULL,
        finished_at REAL,
        UNIQUE (source_chat_id, first_message_id, destination_chat_id)
    )
    """,
    "CREATE INDEX jobs_by_state ON jobs (state, job_id)",
    "CREATE TABLE last_seen (source_chat_id INTEGER PRIMARY KEY, message_id INTEGER NOT NULL)",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)

_LOCKED = ("it is locked by another process", "stop the other process using it, or try again")
_SQLITE_PROBLEMS: dict[int, tuple[str, str]] = {
    sqlite3.SQLITE_BUSY: _LOCKED,
    sqlite3.SQLITE_LOCKED: _LOCKED,
    sqlite3.SQLITE_NOTADB: ("it is not a SQLite database", _MOVE_ASIDE),
    sqlite3.SQLITE_CORRUPT: ("the database is damaged", _MOVE_ASIDE),
    sqlite3.SQLITE_FULL: ("the disk is full", "free some space and try again"),
    sqlite3.SQLITE_READONLY: ("it is read-only", _GRANT_ACCESS),
    sqlite3.SQLITE_PERM: ("permission denied", _GRANT_ACCESS),
    sqlite3.SQLITE_CANTOPEN: ("SQLite cannot open it", _GRANT_ACCESS),
    sqlite3.SQLITE_IOERR: ("a disk read or write failed", "check the disk and try again"),
}


class JournalError(Exception):
    """The journal cannot be opened or used; the message names the file, why, and what to do."""


@dataclass(frozen=True)
class FailedJob:
    """A job that ended failed: why, after how many attempts, and when (UNIX seconds)."""

    job: Job
    last_error: str
    attempts: int
    finished_at: float


@dataclass(frozen=True)
class RouteCounts:
    """How many jobs of one route, source chat to destination chat, are in each state."""

    source_chat_id: int
    destination_chat_id: int
    pending: int
    done: int
    skipped: int
    failed: int


class Journal:
    """The journal file. Open it with `await Journal.open(path)`; close it, or use `async with`.

    Every call is shielded: a caller cancelled mid-call does not stop the write it asked for.
    """

    def __init__(
        self, path: Path, store: _Store, executor: ThreadPoolExecutor, clock: Callable[[], float]
    ) -> None:
        self.path = path
        self._store = store
        self._executor = executor
        self._clock = clock
        self._closed = False

    @classmethod
    async def open(
        cls, path: Path, *, clock: Callable[[], float] = time.time, busy_timeout_s: float = 5.0
    ) -> Journal:
        """Opens the journal at `path`, creating it when the file is absent or empty.

        Raises `JournalError` when the folder is missing or not writable, or the file is
        unreadable, read-only, damaged, not a journal, or locked for `busy_timeout_s` by
        another process.
        """
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forwarder-journal")
        loop = asyncio.get_running_loop()
        try:
            store, pending = await loop.run_in_executor(
                executor, _open_store, path, busy_timeout_s
            )
        except BaseException:
            executor.shutdown(wait=False)
            raise
        logger.info("journal opened path=%s pending=%d", path, pending)

        return cls(path, store, executor, clock)

    async def close(self) -> None:
        """Closes the file once the calls already made are done; a second close does nothing."""
        if self._closed:
            return
        self._closed = True
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._store.close)
        self._executor.shutdown(wait=False)  # the close queued above still runs
        await asyncio.shield(future)
        logger.info("journal closed path=%s", self.path)

    async def __aenter__(self) -> Journal:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def record(
        self, jobs: Sequence[Job], *, last_seen: Mapping[int, int] | None = None
    ) -> list[Job]:
        """Writes new jobs as pending and moves `last_seen` forward, in one transaction.

        Returns the jobs written, in the order given, with their `job_id`. A job whose source
        chat, first message id and destination are already recorded is not written again and
        not returned, so a post taken in twice (live and by gap filling) is queued once.
        """
        seen = dict(last_seen or {})
        return await self._run(self._store.record, tuple(jobs), seen, self._clock())

    async def finish(self, job: Job, outcome: Outcome, attempts: int) -> None:
        """Records how a job ended; committed when this returns."""
        if outcome.state is State.PENDING:
            raise ValueError(f"{job.describe()} cannot finish as pending")
        await self._run(self._store.finish, _job_id(job), outcome, attempts, self._clock())

    async def note_attempt(self, job: Job, attempts: int, error: str) -> None:
        """Records a failed attempt of a job that stays pending."""
        await self._run(self._store.note_attempt, _job_id(job), attempts, error)

    async def pending(self) -> list[Job]:
        """The pending jobs in the order they were recorded: what to resume on start."""
        return await self._run(self._store.jobs_in, State.PENDING)

    async def last_seen(self, source_chat_id: int) -> int | None:
        """The highest message id seen in a source chat, or None when none was recorded."""
        return await self._run(self._store.last_seen, source_chat_id)

    async def all_last_seen(self) -> dict[int, int]:
        """The highest message id seen, by source chat id."""
        return await self._run(self._store.all_last_seen)

    async def set_last_seen(self, source_chat_id: int, message_id: int) -> None:
        """Moves the last message id seen in a source chat forward; never backwards."""
        await self._run(self._store.record, (), {source_chat_id: message_id}, self._clock())

    async def prune(self, older_than_s: float) -> int:
        """Deletes done and skipped jobs finished more than `older_than_s` ago; returns how many.

        Failed and pending jobs are kept.
        """
        pruned = await self._run(self._store.prune, self._clock() - older_than_s)
        if pruned:
            logger.info("journal pruned jobs=%d older_than_s=%s", pruned, older_than_s)

        return pruned

    async def counts(self) -> list[RouteCounts]:
        """Jobs by state, one entry per route that has any, sorted by source then destination."""
        return await self._run(self._store.counts)

    async def failed(self) -> list[FailedJob]:
        """The failed jobs, in the order they were recorded."""
        return await self._run(self._store.failed)

    async def requeue_failed(self) -> list[Job]:
        """Puts the failed jobs back to pending with no attempts; returns them in order."""
        requeued = await self._run(self._store.requeue_failed)
        logger.info("journal requeued failed jobs=%d", len(requeued))

        return requeued

    async def _run(self, call: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Runs `call` on the journal's thread, turning SQLite's errors into `JournalError`."""
        if self._closed:
            raise JournalError(f"The journal {self.path} is closed; open it again to use it.")
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, functools.partial(call, *args, **kwargs))
        try:
            return await asyncio.shield(future)
        except sqlite3.Error as error:
            problem, remedy = _explain(error)
            raise JournalError(f"The journal {self.path} failed: {problem}; {remedy}.") from error


class _Store:
    """The SQL side of the journal, called only on the journal's thread.

    The connection is in autocommit mode: a single statement commits on its own, and several
    that belong together run in `_transaction`.
    """

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self._path = path
        self._db = connection

    def close(self) -> None:
        self._db.close()

    def record(self, jobs: Sequence[Job], last_seen: Mapping[int, int], now: float) -> list[Job]:
        with self._transaction():
            written = (self._record_one(job, now) for job in jobs)
            recorded = [job for job in written if job is not None]
            for source_chat_id, message_id in last_seen.items():
                self._db.execute(
                    "INSERT INTO last_seen (source_chat_id, message_id) VALUES (?, ?)"
                    " ON CONFLICT (source_chat_id)"
                    " DO UPDATE SET message_id = max(message_id, excluded.message_id)",
                    (source_chat_id, message_id),
                )

        return recorded

    def finish(self, job_id: int, outcome: Outcome, attempts: int, now: float) -> None:
        cursor = self._db.execute(
            "UPDATE jobs SET state = ?, attempts = ?, last_error = ?, finished_at = ?"
            " WHERE job_id = ?",
            (outcome.state.value, attempts, outcome.reason, now, job_id),
        )
        self._require_one(cursor, job_id)
        logger.debug("journal finished job=%d state=%s", job_id, outcome.state)

    def note_attempt(self, job_id: int, attempts: int, error: str) -> None:
        cursor = self._db.execute(
            "UPDATE jobs SET attempts = ?, last_error = ? WHERE job_id = ?",
            (attempts, error, job_id),
        )
        self._require_one(cursor, job_id)

    def count_pending(self) -> int:
        query = "SELECT count(*) FROM jobs WHERE state = ?"
        return int(self._db.execute(query, (State.PENDING.value,)).fetchone()[0])

    def jobs_in(self, state: State) -> list[Job]:
        query = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state = ? ORDER BY job_id"
        return [_job_from_row(row) for row in self._db.execute(query, (state.value,))]

    def last_seen(self, source_chat_id: int) -> int | None:
        query = "SELECT message_id FROM last_seen WHERE source_chat_id = ?"
        row = self._db.execute(query, (source_chat_id,)).fetchone()
        return None if row is None else int(row[0])

    def all_last_seen(self) -> dict[int, int]:
        rows = self._db.execute("SELECT source_chat_id, message_id FROM last_seen")
        return {int(source_chat_id): int(message_id) for source_chat_id, message_id in rows}

    def prune(self, finished_before: float) -> int:
        cursor = self._db.execute(
            "DELETE FROM jobs WHERE state IN (?, ?) AND finished_at < ?",
            (State.DONE.value, State.SKIPPED.value, finished_before),
        )
        return cursor.rowcount

    def counts(self) -> list[RouteCounts]:
        rows = self._db.execute(
            "SELECT source_chat_id, destination_chat_id, sum(state = ?), sum(state = ?),"
            " sum(state = ?), sum(state = ?) FROM jobs"
            " GROUP BY source_chat_id, destination_chat_id"
            " ORDER BY source_chat_id, destination_chat_id",
            (State.PENDING.value, State.DONE.value, State.SKIPPED.value, State.FAILED.value),
        )
        return [RouteCounts(*(int(value) for value in row)) for row in rows]

    def failed(self) -> list[FailedJob]:
        query = (
            f"SELECT {_JOB_COLUMNS}, last_error, finished_at FROM jobs"
            " WHERE state = ? ORDER BY job_id"
        )
        rows = self._db.execute(query, (State.FAILED.value,))
        return [_failed_job_from_row(row) for row in rows]

    def requeue_failed(self) -> list[Job]:
        with self._transaction():
            jobs = self.jobs_in(State.FAILED)
            self._db.execute(
                "UPDATE jobs SET state = ?, attempts = 0, last_error = '', finished_at = NULL"
                " WHERE state = ?",
                (State.PENDING.value, State.FAILED.value),
            )

        return [dataclasses.replace(job, attempts=0) for job in jobs]

    def _record_one(self, job: Job, now: float) -> Job | None:
        existing = self._find(job)
        if existing is not None:
            logger.debug("journal already has %s", existing.describe())
            return None
        cursor = self._db.execute(
            "INSERT INTO jobs (source_chat_id, first_message_id, message_ids,"
            " destination_chat_id, mode, state, attempts, recorded_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job.source_chat_id,
                job.first_message_id,
                ",".join(str(message_id) for message_id in job.message_ids),
                job.destination_chat_id,
                job.mode.value,
                State.PENDING.value,
                job.attempts,
                now,
            ),
        )
        recorded = dataclasses.replace(job, job_id=cursor.lastrowid)
        logger.debug("journal recorded %s", recorded.describe())

        return recorded

    def _find(self, job: Job) -> Job | None:
        query = (
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE source_chat_id = ?"
            " AND first_message_id = ? AND destination_chat_id = ?"
        )
        key = (job.source_chat_id, job.first_message_id, job.destination_chat_id)
        row = self._db.execute(query, key).fetchone()
        return None if row is None else _job_from_row(row)

    def _require_one(self, cursor: sqlite3.Cursor, job_id: int) -> None:
        if cursor.rowcount != 1:
            raise JournalError(
                f"The journal {self._path} has no job {job_id}; record a job before updating it."
            )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            # SQLite rolls some failures back by itself; a second ROLLBACK would raise.
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise


def _job_id(job: Job) -> int:
    if job.job_id is None:
        raise ValueError(f"{job.describe()} was never recorded in the journal")
    return job.job_id


def _job_from_row(row: Any) -> Job:
    job_id, source_chat_id, message_ids, destination_chat_id, mode, attempts = row[:6]
    return Job(
        source_chat_id=int(source_chat_id),
        message_ids=tuple(int(message_id) for message_id in str(message_ids).split(",")),
        destination_chat_id=int(destination_chat_id),
        mode=Mode(mode),
        job_id=int(job_id),
        attempts=int(attempts),
    )


def _failed_job_from_row(row: Any) -> FailedJob:
    job = _job_from_row(row)
    last_error, finished_at = row[6:8]
    return FailedJob(job, str(last_error), job.attempts, float(finished_at))


def _open_store(path: Path, busy_timeout_s: float) -> tuple[_Store, int]:
    """Opens or creates the journal; runs on the journal's thread. Returns it and its pending."""
    try:
        is_new = _inspect(path)
        store = _Store(path, _connect(path, is_new, busy_timeout_s))
        return store, store.count_pending()
    except (sqlite3.Error, OSError) as error:
        raise _cannot_open(path, *_explain(error)) from error


def _inspect(path: Path) -> bool:
    """Checks, without SQLite (which could write), what Python can; true for a new journal."""
    folder = path.parent
    if not folder.is_dir():
        raise _cannot_open(path, f"the folder {folder} does not exist", "create it first")
    if path.is_dir():
        raise _cannot_open(path, "it is a folder, not a file", "remove it or choose another path")
    is_new = not path.exists() or path.stat().st_size == 0
    if not is_new:
        _check_header(path)
    if not is_new and not os.access(path, os.W_OK, effective_ids=True):
        raise _cannot_open(path, "the file is read-only", "give the forwarder's user write access")
    if not os.access(folder, os.W_OK | os.X_OK, effective_ids=True):
        # SQLite creates its -wal and -shm files beside the journal.
        problem = f"the folder {folder} is not writable"
        raise _cannot_open(path, problem, "give the forwarder's user write access to the folder")

    return is_new


def _check_header(path: Path) -> None:
    with path.open("rb") as file:
        header = file.read(len(_SQLITE_MAGIC))
    if header != _SQLITE_MAGIC:
        raise _cannot_open(path, "it is not a SQLite database", _MOVE_ASIDE)


def _connect(path: Path, is_new: bool, busy_timeout_s: float) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
    try:
        if is_new:
            _create_schema(connection)
        else:
            _verify(path, connection)
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
    except BaseException:
        connection.close()
        raise

    return connection


def _create_schema(connection: sqlite3.Connection) -> None:
    # One transaction, so a crash leaves either an empty file or a whole schema.
    connection.execute("BEGIN IMMEDIATE")
    for statement in _SCHEMA:
        connection.execute(statement)
    connection.execute("COMMIT")


def _verify(path: Path, connection: sqlite3.Connection) -> None:
    """Checks an existing file, writing nothing, before it is used."""
    problems = [str(row[0]) for row in connection.execute("PRAGMA quick_check")]
    if problems != ["ok"]:
        first = " ".join(problems[0].split())  # SQLite's report spans lines; errors do not
        raise _cannot_open(path, f"the database is damaged ({first})", _MOVE_ASIDE)
    version = int(connection.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        problem = f"it has schema version {version}, newer than this forwarder's {SCHEMA_VERSION}"
        raise _cannot_open(path, problem, "upgrade the forwarder")
    if version != SCHEMA_VERSION:
        problem = "it is a SQLite database but not a forwarder journal"
        raise _cannot_open(path, problem, _MOVE_ASIDE)
    # Waits busy_timeout_s for a write lock held elsewhere, then fails with SQLITE_BUSY.
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("ROLLBACK")


def _cannot_open(path: Path, problem: str, remedy: str) -> JournalError:
    return JournalError(f"Cannot open the journal {path}: {problem}; {remedy}.")


def _explain(error: Exception) -> tuple[str, str]:
    """What went wrong and what to do about it, for an error from SQLite or the OS."""
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", 0) & 0xFF  # the primary of an extended code
        return _SQLITE_PROBLEMS.get(code, (str(error), "check the file and the disk"))
    if isinstance(error, PermissionError):
        return "permission denied", _GRANT_ACCESS
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return "the disk is full", "free some space and try again"
    return str(error), "check the file and the disk"
