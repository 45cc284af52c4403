"""The simulated Telegram: a server behind pyrogram's connection seam, its world and faults.

server = Server()
source = server.world.create_channel("News", username="news")
client = sim_client(server)          # inside the running loop
await client.start()
"""

from __future__ import annotations

from typing import Any

from pyrogram import Client

from forwarder.sim.faults import Action, Fault, Faults
from forwarder.sim.server import Server
from forwarder.sim.transport import connection_factory, serve_tcp
from forwarder.sim.world import API_ID, Channel, RpcFault, World

API_HASH = "0123456789abcdef0123456789abcdef"  # not a secret: the simulated server ignores it

__all__ = [
    "API_HASH",
    "API_ID",
    "Action",
    "Channel",
    "Fault",
    "Faults",
    "RpcFault",
    "Server",
    "World",
    "serve_tcp",
    "sim_client",
]


def sim_client(server: Server, name: str = "sim", **kwargs: Any) -> Client:
    """A real pyrogram Client logged in to `server`; build it inside the running loop."""
    return Client(
        name,
        api_id=API_ID,
        api_hash=API_HASH,
        session_string=server.session_string(),
        in_memory=True,
        connection_factory=connection_factory(server),
        **kwargs,
    )
