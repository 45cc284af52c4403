"""How pyrogram's bytes reach the simulated server.

`connection_factory(server)` plugs into pyrogram's seam, `Client(connection_factory=...)`,
and carries packets in memory. `serve_tcp` listens on a loopback port and speaks MTProto's
abridged framing, so that a Client in another process, built with `redirected_connection`,
reaches the same server through pyrogram's own TCP transport.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar

from pyrogram.connection import Connection

from forwarder.sim.server import Link, Server


class _Protocol:
    """What pyrogram's Session reads off `connection.protocol`."""

    crypto_executor = None  # the loop's default executor


class SimConnection(Connection):
    """A pyrogram connection whose far end is a `Server` in this process."""

    server: ClassVar[Server]
    CONNECT_ATTEMPTS = 3
    RETRY_DELAY_S = 0.2

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.protocol = _Protocol()  # type: ignore[assignment]
        self._inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._link: Link | None = None

    async def connect(self) -> None:
        for _ in range(self.CONNECT_ATTEMPTS):
            try:
                self._link = self.server.open_link(self._inbox.put_nowait, media=self.media)
                return
            except ConnectionRefusedError:
                await asyncio.sleep(self.RETRY_DELAY_S)
        raise ConnectionError("the simulated Telegram refused the connection")

    async def close(self) -> None:
        if self._link is not None:
            self._link.close()

    async def send(self, data: bytes) -> None:
        if self._link is None or not self._link.open:
            raise OSError("the connection to the simulated Telegram is closed")
        self._link.receive(data)

    async def recv(self) -> bytes | None:
        return await self._inbox.get()


def connection_factory(server: Server) -> type[Connection]:
    """A connection class for `Client(connection_factory=...)` bound to `server`."""
    return type("BoundSimConnection", (SimConnection,), {"server": server})


# -- loopback TCP, abridged framing ----------------------------------------------------------

_ABRIDGED_TAG = b"\xef"


def _frame(packet: bytes) -> bytes:
    words = len(packet) // 4
    header = bytes([words]) if words < 0x7F else b"\x7f" + words.to_bytes(3, "little")
    return header + packet


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    header = await reader.readexactly(1)
    if header == b"\x7f":
        header = await reader.readexactly(3)
    return await reader.readexactly(int.from_bytes(header, "little") * 4)


async def _serve_one(
    server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    def deliver(packet: bytes | None) -> None:
        if packet is None:
            writer.close()
        elif not writer.is_closing():
            writer.write(_frame(packet))

    try:
        link = server.open_link(deliver)
    except ConnectionRefusedError:
        writer.close()
        return
    try:
        if await reader.readexactly(1) != _ABRIDGED_TAG:
            return
        while link.open:
            link.receive(await _read_frame(reader))
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        server.links.discard(link)
        link.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def serve_tcp(server: Server, host: str = "127.0.0.1", port: int = 0) -> asyncio.Server:
    """Listens for pyrogram clients on host:port (0: any free port) until closed."""
    return await asyncio.start_server(
        lambda reader, writer: _serve_one(server, reader, writer), host, port
    )


def redirected_connection(host: str, port: int) -> type[Connection]:
    """A pyrogram connection class that reaches host:port whatever data center it is asked."""

    class RedirectedConnection(Connection):
        def __init__(self, **kwargs: Any) -> None:
            kwargs.update(server_address=host, port=port)
            super().__init__(**kwargs)

    return RedirectedConnection
