"""Uploads and downloads: file parts in, file parts out, and media built from them."""

from __future__ import annotations

from typing import Any

from pyrogram import raw
from pyrogram.raw.core import TLObject

from forwarder.sim.world import RpcFault, StoredFile, World

_LOCATIONS = (raw.types.InputPhotoFileLocation, raw.types.InputDocumentFileLocation)


def save_file_part(world: World, query: Any) -> bool:
    world.uploads.setdefault(query.file_id, {})[query.file_part] = query.bytes
    return True


def get_file(world: World, query: Any) -> TLObject[Any]:
    location = query.location
    if not isinstance(location, _LOCATIONS):
        raise RpcFault(400, "LOCATION_INVALID")
    stored = world.file_for(location.id, location.access_hash, location.file_reference)
    chunk = stored.data[query.offset : query.offset + query.limit]
    return raw.types.upload.File(type=raw.types.storage.FilePartial(), mtime=0, bytes=chunk)


def uploaded_bytes(world: World, input_file: Any) -> bytes:
    parts = world.uploads.pop(input_file.id, {})
    if sorted(parts) != list(range(input_file.parts)):
        raise RpcFault(400, "FILE_PARTS_INVALID")
    return b"".join(parts[index] for index in range(input_file.parts))


def stored_file_of(world: World, media: Any) -> StoredFile:
    """The file an InputMedia names or carries; a file from a protected chat cannot be sent."""
    if isinstance(media, raw.types.InputMediaUploadedPhoto):
        return world.store_file(uploaded_bytes(world, media.file), "photo")
    if isinstance(media, raw.types.InputMediaUploadedDocument):
        data = uploaded_bytes(world, media.file)
        attributes = list(media.attributes)
        return world.store_file(data, "document", mime_type=media.mime_type, attributes=attributes)
    if isinstance(media, raw.types.InputMediaPhoto | raw.types.InputMediaDocument):
        ref = media.id
        if not isinstance(ref, raw.types.InputPhoto | raw.types.InputDocument):
            raise RpcFault(400, "MEDIA_EMPTY")
        stored = world.file_for(ref.id, ref.access_hash, ref.file_reference)
        if stored.protected:
            raise RpcFault(400, "CHAT_FORWARDS_RESTRICTED")
        return stored
    raise RpcFault(400, "MEDIA_INVALID")


HANDLERS = {
    raw.functions.upload.SaveFilePart: save_file_part,
    raw.functions.upload.SaveBigFilePart: save_file_part,
    raw.functions.upload.GetFile: get_file,
}
