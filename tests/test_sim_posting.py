"""Posting into simulated channels: real bytes, the media kinds as Telegram shapes them."""

from __future__ import annotations

import pytest
from pyrogram import raw

from forwarder.sim import World
from forwarder.sim.posting import (
    KINDS,
    post_album,
    post_dice,
    post_media,
    post_poll,
    post_text,
    post_title_change,
    post_web_page,
)

ATTRIBUTES = {
    "video": ["DocumentAttributeVideo"],
    "animation": ["DocumentAttributeAnimated", "DocumentAttributeVideo"],
    "audio": ["DocumentAttributeAudio"],
    "voice": ["DocumentAttributeAudio"],
    "sticker": ["DocumentAttributeSticker", "DocumentAttributeImageSize"],
    "document": ["DocumentAttributeFilename"],
}


def updates_of(world: World) -> list[raw.types.Updates]:
    pushed: list[raw.types.Updates] = []
    world.listeners.append(pushed.append)
    return pushed


@pytest.mark.parametrize("kind", [kind for kind in KINDS if kind != "photo"])
def test_documents_carry_the_mime_type_and_attributes_of_their_kind(kind: str) -> None:
    world = World()
    channel = world.create_channel("News")

    posted = post_media(world, channel, b"bytes", kind, caption="look")

    document = posted.media.document
    assert [type(a).__name__ for a in document.attributes] == ATTRIBUTES[kind]
    assert document.mime_type.split("/")[0] in ("video", "audio", "image", "application")
    assert world.files[document.id].data == b"bytes"
    assert posted.message == "look"


def test_a_voice_note_is_audio_marked_as_voice_and_a_sticker_is_webp() -> None:
    world = World()
    channel = world.create_channel("News")

    voice = post_media(world, channel, b"ogg", "voice").media.document
    sticker = post_media(world, channel, b"webp", "sticker", alt="🐈").media.document

    assert (voice.mime_type, voice.attributes[0].voice) == ("audio/ogg", True)
    assert sticker.mime_type == "image/webp"
    assert sticker.attributes[0].alt == "🐈"
    assert isinstance(sticker.attributes[0].stickerset, raw.types.InputStickerSetEmpty)


def test_details_override_the_defaults() -> None:
    world = World()
    channel = world.create_channel("News")

    posted = post_media(
        world, channel, b"%PDF", "document", file_name="report.pdf", mime_type="application/pdf"
    )

    document = posted.media.document
    assert document.mime_type == "application/pdf"
    assert document.attributes == [raw.types.DocumentAttributeFilename(file_name="report.pdf")]


def test_an_unknown_kind_is_refused() -> None:
    world = World()

    with pytest.raises(ValueError, match="unknown media kind 'hologram'"):
        post_media(world, world.create_channel("News"), b"?", "hologram")


def test_files_of_a_protected_channel_are_stored_protected() -> None:
    world = World()
    open_channel = world.create_channel("Open")
    closed_channel = world.create_channel("Closed", protected=True)

    shared = post_media(world, open_channel, b"a", "photo")
    kept = post_media(world, closed_channel, b"b", "photo")

    assert not world.files[shared.media.photo.id].protected
    assert world.files[kept.media.photo.id].protected
    assert kept.noforwards


def test_an_album_is_pushed_as_one_update_per_part_with_one_grouped_id() -> None:
    world = World()
    channel = world.create_channel("News")
    pushed = updates_of(world)

    posted = post_album(world, channel, [(b"1", "photo", "one"), (b"2", "video", "two")])

    assert len(pushed) == 2
    assert [update.updates[0].message.id for update in pushed] == [m.id for m in posted]
    assert posted[0].grouped_id is not None
    assert posted[0].grouped_id == posted[1].grouped_id
    assert [m.message for m in posted] == ["one", "two"]


def test_a_web_page_preview_marks_its_link_in_utf16_units() -> None:
    world = World()

    posted = post_web_page(world, world.create_channel("News"), "👀 see https://example.com/a")

    [link] = posted.entities
    assert isinstance(link, raw.types.MessageEntityUrl)
    assert (link.offset, link.length) == (7, len("https://example.com/a"))
    assert posted.media.webpage.url == "https://example.com/a"


def test_a_web_page_needs_a_link() -> None:
    with pytest.raises(ValueError, match="needs a link"):
        post_web_page(World(), World().create_channel("News"), "no link here")


def test_polls_dice_and_service_messages_are_posted() -> None:
    world = World()
    channel = world.create_channel("News")
    pushed = updates_of(world)

    poll = post_poll(world, channel, "Lunch?", ["Soup", "Salad"])
    dice = post_dice(world, channel, "🎯", 6)
    renamed = post_title_change(world, channel, "News, renamed")
    post_text(world, channel, "after")

    assert [a.text.text for a in poll.media.poll.answers] == ["Soup", "Salad"]
    assert (dice.media.emoticon, dice.media.value) == ("🎯", 6)
    assert isinstance(renamed, raw.types.MessageService)
    assert channel.messages[renamed.id] is renamed
    assert channel.title == "News, renamed"
    assert len(pushed) == 4
    assert [m.message for m in world.history(channel)] == ["", "", "after"]


def test_expired_file_references_are_renewed_in_stored_messages() -> None:
    world = World()
    channel = world.create_channel("News")
    posted = post_media(world, channel, b"clip", "video")
    before = posted.media.document.file_reference

    world.expire_file_references()

    stored = world.files[posted.media.document.id]
    assert stored.file_reference != before
    assert channel.messages[posted.id].media.document.file_reference == stored.file_reference
