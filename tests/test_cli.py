"""`python -m forwarder` as a person runs it: a real child process, its output and exit code."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pyrogram import raw

from forwarder import sim
from forwarder.jobs import Job, Mode, Outcome
from forwarder.journal import JOURNAL_FILE, Journal
from forwarder.sim import Server
from tests.scenario import forwarded_ids, make_settings, running, settle

SOURCE, OTHER_SOURCE = -1001, -1002
DESTINATION, OTHER_DESTINATION = -2001, -2002
API_HASH = "feedfacefeedfacefeedfacefeedface"
SESSION_STRING = "BQAAAAsessionstringthatmustneverbeshown"
ROUTES = [{"source": SOURCE, "destinations": [DESTINATION]}]


@dataclass(frozen=True)
class Finished:
    code: int
    stdout: str
    stderr: str

    @property
    def stderr_lines(self) -> list[str]:
        return self.stderr.splitlines()


def base_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """The test's environment less any FORWARDER_*, plus a data dir and `settings`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("FORWARDER_")}
    env["FORWARDER_DATA_DIR"] = str(data_dir)
    env.update({f"FORWARDER_{name.upper()}": value for name, value in settings.items()})
    return env


async def run_cli(cwd: Path, env: dict[str, str], *arguments: str) -> Finished:
    """Runs `python -m forwarder ARGUMENTS` in `cwd` (no stray .env there) to its end."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "forwarder",
        *arguments,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(30):
            stdout, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return Finished(process.returncode, stdout.decode(), stderr.decode())


def job(message_id: int, source: int = SOURCE, destination: int = DESTINATION) -> Job:
    return Job(source, (message_id,), destination, Mode.FORWARD)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture
async def filled(data_dir: Path) -> None:
    """A journal in `data_dir` with jobs in every state on three routes, closed again."""
    async with await Journal.open(data_dir / JOURNAL_FILE) as journal:
        jobs = [job(1), job(1, destination=OTHER_DESTINATION), job(2), job(3), job(4)]
        jobs += [job(7, source=OTHER_SOURCE)]
        recorded = await journal.record(jobs, last_seen={SOURCE: 5, OTHER_SOURCE: 7})
        one, one_elsewhere, two, three, _, seven = recorded
        await journal.finish(one, Outcome.done(), 1)
        await journal.finish(one_elsewhere, Outcome.done(), 1)
        await journal.finish(two, Outcome.skipped("the source message was deleted"), 1)
        await journal.finish(three, Outcome.failed("FloodWait"), 5)
        await journal.finish(seven, Outcome.failed("the call was cut off by its deadline"), 2)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file in a folder with its bytes: shows a changed file and a new one alike."""
    return {entry.name: entry.read_bytes() for entry in sorted(folder.iterdir())}


def table(stdout: str) -> list[list[str]]:
    return [line.split() for line in stdout.splitlines() if line.strip()]


# -- status, failed, retry -------------------------------------------------------------------


@pytest.mark.usefixtures("filled")
async def test_status_shows_jobs_by_state_per_route_and_the_last_id_per_source(
    tmp_path: Path, data_dir: Path
) -> None:
    finished = await run_cli(tmp_path, base_env(data_dir), "status")

    assert finished.code == 0, finished.stderr
    assert table(finished.stdout) == [
        ["source", "destination", "pending", "done", "skipped", "failed"],
        [str(OTHER_SOURCE), str(DESTINATION), "0", "0", "0", "1"],
        [str(SOURCE), str(OTHER_DESTINATION), "0", "1", "0", "0"],
        [str(SOURCE), str(DESTINATION), "1", "1", "1", "1"],
        ["source", "last", "message", "id", "seen"],
        [str(OTHER_SOURCE), "7"],
        [str(SOURCE), "5"],
    ]


@pytest.mark.usefixtures("filled")
async def test_failed_lists_the_failed_jobs_with_their_reasons(
    tmp_path: Path, data_dir: Path
) -> None:
    finished = await run_cli(tmp_path, base_env(data_dir), "failed")

    assert finished.code == 0, finished.stderr
    lines = finished.stdout.splitlines()
    assert len(lines) == 2
    assert f"source={SOURCE} messages=3 destination={DESTINATION}" in lines[0]
    assert lines[0].endswith("attempts=5: FloodWait")
    assert f"source={OTHER_SOURCE} messages=7 destination={DESTINATION}" in lines[1]
    assert lines[1].endswith("attempts=2: the call was cut off by its deadline")


async def test_failed_says_so_when_there_are_none(tmp_path: Path, data_dir: Path) -> None:
    async with await Journal.open(data_dir / JOURNAL_FILE) as journal:
        await journal.record([job(1)])

    finished = await run_cli(tmp_path, base_env(data_dir), "failed")

    assert (finished.code, finished.stdout) == (0, "no failed jobs\n")


@pytest.mark.usefixtures("filled")
async def test_retry_puts_the_failed_jobs_back_as_pending(tmp_path: Path, data_dir: Path) -> None:
    finished = await run_cli(tmp_path, base_env(data_dir), "retry")

    assert finished.code == 0, finished.stderr
    assert finished.stdout.startswith("2 failed jobs put back as pending")
    async with await Journal.open(data_dir / JOURNAL_FILE) as reopened:
        assert await reopened.failed() == []
        pending = await reopened.pending()
    assert [(j.source_chat_id, j.message_ids, j.attempts) for j in pending] == [
        (SOURCE, (3,), 0),
        (SOURCE, (4,), 0),
        (OTHER_SOURCE, (7,), 0),
    ]


async def test_status_reads_the_journal_of_a_running_forwarder(
    server: Server, tmp_path: Path, data_dir: Path
) -> None:
    world = server.world
    source, mirror = world.create_channel("Source"), world.create_channel("Mirror")
    routes = [{"source": source.chat_id, "destinations": [mirror.chat_id]}]
    async with running(server, make_settings(data_dir, routes)) as forwarder:
        for number in (1, 2, 3):
            world.add_message(source, message=f"post {number}")
        await settle(forwarder, 3)

        finished = await run_cli(tmp_path, base_env(data_dir), "status")

    assert finished.code == 0, finished.stderr
    rows = table(finished.stdout)
    assert [str(source.chat_id), str(mirror.chat_id), "0", "3", "0", "0"] in rows
    assert [str(source.chat_id), "3"] in rows


@pytest.mark.parametrize("command", ["status", "failed", "retry"])
async def test_a_command_before_the_first_run_creates_no_journal(
    tmp_path: Path, data_dir: Path, command: str
) -> None:
    finished = await run_cli(tmp_path, base_env(data_dir), command)

    assert finished.code == 0, finished.stderr
    assert finished.stdout.startswith("no journal at ")
    assert snapshot(data_dir) == {}


def forwards_of_post_2(query: Any) -> bool:
    return 2 in query.id


async def test_a_retried_job_is_delivered_on_the_next_start(
    server: Server, tmp_path: Path, data_dir: Path
) -> None:
    world = server.world
    source, mirror = world.create_channel("Source"), world.create_channel("Mirror")
    routes = [{"source": source.chat_id, "destinations": [mirror.chat_id]}]
    settings = make_settings(data_dir, routes)
    server.faults.hang(raw.functions.messages.ForwardMessages, when=forwards_of_post_2)
    async with running(server, settings) as forwarder:
        for number in (1, 2, 3):
            world.add_message(source, message=f"post {number}")
        await settle(forwarder, 3)
    assert forwarded_ids(server, mirror) == [1, 3]
    server.faults.rules.clear()

    finished = await run_cli(tmp_path, base_env(data_dir), "retry")
    assert finished.stdout.startswith("1 failed jobs put back as pending")

    async with running(server, settings) as forwarder:
        await settle(forwarder, 1)
    assert forwarded_ids(server, mirror) == [1, 3, 2]


# -- what stops the program ------------------------------------------------------------------


def not_a_database(path: Path) -> None:
    path.write_bytes(b"these are someone's notes, not a journal\n" * 40)


def damage(path: Path) -> None:
    """Keeps the SQLite header and overwrites everything after it."""
    intact = path.read_bytes()
    path.write_bytes(intact[:100] + b"\xff" * (len(intact) - 100))


@pytest.fixture
async def tcp_server(server: Server) -> AsyncIterator[str]:
    """The simulated Telegram on a loopback port, as "host:port"."""
    listener = await sim.serve_tcp(server)
    yield f"127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    listener.close()
    server.drop_connections()
    await listener.wait_closed()


def account_env(server: Server, tcp_server: str, data_dir: Path) -> dict[str, str]:
    """Everything `run` needs to reach the simulated Telegram and forward one route."""
    source, mirror = server.world.create_channel("Source"), server.world.create_channel("Mirror")
    return base_env(
        data_dir,
        api_id=str(sim.API_ID),
        api_hash=sim.API_HASH,
        session_string=server.session_string(),
        telegram_server=tcp_server,
        routes=json.dumps([{"source": source.chat_id, "destinations": [mirror.chat_id]}]),
    )


@pytest.mark.parametrize("command", ["run", "status", "failed", "retry"])
@pytest.mark.parametrize("kind", ["not a database", "damaged"])
async def test_an_unreadable_journal_stops_with_one_line_and_leaves_the_file_as_it_was(
    server: Server, tcp_server: str, tmp_path: Path, data_dir: Path, command: str, kind: str
) -> None:
    path = data_dir / JOURNAL_FILE
    if kind == "damaged":
        async with await Journal.open(path) as journal:
            await journal.record([job(number) for number in range(1, 200)])
        damage(path)
    else:
        not_a_database(path)
    before = snapshot(data_dir)
    env = account_env(server, tcp_server, data_dir)

    finished = await run_cli(tmp_path, env, command)

    assert finished.code == 2
    assert finished.stdout == ""
    [line] = finished.stderr_lines
    assert line.startswith(f"forwarder: Cannot open the journal {path}: ")
    assert server.session_string() not in finished.stderr
    assert snapshot(data_dir) == before


async def test_a_data_dir_that_cannot_be_made_stops_with_one_line(
    server: Server, tcp_server: str, tmp_path: Path
) -> None:
    in_the_way = tmp_path / "notes.txt"
    in_the_way.write_text("a file where the data dir's parent should be\n")
    env = account_env(server, tcp_server, in_the_way / "data")

    finished = await run_cli(tmp_path, env, "run")

    assert finished.code == 2
    [line] = finished.stderr_lines
    assert line.startswith(f"forwarder: Cannot create the data dir {in_the_way / 'data'} ")
    assert in_the_way.read_text() == "a file where the data dir's parent should be\n"


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"api_id": None}, "FORWARDER_API_ID: is required"),
        ({"routes": '[{"source": ' + SESSION_STRING}, "FORWARDER_ROUTES: must be valid JSON"),
        ({"api_timeout_s": "-5"}, "FORWARDER_API_TIMEOUT_S: must be greater than 0"),
        (
            {"routes": json.dumps([{"source": SOURCE, "destinations": []}])},
            "FORWARDER_ROUTES[0].destinations: must not be empty",
        ),
    ],
    ids=["missing api id", "malformed routes json", "negative timeout", "no destinations"],
)
async def test_bad_settings_stop_with_one_line_naming_the_variable_and_no_secret(
    tmp_path: Path, data_dir: Path, settings: dict[str, str | None], named: str
) -> None:
    values: dict[str, str | None] = {
        "api_id": "12345",
        "api_hash": API_HASH,
        "session_string": SESSION_STRING,
        "routes": json.dumps(ROUTES),
        **settings,
    }
    env = base_env(data_dir, **{k: v for k, v in values.items() if v is not None})

    finished = await run_cli(tmp_path, env, "run")

    assert finished.code == 2
    assert finished.stdout == ""
    [line] = finished.stderr_lines
    assert line.startswith(f"forwarder: {named}")
    for secret in (API_HASH, SESSION_STRING):
        assert secret not in finished.stderr
    assert snapshot(data_dir) == {}
