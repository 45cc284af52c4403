"""One table that sorts what a Telegram call can raise into retry, skip or fail.

RETRY  Telegram may not have carried the call out, or may have: try again with the same
       random ids (FloodWait, a deadline cut, a dropped connection, a send still in flight)
SKIP   the job cannot be done and never will: the chat or the message is not there
FAIL   anything else: the job ends failed with its reason, the lane goes on
"""

from __future__ import annotations

import enum

from pyrogram import errors


class Verdict(enum.Enum):
    RETRY = "retry"
    SKIP = "skip"
    FAIL = "fail"


# Most specific first: the first row whose class matches decides.
TABLE: tuple[tuple[type[BaseException], Verdict, str], ...] = (
    (errors.FloodWait, Verdict.RETRY, "FloodWait"),
    (errors.FloodPremiumWait, Verdict.RETRY, "FloodWait"),
    (errors.RandomIdDuplicate, Verdict.RETRY, "the same send is still in flight"),
    (TimeoutError, Verdict.RETRY, "the call was cut off by its deadline"),
    (errors.InternalServerError, Verdict.RETRY, "Telegram had an internal error"),
    (errors.ServiceUnavailable, Verdict.RETRY, "Telegram was unavailable"),
    (OSError, Verdict.RETRY, "the connection to Telegram was lost"),
    (errors.PeerIdInvalid, Verdict.SKIP, "the chat is not a valid peer"),
    (errors.ChannelInvalid, Verdict.SKIP, "the channel is invalid"),
    (errors.ChannelPrivate, Verdict.SKIP, "the channel is private or the account left it"),
    (errors.ChatWriteForbidden, Verdict.SKIP, "the account may not write in the chat"),
    (errors.ChatAdminRequired, Verdict.SKIP, "the account is not an admin of the chat"),
    (errors.UsernameNotOccupied, Verdict.SKIP, "no chat has that username"),
    (errors.UsernameInvalid, Verdict.SKIP, "the username is invalid"),
    (errors.MessageIdInvalid, Verdict.SKIP, "the source message was deleted"),
    (errors.MessageEmpty, Verdict.SKIP, "the source message was deleted"),
    (errors.MediaEmpty, Verdict.SKIP, "the media cannot be sent"),
)


class SourceMessageGone(Exception):
    """The source message no longer exists (deleted before it was delivered)."""


class Uncopyable(Exception):
    """The message is of a kind Telegram cannot copy (a poll, a dice, a service message)."""


def classify(error: BaseException) -> tuple[Verdict, str]:
    """The verdict on an exception a Telegram call raised, and the reason in words."""
    for cls, verdict, reason in TABLE:
        if isinstance(error, cls):
            return verdict, reason
    if isinstance(error, SourceMessageGone):
        return Verdict.SKIP, "the source message was deleted"
    if isinstance(error, Uncopyable):
        return Verdict.SKIP, str(error)
    if _is_unknown_peer(error):
        return Verdict.SKIP, "the chat is not a valid peer"
    return Verdict.FAIL, f"{type(error).__name__}: {error}"


def _is_unknown_peer(error: BaseException) -> bool:
    # pyrogram raises these two for a chat id it has never met: `ValueError("Peer id
    # invalid: ...")` from its id helpers and `KeyError("ID not found: ...")` from storage.
    text = str(error.args[0]) if error.args else ""
    if isinstance(error, ValueError):
        return text.startswith("Peer id invalid")
    if isinstance(error, KeyError):
        return text.startswith("ID not found")
    return False
