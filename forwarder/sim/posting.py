"""Posts into a simulated channel with real bytes, each pushed to the listeners as Telegram does.

post_text(world, news, "hello")
post_media(world, news, b"...", "video", caption="clip", duration=12)
post_album(world, news, [(b"...", "photo", "one"), (b"...", "video", "")])

A file posted in a protected channel is stored protected: it cannot be sent by reference.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import TypedDict, Unpack

from pyrogram import raw

from forwarder.sim.world import Channel, StoredFile, World

_MIME_TYPES = {
    "video": "video/mp4",
    "document": "application/octet-stream",
    "audio": "audio/mpeg",
    "voice": "audio/ogg",
    "animation": "video/mp4",
    "sticker": "image/webp",
}
KINDS = ("photo", *_MIME_TYPES)
_URL = re.compile(r"https?://\S+")
_media_ids = itertools.count(7_000_000_000_000)  # web pages and polls have ids of their own


class Details(TypedDict, total=False):
    """What a media post may state beyond its bytes; anything left out has a plain default."""

    mime_type: str
    file_name: str
    duration: int
    width: int
    height: int
    title: str
    performer: str
    alt: str  # the emoji a sticker stands for


def post_text(
    world: World, channel: Channel, text: str, entities: list[raw.base.MessageEntity] | None = None
) -> raw.types.Message:
    return world.add_message(channel, message=text, entities=entities)


def post_media(
    world: World,
    channel: Channel,
    data: bytes,
    kind: str,
    caption: str = "",
    entities: list[raw.base.MessageEntity] | None = None,
    **details: Unpack[Details],
) -> raw.types.Message:
    """A photo, or a document of `kind` (one of KINDS) with its mime type and attributes."""
    media = store_media(world, channel, data, kind, **details).as_media(world.now())
    return world.add_message(channel, message=caption, entities=entities, media=media)


def post_album(
    world: World, channel: Channel, items: Sequence[tuple[bytes, str, str]]
) -> list[raw.types.Message]:
    """One message per (data, kind, caption), sharing a grouped_id, each its own update."""
    grouped_id = world.new_grouped_id()
    posted = []
    for data, kind, caption in items:
        media = store_media(world, channel, data, kind).as_media(world.now())
        posted.append(
            world.add_message(channel, message=caption, media=media, grouped_id=grouped_id)
        )
    return posted


def post_web_page(world: World, channel: Channel, text: str) -> raw.types.Message:
    """A text with a link, shown with the link's preview, as Telegram adds one."""
    found = _URL.search(text)
    if found is None:
        raise ValueError(f"a web page preview needs a link in the text: {text!r}")
    url = found.group()
    page = raw.types.WebPage(
        id=next(_media_ids),
        url=url,
        display_url=url.split("://", 1)[1],
        hash=0,
        type="article",
        site_name="Example",
        title="A page",
        description="What the page is about.",
    )
    link = raw.types.MessageEntityUrl(
        offset=_utf16_len(text[: found.start()]), length=_utf16_len(url)
    )
    media = raw.types.MessageMediaWebPage(webpage=page)
    return world.add_message(channel, message=text, entities=[link], media=media)


def post_poll(
    world: World, channel: Channel, question: str, answers: Sequence[str] = ("Yes", "No")
) -> raw.types.Message:
    options: list[raw.base.PollAnswer] = [
        raw.types.PollAnswer(
            text=raw.types.TextWithEntities(text=answer, entities=[]), option=bytes([i])
        )
        for i, answer in enumerate(answers)
    ]
    poll = raw.types.Poll(
        id=next(_media_ids),
        question=raw.types.TextWithEntities(text=question, entities=[]),
        answers=options,
        hash=0,
    )
    media = raw.types.MessageMediaPoll(poll=poll, results=raw.types.PollResults())
    return world.add_message(channel, media=media)


def post_dice(
    world: World, channel: Channel, emoticon: str = "🎲", value: int = 4
) -> raw.types.Message:
    media = raw.types.MessageMediaDice(value=value, emoticon=emoticon)
    return world.add_message(channel, media=media)


def post_title_change(world: World, channel: Channel, title: str) -> raw.types.MessageService:
    """A service message: the channel was renamed."""
    channel.title = title
    return world.add_service_message(channel, raw.types.MessageActionChatEditTitle(title=title))


def store_media(
    world: World, channel: Channel, data: bytes, kind: str, **details: Unpack[Details]
) -> StoredFile:
    """The file behind a media post, protected when the channel restricts saving."""
    if kind == "photo":
        return world.store_file(data, "photo", protected=channel.noforwards)
    if kind not in _MIME_TYPES:
        raise ValueError(f"unknown media kind {kind!r}; one of {', '.join(KINDS)}")
    return world.store_file(
        data,
        "document",
        mime_type=details.get("mime_type", _MIME_TYPES[kind]),
        attributes=_attributes(kind, details),
        protected=channel.noforwards,
    )


def _attributes(kind: str, details: Details) -> list[raw.base.DocumentAttribute]:
    duration = details.get("duration", 3)
    video = raw.types.DocumentAttributeVideo(
        duration=duration,
        w=details.get("width", 640),
        h=details.get("height", 360),
        supports_streaming=True,
    )
    sticker = raw.types.DocumentAttributeSticker(
        alt=details.get("alt", "🙂"), stickerset=raw.types.InputStickerSetEmpty()
    )
    audio = raw.types.DocumentAttributeAudio(
        duration=duration, title=details.get("title"), performer=details.get("performer")
    )
    by_kind: dict[str, list[raw.base.DocumentAttribute]] = {
        "video": [video],
        "animation": [raw.types.DocumentAttributeAnimated(), video],
        "audio": [audio],
        "voice": [raw.types.DocumentAttributeAudio(duration=duration, voice=True)],
        "sticker": [sticker, raw.types.DocumentAttributeImageSize(w=512, h=512)],
        "document": [],
    }
    attributes = by_kind[kind]
    file_name = details.get("file_name", "file.bin" if kind == "document" else "")
    if file_name:
        attributes.append(raw.types.DocumentAttributeFilename(file_name=file_name))
    return attributes


def _utf16_len(text: str) -> int:
    # Telegram counts entity offsets and lengths in UTF-16 code units.
    return len(text.encode("utf-16-le")) // 2
