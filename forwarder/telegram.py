"""Builds the pyrogram Client from settings: the one place that knows how to reach Telegram."""

from __future__ import annotations

from pyrogram import Client

from forwarder.settings import Settings
from forwarder.sim.transport import redirected_connection


def build_client(settings: Settings) -> Client:
    """A Client for the account in settings; build it inside the running loop.

    With FORWARDER_TELEGRAM_SERVER set, every connection goes to that Telegram-compatible
    server (the simulated one in the tests) instead of Telegram's data centers.
    """
    extra = {}
    address = settings.telegram_server_address
    if address is not None:
        extra["connection_factory"] = redirected_connection(*address)
    return Client(
        settings.session_name,
        api_id=settings.api_id,
        api_hash=_reveal(settings.api_hash),
        session_string=_reveal(settings.session_string),
        bot_token=_reveal(settings.bot_token),
        workdir=settings.data_dir,
        sleep_threshold=0,  # every FloodWait reaches forwarder.retry, which logs and counts it
        skip_updates=True,  # missed posts are caught by the journal's gap filling instead
        **extra,  # type: ignore[arg-type]
    )


def _reveal(secret: object) -> str | None:
    return None if secret is None else secret.get_secret_value()  # type: ignore[attr-defined]
