"""What the simulated server answers to each API method, from the `World`.

Only the methods the forwarder and pyrogram's start-up use are here; any other method is
answered with METHOD_NOT_SIMULATED and logged as an error, so a gap shows at once.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from pyrogram import raw
from pyrogram.raw.core import TLObject

from forwarder.sim import files, sending
from forwarder.sim.world import DC_ID, Channel, RpcFault, World

log = logging.getLogger("forwarder.sim")

T = TypeVar("T")
Handler = Callable[[World, Any], object]
_ZERO = {"int": 0, "str": "", "bool": False, "bytes": b"", "float": 0.0}


def make(cls: type[T], **fields: Any) -> T:
    """Builds a TL object, filling the required fields not given with zero values."""
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or name in fields or param.default is not inspect.Parameter.empty:
            continue
        annotation = str(param.annotation)
        fields[name] = [] if annotation.startswith("list") else _ZERO[annotation]
    return cls(**fields)


def channel_of(world: World, peer: TLObject[Any]) -> Channel:
    """The channel an InputPeerChannel or InputChannel names (access_hash 0: by membership)."""
    if isinstance(peer, raw.types.InputPeerChannel | raw.types.InputChannel):
        access_hash = peer.access_hash or None
        return world.channel_for_reading(peer.channel_id, access_hash)
    raise RpcFault(400, "PEER_ID_INVALID")


def channel_messages(channel: Channel, messages: list[Any], count: int) -> TLObject[Any]:
    return raw.types.messages.ChannelMessages(
        pts=channel.pts,
        count=count,
        messages=messages,
        topics=[],
        chats=[channel.as_chat()],
        users=[],
    )


# -- the account and the connection ---------------------------------------------------------


def get_config(world: World, query: Any) -> TLObject[Any]:
    options = [
        raw.types.DcOption(id=DC_ID, ip_address="127.0.0.1", port=443),
        raw.types.DcOption(id=DC_ID, ip_address="127.0.0.1", port=443, media_only=True),
    ]
    return make(
        raw.types.Config,
        date=world.now(),
        expires=world.now() + 3600,
        this_dc=DC_ID,
        dc_options=options,
        forwarded_count_max=100,
        caption_length_max=1024,
        message_length_max=4096,
    )


def get_state(world: World, query: Any) -> TLObject[Any]:
    return raw.types.updates.State(pts=1, qts=0, date=world.now(), seq=0, unread_count=0)


def get_full_user(world: World, query: Any) -> TLObject[Any]:
    me = world.account_user()
    full = raw.types.UserFull(
        id=me.id,
        settings=raw.types.PeerSettings(),
        notify_settings=raw.types.PeerNotifySettings(),
        common_chats_count=0,
    )
    return raw.types.users.UserFull(full_user=full, chats=[], users=[me])


def get_users(world: World, query: Any) -> list[TLObject[Any]]:
    return [world.account_user() for _ in query.id]


# -- peers ---------------------------------------------------------------------------------


def get_channels(world: World, query: Any) -> TLObject[Any]:
    return raw.types.messages.Chats(chats=[channel_of(world, c).as_chat() for c in query.id])


def resolve_username(world: World, query: Any) -> TLObject[Any]:
    channel = world.channel_by_username(query.username)
    peer = raw.types.PeerChannel(channel_id=channel.channel_id)
    return raw.types.contacts.ResolvedPeer(peer=peer, chats=[channel.as_chat()], users=[])


# -- reading -------------------------------------------------------------------------------


def _input_message_id(item: Any) -> int:
    # pyrogram reads a bare vector of 8-byte items as longs: an InputMessageID (constructor,
    # then the id) arrives as one little-endian long whose high half is the id.
    return item >> 32 if isinstance(item, int) else int(item.id)


def get_messages(world: World, query: Any) -> TLObject[Any]:
    channel = channel_of(world, query.channel)
    found = []
    for message_id in map(_input_message_id, query.id):
        message = channel.messages.get(message_id)
        found.append(message or raw.types.MessageEmpty(id=message_id))
    return channel_messages(channel, found, len(found))


def get_history(world: World, query: Any) -> TLObject[Any]:
    """Newest first: ids below offset_id (all when 0), inside (min_id, max_id), then a page."""
    channel = channel_of(world, query.peer)
    ids = sorted(channel.messages, reverse=True)
    if query.offset_id:
        ids = [i for i in ids if i < query.offset_id]
    ids = [i for i in ids if i > query.min_id and (not query.max_id or i < query.max_id)]
    page = ids[max(query.add_offset, 0) :][: query.limit]
    return channel_messages(channel, [channel.messages[i] for i in page], len(channel.messages))


HANDLERS: dict[type[TLObject[Any]], Handler] = {
    raw.functions.help.GetConfig: get_config,
    raw.functions.updates.GetState: get_state,
    raw.functions.users.GetFullUser: get_full_user,
    raw.functions.users.GetUsers: get_users,
    raw.functions.channels.GetChannels: get_channels,
    raw.functions.contacts.ResolveUsername: resolve_username,
    raw.functions.channels.GetMessages: get_messages,
    raw.functions.messages.GetHistory: get_history,
    **sending.HANDLERS,
    **files.HANDLERS,
}


def handle(world: World, query: TLObject[Any]) -> object:
    handler = HANDLERS.get(type(query))
    if handler is None:
        log.error("the simulated Telegram has no answer for %s", type(query).__name__)
        raise RpcFault(400, "METHOD_NOT_SIMULATED")
    return handler(world, query)
