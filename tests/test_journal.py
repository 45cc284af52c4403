"""The journal on real SQLite files, with a fake clock; no mocks."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from forwarder.jobs import Job, Mode, Outcome, State
from forwarder.journal import FailedJob, Journal, JournalError, RouteCounts

SOURCE = -1001
OTHER_SOURCE = -1002
DESTINATION = -2001
OTHER_DESTINATION = -2002
TOO_BIG = 2**63  # one past SQLite's largest INTEGER: binding it fails inside the transaction
NOBODY = 65534


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_job(
    message_ids: tuple[int, ...] = (1,),
    source: int = SOURCE,
    destination: int = DESTINATION,
    mode: Mode = Mode.FORWARD,
) -> Job:
    return Job(source, message_ids, destination, mode)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "journal.sqlite3"


@pytest.fixture
async def journal(path: Path, clock: FakeClock) -> AsyncIterator[Journal]:
    async with await Journal.open(path, clock=clock) as journal:
        yield journal


async def create_journal(path: Path) -> None:
    async with await Journal.open(path) as journal:
        await journal.record([make_job()])


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file in a folder with its bytes: shows both a changed file and a new one."""
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def damage(path: Path) -> None:
    """Keeps the SQLite header and overwrites everything after it."""
    intact = path.read_bytes()
    path.write_bytes(intact[:100] + b"\xff" * (len(intact) - 100))


def assert_one_sentence_naming(caught: pytest.ExceptionInfo[JournalError], path: Path) -> None:
    message = str(caught.value)
    assert str(path) in message
    assert "\n" not in message
    assert message.endswith(".")


# Recording and finishing


async def test_record_gives_ascending_ids_in_the_order_given(journal: Journal) -> None:
    jobs = [make_job((3,)), make_job((1,)), make_job((5, 6, 7), mode=Mode.COPY)]

    recorded = await journal.record(jobs)

    assert [dataclasses.replace(job, job_id=None) for job in recorded] == jobs
    ids = [job.job_id for job in recorded if job.job_id is not None]
    assert ids == sorted(set(ids))
    assert len(ids) == 3


async def test_record_returns_only_the_jobs_it_wrote(journal: Journal) -> None:
    [first] = await journal.record([make_job((5, 6))])
    await journal.note_attempt(first, attempts=2, error="FloodWait 17 s")

    [other] = await journal.record([make_job((5, 6)), make_job((7,))])

    assert other.message_ids == (7,)
    assert other.job_id != first.job_id
    assert await journal.pending() == [dataclasses.replace(first, attempts=2), other]


async def test_record_writes_a_job_repeated_in_one_batch_once(journal: Journal) -> None:
    [first] = await journal.record([make_job((1,)), make_job((1,))])

    assert first.message_ids == (1,)
    assert await journal.pending() == [first]


async def test_the_same_message_to_two_destinations_is_two_jobs(journal: Journal) -> None:
    jobs = await journal.record([make_job((1,)), make_job((1,), destination=OTHER_DESTINATION)])

    assert await journal.pending() == jobs
    assert jobs[0].job_id != jobs[1].job_id


async def test_pending_lists_unfinished_jobs_in_recording_order(journal: Journal) -> None:
    jobs = await journal.record([make_job((3,)), make_job((1,)), make_job((2,))])
    await journal.finish(jobs[1], Outcome.done(), attempts=1)

    assert await journal.pending() == [jobs[0], jobs[2]]


@pytest.mark.parametrize(
    "outcome",
    [
        Outcome.done(),
        Outcome.skipped("MESSAGE_ID_INVALID"),
        Outcome.failed("CHAT_WRITE_FORBIDDEN"),
    ],
    ids=lambda outcome: str(outcome.state),
)
async def test_finish_leaves_pending_for_the_outcomes_state(
    journal: Journal, clock: FakeClock, outcome: Outcome
) -> None:
    [job] = await journal.record([make_job()])
    clock.now = 1_234.5

    await journal.finish(job, outcome, attempts=3)

    assert await journal.pending() == []
    [route] = await journal.counts()
    assert getattr(route, outcome.state.value) == 1
    finished = dataclasses.replace(job, attempts=3)
    failed = outcome.state is State.FAILED
    expected = [FailedJob(finished, outcome.reason, 3, 1_234.5)] if failed else []
    assert await journal.failed() == expected


async def test_a_second_journal_sees_a_finish_once_it_returns(path: Path) -> None:
    async with await Journal.open(path) as journal:
        [job] = await journal.record([make_job()])
        await journal.finish(job, Outcome.failed("CHAT_WRITE_FORBIDDEN"), attempts=1)

        # What the `failed` command does while the service runs.
        async with await Journal.open(path) as reader:
            [failed] = await reader.failed()

    assert failed.job.job_id == job.job_id
    assert failed.last_error == "CHAT_WRITE_FORBIDDEN"


async def test_finish_refuses_a_job_that_is_not_recorded(journal: Journal) -> None:
    with pytest.raises(ValueError, match="never recorded"):
        await journal.finish(make_job(), Outcome.done(), attempts=1)

    [job] = await journal.record([make_job()])
    unknown = dataclasses.replace(job, job_id=999)
    with pytest.raises(JournalError, match="has no job 999"):
        await journal.finish(unknown, Outcome.done(), attempts=1)


async def test_finish_refuses_a_pending_outcome(journal: Journal) -> None:
    [job] = await journal.record([make_job()])

    with pytest.raises(ValueError, match="cannot finish as pending"):
        await journal.finish(job, Outcome(State.PENDING), attempts=1)


async def test_note_attempt_keeps_the_job_pending_with_its_attempts(journal: Journal) -> None:
    [job] = await journal.record([make_job()])

    await journal.note_attempt(job, attempts=2, error="timed out after 30 s")

    assert await journal.pending() == [dataclasses.replace(job, attempts=2)]


# Last message seen per source


async def test_last_seen_only_moves_forward(journal: Journal) -> None:
    assert await journal.last_seen(SOURCE) is None

    await journal.set_last_seen(SOURCE, 10)
    await journal.set_last_seen(SOURCE, 7)
    await journal.set_last_seen(OTHER_SOURCE, 3)

    assert await journal.last_seen(SOURCE) == 10
    assert await journal.all_last_seen() == {SOURCE: 10, OTHER_SOURCE: 3}


async def test_record_moves_last_seen_forward_with_the_jobs(journal: Journal) -> None:
    await journal.record([make_job((4,))], last_seen={SOURCE: 4})
    await journal.record([], last_seen={SOURCE: 2, OTHER_SOURCE: 9})

    assert await journal.all_last_seen() == {SOURCE: 4, OTHER_SOURCE: 9}


@pytest.mark.parametrize(
    ("jobs", "last_seen"),
    [
        pytest.param([make_job((1,)), make_job((TOO_BIG,))], {SOURCE: 1}, id="a-job-fails"),
        pytest.param([make_job((1,)), make_job((2,))], {SOURCE: TOO_BIG}, id="last-seen-fails"),
    ],
)
async def test_a_failed_record_writes_neither_jobs_nor_last_seen(
    journal: Journal, jobs: list[Job], last_seen: dict[int, int]
) -> None:
    with pytest.raises(OverflowError):
        await journal.record(jobs, last_seen=last_seen)

    assert await journal.pending() == []
    assert await journal.all_last_seen() == {}
    [job] = await journal.record([make_job((1,))], last_seen={SOURCE: 1})
    assert await journal.pending() == [job]


# Pruning, counts, failed jobs


async def test_prune_deletes_done_and_skipped_jobs_finished_long_enough_ago(
    journal: Journal, clock: FakeClock
) -> None:
    old_done, old_skipped, old_failed, recent, waiting = await journal.record(
        [make_job((message_id,)) for message_id in range(1, 6)]
    )
    await journal.finish(old_done, Outcome.done(), attempts=1)
    await journal.finish(old_skipped, Outcome.skipped("MESSAGE_ID_INVALID"), attempts=1)
    await journal.finish(old_failed, Outcome.failed("CHAT_WRITE_FORBIDDEN"), attempts=1)
    clock.now += 50
    await journal.finish(recent, Outcome.done(), attempts=1)
    clock.now += 50

    assert await journal.prune(older_than_s=60) == 2
    assert await journal.prune(older_than_s=60) == 0

    assert await journal.counts() == [RouteCounts(SOURCE, DESTINATION, 1, 1, 0, 1)]
    assert await journal.pending() == [waiting]


async def test_a_pruned_jobs_id_is_not_given_again(journal: Journal, clock: FakeClock) -> None:
    [job] = await journal.record([make_job((1,))])
    await journal.finish(job, Outcome.done(), attempts=1)
    clock.now += 100
    await journal.prune(older_than_s=10)

    [later] = await journal.record([make_job((2,))])

    assert later.job_id is not None
    assert job.job_id is not None
    assert later.job_id > job.job_id


async def test_counts_gives_jobs_by_state_per_route_in_route_order(journal: Journal) -> None:
    jobs = await journal.record(
        [
            make_job((1,)),
            make_job((2,)),
            make_job((1,), destination=OTHER_DESTINATION),
            make_job((5,), source=OTHER_SOURCE),
        ]
    )
    await journal.finish(jobs[0], Outcome.done(), attempts=1)
    await journal.finish(jobs[2], Outcome.failed("USER_BANNED_IN_CHANNEL"), attempts=1)

    assert await journal.counts() == [
        RouteCounts(OTHER_SOURCE, DESTINATION, pending=1, done=0, skipped=0, failed=0),
        RouteCounts(SOURCE, OTHER_DESTINATION, pending=0, done=0, skipped=0, failed=1),
        RouteCounts(SOURCE, DESTINATION, pending=1, done=1, skipped=0, failed=0),
    ]


async def test_requeue_failed_puts_failed_jobs_back_to_pending_in_order(
    journal: Journal, clock: FakeClock
) -> None:
    jobs = await journal.record([make_job((message_id,)) for message_id in (1, 2, 3)])
    await journal.finish(jobs[2], Outcome.failed("FloodWait budget spent"), attempts=5)
    await journal.finish(jobs[0], Outcome.failed("CHAT_WRITE_FORBIDDEN"), attempts=1)
    first, third = (
        dataclasses.replace(jobs[0], attempts=1),
        dataclasses.replace(jobs[2], attempts=5),
    )
    assert await journal.failed() == [
        FailedJob(first, "CHAT_WRITE_FORBIDDEN", 1, clock.now),
        FailedJob(third, "FloodWait budget spent", 5, clock.now),
    ]

    assert await journal.requeue_failed() == [jobs[0], jobs[2]]

    assert await journal.failed() == []
    assert await journal.pending() == jobs


# Lifecycle


async def test_reopening_keeps_jobs_states_and_last_seen(path: Path, clock: FakeClock) -> None:
    async with await Journal.open(path, clock=clock) as journal:
        done, failed, album = await journal.record(
            [make_job((1,)), make_job((2,)), make_job((3, 4), mode=Mode.FORWARD_HIDDEN)],
            last_seen={SOURCE: 4},
        )
        await journal.finish(done, Outcome.done(), attempts=1)
        await journal.finish(failed, Outcome.failed("CHAT_WRITE_FORBIDDEN"), attempts=2)
        await journal.note_attempt(album, attempts=1, error="timed out after 30 s")
        before = (await journal.pending(), await journal.failed(), await journal.counts())

    async with await Journal.open(path, clock=clock) as journal:
        after = (await journal.pending(), await journal.failed(), await journal.counts())
        assert await journal.all_last_seen() == {SOURCE: 4}
        assert await journal.record([make_job((3, 4))]) == []

    assert after == before
    assert after[0] == [dataclasses.replace(album, attempts=1)]


async def test_an_empty_file_becomes_a_new_journal(path: Path) -> None:
    write(path, b"")

    async with await Journal.open(path) as journal:
        assert await journal.pending() == []


async def test_a_closed_journal_refuses_calls(path: Path) -> None:
    journal = await Journal.open(path)
    await journal.close()
    await journal.close()

    with pytest.raises(JournalError, match="is closed"):
        await journal.pending()


async def test_open_logs_path_and_pending_and_jobs_only_at_debug(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="forwarder.journal")
    await create_journal(path)
    caplog.clear()

    async with await Journal.open(path) as journal:
        [job] = await journal.record([make_job((2,))])
        await journal.finish(job, Outcome.done(), attempts=1)

    above_debug = [r.getMessage() for r in caplog.records if r.levelno > logging.DEBUG]
    assert above_debug == [f"journal opened path={path} pending=1", f"journal closed path={path}"]
    assert any(f"job={job.job_id}" in r.getMessage() for r in caplog.records)


async def test_the_event_loop_runs_while_a_write_waits_for_the_disk(path: Path) -> None:
    async with await Journal.open(path, busy_timeout_s=30) as journal:
        # Another connection holds the write lock, so the journal's write waits in its thread.
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as blocker:
            blocker.execute("BEGIN IMMEDIATE")
            write = asyncio.create_task(journal.record([make_job()]))
            for _ in range(100):
                await asyncio.sleep(0)
            assert not write.done()

            blocker.execute("COMMIT")
            [job] = await write

        assert await journal.pending() == [job]


# Files that cannot be used


async def test_open_refuses_a_file_of_garbage_and_leaves_it_as_it_was(path: Path) -> None:
    write(path, bytes(range(256)) * 16)
    before = snapshot(path.parent)

    with pytest.raises(JournalError, match="not a SQLite database") as caught:
        await Journal.open(path)

    assert_one_sentence_naming(caught, path)
    assert snapshot(path.parent) == before


async def test_open_refuses_a_damaged_journal_and_leaves_it_as_it_was(path: Path) -> None:
    await create_journal(path)
    damage(path)
    before = snapshot(path.parent)

    with pytest.raises(JournalError, match="damaged") as caught:
        await Journal.open(path)

    assert_one_sentence_naming(caught, path)
    assert snapshot(path.parent) == before


async def test_open_refuses_another_programs_database_and_leaves_it_as_it_was(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as other:
        other.execute("CREATE TABLE notes (text TEXT)")
        other.commit()
    before = snapshot(path.parent)

    with pytest.raises(JournalError, match="not a forwarder journal") as caught:
        await Journal.open(path)

    assert_one_sentence_naming(caught, path)
    assert snapshot(path.parent) == before


async def test_open_refuses_a_journal_from_a_newer_forwarder(path: Path) -> None:
    await create_journal(path)
    with contextlib.closing(sqlite3.connect(path)) as other:
        other.execute("PRAGMA user_version = 99")

    with pytest.raises(JournalError, match="upgrade the forwarder") as caught:
        await Journal.open(path)

    assert_one_sentence_naming(caught, path)


async def test_open_refuses_a_folder_that_does_not_exist(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "journal.sqlite3"

    with pytest.raises(JournalError, match="does not exist") as caught:
        await Journal.open(path)

    assert_one_sentence_naming(caught, path)
    assert not path.parent.exists()


async def test_open_refuses_a_folder_in_place_of_the_file(tmp_path: Path) -> None:
    path = tmp_path

    with pytest.raises(JournalError, match="is a folder") as caught:
        await Journal.open(path)

    assert_one_sentence_naming(caught, path)


async def test_open_refuses_a_journal_locked_by_another_connection(path: Path) -> None:
    await create_journal(path)

    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(JournalError, match="locked by another process") as caught:
            await Journal.open(path, busy_timeout_s=0.05)

    assert_one_sentence_naming(caught, path)


@contextlib.contextmanager
def unprivileged() -> Iterator[None]:
    """Runs the block as user nobody when the tests run as root, whom permissions do not stop.

    The effective ids change for the whole process, the journal's thread included, and are
    restored on the way out, whatever happens inside.
    """
    if os.geteuid() != 0:
        yield
        return
    groups = os.getgroups()
    os.setgroups([])
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
        os.setgroups(groups)


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder user nobody can reach, which tmp_path is not: its parents are private."""
    with tempfile.TemporaryDirectory(prefix="journal-test-") as name:
        folder = Path(name)
        folder.chmod(0o755)
        try:
            yield folder
        finally:
            folder.chmod(0o700)


def restrict(path: Path, folder_mode: int, file_mode: int | None) -> None:
    if file_mode is not None:
        path.chmod(file_mode)
    path.parent.chmod(folder_mode)


@pytest.mark.parametrize(
    ("folder_mode", "file_mode", "problem"),
    [
        pytest.param(0o777, 0o000, "permission denied", id="unreadable-file"),
        pytest.param(0o777, 0o444, "the file is read-only", id="read-only-file"),
        pytest.param(0o555, 0o666, "is not writable", id="read-only-folder"),
        pytest.param(0o555, None, "is not writable", id="read-only-folder-no-file-yet"),
    ],
)
async def test_open_refuses_what_the_user_may_not_write(
    open_folder: Path, folder_mode: int, file_mode: int | None, problem: str
) -> None:
    path = open_folder / "journal.sqlite3"
    if file_mode is not None:
        await create_journal(path)
    before = snapshot(open_folder)
    restrict(path, folder_mode, file_mode)

    with unprivileged(), pytest.raises(JournalError, match=problem) as caught:
        await Journal.open(path)

    restrict(path, 0o755, None if file_mode is None else 0o644)  # so a non-root user can read
    assert_one_sentence_naming(caught, path)
    assert snapshot(open_folder) == before
