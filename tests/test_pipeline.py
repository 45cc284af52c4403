"""End-to-end scenarios of the core pipeline against the simulated Telegram."""

from __future__ import annotations

from pathlib import Path

from pyrogram import raw

from forwarder.sim import Server
from tests.scenario import forwarded_ids, make_settings, running, settle, texts


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
