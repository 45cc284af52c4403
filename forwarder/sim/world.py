"""The simulated Telegram's state: one account, its channels, their messages and files.

Everything here is plain data and rules; `server` turns requests into calls on a `World`.
Channel ids start above 2**31, where upstream pyrogram's "Peer id invalid" used to strike.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pyrogram import raw

from forwarder.sim.flood import FloodModel

DC_ID = 2
API_ID = 611335
ACCOUNT_USER_ID = 5_000_000_001
FIRST_CHANNEL_ID = 2_147_483_700


class RpcFault(Exception):
    """An RPC error the server answers with, e.g. RpcFault(400, "CHANNEL_INVALID")."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message


@dataclass
class StoredFile:
    """A photo or document the server keeps, with the file reference that is valid now."""

    file_id: int
    data: bytes
    kind: str  # "photo" or "document"
    mime_type: str = "application/octet-stream"
    attributes: list[raw.base.DocumentAttribute] = field(default_factory=list)
    protected: bool = False
    access_hash: int = field(default_factory=lambda: int.from_bytes(os.urandom(7), "big"))
    file_reference: bytes = field(default_factory=lambda: os.urandom(16))

    def as_media(self, date: int) -> raw.base.MessageMedia:
        if self.kind == "photo":
            return raw.types.MessageMediaPhoto(photo=self.as_photo(date))
        return raw.types.MessageMediaDocument(document=self.as_document(date))

    def as_photo(self, date: int) -> raw.types.Photo:
        size = raw.types.PhotoSize(type="y", w=1280, h=960, size=len(self.data))
        return raw.types.Photo(
            id=self.file_id,
            access_hash=self.access_hash,
            file_reference=self.file_reference,
            date=date,
            sizes=[size],
            dc_id=DC_ID,
        )

    def as_document(self, date: int) -> raw.types.Document:
        return raw.types.Document(
            id=self.file_id,
            access_hash=self.access_hash,
            file_reference=self.file_reference,
            date=date,
            mime_type=self.mime_type,
            size=len(self.data),
            dc_id=DC_ID,
            attributes=list(self.attributes),
        )


# What a channel holds: posts, and service messages (a rename, a pin).
Posted = raw.types.Message | raw.types.MessageService


@dataclass
class Channel:
    """A broadcast channel. The account reads it when a member, writes to it when a writer."""

    channel_id: int
    title: str
    username: str | None = None
    noforwards: bool = False
    member: bool = True
    writer: bool = True
    access_hash: int = field(default_factory=lambda: int.from_bytes(os.urandom(7), "big"))
    messages: dict[int, Posted] = field(default_factory=dict)
    last_message_id: int = 0
    pts: int = 1

    @property
    def chat_id(self) -> int:
        """The id as pyrogram and the Bot API write it: -100 followed by the channel id."""
        return -1_000_000_000_000 - self.channel_id

    def as_chat(self) -> raw.types.Channel:
        return raw.types.Channel(
            id=self.channel_id,
            title=self.title,
            photo=raw.types.ChatPhotoEmpty(),
            date=0,
            access_hash=self.access_hash,
            broadcast=True,
            username=self.username,
            noforwards=self.noforwards or None,
            left=not self.member or None,
            creator=self.writer or None,
        )

    def next_message_id(self) -> int:
        self.last_message_id += 1
        self.pts += 1
        return self.last_message_id


UpdateListener = Callable[[raw.types.Updates], None]


class World:
    """The account, its channels and files, random_id dedup and the flood model."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.channels: dict[int, Channel] = {}
        self.files: dict[int, StoredFile] = {}
        self.flood = FloodModel(clock)
        self.sent_random_ids: dict[tuple[int, int], list[int]] = {}
        self.in_flight_random_ids: set[tuple[int, int]] = set()
        self.listeners: list[UpdateListener] = []
        self.uploads: dict[int, dict[int, bytes]] = {}
        self._ids = itertools.count(FIRST_CHANNEL_ID)
        self._file_ids = itertools.count(5_000_000_000_000)
        self._grouped_ids = itertools.count(13_000_000_000_000_000)

    def now(self) -> int:
        return int(self.clock())

    # -- the account ---------------------------------------------------------------------

    def account_user(self) -> raw.types.User:
        return raw.types.User(
            id=ACCOUNT_USER_ID,
            is_self=True,
            access_hash=1,
            first_name="Forwarder",
            username="forwarder_account",
        )

    # -- channels ------------------------------------------------------------------------

    def create_channel(
        self,
        title: str,
        *,
        username: str | None = None,
        protected: bool = False,
        member: bool = True,
        writer: bool = True,
    ) -> Channel:
        channel = Channel(next(self._ids), title, username, protected, member, writer)
        self.channels[channel.channel_id] = channel
        return channel

    def channel_by_username(self, username: str) -> Channel:
        for channel in self.channels.values():
            if channel.username and channel.username.lower() == username.lower():
                return channel
        raise RpcFault(400, "USERNAME_NOT_OCCUPIED")

    def channel_for_reading(self, channel_id: int, access_hash: int | None) -> Channel:
        channel = self.channels.get(channel_id)
        if channel is None or (access_hash is not None and access_hash != channel.access_hash):
            raise RpcFault(400, "CHANNEL_INVALID")
        if not channel.member and not channel.username:
            raise RpcFault(400, "CHANNEL_PRIVATE")
        return channel

    def channel_for_writing(self, channel_id: int, access_hash: int | None) -> Channel:
        channel = self.channel_for_reading(channel_id, access_hash)
        if not channel.writer:
            raise RpcFault(403, "CHAT_WRITE_FORBIDDEN")
        return channel

    # -- files ---------------------------------------------------------------------------

    def store_file(self, data: bytes, kind: str, **details: object) -> StoredFile:
        stored = StoredFile(next(self._file_ids), data, kind, **details)  # type: ignore[arg-type]
        self.files[stored.file_id] = stored
        return stored

    def expire_file_references(self) -> None:
        """Every file reference handed out so far stops working, as Telegram's do in time.

        Messages read from now on carry the new references, as a message fetched again does.
        """
        for stored in self.files.values():
            stored.file_reference = os.urandom(16)
        for channel in self.channels.values():
            for message in channel.messages.values():
                self._renew_file_reference(message)

    def _renew_file_reference(self, message: Posted) -> None:
        media = message.media if isinstance(message, raw.types.Message) else None
        file = getattr(media, "photo", None) or getattr(media, "document", None)
        if isinstance(file, raw.types.Photo | raw.types.Document) and file.id in self.files:
            file.file_reference = self.files[file.id].file_reference

    def file_for(self, file_id: int, access_hash: int, file_reference: bytes) -> StoredFile:
        stored = self.files.get(file_id)
        if stored is None or stored.access_hash != access_hash:
            raise RpcFault(400, "MEDIA_INVALID")
        if stored.file_reference != file_reference:
            raise RpcFault(400, "FILE_REFERENCE_EXPIRED")
        return stored

    # -- messages ------------------------------------------------------------------------

    def new_grouped_id(self) -> int:
        return next(self._grouped_ids)

    def add_message(self, channel: Channel, **fields: object) -> raw.types.Message:
        """Stores a new message in the channel and tells the listeners, as Telegram pushes it."""
        message = self.build_message(channel, **fields)
        channel.messages[message.id] = message
        self.broadcast([message], channel)
        return message

    def add_service_message(
        self, channel: Channel, action: raw.base.MessageAction
    ) -> raw.types.MessageService:
        """Stores a service message (a rename, a pin) and tells the listeners."""
        message = raw.types.MessageService(
            id=channel.next_message_id(),
            peer_id=raw.types.PeerChannel(channel_id=channel.channel_id),
            date=self.now(),
            action=action,
            post=True,
        )
        channel.messages[message.id] = message
        self.broadcast([message], channel)
        return message

    def build_message(self, channel: Channel, **fields: object) -> raw.types.Message:
        fields.setdefault("message", "")
        return raw.types.Message(
            id=channel.next_message_id(),
            peer_id=raw.types.PeerChannel(channel_id=channel.channel_id),
            date=self.now(),
            post=True,
            noforwards=channel.noforwards or None,
            **fields,  # type: ignore[arg-type]
        )

    def broadcast(self, messages: Sequence[Posted], channel: Channel) -> None:
        if not channel.member:
            return
        updates = self.updates_for(messages, channel)
        for listener in list(self.listeners):
            listener(updates)

    def updates_for(
        self, messages: Sequence[Posted], channel: Channel, random_ids: Sequence[int] = ()
    ) -> raw.types.Updates:
        items: list[raw.base.Update] = [
            raw.types.UpdateMessageID(id=message.id, random_id=random_id)
            for message, random_id in zip(messages, random_ids, strict=False)
        ]
        items += [
            raw.types.UpdateNewChannelMessage(message=message, pts=channel.pts, pts_count=1)
            for message in messages
        ]
        return raw.types.Updates(
            updates=items,
            users=[self.account_user()],
            chats=[channel.as_chat()],
            date=self.now(),
            seq=0,
        )

    def delete_message(self, channel: Channel, message_id: int) -> None:
        channel.messages.pop(message_id, None)

    def history(self, channel: Channel) -> list[raw.types.Message]:
        """The channel's posts, oldest first; its service messages are left out."""
        posted = [channel.messages[key] for key in sorted(channel.messages)]
        return [message for message in posted if isinstance(message, raw.types.Message)]
