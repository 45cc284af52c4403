"""Albums end to end: posted as separate updates, grouped at intake, delivered in one call."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyrogram import raw

from forwarder.sim import Server
from forwarder.sim.posting import post_album, post_text
from tests.scenario import make_settings, running, settle

ALBUM = [
    (b"photo one" * 100, "photo", "the caption"),
    (b"photo two" * 100, "photo", ""),
    (b"photo three" * 100, "photo", ""),
    (b"a short video" * 100, "video", ""),
]
SENDS = (raw.functions.messages.ForwardMessages, raw.functions.messages.SendMultiMedia)


@pytest.mark.parametrize("mode", ["forward", "copy"])
async def test_an_album_arrives_whole_and_before_the_post_after_it(
    server: Server, tmp_path: Path, mode: str
) -> None:
    world = server.world
    source, mirror = world.create_channel("Source"), world.create_channel("Mirror")
    route = {"source": source.chat_id, "destinations": [mirror.chat_id], "mode": mode}
    async with running(server, make_settings(tmp_path, [route])) as forwarder:
        post_text(world, source, "before")
        post_album(world, source, ALBUM)
        post_text(world, source, "after")
        await settle(forwarder, 3)

    arrived = world.history(mirror)
    assert [m.message for m in arrived] == ["before", "the caption", "", "", "", "after"]
    album = arrived[1:5]
    assert len({m.grouped_id for m in album}) == 1 and album[0].grouped_id is not None
    sent = [world.files[_file_id(m)].data for m in album]
    assert sent == [data for data, _, _ in ALBUM]
    album_sends = [q for q in server.requests if isinstance(q, SENDS) and _size(q) > 1]
    assert len(album_sends) == 1, "the album went in one call"


async def test_an_album_longer_than_ten_is_split_into_albums_of_ten(
    server: Server, tmp_path: Path
) -> None:
    world = server.world
    source, mirror = world.create_channel("Source"), world.create_channel("Mirror")
    route = {"source": source.chat_id, "destinations": [mirror.chat_id]}
    async with running(server, make_settings(tmp_path, [route])) as forwarder:
        post_album(world, source, [(bytes([n]) * 50, "photo", "") for n in range(12)])
        await settle(forwarder, 2)

    assert len(world.history(mirror)) == 12
    assert len({m.grouped_id for m in world.history(mirror)}) == 2


def _file_id(message: raw.types.Message) -> int:
    media = message.media
    if isinstance(media, raw.types.MessageMediaPhoto):
        return int(media.photo.id)
    assert isinstance(media, raw.types.MessageMediaDocument)
    return int(media.document.id)


def _size(query: object) -> int:
    if isinstance(query, raw.functions.messages.ForwardMessages):
        return len(query.id)
    assert isinstance(query, raw.functions.messages.SendMultiMedia)
    return len(query.multi_media)
