"""Copies and re-uploads against the simulated Telegram, with real bytes."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from pyrogram import Client, raw

from forwarder import media
from forwarder.delivery import Delivery
from forwarder.errors import Uncopyable
from forwarder.jobs import Job, Mode, State
from forwarder.retry import Retrier, RetryPolicy
from forwarder.sim import Channel, Server
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
from forwarder.sim.world import StoredFile
from forwarder.stats import Stats

BOLD = [raw.types.MessageEntityBold(offset=0, length=4)]
ALBUM_KINDS = ("photo", "photo", "photo", "video")


def make_delivery(client: Client, tmp_path: Path, **overrides: Any) -> Delivery:
    policy = RetryPolicy(timeout_s=overrides.pop("timeout_s", 2), retry_delay_s=0.05)
    options: dict[str, Any] = {
        "temp_dir": tmp_path / "tmp",
        "max_download_bytes": 10_000_000,
        "download_timeout_s": 2,
    }
    options.update(overrides)
    return Delivery(client, Retrier(policy, Stats()), **options)


def some_bytes(seed: str, size: int = 20_000) -> bytes:
    return random.Random(seed).randbytes(size)


def album_items(kinds: Sequence[str]) -> list[tuple[bytes, str, str]]:
    """(data, kind, caption) for each part: captions "part 0", "part 1", ..."""
    return [(some_bytes(f"part {i}"), kind, f"part {i}") for i, kind in enumerate(kinds)]


def job_of(source: Channel, messages: list[Any], destination: Channel, mode: Mode) -> Job:
    ids = tuple(message.id for message in messages)
    return Job(source.chat_id, ids, destination.chat_id, mode)


def stored(server: Server, message: Any) -> StoredFile:
    """The file a message's photo or document names, as the server keeps it."""
    held = message.media
    file = held.photo if isinstance(held, raw.types.MessageMediaPhoto) else held.document
    return server.world.files[file.id]


def arrived_album(server: Server, channel: Channel) -> list[tuple[bytes, str]]:
    """(data, caption) of each message a channel holds, which must make one album."""
    arrived = server.world.history(channel)
    assert len({message.grouped_id for message in arrived}) == 1
    assert arrived[0].grouped_id is not None
    return [(stored(server, message).data, message.message) for message in arrived]


def sent(items: list[tuple[bytes, str, str]]) -> list[tuple[bytes, str]]:
    return [(data, caption) for data, _, caption in items]


def wire(objects: list[Any]) -> list[bytes]:
    """TL objects as sent: an unset flag (None) and a cleared one (False) read the same."""
    return [item.write() for item in objects]


def requests_of(server: Server, method: type[Any]) -> list[Any]:
    return [query for query in server.requests if isinstance(query, method)]


def noting(event: asyncio.Event) -> Callable[[Any], bool]:
    """A fault condition that always holds and sets `event` when a request meets it."""

    def met(query: Any) -> bool:
        event.set()
        return True

    return met


def leftovers(temp_dir: Path) -> list[Path]:
    return list(temp_dir.iterdir()) if temp_dir.exists() else []


def channels(server: Server, *, protected: bool = False) -> tuple[Channel, Channel]:
    world = server.world
    return world.create_channel("Source", protected=protected), world.create_channel("Mirror")


# -- copy mode -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_copy_sends_each_media_kind_with_its_caption(
    server: Server, client: Client, tmp_path: Path, kind: str
) -> None:
    source, destination = channels(server)
    data = some_bytes(kind)
    posted = post_media(server.world, source, data, kind, caption=f"this {kind}", entities=BOLD)

    outcome = await make_delivery(client, tmp_path).deliver(
        job_of(source, [posted], destination, Mode.COPY)
    )

    assert outcome.state is State.DONE
    [copied] = server.world.history(destination)
    assert (copied.message, copied.entities) == (f"this {kind}", BOLD)
    assert copied.fwd_from is None
    original, copy = stored(server, posted), stored(server, copied)
    assert copy.data == data
    assert (copy.kind, copy.mime_type, wire(copy.attributes)) == (
        original.kind,
        original.mime_type,
        wire(original.attributes),
    )
    assert len(requests_of(server, raw.functions.messages.SendMedia)) == 1
    assert not requests_of(server, raw.functions.upload.GetFile)  # sent by reference


async def test_copy_of_a_text_keeps_its_entities(
    server: Server, client: Client, tmp_path: Path
) -> None:
    source, destination = channels(server)
    posted = post_text(server.world, source, "Bold news", BOLD)

    outcome = await make_delivery(client, tmp_path).deliver(
        job_of(source, [posted], destination, Mode.COPY)
    )

    assert outcome.state is State.DONE
    [copied] = server.world.history(destination)
    assert (copied.message, copied.entities, copied.media) == ("Bold news", BOLD, None)


async def test_copy_of_a_link_preview_sends_its_text(
    server: Server, client: Client, tmp_path: Path
) -> None:
    source, destination = channels(server)
    posted = post_web_page(server.world, source, "Read https://example.com/story today")

    outcome = await make_delivery(client, tmp_path).deliver(
        job_of(source, [posted], destination, Mode.COPY)
    )

    assert outcome.state is State.DONE
    [copied] = server.world.history(destination)
    assert (copied.message, copied.entities) == (posted.message, posted.entities)
    assert len(requests_of(server, raw.functions.messages.SendMessage)) == 1


@pytest.mark.parametrize(
    ("post", "reason"),
    [
        (lambda world, channel: post_poll(world, channel, "Lunch?"), "a poll"),
        (lambda world, channel: post_dice(world, channel), "a dice"),
    ],
)
async def test_copy_skips_what_telegram_cannot_copy(
    server: Server, client: Client, tmp_path: Path, post: Any, reason: str
) -> None:
    source, destination = channels(server)
    posted = post(server.world, source)

    outcome = await make_delivery(client, tmp_path).deliver(
        job_of(source, [posted], destination, Mode.COPY)
    )

    assert outcome.state is State.SKIPPED
    assert reason in outcome.reason
    assert server.world.history(destination) == []


async def test_copy_refuses_a_service_message(
    server: Server, client: Client, tmp_path: Path
) -> None:
    source, destination = channels(server)
    posted = post_title_change(server.world, source, "News, renamed")
    delivery = make_delivery(client, tmp_path)
    job = job_of(source, [posted], destination, Mode.COPY)

    with pytest.raises(Uncopyable, match="service message"):
        await media.copy(delivery, job, await delivery.fetch(job))


async def test_an_album_is_copied_as_one_album_in_order(
    server: Server, client: Client, tmp_path: Path
) -> None:
    source, destination = channels(server)
    items = album_items(ALBUM_KINDS)
    posted = post_album(server.world, source, items)

    outcome = await make_delivery(client, tmp_path).deliver(
        job_of(source, posted, destination, Mode.COPY)
    )

    assert outcome.state is State.DONE
    assert len(requests_of(server, raw.functions.messages.SendMultiMedia)) == 1
    assert not requests_of(server, raw.functions.messages.SendMedia)
    assert arrived_album(server, destination) == sent(items)
    copied = server.world.history(destination)
    assert [stored(server, m).kind for m in copied] == ["photo", "photo", "photo", "document"]
    assert copied[0].grouped_id != posted[0].grouped_id


async def test_a_forwarded_album_goes_in_one_forward(
    server: Server, client: Client, tmp_path: Path
) -> None:
    source, destination = channels(server)
    items = album_items(ALBUM_KINDS)
    posted = post_album(server.world, source, items)

    outcome = await make_delivery(client, tmp_path).deliver(
        job_of(source, posted, destination, Mode.FORWARD)
    )

    assert outcome.state is State.DONE
    [forward] = requests_of(server, raw.functions.messages.ForwardMessages)
    assert forward.id == [message.id for message in posted]
    forwarded = server.world.history(destination)
    assert [m.fwd_from.channel_post for m in forwarded] == forward.id
    assert len({m.grouped_id for m in forwarded}) == 1


async def test_deleted_album_parts_are_left_out_with_the_random_ids_of_the_rest(
    server: Server, client: Client, tmp_path: Path
) -> None:
    source, destination = channels(server)
    items = album_items(["photo"] * 4)
    posted = post_album(server.world, source, items)
    job = job_of(source, posted, destination, Mode.COPY)
    server.world.delete_message(source, posted[1].id)

    outcome = await make_delivery(client, tmp_path).deliver(job)

    assert outcome.state is State.DONE
    [send] = requests_of(server, raw.functions.messages.SendMultiMedia)
    sent_ids = [item.random_id for item in send.multi_media]
    assert sent_ids == [job.random_ids[0], job.random_ids[2], job.random_ids[3]]
    assert [m.message for m in server.world.history(destination)] == [
        "part 0",
        "part 2",
        "part 3",
    ]


async def test_a_lone_surviving_album_part_goes_as_a_single_media(
    server: Server, client: Client, tmp_path: Path
) -> None:
    source, destination = channels(server)
    posted = post_album(server.world, source, [(b"one", "photo", "1"), (b"two", "video", "2")])
    job = job_of(source, posted, destination, Mode.COPY)
    server.world.delete_message(source, posted[0].id)

    outcome = await make_delivery(client, tmp_path).deliver(job)

    assert outcome.state is State.DONE
    assert not requests_of(server, raw.functions.messages.SendMultiMedia)
    [send] = requests_of(server, raw.functions.messages.SendMedia)
    assert send.random_id == job.random_ids[1]
    [copied] = server.world.history(destination)
    assert (copied.message, stored(server, copied).data) == ("2", b"two")


@pytest.mark.parametrize("protected", [False, True], ids=["copy", "reupload"])
async def test_an_album_whose_answer_was_lost_arrives_once(
    server: Server, client: Client, tmp_path: Path, protected: bool
) -> None:
    source, destination = channels(server, protected=protected)
    items = album_items(ALBUM_KINDS)
    posted = post_album(server.world, source, items)
    lost = server.faults.lose_answer(raw.functions.messages.SendMultiMedia)

    outcome = await make_delivery(client, tmp_path, timeout_s=0.5).deliver(
        job_of(source, posted, destination, Mode.COPY)
    )

    assert outcome.state is State.DONE
    assert lost.hits == 1
    assert len(requests_of(server, raw.functions.messages.SendMultiMedia)) == 2
    assert arrived_album(server, destination) == sent(items)


# -- protected content -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", [Mode.FORWARD, Mode.COPY])
@pytest.mark.parametrize("kind", KINDS)
async def test_protected_media_is_uploaded_again_byte_for_byte(
    server: Server, client: Client, tmp_path: Path, mode: Mode, kind: str
) -> None:
    source, destination = channels(server, protected=True)
    data = some_bytes(kind)
    posted = post_media(server.world, source, data, kind, caption=f"this {kind}", entities=BOLD)
    delivery = make_delivery(client, tmp_path)

    outcome = await delivery.deliver(job_of(source, [posted], destination, mode))

    assert outcome.state is State.DONE
    [copied] = server.world.history(destination)
    assert (copied.message, copied.entities, copied.fwd_from) == (f"this {kind}", BOLD, None)
    original, copy = stored(server, posted), stored(server, copied)
    assert copy.file_id != original.file_id
    assert copy.data == data
    assert (copy.kind, copy.mime_type, wire(copy.attributes)) == (
        original.kind,
        original.mime_type,
        wire(original.attributes),
    )
    assert leftovers(delivery.temp_dir) == []


@pytest.mark.parametrize("mode", [Mode.FORWARD, Mode.COPY])
async def test_a_protected_album_is_uploaded_again_as_one_album(
    server: Server, client: Client, tmp_path: Path, mode: Mode
) -> None:
    source, destination = channels(server, protected=True)
    items = album_items(ALBUM_KINDS)
    posted = post_album(server.world, source, items)
    delivery = make_delivery(client, tmp_path)

    outcome = await delivery.deliver(job_of(source, posted, destination, mode))

    assert outcome.state is State.DONE
    assert len(requests_of(server, raw.functions.messages.SendMultiMedia)) == 1
    assert arrived_album(server, destination) == sent(items)
    assert leftovers(delivery.temp_dir) == []


async def test_a_protected_text_is_sent_as_text(
    server: Server, client: Client, tmp_path: Path
) -> None:
    source, destination = channels(server, protected=True)
    posted = post_text(server.world, source, "Bold words only", BOLD)

    outcome = await make_delivery(client, tmp_path).deliver(
        job_of(source, [posted], destination, Mode.FORWARD)
    )

    assert outcome.state is State.DONE
    [copied] = server.world.history(destination)
    assert (copied.message, copied.entities, copied.media) == ("Bold words only", BOLD, None)


@pytest.mark.parametrize(
    "method",
    [raw.functions.upload.GetFile, raw.functions.upload.SaveFilePart],
    ids=["download", "upload"],
)
async def test_a_hung_transfer_fails_the_job_and_leaves_no_file(
    server: Server, client: Client, tmp_path: Path, method: type[Any]
) -> None:
    source, destination = channels(server, protected=True)
    posted = post_media(server.world, source, some_bytes("hang"), "video")
    server.faults.hang(method)
    delivery = make_delivery(client, tmp_path, download_timeout_s=0.3)

    outcome = await delivery.deliver(job_of(source, [posted], destination, Mode.COPY))

    assert outcome.state is State.FAILED
    assert "deadline" in outcome.reason
    assert server.world.history(destination) == []
    assert leftovers(delivery.temp_dir) == []


async def test_a_cancelled_download_leaves_no_file(
    server: Server, client: Client, tmp_path: Path
) -> None:
    source, destination = channels(server, protected=True)
    posted = post_media(server.world, source, some_bytes("cancel"), "document")
    downloading = asyncio.Event()
    server.faults.hang(raw.functions.upload.GetFile, when=noting(downloading))
    delivery = make_delivery(client, tmp_path, download_timeout_s=30)
    task = asyncio.create_task(delivery.deliver(job_of(source, [posted], destination, Mode.COPY)))
    await downloading.wait()
    assert leftovers(delivery.temp_dir) != []  # the job's folder, while it downloads

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert leftovers(delivery.temp_dir) == []


async def test_a_file_over_the_size_limit_fails_the_job_before_downloading(
    server: Server, client: Client, tmp_path: Path
) -> None:
    source, destination = channels(server, protected=True)
    posted = post_media(server.world, source, some_bytes("big", 5_000), "document")
    delivery = make_delivery(client, tmp_path, max_download_bytes=4_000)

    outcome = await delivery.deliver(job_of(source, [posted], destination, Mode.COPY))

    assert outcome.state is State.FAILED
    assert "DownloadTooLarge" in outcome.reason
    assert "5000 bytes" in outcome.reason
    assert "max_download_bytes" in outcome.reason
    assert not requests_of(server, raw.functions.upload.GetFile)
    assert leftovers(delivery.temp_dir) == []


async def test_an_expired_file_reference_is_renewed_once(
    server: Server, client: Client, tmp_path: Path
) -> None:
    source, destination = channels(server, protected=True)
    data = some_bytes("expiring")
    posted = post_media(server.world, source, data, "photo", caption="fresh")
    server.faults.error(raw.functions.upload.GetFile, 400, "FILE_REFERENCE_EXPIRED")
    delivery = make_delivery(client, tmp_path)

    outcome = await delivery.deliver(job_of(source, [posted], destination, Mode.COPY))

    assert outcome.state is State.DONE
    [copied] = server.world.history(destination)
    assert stored(server, copied).data == data
    assert len(requests_of(server, raw.functions.channels.GetMessages)) == 2
    assert leftovers(delivery.temp_dir) == []


async def test_a_file_reference_that_expires_twice_fails_the_job(
    server: Server, client: Client, tmp_path: Path
) -> None:
    source, destination = channels(server, protected=True)
    posted = post_media(server.world, source, some_bytes("stale"), "photo")
    server.faults.error(raw.functions.upload.GetFile, 400, "FILE_REFERENCE_EXPIRED", times=2)
    delivery = make_delivery(client, tmp_path)

    outcome = await delivery.deliver(job_of(source, [posted], destination, Mode.COPY))

    assert outcome.state is State.FAILED
    assert "FileReferenceExpired" in outcome.reason
    assert server.world.history(destination) == []
    assert leftovers(delivery.temp_dir) == []


async def test_a_post_whose_file_references_expired_since_is_read_afresh(
    server: Server, client: Client, tmp_path: Path
) -> None:
    source, destination = channels(server, protected=True)
    data = some_bytes("aged")
    posted = post_media(server.world, source, data, "video")
    server.world.expire_file_references()

    outcome = await make_delivery(client, tmp_path).deliver(
        job_of(source, [posted], destination, Mode.FORWARD)
    )

    assert outcome.state is State.DONE
    [copied] = server.world.history(destination)
    assert stored(server, copied).data == data
