"""The simulated Telegram server: decrypts requests, answers them from a `World`, pushes updates.

A `Link` is one client connection, whatever carries its bytes (`transport` has an in-memory
carrier for pyrogram's connection seam and a TCP one). Each request is answered by its own
task, so a hung request holds up nothing else, as on Telegram.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import Any

from pyrogram import raw
from pyrogram.raw.core import Message, MsgContainer, TLObject

from forwarder.sim import handlers, mtproto, sending
from forwarder.sim.faults import Action, Fault, Faults
from forwarder.sim.world import API_ID, DC_ID, RpcFault, World

log = logging.getLogger("forwarder.sim")

Deliver = Callable[[bytes | None], None]

_WRAPPERS = (
    raw.functions.InvokeWithLayer,
    raw.functions.InitConnection,
    raw.functions.InvokeWithoutUpdates,
)
# Requests after which Telegram does not start sending updates to a session: a session that
# only moves files (pyrogram's media sessions) must not see the account's updates.
_QUIET = (
    raw.functions.help.GetConfig,
    raw.functions.upload.GetFile,
    raw.functions.upload.SaveFilePart,
    raw.functions.upload.SaveBigFilePart,
)


class Encoded(bytes, TLObject[Any]):  # type: ignore[misc]
    """An answer that is already serialized, such as a Bool or a Vector."""

    def write(self, *args: Any) -> bytes:
        return bytes(self)


def encode(result: object) -> TLObject[Any]:
    if isinstance(result, bool):
        return Encoded(raw.core.Bool(result))
    if isinstance(result, list):
        return Encoded(raw.core.Vector(result))
    assert isinstance(result, TLObject), f"cannot answer with {result!r}"
    return result


class Link:
    """One client connection to the server."""

    def __init__(self, server: Server, deliver: Deliver, media: bool) -> None:
        self.server = server
        self.deliver = deliver
        self.media = media
        self.session_id: bytes | None = None
        self.open = True

    def receive(self, packet: bytes) -> None:
        if self.open:
            self.server.spawn(self.server.handle_packet(self, packet))

    def send(self, body: TLObject[Any]) -> None:
        if self.open and self.session_id is not None:
            msg_id = self.server.msg_ids.next()
            self.deliver(mtproto.encrypt(body, msg_id, self.session_id, self.server.auth_key))

    def close(self) -> None:
        if self.open:
            self.open = False
            self.deliver(None)


class Server:
    """Telegram as one account sees it, answering from `world`, with `faults` injected."""

    def __init__(self, world: World | None = None) -> None:
        self.world = world or World()
        self.faults = Faults()
        self.auth_key = mtproto.new_auth_key()
        self.msg_ids = mtproto.MessageIds()
        self.links: set[Link] = set()
        self.subscribed: set[bytes] = set()
        self.requests: list[TLObject[Any]] = []
        self.refusing = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.world.listeners.append(self.push_updates)

    def session_string(self, *, is_bot: bool = False) -> str:
        """A session string that logs a pyrogram Client in as the world's account."""
        user_id = self.world.account_user().id
        return mtproto.session_string(DC_ID, API_ID, self.auth_key, user_id, is_bot)

    # -- connections ---------------------------------------------------------------------

    def open_link(self, deliver: Deliver, *, media: bool = False) -> Link:
        if self.refusing:
            raise ConnectionRefusedError("the simulated Telegram refuses connections")
        link = Link(self, deliver, media)
        self.links.add(link)
        return link

    def drop_connections(self) -> None:
        """Closes every connection, as a network outage or a server restart does."""
        for link in list(self.links):
            link.close()
        self.links.clear()

    def spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        self.drop_connections()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- requests ------------------------------------------------------------------------

    async def handle_packet(self, link: Link, packet: bytes) -> None:
        incoming = mtproto.decrypt(packet, self.auth_key)
        link.session_id = incoming.session_id
        for message in _flatten(incoming.message):
            await self.handle_message(link, message)

    async def handle_message(self, link: Link, message: Message) -> None:
        body = message.body
        if isinstance(body, raw.functions.Ping | raw.functions.PingDelayDisconnect):
            link.send(raw.types.Pong(msg_id=message.msg_id, ping_id=body.ping_id))
            return
        if isinstance(body, raw.types.MsgsAck):
            return
        query = _unwrap(body)
        self.requests.append(query)
        if not isinstance(query, _QUIET) and not link.media:
            self.subscribed.add(link.session_id or b"")
        self.spawn(self.answer(link, message.msg_id, query))

    async def answer(self, link: Link, msg_id: int, query: TLObject[Any]) -> None:
        fault = self.faults.take(query)
        if fault is not None and fault.action is Action.HANG:
            log.debug("hanging %s", type(query).__name__)
            return
        try:
            result = await self._carry_out(query, fault)
        except RpcFault as error:
            result = raw.types.RpcError(error_code=error.code, error_message=error.message)
        except Exception:
            log.exception("the simulated Telegram failed on %s", type(query).__name__)
            result = raw.types.RpcError(error_code=400, error_message="SIMULATOR_FAILED")
        if fault is not None and fault.action is Action.LOSE_ANSWER:
            log.debug("losing the answer to %s", type(query).__name__)
            return
        link.send(raw.types.RpcResult(req_msg_id=msg_id, result=result))

    async def _carry_out(self, query: TLObject[Any], fault: Fault | None) -> TLObject[Any]:
        if fault is not None and fault.action is Action.ERROR and fault.error is not None:
            raise fault.error
        keys = sending.random_id_keys(query)
        if keys & self.world.in_flight_random_ids:
            raise RpcFault(400, "RANDOM_ID_DUPLICATE")
        self.world.in_flight_random_ids |= keys
        try:
            if fault is not None and fault.action is Action.DELAY:
                await asyncio.sleep(fault.delay_s)
            return encode(handlers.handle(self.world, query))
        finally:
            self.world.in_flight_random_ids -= keys

    # -- updates -------------------------------------------------------------------------

    def push_updates(self, updates: raw.types.Updates) -> None:
        for link in list(self.links):
            if link.open and not link.media and link.session_id in self.subscribed:
                link.send(updates)


def _flatten(message: Message) -> Iterator[Message]:
    if isinstance(message.body, MsgContainer):
        yield from message.body.messages
    else:
        yield message


def _unwrap(query: TLObject[Any]) -> TLObject[Any]:
    while isinstance(query, _WRAPPERS):
        query = query.query
    return query
