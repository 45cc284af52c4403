"""Settings from the environment and a `.env` file, all named `FORWARDER_*`.

Bad input becomes a `SettingsError` whose message is one line naming the variable, and the
place inside `FORWARDER_ROUTES`, e.g. `FORWARDER_ROUTES[0].destinations: must not be empty`.
The line is built from pydantic's location and message only, never from the input, so a
secret put in the wrong variable cannot leak through it.

A chat is referred to by its id (`-1001234567890`; a string of digits is read as an id) or by
an `@username`. Usernames are kept as written, "@" included, which is what Pyrogram resolves;
Telegram compares them without regard to case, and so do the checks here.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import dotenv
import pydantic
import pydantic_settings
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    SecretStr,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from forwarder.jobs import Mode

ENV_PREFIX = "FORWARDER_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

_USERNAME = re.compile(r"@[A-Za-z][A-Za-z0-9_]{4,31}")
_CHAT_ID = re.compile(r"-?[0-9]+")
_SERVER = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(?P<port>[0-9]{1,5})")
_SESSION_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_INT64_MAX = 2**63 - 1


class SettingsError(Exception):
    """A setting is missing or wrong; the message is one line naming the variable."""


def parse_chat_ref(value: object) -> int | str:
    """A chat id (nonzero, 64-bit), or "@" and a username of 5 to 32 characters, as written."""
    if isinstance(value, str) and _CHAT_ID.fullmatch(value):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if value == 0 or abs(value) > _INT64_MAX:
            raise ValueError("must be a nonzero 64-bit chat id")
        return value
    if isinstance(value, str) and _USERNAME.fullmatch(value):
        return value
    raise ValueError(
        "must be a chat id or an @username of 5 to 32 letters, digits or underscores, "
        "starting with a letter"
    )


ChatRef = Annotated[int | str, PlainValidator(parse_chat_ref)]


def _chat_key(chat: int | str) -> int | str:
    """What makes two references the same chat: usernames are case-insensitive."""
    return chat.casefold() if isinstance(chat, str) else chat


class Route(BaseModel):
    """Posts in `source` go to every chat in `destinations`, the way `mode` says."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: ChatRef
    destinations: list[ChatRef]
    mode: Mode = Mode.FORWARD

    @field_validator("destinations")
    @classmethod
    def _check_destinations(cls, value: list[int | str], info: ValidationInfo) -> list[int | str]:
        if not value:
            raise ValueError("must not be empty")
        keys = [_chat_key(chat) for chat in value]
        for index, key in enumerate(keys):
            if key in keys[:index]:
                raise ValueError(f"lists chat {value[index]} more than once")
        # `source` is absent from `info.data` when it failed its own check.
        source = info.data.get("source")
        if source is not None and _chat_key(source) in keys:
            raise ValueError(f"must not contain the source chat {source}")

        return value


def _decode_routes(value: object) -> object:
    """Routes arrive from the environment as JSON; a blank value means none."""
    if not isinstance(value, str):
        return value
    if not value.strip():
        return []
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        # exc.msg and the position describe the mistake without quoting the text.
        raise ValueError(
            f"must be valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None


Seconds = Annotated[float, Field(gt=0)]
Attempts = Annotated[int, Field(ge=1)]


class Settings(BaseSettings):
    """Everything the service reads from its environment; units are in the names."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        # An empty `FORWARDER_X=` line counts as unset, so a copied .env.example loads.
        env_ignore_empty=True,
        # A .env file may hold other tools' variables too; load_settings rejects unknown
        # FORWARDER_* names itself, so a misspelt setting is not silently dropped.
        extra="ignore",
    )

    api_id: Annotated[int, Field(gt=0)] | None = None
    api_hash: SecretStr | None = None
    session_string: SecretStr | None = None
    # The session file `<data_dir>/<session_name>.session`, used when no string is given.
    session_name: str = "forwarder"
    bot_token: SecretStr | None = None
    data_dir: Path = Path("data")
    routes: Annotated[list[Route], NoDecode, pydantic.BeforeValidator(_decode_routes)] = []

    api_timeout_s: Seconds = 30.0
    download_timeout_s: Seconds = 60.0
    flood_max_attempts: Attempts = 5
    # A single FloodWait longer than this fails the job instead of pausing its lane.
    flood_max_wait_s: Seconds = 300.0
    # Attempts for a call cut off by its deadline.
    deadline_max_attempts: Attempts = 3
    stats_interval_s: Seconds = 60.0
    log_level: str = "INFO"
    shutdown_grace_s: Seconds = 10.0
    album_window_s: Seconds = 1.0
    # Largest file re-uploaded from a chat that protects its content.
    max_download_bytes: Annotated[int, Field(gt=0)] = 2_000_000_000
    prune_age_s: Seconds = 7 * 24 * 3600.0
    gap_fill_interval_s: Seconds = 300.0
    # "host:port" of a Telegram-compatible server (the simulated one) instead of Telegram.
    telegram_server: str | None = None

    @field_validator("session_name")
    @classmethod
    def _check_session_name(cls, value: str) -> str:
        if not _SESSION_NAME.fullmatch(value):
            raise ValueError("must be a plain file name of letters, digits, '_', '.' or '-'")

        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")

        return level

    @field_validator("telegram_server")
    @classmethod
    def _check_telegram_server(cls, value: str | None) -> str | None:
        if value is not None:
            _split_server(value)

        return value

    @property
    def session_file(self) -> Path:
        return self.data_dir / f"{self.session_name}.session"

    @property
    def telegram_server_address(self) -> tuple[str, int] | None:
        """`telegram_server` as (host, port), IPv6 brackets removed; None for Telegram."""
        return None if self.telegram_server is None else _split_server(self.telegram_server)

    def require_account(self) -> None:
        """Check that there is enough to log in and something to forward, for `run`."""
        if self.api_id is None:
            raise SettingsError(f"{ENV_PREFIX}API_ID: is required; get it at my.telegram.org")
        if not _secret_given(self.api_hash):
            raise SettingsError(f"{ENV_PREFIX}API_HASH: is required; get it at my.telegram.org")
        has_login = _secret_given(self.session_string) or _secret_given(self.bot_token)
        if not has_login and not self.session_file.is_file():
            raise SettingsError(
                f"{ENV_PREFIX}SESSION_STRING: is required when {ENV_PREFIX}BOT_TOKEN is unset "
                f"and there is no session file {self.session_file}"
            )
        if not self.routes:
            raise SettingsError(f"{ENV_PREFIX}ROUTES: no routes configured")


def _split_server(value: str) -> tuple[str, int]:
    match = _SERVER.fullmatch(value)
    port = int(match["port"]) if match else 0
    if match is None or not 1 <= port <= 65535:
        raise ValueError("must be host:port, with a port from 1 to 65535")

    return match["host"].strip("[]"), port


def _secret_given(secret: SecretStr | None) -> bool:
    return secret is not None and bool(secret.get_secret_value())


def load_settings(env_file: Path | None = Path(".env"), **overrides: Any) -> Settings:
    """Settings from `overrides`, then the environment, then `env_file` (None: no file).

    Raises SettingsError with a one-line message that never quotes the input.
    """
    _reject_unknown_variables(env_file, overrides)
    # Through a dict because the signature mypy sees for Settings lacks `_env_file`.
    arguments: dict[str, Any] = {"_env_file": env_file, **overrides}
    try:
        return Settings(**arguments)
    except pydantic.ValidationError as exc:
        # `from None`: pydantic's own text quotes the input, and a traceback would show it.
        raise SettingsError(_describe_errors(exc.errors())) from None
    except pydantic_settings.SettingsError as exc:
        # Raised for a value pydantic-settings could not decode; its text names the field.
        raise SettingsError(str(exc)) from None


def _reject_unknown_variables(env_file: Path | None, overrides: Iterable[str]) -> None:
    """Raise for a FORWARDER_* name that is no setting: most likely a misspelt one."""
    in_file = dotenv.dotenv_values(env_file) if env_file and env_file.is_file() else {}
    names = {name.upper() for name in [*os.environ, *in_file]}
    names.update(ENV_PREFIX + name.upper() for name in overrides)
    known = {ENV_PREFIX + field.upper() for field in Settings.model_fields}
    unknown = sorted(name for name in names if name.startswith(ENV_PREFIX) and name not in known)
    if unknown:
        raise SettingsError(f"{unknown[0]}: is not a known setting")


def _describe_errors(errors: list[ErrorDetails]) -> str:
    line = f"{_variable(errors[0]['loc'])}: {_reason(errors[0])}"
    if len(errors) > 1:
        line += f" (and {len(errors) - 1} more)"

    return line


def _variable(loc: tuple[int | str, ...]) -> str:
    """`("routes", 0, "source")` -> `FORWARDER_ROUTES[0].source`."""
    if not loc:
        return "settings"
    name = ENV_PREFIX + str(loc[0]).upper()
    for part in loc[1:]:
        name += f"[{part}]" if isinstance(part, int) else f".{part}"

    return name


def _reason(error: ErrorDetails) -> str:
    """pydantic's message, worded as the rest of the line; its input is left out."""
    if error["type"] == "missing":
        return "is required"
    if error["type"] == "extra_forbidden":
        return "is not a known field"
    if error["type"] == "model_type":
        return "must be an object with source, destinations and mode"
    message = error["msg"].removeprefix("Value error, ")
    if message.startswith("Input should"):
        message = "must" + message.removeprefix("Input should")

    return message[:1].lower() + message[1:]
