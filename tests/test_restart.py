"""Restarts, crashes and lost connections: every post arrives exactly once, in order.

The crash tests run `python -m forwarder` as a real process that reaches the simulated
Telegram of the test over loopback, and kill it with SIGKILL; the others run it in-process.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from pyrogram import raw

from forwarder import sim
from forwarder.jobs import Job, Mode, Outcome
from forwarder.journal import JOURNAL_FILE, Journal
from forwarder.sim import Channel, Server
from tests.scenario import forwarded_ids, make_settings, running, settle, until

BURST = 200
LIVE = 190  # posted while the process runs or restarts; the rest while none runs
FORWARD = raw.functions.messages.ForwardMessages


def route_of(source: Channel, *destinations: Channel) -> list[dict[str, object]]:
    return [{"source": source.chat_id, "destinations": [d.chat_id for d in destinations]}]


def post(server: Server, source: Channel, first: int, last: int) -> None:
    for number in range(first, last + 1):
        server.world.add_message(source, message=f"post {number}")


def post_unseen(server: Server, source: Channel, text: str) -> None:
    """A post whose update never reaches the account, as when Telegram drops one."""
    message = server.world.build_message(source, message=text)
    source.messages[message.id] = message


def forwards_of(message_id: int) -> Callable[[Any], bool]:
    return lambda query: message_id in query.id


def arrived(channel: Channel) -> int:
    return len(channel.messages)


# -- a forwarder in a child process ----------------------------------------------------------


class ForwarderProcess:
    """`python -m forwarder` in a child process, its log kept for the failure report."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self.cwd = cwd
        self.log: list[str] = []
        self.exit_codes: list[int] = []
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Starts the process and waits for its "started:" line."""
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "forwarder",
            cwd=self.cwd,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.get_running_loop().create_task(self._read(self._process))
        mark = f"--- start {len(self.exit_codes) + 1}"
        self.log.append(mark)
        await until(lambda: self._started_since(mark), limit_s=20)

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or a power cut."""
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        await self._wait()

    async def stop(self) -> None:
        """SIGTERM, the clean stop, unless the process has already ended."""
        if self._process is None:
            return
        if self._process.returncode is None:
            self._process.send_signal(signal.SIGTERM)
        await self._wait()

    async def _wait(self) -> None:
        assert self._process is not None and self._reader is not None
        async with asyncio.timeout(20):
            self.exit_codes.append(await self._process.wait())
            await self._reader
        self._process = None

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        async for line in process.stderr:
            self.log.append(line.decode(errors="replace").rstrip())

    def _started_since(self, mark: str) -> bool:
        if self._process is not None and self._process.returncode is not None:
            raise AssertionError(f"the forwarder exited on start:\n{self.report()}")
        lines = self.log[self.log.index(mark) :]
        return any(" forwarder.app: started:" in line for line in lines)

    def report(self) -> str:
        return "\n".join(self.log[-60:])


def child_env(
    server: Server, port: int, data_dir: Path, routes: list[dict[str, object]]
) -> dict[str, str]:
    """The environment of the child: the test's, less any FORWARDER_*, plus the settings."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("FORWARDER_")}
    env.update(
        FORWARDER_TELEGRAM_SERVER=f"127.0.0.1:{port}",
        FORWARDER_API_ID=str(sim.API_ID),
        FORWARDER_API_HASH=sim.API_HASH,
        FORWARDER_SESSION_STRING=server.session_string(),
        FORWARDER_DATA_DIR=str(data_dir),
        FORWARDER_ROUTES=json.dumps(routes),
        FORWARDER_API_TIMEOUT_S="1",
        FORWARDER_DEADLINE_MAX_ATTEMPTS="5",
        FORWARDER_ALBUM_WINDOW_S="0.2",
        FORWARDER_SHUTDOWN_GRACE_S="1",
        # Only the gap filling on start and on reconnect may bring missed posts in.
        FORWARDER_GAP_FILL_INTERVAL_S="3600",
        FORWARDER_LOG_LEVEL="INFO",
    )
    return env


@asynccontextmanager
async def forwarder_process(
    server: Server, data_dir: Path, routes: list[dict[str, object]]
) -> AsyncIterator[ForwarderProcess]:
    """A started child forwarder on `server`, served on a loopback port; stopped on the way out."""
    listener = await sim.serve_tcp(server)
    port = listener.sockets[0].getsockname()[1]
    # The working directory holds no .env, so the child reads only the environment given.
    process = ForwarderProcess(child_env(server, port, data_dir, routes), data_dir.parent)
    try:
        await process.start()
        yield process
    finally:
        await process.stop()
        listener.close()
        server.drop_connections()
        await listener.wait_closed()


async def post_burst(server: Server, source: Channel, count: int) -> None:
    """Posts `count` messages, two at a time, letting the forwarder work in between."""
    for number in range(1, count + 1, 2):
        post(server, source, number, min(number + 1, count))
        await asyncio.sleep(0.01)


async def test_sigkill_in_a_burst_loses_and_doubles_nothing(
    server: Server, tmp_path: Path
) -> None:
    world = server.world
    source, mirror = world.create_channel("Source"), world.create_channel("Mirror")
    data_dir = tmp_path / "data"
    async with forwarder_process(server, data_dir, route_of(source, mirror)) as forwarder:
        burst = asyncio.get_running_loop().create_task(post_burst(server, source, LIVE))
        try:
            async with asyncio.timeout(40):
                await kill_after_arrivals(forwarder, mirror, 20)
                await kill_after_arrivals(forwarder, mirror, 90)
                await kill_while_in_flight(server, forwarder, 120)
                await kill_after_send_before_record(server, forwarder, mirror, 150)
                await burst
                await kill_and_post_while_stopped(server, forwarder, mirror, source)
                await until(lambda: arrived(mirror) >= BURST)
        except TimeoutError:
            pytest.fail(f"{arrived(mirror)} arrived; the log:\n{forwarder.report()}")
        finally:
            burst.cancel()

    assert forwarder.exit_codes == [-signal.SIGKILL] * 5 + [0]
    assert forwarded_ids(server, mirror) == list(range(1, BURST + 1)), forwarder.report()
    assert forwards_sent(server, 120) >= 2
    assert forwards_sent(server, 150) >= 2
    async with await Journal.open(data_dir / JOURNAL_FILE) as journal:
        assert await journal.pending() == []
        [counts] = await journal.counts()
        assert counts.done == BURST
        assert await journal.all_last_seen() == {source.chat_id: BURST}


async def kill_after_arrivals(forwarder: ForwarderProcess, mirror: Channel, count: int) -> None:
    await until(lambda: arrived(mirror) >= count)
    await forwarder.kill()
    await forwarder.start()


async def kill_while_in_flight(server: Server, forwarder: ForwarderProcess, post: int) -> None:
    """Kills the process while Telegram is still carrying out the forward of `post`.

    The next start sends it again with the same random id, most likely while the first call
    still runs: Telegram answers RANDOM_ID_DUPLICATE, and then the earlier message.
    """
    slow = server.faults.delay(FORWARD, 2.0, when=forwards_of(post))
    await until(lambda: slow.hits > 0)
    await forwarder.kill()
    await forwarder.start()


async def kill_after_send_before_record(
    server: Server, forwarder: ForwarderProcess, mirror: Channel, post: int
) -> None:
    """Kills the process once Telegram carried out the forward of `post` but lost the answer.

    The journal still has the job as pending; the next start sends it again.
    """
    server.faults.lose_answer(FORWARD, when=forwards_of(post))
    await until(lambda: post in forwarded_ids(server, mirror))
    await forwarder.kill()
    await forwarder.start()


async def kill_and_post_while_stopped(
    server: Server, forwarder: ForwarderProcess, mirror: Channel, source: Channel
) -> None:
    """The last posts are made while no process runs: only the gap filling on start sees them."""
    await until(lambda: arrived(mirror) >= LIVE)
    await forwarder.kill()
    post(server, source, LIVE + 1, BURST)
    await forwarder.start()


def forwards_sent(server: Server, post: int) -> int:
    """How many ForwardMessages of `post` reached Telegram, all with the same random id."""
    sent = [q for q in server.requests if isinstance(q, FORWARD) and post in q.id]
    assert len({tuple(query.random_id) for query in sent}) == 1
    return len(sent)


async def test_a_forwarder_process_fills_the_gap_after_its_connection_comes_back(
    server: Server, tmp_path: Path
) -> None:
    world = server.world
    source, mirror = world.create_channel("Source"), world.create_channel("Mirror")
    routes = route_of(source, mirror)
    async with forwarder_process(server, tmp_path / "data", routes) as forwarder:
        post(server, source, 1, 2)
        await until(lambda: arrived(mirror) == 2)
        server.refusing = True
        server.drop_connections()
        post(server, source, 3, 6)
        await asyncio.sleep(0.5)  # a few refused attempts to reconnect
        assert arrived(mirror) == 2
        server.refusing = False
        await until(lambda: arrived(mirror) == 6)
        post(server, source, 7, 7)
        await until(lambda: arrived(mirror) == 7)

    assert forwarded_ids(server, mirror) == list(range(1, 8)), forwarder.report()


# -- in-process: a new source, a stop, a lost connection, a missed update --------------------


async def test_a_new_source_starts_after_its_newest_message(
    server: Server, tmp_path: Path
) -> None:
    world = server.world
    source, mirror = world.create_channel("Source"), world.create_channel("Mirror")
    post(server, source, 1, 3)
    async with running(server, make_settings(tmp_path, route_of(source, mirror))) as forwarder:
        post(server, source, 4, 5)
        await settle(forwarder, 2)

    assert forwarded_ids(server, mirror) == [4, 5]


async def test_pending_jobs_resume_then_posts_made_while_stopped_follow(
    server: Server, tmp_path: Path
) -> None:
    world = server.world
    source = world.create_channel("Source")
    mirrors = [world.create_channel("Mirror A"), world.create_channel("Mirror B")]
    # A stop that cannot wait for the hung forwards leaves post 3 and those after it pending.
    settings = make_settings(tmp_path, route_of(source, *mirrors), shutdown_grace_s=0.05)
    hung = server.faults.hang(FORWARD, when=forwards_of(3), times=2)
    async with running(server, settings):
        post(server, source, 1, 5)
        await until(lambda: hung.hits == 2 and all(arrived(m) == 2 for m in mirrors))
    async with await Journal.open(tmp_path / JOURNAL_FILE) as journal:
        assert [job.first_message_id for job in await journal.pending()] == [3, 3, 4, 4, 5, 5]
    post(server, source, 6, 8)

    async with running(server, settings) as forwarder:
        await settle(forwarder, 2 * 6)
        post(server, source, 9, 9)
        await settle(forwarder, 2 * 7)

    for mirror in mirrors:
        assert forwarded_ids(server, mirror) == list(range(1, 10))


@pytest.mark.parametrize("refusing", [False, True], ids=["dropped", "dropped-and-refused"])
async def test_posts_made_while_the_connection_is_down_arrive_after_reconnect(
    server: Server, tmp_path: Path, refusing: bool
) -> None:
    world = server.world
    source, mirror = world.create_channel("Source"), world.create_channel("Mirror")
    async with running(server, make_settings(tmp_path, route_of(source, mirror))) as forwarder:
        post(server, source, 1, 2)
        await settle(forwarder, 2)
        server.refusing = refusing
        server.drop_connections()
        post(server, source, 3, 6)
        if refusing:
            await asyncio.sleep(0.5)  # a few refused attempts to reconnect
            assert arrived(mirror) == 2
            server.refusing = False
        await settle(forwarder, 6)
        post(server, source, 7, 7)
        await settle(forwarder, 7)

    assert forwarded_ids(server, mirror) == list(range(1, 8))


async def test_posts_missed_behind_an_open_album_are_filled_after_reconnect(
    server: Server, tmp_path: Path
) -> None:
    world = server.world
    source, mirror = world.create_channel("Source"), world.create_channel("Mirror")
    settings = make_settings(tmp_path, route_of(source, mirror), album_window_s=0.5)
    async with running(server, settings) as forwarder:
        post(server, source, 1, 1)
        await settle(forwarder, 1)  # the gap filling on start is over
        album = world.new_grouped_id()
        for number in (2, 3, 4):
            world.add_message(source, message=f"part {number}", grouped_id=album)
        post_unseen(server, source, "post 5")
        post_unseen(server, source, "post 6")
        assert forwarder.intake is not None
        taken = forwarder.intake.sources[source.chat_id]
        await until(lambda: len(taken.album) == 3)
        # The connection drops while the album still waits for more parts.
        server.drop_connections()
        await settle(forwarder, 4)

    assert forwarded_ids(server, mirror) == [1, 2, 3, 4, 5, 6]


async def test_a_post_whose_update_was_missed_is_filled_at_the_interval(
    server: Server, tmp_path: Path
) -> None:
    world = server.world
    source, mirror = world.create_channel("Source"), world.create_channel("Mirror")
    settings = make_settings(tmp_path, route_of(source, mirror), gap_fill_interval_s=0.2)
    async with running(server, settings) as forwarder:
        post_unseen(server, source, "post 1")
        await settle(forwarder, 1)

    assert forwarded_ids(server, mirror) == [1]


async def test_done_jobs_older_than_the_prune_age_are_pruned_on_start(
    server: Server, tmp_path: Path
) -> None:
    world = server.world
    source, mirror = world.create_channel("Source"), world.create_channel("Mirror")
    eight_days_ago = time.time() - 8 * 24 * 3600
    old_jobs = [Job(source.chat_id, (n,), mirror.chat_id, Mode.FORWARD) for n in (1, 2, 3)]
    async with await Journal.open(tmp_path / JOURNAL_FILE, clock=lambda: eight_days_ago) as old:
        done, skipped, failed = await old.record(old_jobs, last_seen={source.chat_id: 3})
        await old.finish(done, Outcome.done(), 1)
        await old.finish(skipped, Outcome.skipped("the source message was deleted"), 1)
        await old.finish(failed, Outcome.failed("FloodWait"), 5)
    settings = make_settings(tmp_path, route_of(source, mirror), prune_age_s=7 * 24 * 3600)

    async with running(server, settings):
        pass

    async with await Journal.open(tmp_path / JOURNAL_FILE) as journal:
        assert [entry.job.first_message_id for entry in await journal.failed()] == [3]
        [counts] = await journal.counts()
        assert (counts.done, counts.skipped, counts.failed) == (0, 0, 1)
