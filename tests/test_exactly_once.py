"""Exactly once: a send repeated after a timeout or a crash carries the same random ids, and
Telegram answers it with the messages the first one made, so one copy arrives."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pyrogram import raw

from forwarder.journal import JOURNAL_FILE, Journal
from forwarder.sim import Channel, Server
from tests.scenario import forwarded_ids, make_settings, running, settle, until

FORWARD = raw.functions.messages.ForwardMessages


def forwards_of(message_id: int) -> Callable[[Any], bool]:
    return lambda query: message_id in query.id


def route_of(source: Channel, destination: Channel) -> list[dict[str, object]]:
    return [{"source": source.chat_id, "destinations": [destination.chat_id]}]


def post(server: Server, source: Channel, first: int, last: int, **fields: object) -> None:
    for number in range(first, last + 1):
        server.world.add_message(source, message=f"post {number}", **fields)


def sends_of(server: Server, message_id: int) -> list[tuple[int, ...]]:
    """The random ids of every ForwardMessages of `message_id` that reached Telegram."""
    return [
        tuple(query.random_id)
        for query in server.requests
        if isinstance(query, FORWARD) and message_id in query.id
    ]


async def test_a_timeout_after_telegram_delivered_then_a_retry_leaves_one_copy(
    server: Server, tmp_path: Path
) -> None:
    world = server.world
    source, mirror = world.create_channel("Source"), world.create_channel("Mirror")
    server.faults.lose_answer(FORWARD, when=forwards_of(3))
    async with running(server, make_settings(tmp_path, route_of(source, mirror))) as forwarder:
        post(server, source, 1, 5)
        await settle(forwarder, 5)

    assert forwarded_ids(server, mirror) == [1, 2, 3, 4, 5]
    first, again = sends_of(server, 3)
    assert first == again
    assert (forwarder.stats.done, forwarder.stats.retried) == (5, 1)


async def test_random_id_duplicate_while_in_flight_ends_with_one_copy(
    server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world = server.world
    source, mirror = world.create_channel("Source"), world.create_channel("Mirror")
    # The first forward of post 3 takes several deadlines: the repeats meet it in flight.
    server.faults.delay(FORWARD, 1.5, when=forwards_of(3))
    settings = make_settings(
        tmp_path, route_of(source, mirror), api_timeout_s=0.3, deadline_max_attempts=10
    )
    async with running(server, settings) as forwarder:
        post(server, source, 1, 5)
        await settle(forwarder, 5)

    assert forwarded_ids(server, mirror) == [1, 2, 3, 4, 5]
    assert len(set(sends_of(server, 3))) == 1
    assert forwarder.stats.done == 5
    in_flight = [r for r in caplog.records if "the same send is still in flight" in r.message]
    assert in_flight
    assert all(r.name == "forwarder.retry" and r.levelno == logging.WARNING for r in in_flight)


async def test_an_album_forwarded_again_after_a_timeout_arrives_once(
    server: Server, tmp_path: Path
) -> None:
    world = server.world
    source, mirror = world.create_channel("Source"), world.create_channel("Mirror")
    server.faults.lose_answer(FORWARD, when=forwards_of(2))
    async with running(server, make_settings(tmp_path, route_of(source, mirror))) as forwarder:
        post(server, source, 1, 3, grouped_id=world.new_grouped_id())
        post(server, source, 4, 4)
        await settle(forwarder, 2)

    assert forwarded_ids(server, mirror) == [1, 2, 3, 4]
    first, again = sends_of(server, 2)
    assert first == again
    assert len(set(first)) == 3


async def test_a_restart_after_a_crash_between_sending_and_recording_sends_nothing_twice(
    server: Server, tmp_path: Path
) -> None:
    world = server.world
    source, mirror = world.create_channel("Source"), world.create_channel("Mirror")
    # Telegram carries the forward of post 3 out, the answer is lost, and the stop does not
    # wait for it: the journal still has the job as pending, as after a crash.
    server.faults.lose_answer(FORWARD, when=forwards_of(3))
    settings = make_settings(tmp_path, route_of(source, mirror), shutdown_grace_s=0.05)
    async with running(server, settings):
        post(server, source, 1, 3)
        await until(lambda: forwarded_ids(server, mirror) == [1, 2, 3])
    async with await Journal.open(tmp_path / JOURNAL_FILE) as journal:
        assert [job.message_ids for job in await journal.pending()] == [(3,)]

    async with running(server, settings) as forwarder:
        await settle(forwarder, 1)

    assert forwarded_ids(server, mirror) == [1, 2, 3]
    first, again = sends_of(server, 3)
    assert first == again
    assert forwarder.stats.done == 1
