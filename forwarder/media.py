"""Copies of messages (text, media, albums) and re-uploads of protected content."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyrogram import raw

from forwarder.errors import Uncopyable
from forwarder.jobs import Job

if TYPE_CHECKING:
    from forwarder.delivery import Delivery


async def copy(delivery: Delivery, job: Job, messages: list[Any]) -> None:
    """Sends copies of `messages` (one post or one album) without the forward header."""
    message = messages[0]
    if message.media is not None and not isinstance(message.media, raw.types.MessageMediaWebPage):
        raise Uncopyable("copying media is not built yet")
    index = job.message_ids.index(message.id)
    query = raw.functions.messages.SendMessage(
        peer=await delivery.peer(job.destination_chat_id),
        message=message.message,
        random_id=job.random_ids[index],
        entities=message.entities,
    )
    await delivery.invoke(query, f"copy to chat {job.destination_chat_id}")


async def reupload(delivery: Delivery, job: Job, messages: list[Any]) -> None:
    """Downloads the media of a protected post and sends it again as new messages."""
    raise Uncopyable("re-uploading protected content is not built yet")
