"""End-to-end scenarios of the core pipeline against the simulated Telegram."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from pyrogram import raw

from forwarder.app import Forwarder
from forwarder.journal import JOURNAL_FILE, Journal
from forwarder.sim import Channel, Server, sim_client
from tests.scenario import forwarded_ids, make_settings, running, settle, texts, until


def _forwards_of(message_id: int):  # type: ignore[no-untyped-def]
    return lambda query: message_id in query.id


async def test_a_burst_with_one_hung_forward_loses_only_that_one(
    server: Server, tmp_path: Path
) -> None:
    world = server.world
    source, destination = world.create_channel("Source"), world.create_channel("Mirror")
    settings = make_settings(
        tmp_path, [{"source": source.chat_id, "destinations": [destination.chat_id]}]
    )
    async with running(server, settings) as forwarder:
        server.faults.hang(raw.functions.messages.ForwardMessages, when=_forwards_of(5))
        for number in range(1, 13):
            world.add_message(source, message=f"post {number}")
        await settle(forwarder, 12)

        assert forwarded_ids(server, destination) == [n for n in range(1, 13) if n != 5]
        assert forwarder.stats.done == 11
        assert forwarder.stats.failed == 1
        assert forwarder.lanes.idle()


def _to(channel: Channel):  # type: ignore[no-untyped-def]
    return lambda query: query.to_peer.channel_id == channel.channel_id


def _route(source: Channel, *destinations: Channel | int, mode: str = "forward") -> dict[str, Any]:
    chats = [d if isinstance(d, int) else d.chat_id for d in destinations]
    return {"source": source.chat_id, "destinations": chats, "mode": mode}


async def test_a_forward_whose_answer_was_lost_arrives_once(
    server: Server, tmp_path: Path
) -> None:
    world = server.world
    source, destination = world.create_channel("Source"), world.create_channel("Mirror")
    settings = make_settings(tmp_path, [_route(source, destination)])
    async with running(server, settings) as forwarder:
        lost = server.faults.lose_answer(raw.functions.messages.ForwardMessages)
        world.add_message(source, message="only once")
        await settle(forwarder, 1)

    assert lost.hits == 1
    assert texts(server, destination) == ["only once"]
    assert forwarder.stats.done == 1
    assert forwarder.stats.retried == 1


async def test_a_flood_wait_holds_up_only_its_own_lane(server: Server, tmp_path: Path) -> None:
    world = server.world
    source = world.create_channel("Source")
    slow, fast = world.create_channel("Slow"), world.create_channel("Fast")
    settings = make_settings(tmp_path, [_route(source, slow, fast)])
    async with running(server, settings) as forwarder:
        server.faults.flood_wait(raw.functions.messages.ForwardMessages, 1, when=_to(slow))
        for number in range(1, 6):
            world.add_message(source, message=f"post {number}")
        await settle(forwarder, 10)

    assert forwarded_ids(server, slow) == forwarded_ids(server, fast) == [1, 2, 3, 4, 5]
    assert forwarder.stats.flood_wait_s == 1
    forwards = [
        q for q in server.requests if isinstance(q, raw.functions.messages.ForwardMessages)
    ]
    last_to_fast = max(i for i, q in enumerate(forwards) if _to(fast)(q))
    retry_to_slow = [i for i, q in enumerate(forwards) if _to(slow)(q) and q.id == [1]][1]
    assert last_to_fast < retry_to_slow, "the fast lane waited for the slow lane's FloodWait"


async def test_an_invalid_destination_is_skipped_and_the_others_get_everything(
    server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world = server.world
    source, mirror = world.create_channel("Source"), world.create_channel("Mirror")
    missing_chat_id = -1_009_999_999_999
    settings = make_settings(tmp_path, [_route(source, missing_chat_id, mirror)])
    with caplog.at_level(logging.WARNING, "forwarder"):
        async with running(server, settings) as forwarder:
            for number in range(1, 4):
                world.add_message(source, message=f"post {number}")
            await settle(forwarder, 6)

    assert texts(server, mirror) == ["post 1", "post 2", "post 3"]
    assert forwarder.stats.done == 3
    assert forwarder.stats.skipped == 3
    assert f"destination={missing_chat_id}" in caplog.text
    assert "skipped" in caplog.text and "the channel is invalid" in caplog.text


async def test_an_unexpected_error_fails_the_job_and_the_lane_goes_on(
    server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world = server.world
    source, mirror = world.create_channel("Source"), world.create_channel("Mirror")
    settings = make_settings(tmp_path, [_route(source, mirror)])
    async with running(server, settings) as forwarder:
        server.faults.error(raw.functions.messages.ForwardMessages, 400, "SOMETHING_ODD")
        for number in range(1, 4):
            world.add_message(source, message=f"post {number}")
        await settle(forwarder, 3)

    assert texts(server, mirror) == ["post 2", "post 3"]
    assert forwarder.stats.failed == 1
    failures = [r for r in caplog.records if r.levelno == logging.ERROR and r.exc_info]
    assert len(failures) == 1, "the traceback is logged once"


async def test_a_deleted_source_message_is_skipped(server: Server, tmp_path: Path) -> None:
    world = server.world
    source, mirror = world.create_channel("Source"), world.create_channel("Mirror")
    settings = make_settings(tmp_path, [_route(source, mirror, mode="copy")])
    async with running(server, settings) as forwarder:
        server.faults.delay(raw.functions.channels.GetMessages, 0.2)
        doomed = world.add_message(source, message="deleted soon")
        world.add_message(source, message="stays")
        await until(lambda: forwarder.stats.in_flight == 1)
        world.delete_message(source, doomed.id)
        await settle(forwarder, 2)

    assert texts(server, mirror) == ["stays"]
    assert forwarder.stats.skipped == 1


async def test_hidden_forwards_drop_the_header_and_copies_are_new_posts(
    server: Server, tmp_path: Path
) -> None:
    world = server.world
    source = world.create_channel("Source")
    hidden, copied = world.create_channel("Hidden"), world.create_channel("Copied")
    routes = [_route(source, hidden, mode="forward_hidden"), _route(source, copied, mode="copy")]
    async with running(server, make_settings(tmp_path, routes)) as forwarder:
        world.add_message(source, message="news")
        await settle(forwarder, 2)

    for channel in (hidden, copied):
        [message] = world.history(channel)
        assert message.message == "news"
        assert message.fwd_from is None


async def test_shutdown_in_a_burst_finishes_in_flight_jobs_and_keeps_the_rest_pending(
    server: Server, tmp_path: Path
) -> None:
    world = server.world
    source, mirror = world.create_channel("Source"), world.create_channel("Mirror")
    settings = make_settings(tmp_path, [_route(source, mirror)], api_timeout_s=5)
    forwarder = Forwarder(settings, sim_client(server))
    await forwarder.start()
    server.faults.delay(raw.functions.messages.ForwardMessages, 0.05, times=None)
    for number in range(1, 31):
        world.add_message(source, message=f"post {number}")
    await until(lambda: forwarder.stats.done >= 3)
    await forwarder.stop()

    delivered = forwarded_ids(server, mirror)
    journal = await Journal.open(tmp_path / JOURNAL_FILE)
    pending = await journal.pending()
    await journal.close()
    assert delivered == list(range(1, len(delivered) + 1))
    assert [job.first_message_id for job in pending] == list(range(len(delivered) + 1, 31))
    assert forwarder.stats.in_flight == 0
