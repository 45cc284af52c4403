"""`python -m forwarder demo`: the real pipeline against the simulated Telegram, in seconds.

A burst of 20 posts in a source channel goes to two mirrors. The forward of post 7 hangs
every time it is tried, and post 12 meets a FloodWait; everything else arrives in order.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from pyrogram import raw

from forwarder.app import Forwarder
from forwarder.settings import Settings, load_settings
from forwarder.sim import Channel, Server, sim_client

POSTS = 20
HUNG_POST = 7
FLOODED_POST = 12


def demo_settings(data_dir: Path, source: Channel, mirrors: list[Channel]) -> Settings:
    route = {"source": source.chat_id, "destinations": [m.chat_id for m in mirrors]}
    return load_settings(
        env_file=None,
        data_dir=data_dir,
        routes=[route],
        api_timeout_s=0.5,  # short deadlines, so the hung forward costs a second, not minutes
        deadline_max_attempts=2,
        album_window_s=0.2,
        stats_interval_s=3600,
    )


def inject_faults(server: Server, mirror: Channel) -> None:
    forward = raw.functions.messages.ForwardMessages

    def forwards_post(number: int):  # type: ignore[no-untyped-def]
        return lambda q: number in q.id and q.to_peer.channel_id == mirror.channel_id

    server.faults.hang(forward, when=forwards_post(HUNG_POST))
    server.faults.flood_wait(forward, 1, when=forwards_post(FLOODED_POST))


async def run_demo() -> int:
    server = Server()
    world = server.world
    source = world.create_channel("Demo source", username="demo_source")
    mirrors = [world.create_channel("Mirror A"), world.create_channel("Mirror B")]
    inject_faults(server, mirrors[0])
    with tempfile.TemporaryDirectory() as data_dir:
        forwarder = Forwarder(demo_settings(Path(data_dir), source, mirrors), sim_client(server))
        await forwarder.start()
        for number in range(1, POSTS + 1):
            world.add_message(source, message=f"post {number}")
        async with asyncio.timeout(60):
            await forwarder.wait_ended(POSTS * len(mirrors))
        await forwarder.stop()
    await server.close()
    report(server, mirrors, forwarder)
    return 0


def report(server: Server, mirrors: list[Channel], forwarder: Forwarder) -> None:
    print()
    for mirror in mirrors:
        arrived = [m.fwd_from.channel_post for m in server.world.history(mirror) if m.fwd_from]
        print(f"{mirror.title}: {len(arrived)} posts arrived, in this order: {arrived}")
    print(f"FloodWait answers: {forwarder.stats.flood_wait_s:g} s in all")
    print(f"stats: {forwarder.stats.line()}")
