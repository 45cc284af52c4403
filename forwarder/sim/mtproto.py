"""The server side of MTProto 2.0: the mirror image of what pyrogram's Session does.

A client encrypts with the first half of the auth key's derivation (x = 0) and the server with
the second (x = 8); the server's message ids are odd and strictly increasing.
https://core.telegram.org/mtproto/description
"""

from __future__ import annotations

import base64
import os
import struct
import time
from dataclasses import dataclass
from hashlib import sha1, sha256
from io import BytesIO
from typing import Any

from pyrogram.crypto import aes
from pyrogram.raw.core import Long, Message, TLObject

# pyrogram's own layout of a session string: dc id, api id, test mode, auth key, user id, bot.
SESSION_STRING_FORMAT = ">BI?256sQ?"


def new_auth_key() -> bytes:
    return os.urandom(256)


def auth_key_id(auth_key: bytes) -> bytes:
    return sha1(auth_key).digest()[-8:]


def session_string(dc_id: int, api_id: int, auth_key: bytes, user_id: int, is_bot: bool) -> str:
    """A session string that pyrogram's storage reads as an authorized session."""
    packed = struct.pack(SESSION_STRING_FORMAT, dc_id, api_id, False, auth_key, user_id, is_bot)
    return base64.urlsafe_b64encode(packed).decode().rstrip("=")


def _kdf(auth_key: bytes, msg_key: bytes, x: int) -> tuple[bytes, bytes]:
    sha256_a = sha256(msg_key + auth_key[x : x + 36]).digest()
    sha256_b = sha256(auth_key[x + 40 : x + 76] + msg_key).digest()
    aes_key = sha256_a[:8] + sha256_b[8:24] + sha256_a[24:32]
    aes_iv = sha256_b[:8] + sha256_a[8:24] + sha256_b[24:32]
    return aes_key, aes_iv


@dataclass(frozen=True)
class Incoming:
    """One decrypted client message."""

    session_id: bytes
    message: Message


def decrypt(packet: bytes, auth_key: bytes) -> Incoming:
    """Decrypts a packet a client sent with `auth_key`; raises ValueError on a bad msg_key."""
    msg_key = packet[8:24]
    aes_key, aes_iv = _kdf(auth_key, msg_key, 0)
    plain = aes.ige256_decrypt(packet[24:], aes_key, aes_iv)
    if sha256(auth_key[88:120] + plain).digest()[8:24] != msg_key:
        raise ValueError("msg_key does not match the decrypted data")
    data = BytesIO(plain)
    data.read(8)  # the salt: this server accepts any
    session_id = data.read(8)
    return Incoming(session_id, Message.read(data))


def encrypt(body: TLObject[Any], msg_id: int, session_id: bytes, auth_key: bytes) -> bytes:
    """Packs and encrypts one server message for the client's session."""
    message = Message(body, msg_id, 0, len(body.write()))
    data = Long(0) + session_id + message.write()
    padding = os.urandom(-(len(data) + 12) % 16 + 12)
    msg_key = sha256(auth_key[96:128] + data + padding).digest()[8:24]
    aes_key, aes_iv = _kdf(auth_key, msg_key, 8)
    return auth_key_id(auth_key) + msg_key + aes.ige256_encrypt(data + padding, aes_key, aes_iv)


class MessageIds:
    """Server message ids: time-based, odd (1 mod 4 for answers) and strictly increasing."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        candidate = (int(time.time() * 2**32) & ~0b11) | 1
        self._last = max(candidate, self._last + 4)
        return self._last
