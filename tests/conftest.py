"""Fixtures: a simulated Telegram and a real pyrogram Client logged in to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pyrogram import Client

from forwarder.sim import Server, sim_client


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    server = Server()
    yield server
    await server.close()


@pytest.fixture
async def client(server: Server) -> AsyncIterator[Client]:
    """A started Client; built inside the running loop, as pyrogram requires."""
    client = sim_client(server)
    await client.start()
    yield client
    if client.is_connected:
        await client.stop()
