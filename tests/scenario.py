"""Helpers for end-to-end scenarios: a Forwarder on the simulated Telegram, run to idle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pyrogram import raw

from forwarder.app import Forwarder
from forwarder.settings import Settings, load_settings
from forwarder.sim import Channel, Server, sim_client


def make_settings(data_dir: Path, routes: list[dict[str, Any]], **overrides: Any) -> Settings:
    """Settings for a test: small deadlines, so a hang costs a fraction of a second."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "routes": routes,
        "api_timeout_s": 0.5,
        "download_timeout_s": 0.5,
        "deadline_max_attempts": 2,
        "album_window_s": 0.2,
        "shutdown_grace_s": 2,
        "stats_interval_s": 3600,
    }
    values.update(overrides)
    return load_settings(env_file=None, **values)


@asynccontextmanager
async def running(server: Server, settings: Settings) -> AsyncIterator[Forwarder]:
    """A started Forwarder on `server`; stopped on the way out."""
    forwarder = Forwarder(settings, sim_client(server))
    await forwarder.start()
    try:
        yield forwarder
    finally:
        await forwarder.stop()


def texts(server: Server, channel: Channel) -> list[str]:
    return [message.message for message in server.world.history(channel)]


def forwarded_ids(server: Server, channel: Channel) -> list[int]:
    """The source message ids of the forwards a channel holds, in the order they arrived."""
    found = []
    for message in server.world.history(channel):
        header = message.fwd_from
        assert isinstance(header, raw.types.MessageFwdHeader)
        found.append(header.channel_post)
    return found


async def until(condition: Any, *, limit_s: float = 20.0) -> None:
    """Waits for `condition()` to hold, checking often; fails the test after `limit_s`."""
    async with asyncio.timeout(limit_s):
        while not condition():  # noqa: ASYNC110  # polls any condition, bounded above
            await asyncio.sleep(0.01)


async def settle(forwarder: Forwarder, ended: int) -> None:
    """Waits until `ended` jobs have ended and nothing more is queued or in flight."""
    async with asyncio.timeout(20):
        await forwarder.wait_ended(ended)
