"""Sends into channels: forwards, texts, media and albums, with Telegram's random_id dedup.

Telegram remembers the random_id of every send toward a peer; a send that reuses one is not
carried out again but answered with the messages the first one made.
"""

from __future__ import annotations

from typing import Any

from pyrogram import raw
from pyrogram.raw.core import TLObject

from forwarder.sim import files
from forwarder.sim.world import Channel, Posted, RpcFault, World


def _target(world: World, peer: Any) -> Channel:
    if isinstance(peer, raw.types.InputPeerChannel):
        return world.channel_for_writing(peer.channel_id, peer.access_hash)
    raise RpcFault(400, "PEER_ID_INVALID")


def _take_flood_tokens(world: World, target: Channel, fresh: int) -> None:
    wait_s = world.flood.take(target.channel_id, fresh) if fresh else 0
    if wait_s:
        raise RpcFault(420, f"FLOOD_WAIT_{wait_s}")


def _send(
    world: World, target: Channel, drafts: list[tuple[int, dict[str, Any]]]
) -> TLObject[Any]:
    """Stores one message per (random_id, fields) not seen before; answers with all of them."""
    fresh = [rid for rid, _ in drafts if (target.channel_id, rid) not in world.sent_random_ids]
    _take_flood_tokens(world, target, len(fresh))
    messages: list[Posted] = []
    for random_id, fields in drafts:
        key = (target.channel_id, random_id)
        if key not in world.sent_random_ids:
            message = world.build_message(target, **fields)
            target.messages[message.id] = message
            world.sent_random_ids[key] = [message.id]
        messages.extend(target.messages[i] for i in world.sent_random_ids[key])
    return world.updates_for(messages, target, [rid for rid, _ in drafts])


def forward_messages(world: World, query: Any) -> TLObject[Any]:
    source = _source(world, query.from_peer)
    target = _target(world, query.to_peer)
    if source.noforwards:
        raise RpcFault(400, "CHAT_FORWARDS_RESTRICTED")
    # A service message cannot be forwarded: it is passed over like a deleted one.
    found = [source.messages.get(message_id) for message_id in query.id]
    originals = [m if isinstance(m, raw.types.Message) else None for m in found]
    if not any(originals):
        raise RpcFault(400, "MESSAGE_ID_INVALID")
    groups: dict[int, int] = {}
    drafts = []
    for original, random_id in zip(originals, query.random_id, strict=True):
        if original is not None:
            fields = _forwarded_fields(world, source, original, query, groups)
            drafts.append((random_id, fields))
    return _send(world, target, drafts)


def _source(world: World, peer: Any) -> Channel:
    if isinstance(peer, raw.types.InputPeerChannel):
        return world.channel_for_reading(peer.channel_id, peer.access_hash)
    raise RpcFault(400, "PEER_ID_INVALID")


def _forwarded_fields(
    world: World, source: Channel, original: Any, query: Any, groups: dict[int, int]
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "message": "" if query.drop_media_captions and original.media else original.message,
        "entities": original.entities,
        "media": original.media,
    }
    if original.grouped_id:
        fields["grouped_id"] = groups.setdefault(original.grouped_id, world.new_grouped_id())
    if not query.drop_author:
        fields["fwd_from"] = raw.types.MessageFwdHeader(
            date=original.date,
            from_id=raw.types.PeerChannel(channel_id=source.channel_id),
            channel_post=original.id,
        )
    return fields


def send_message(world: World, query: Any) -> TLObject[Any]:
    target = _target(world, query.peer)
    fields = {"message": query.message, "entities": query.entities}
    return _send(world, target, [(query.random_id, fields)])


def send_media(world: World, query: Any) -> TLObject[Any]:
    target = _target(world, query.peer)
    stored = files.stored_file_of(world, query.media)
    fields = {
        "message": query.message,
        "entities": query.entities,
        "media": stored.as_media(world.now()),
    }
    return _send(world, target, [(query.random_id, fields)])


def send_multi_media(world: World, query: Any) -> TLObject[Any]:
    target = _target(world, query.peer)
    if not 1 < len(query.multi_media) <= 10:
        raise RpcFault(400, "MULTI_MEDIA_TOO_LONG")
    grouped_id = world.new_grouped_id()
    drafts = []
    for item in query.multi_media:
        stored = files.stored_file_of(world, item.media)
        fields = {
            "message": item.message,
            "entities": item.entities,
            "media": stored.as_media(world.now()),
            "grouped_id": grouped_id,
        }
        drafts.append((item.random_id, fields))
    return _send(world, target, drafts)


def upload_media(world: World, query: Any) -> TLObject[Any]:
    _target(world, query.peer)
    return files.stored_file_of(world, query.media).as_media(world.now())


def random_id_keys(query: TLObject[Any]) -> set[tuple[int, int]]:
    """(peer, random_id) pairs a send carries, to spot the same send while it is in flight."""
    peer = getattr(query, "to_peer", None) or getattr(query, "peer", None)
    peer_id = getattr(peer, "channel_id", 0)
    if isinstance(query, raw.functions.messages.ForwardMessages):
        return {(peer_id, rid) for rid in query.random_id}
    if isinstance(query, raw.functions.messages.SendMultiMedia):
        return {(peer_id, item.random_id) for item in query.multi_media}
    if isinstance(query, raw.functions.messages.SendMessage | raw.functions.messages.SendMedia):
        return {(peer_id, query.random_id)}
    return set()


HANDLERS = {
    raw.functions.messages.ForwardMessages: forward_messages,
    raw.functions.messages.SendMessage: send_message,
    raw.functions.messages.SendMedia: send_media,
    raw.functions.messages.SendMultiMedia: send_multi_media,
    raw.functions.messages.UploadMedia: upload_media,
}
