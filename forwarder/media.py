"""Copies of messages (text, media, albums) and re-uploads of protected content.

A copy sends the photo or document that is already on Telegram by reference, so no byte
moves. A chat that restricts saving refuses that: its files are downloaded into a folder of
the job's own under the temporary directory, uploaded again and sent as new media, and the
folder is removed however the job ends. Either way an album goes out in one SendMultiMedia,
and each message carries the random id of its source message, whatever was left out.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyrogram import errors, raw
from pyrogram.file_id import FileId, FileType

from forwarder.errors import SourceMessageGone, Uncopyable
from forwarder.jobs import Job

if TYPE_CHECKING:
    from forwarder.delivery import Delivery

log = logging.getLogger("forwarder.delivery")

_UNCOPYABLE = {
    raw.types.MessageMediaPoll: "a poll",
    raw.types.MessageMediaDice: "a dice",
    raw.types.MessageMediaGame: "a game",
    raw.types.MessageMediaInvoice: "an invoice",
    raw.types.MessageMediaStory: "a story",
    raw.types.MessageMediaGiveaway: "a giveaway",
    raw.types.MessageMediaPaidMedia: "paid media",
}


# A link preview is made again by Telegram from the text; an empty media is no media.
_TEXT_ONLY = raw.types.MessageMediaWebPage | raw.types.MessageMediaEmpty


class DownloadTooLarge(Exception):
    """A protected file is larger than the download limit; the job fails with this reason."""


@dataclass(frozen=True)
class Part:
    """One message to send: its random id, text or caption, entities and media (None: text)."""

    random_id: int
    text: str
    entities: list[Any] | None
    media: Any | None


# -- copy ------------------------------------------------------------------------------------


async def copy(delivery: Delivery, job: Job, messages: list[Any]) -> None:
    """Sends copies of `messages` (one post, or an album's surviving parts), media by reference.

    Raises Uncopyable for a poll, a dice, a service message and the like.
    """
    parts = []
    for message in messages:
        file = _file_of(message)
        media = None if file is None else _by_reference(file, message.media.spoiler)
        parts.append(_part(job, message, media))
    await _send(delivery, job, parts)


# -- re-upload -------------------------------------------------------------------------------


async def reupload(delivery: Delivery, job: Job, messages: list[Any]) -> None:
    """Downloads the files of a protected post and sends them again as new media.

    Sizes are checked before any download; the job's temporary folder is removed on success,
    failure, timeout and cancellation alike.
    """
    for message in messages:
        _check_size(delivery, job, message)
    delivery.temp_dir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="job-", dir=delivery.temp_dir))
    try:
        parts = [await _reupload_part(delivery, job, message, folder) for message in messages]
        await _send(delivery, job, parts)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _reupload_part(delivery: Delivery, job: Job, message: Any, folder: Path) -> Part:
    if _file_of(message) is None:
        return _part(job, message, None)
    path = folder / f"message-{message.id}"
    try:
        await _download(delivery, job, message, path)
    except errors.FileReferenceExpired:
        # File references age; reading the message again hands out fresh ones. A second
        # expiry is let through and fails the job.
        log.warning(
            "file reference expired: chat=%d message=%d, reading it again",
            job.source_chat_id,
            message.id,
        )
        message = await _read_again(delivery, job, message.id)
        await _download(delivery, job, message, path)
    media = await _upload(delivery, job, message, path)
    return _part(job, message, media)


def _check_size(delivery: Delivery, job: Job, message: Any) -> None:
    file = _file_of(message)
    size = 0 if file is None else _stated_size(file)
    if size > delivery.max_download_bytes:
        raise DownloadTooLarge(_too_large(delivery, job, message.id, size))


def _too_large(delivery: Delivery, job: Job, message_id: int, size: int) -> str:
    return (
        f"the file of message {message_id} in chat {job.source_chat_id} is {size} bytes, "
        f"over the download limit of {delivery.max_download_bytes} bytes "
        "(max_download_bytes); raise the limit to re-upload it"
    )


async def _read_again(delivery: Delivery, job: Job, message_id: int) -> Any:
    for message in await delivery.fetch(job):
        if message.id == message_id:
            return message
    raise SourceMessageGone(f"message {message_id} of chat {job.source_chat_id} was deleted")


async def _download(delivery: Delivery, job: Job, message: Any, path: Path) -> None:
    """The message's file into `path`, under the download deadline, each attempt afresh."""
    file_id = _file_id(_file_of(message))
    what = f"download of message {message.id} from chat {job.source_chat_id}"
    log.debug("downloading %s", what)
    await delivery.retrier.run(
        what,
        lambda: _write_file(delivery, job, message.id, file_id, path),
        timeout_s=delivery.download_timeout_s,
    )


async def _write_file(
    delivery: Delivery, job: Job, message_id: int, file_id: FileId, path: Path
) -> None:
    written = 0
    with path.open("wb") as out:
        async with contextlib.aclosing(delivery.client.get_file(file_id)) as chunks:
            async for chunk in chunks:
                # The stated size was checked; this holds the limit against a file that lied.
                written += len(chunk)
                if written > delivery.max_download_bytes:
                    raise DownloadTooLarge(_too_large(delivery, job, message_id, written))
                out.write(chunk)


async def _upload(delivery: Delivery, job: Job, message: Any, path: Path) -> Any:
    """Uploads the file again; the answer is media that is sent by reference like a copy's.

    UploadMedia first, for a single post too: a send that is repeated after a lost answer
    then names the same uploaded photo or document.
    """
    what = f"upload to chat {job.destination_chat_id}"
    input_file = await delivery.retrier.run(
        what, lambda: _save_file(delivery, path), timeout_s=delivery.download_timeout_s
    )
    query = raw.functions.messages.UploadMedia(
        peer=await delivery.peer(job.destination_chat_id),
        media=_uploaded_media(_file_of(message), input_file),
    )
    uploaded = _file_in(await delivery.invoke(query, what))
    if uploaded is None:
        raise RuntimeError(f"Telegram answered an {what} without a photo or document")
    return _by_reference(uploaded, message.media.spoiler)


async def _save_file(delivery: Delivery, path: Path) -> Any:
    # Given a path, pyrogram closes the file only once its upload workers have ended, which a
    # deadline skips; the file is opened here so that it is closed whatever happens.
    with path.open("rb") as file:
        return await delivery.client.save_file(file)


def _uploaded_media(file: Any, input_file: Any) -> Any:
    if isinstance(file, raw.types.Photo):
        return raw.types.InputMediaUploadedPhoto(file=input_file)
    return raw.types.InputMediaUploadedDocument(
        file=input_file, mime_type=file.mime_type, attributes=file.attributes
    )


# -- sending ---------------------------------------------------------------------------------


async def _send(delivery: Delivery, job: Job, parts: list[Part]) -> None:
    """One SendMessage or SendMedia for a single part, one SendMultiMedia for an album."""
    peer = await delivery.peer(job.destination_chat_id)
    if len(parts) == 1:
        query = _single(peer, parts[0])
    else:
        multi_media = [_album_item(job, part) for part in parts]
        query = raw.functions.messages.SendMultiMedia(peer=peer, multi_media=multi_media)
    await delivery.invoke(query, f"copy to chat {job.destination_chat_id}")


def _single(peer: Any, part: Part) -> Any:
    if part.media is None:
        return raw.functions.messages.SendMessage(
            peer=peer, message=part.text, random_id=part.random_id, entities=part.entities
        )
    return raw.functions.messages.SendMedia(
        peer=peer,
        media=part.media,
        message=part.text,
        random_id=part.random_id,
        entities=part.entities,
    )


def _album_item(job: Job, part: Part) -> Any:
    if part.media is None:
        raise Uncopyable(f"an album of chat {job.source_chat_id} holds a part without media")
    return raw.types.InputSingleMedia(
        media=part.media, random_id=part.random_id, message=part.text, entities=part.entities
    )


def _part(job: Job, message: Any, media: Any | None) -> Part:
    # By message id, not by position: a deleted album part must not shift the ids after it.
    random_id = job.random_ids[job.message_ids.index(message.id)]
    return Part(random_id, message.message, message.entities or None, media)


# -- files -----------------------------------------------------------------------------------


def _file_of(message: Any) -> Any | None:
    """The photo or document a message carries; None for a text (with or without a preview).

    Raises Uncopyable for anything else: a service message, a poll, a dice, ...
    """
    if not isinstance(message, raw.types.Message):
        raise Uncopyable(f"message {message.id} is a service message, which cannot be copied")
    media = message.media
    if media is None or isinstance(media, _TEXT_ONLY):
        return None
    file = _file_in(media)
    if file is None:
        what = _UNCOPYABLE.get(type(media), f"media of type {type(media).__name__}")
        raise Uncopyable(f"message {message.id} holds {what}, which cannot be copied")
    return file


def _file_in(media: Any) -> Any | None:
    """The photo or document of a MessageMedia; None when it holds neither (or an empty one)."""
    if isinstance(media, raw.types.MessageMediaPhoto):
        return media.photo if isinstance(media.photo, raw.types.Photo) else None
    if isinstance(media, raw.types.MessageMediaDocument):
        return media.document if isinstance(media.document, raw.types.Document) else None
    return None


def _by_reference(file: Any, spoiler: bool | None) -> Any:
    if isinstance(file, raw.types.Photo):
        photo = raw.types.InputPhoto(
            id=file.id, access_hash=file.access_hash, file_reference=file.file_reference
        )
        return raw.types.InputMediaPhoto(id=photo, spoiler=spoiler)
    document = raw.types.InputDocument(
        id=file.id, access_hash=file.access_hash, file_reference=file.file_reference
    )
    return raw.types.InputMediaDocument(id=document, spoiler=spoiler)


def _photo_sizes(photo: Any) -> dict[str, int]:
    """The downloadable sizes of a photo, by type ("m", "x", "y", ...), in bytes."""
    sizes = {}
    for size in photo.sizes:
        if isinstance(size, raw.types.PhotoSize):
            sizes[size.type] = size.size
        elif isinstance(size, raw.types.PhotoSizeProgressive):
            sizes[size.type] = max(size.sizes, default=0)
    return sizes


def _stated_size(file: Any) -> int:
    if isinstance(file, raw.types.Photo):
        return max(_photo_sizes(file).values(), default=0)
    return int(file.size)


def _file_id(file: Any) -> FileId:
    """Where pyrogram downloads the file from: a photo's largest size, or the document."""
    if isinstance(file, raw.types.Photo):
        sizes = _photo_sizes(file)
        kind, thumbnail_size = FileType.PHOTO, max(sizes, key=sizes.__getitem__, default="")
    else:
        kind, thumbnail_size = FileType.DOCUMENT, ""
    return FileId(
        file_type=kind,
        dc_id=file.dc_id,
        media_id=file.id,
        access_hash=file.access_hash,
        file_reference=file.file_reference,
        thumbnail_size=thumbnail_size,
    )
