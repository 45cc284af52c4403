import os
import traceback
from pathlib import Path

import pydantic
import pytest

from forwarder.jobs import Mode
from forwarder.settings import Route, Settings, SettingsError, load_settings

SECRET_HASH = "0123456789abcdefSECRETHASH000000"
SECRET_SESSION = "BQSECRETSESSIONSTRINGxyz"
SECRET_TOKEN = "123456:SECRETBOTTOKENabc"
SECRETS = (SECRET_HASH, SECRET_SESSION, SECRET_TOKEN)

ROUTE = '[{"source": -1001234567890, "destinations": ["@SomeChannel"]}]'


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No FORWARDER_* from the machine running the tests, and no .env but the test's own."""
    for name in list(os.environ):
        if name.upper().startswith("FORWARDER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def secrets_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORWARDER_API_HASH", SECRET_HASH)
    monkeypatch.setenv("FORWARDER_SESSION_STRING", SECRET_SESSION)
    monkeypatch.setenv("FORWARDER_BOT_TOKEN", SECRET_TOKEN)


def assert_error_line(error: SettingsError, variable: str) -> None:
    message = str(error)
    assert "\n" not in message
    assert message.startswith(f"{variable}: ")
    for secret in SECRETS:
        assert secret not in message
    # pydantic's own text, which quotes the input, is not chained into the traceback.
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


def test_defaults_without_any_setting() -> None:
    settings = load_settings()

    assert settings.api_id is None
    assert settings.api_hash is None
    assert settings.session_string is None
    assert settings.bot_token is None
    assert settings.session_name == "forwarder"
    assert settings.data_dir == Path("data")
    assert settings.routes == []
    assert settings.api_timeout_s == 30
    assert settings.download_timeout_s == 60
    assert settings.flood_max_attempts == 5
    assert settings.flood_max_wait_s == 300
    assert settings.deadline_max_attempts == 3
    assert settings.stats_interval_s == 60
    assert settings.log_level == "INFO"
    assert settings.shutdown_grace_s == 10
    assert settings.album_window_s == 1.0
    assert settings.max_download_bytes == 2_000_000_000
    assert settings.prune_age_s == 7 * 24 * 3600
    assert settings.gap_fill_interval_s == 300
    assert settings.telegram_server is None
    assert settings.telegram_server_address is None


def test_reads_every_setting_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, secrets_set: None
) -> None:
    values = {
        "API_ID": "12345",
        "SESSION_NAME": "main-account",
        "DATA_DIR": str(tmp_path / "state"),
        "ROUTES": ROUTE,
        "API_TIMEOUT_S": "2.5",
        "DOWNLOAD_TIMEOUT_S": "7",
        "FLOOD_MAX_ATTEMPTS": "9",
        "FLOOD_MAX_WAIT_S": "42",
        "DEADLINE_MAX_ATTEMPTS": "1",
        "STATS_INTERVAL_S": "0.5",
        "LOG_LEVEL": "debug",
        "SHUTDOWN_GRACE_S": "3",
        "ALBUM_WINDOW_S": "0.25",
        "MAX_DOWNLOAD_BYTES": "1048576",
        "PRUNE_AGE_S": "3600",
        "GAP_FILL_INTERVAL_S": "15",
        "TELEGRAM_SERVER": "127.0.0.1:4430",
    }
    for name, value in values.items():
        monkeypatch.setenv(f"FORWARDER_{name}", value)

    settings = load_settings()

    assert settings.api_id == 12345
    assert settings.api_hash is not None
    assert settings.api_hash.get_secret_value() == SECRET_HASH
    assert settings.session_string is not None
    assert settings.session_string.get_secret_value() == SECRET_SESSION
    assert settings.bot_token is not None
    assert settings.bot_token.get_secret_value() == SECRET_TOKEN
    assert settings.session_file == tmp_path / "state" / "main-account.session"
    assert settings.routes == [Route(source=-1001234567890, destinations=["@SomeChannel"])]
    assert settings.api_timeout_s == 2.5
    assert settings.download_timeout_s == 7
    assert settings.flood_max_attempts == 9
    assert settings.flood_max_wait_s == 42
    assert settings.deadline_max_attempts == 1
    assert settings.stats_interval_s == 0.5
    assert settings.log_level == "DEBUG"
    assert settings.shutdown_grace_s == 3
    assert settings.album_window_s == 0.25
    assert settings.max_download_bytes == 1_048_576
    assert settings.prune_age_s == 3600
    assert settings.gap_fill_interval_s == 15
    assert settings.telegram_server_address == ("127.0.0.1", 4430)


def test_reads_a_dotenv_file_where_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env_file = tmp_path / "custom.env"
    env_file.write_text(
        f"FORWARDER_API_ID=777\nFORWARDER_API_HASH={SECRET_HASH}\n"
        f"FORWARDER_ROUTES='{ROUTE}'\nFORWARDER_LOG_LEVEL=ERROR\n"
        # Other tools' variables may share the file.
        "COMPOSE_PROJECT_NAME=forwarder\n"
    )
    monkeypatch.setenv("FORWARDER_LOG_LEVEL", "WARNING")

    settings = load_settings(env_file)

    assert settings.api_id == 777
    assert settings.api_hash is not None
    assert settings.api_hash.get_secret_value() == SECRET_HASH
    assert settings.routes[0].destinations == ["@SomeChannel"]
    assert settings.log_level == "WARNING"


def test_reads_dotenv_in_the_working_directory_unless_told_not_to(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("FORWARDER_API_ID=31337\n")

    assert load_settings().api_id == 31337
    assert load_settings(env_file=None).api_id is None


def test_empty_values_count_as_unset(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("FORWARDER_API_ID=\nFORWARDER_ROUTES=\n")

    settings = load_settings()

    assert settings.api_id is None
    assert settings.routes == []


def test_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORWARDER_API_TIMEOUT_S", "5")

    settings = load_settings(api_timeout_s=0.01, routes=[{"source": 1, "destinations": [2]}])

    assert settings.api_timeout_s == 0.01
    assert settings.routes == [Route(source=1, destinations=[2])]


def test_routes_take_ids_and_usernames(monkeypatch: pytest.MonkeyPatch) -> None:
    routes = """[
        {"source": -1009876543210, "destinations": [3000000000, "@Mirror_01", "-100555"]},
        {"source": "@news_feed", "destinations": [-1001234567890]},
        {"source": "@news_feed", "destinations": ["@archive_2"]}
    ]"""
    monkeypatch.setenv("FORWARDER_ROUTES", routes)

    first, second, third = load_settings().routes

    # Channel ids are past 2**31; a string of digits is read as an id.
    assert first.source == -1009876543210
    assert first.destinations == [3000000000, "@Mirror_01", -100555]
    assert second.source == "@news_feed"
    # The same source may feed several routes.
    assert third.source == second.source
    assert all(route.mode is Mode.FORWARD for route in (first, second, third))


@pytest.mark.parametrize("mode", list(Mode))
def test_routes_take_every_mode(monkeypatch: pytest.MonkeyPatch, mode: Mode) -> None:
    routes = f'[{{"source": -100111, "destinations": [-100222], "mode": "{mode.value}"}}]'
    monkeypatch.setenv("FORWARDER_ROUTES", routes)

    (route,) = load_settings().routes

    assert route.mode is mode


def test_route_is_frozen() -> None:
    route = Route(source=1, destinations=[2])

    with pytest.raises(pydantic.ValidationError):
        route.source = 3


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        ("ROUTES", "[{", "FORWARDER_ROUTES: must be valid JSON"),
        ("ROUTES", '{"source": 1}', "FORWARDER_ROUTES: must be a valid list"),
        ("ROUTES", "[1]", "FORWARDER_ROUTES[0]: must be an object"),
        (
            "ROUTES",
            '[{"source": 1, "destinations": []}]',
            "FORWARDER_ROUTES[0].destinations: must not be empty",
        ),
        (
            "ROUTES",
            '[{"source": "@ab", "destinations": [2]}]',
            "FORWARDER_ROUTES[0].source: must be a chat id or an @username",
        ),
        (
            "ROUTES",
            '[{"source": 1, "destinations": [2, "@9starts_with_digit"]}]',
            "FORWARDER_ROUTES[0].destinations[1]: must be a chat id or an @username",
        ),
        (
            "ROUTES",
            '[{"source": 1, "destinations": ["no_at_sign"]}]',
            "FORWARDER_ROUTES[0].destinations[0]: must be a chat id or an @username",
        ),
        (
            "ROUTES",
            '[{"source": 0, "destinations": [2]}]',
            "FORWARDER_ROUTES[0].source: must be a nonzero 64-bit chat id",
        ),
        (
            "ROUTES",
            '[{"source": 1, "destinations": [2.5]}]',
            "FORWARDER_ROUTES[0].destinations[0]: must be a chat id",
        ),
        (
            "ROUTES",
            '[{"source": 1, "destinations": [true]}]',
            "FORWARDER_ROUTES[0].destinations[0]: must be a chat id",
        ),
        (
            "ROUTES",
            '[{"source": 1, "destinations": [2]}, {"source": 1, "destinations": [2, 1]}]',
            "FORWARDER_ROUTES[1].destinations: must not contain the source chat 1",
        ),
        (
            "ROUTES",
            '[{"source": 1, "destinations": ["@Mirror", "@mirror"]}]',
            "FORWARDER_ROUTES[0].destinations: lists chat @mirror more than once",
        ),
        (
            "ROUTES",
            '[{"source": 1, "destinations": [2], "mode": "teleport"}]',
            "FORWARDER_ROUTES[0].mode: must be 'forward', 'forward_hidden' or 'copy'",
        ),
        (
            "ROUTES",
            '[{"source": 1, "destination": [2]}]',
            "FORWARDER_ROUTES[0].destinations: is required (and 1 more)",
        ),
        ("API_ID", "-5", "FORWARDER_API_ID: must be greater than 0"),
        ("API_ID", "twelve", "FORWARDER_API_ID: must be a valid integer"),
        ("API_TIMEOUT_S", "-1", "FORWARDER_API_TIMEOUT_S: must be greater than 0"),
        ("DOWNLOAD_TIMEOUT_S", "0", "FORWARDER_DOWNLOAD_TIMEOUT_S: must be greater than 0"),
        ("FLOOD_MAX_WAIT_S", "0", "FORWARDER_FLOOD_MAX_WAIT_S: must be greater than 0"),
        ("PRUNE_AGE_S", "-3", "FORWARDER_PRUNE_AGE_S: must be greater than 0"),
        (
            "FLOOD_MAX_ATTEMPTS",
            "0",
            "FORWARDER_FLOOD_MAX_ATTEMPTS: must be greater than or equal to 1",
        ),
        (
            "DEADLINE_MAX_ATTEMPTS",
            "0",
            "FORWARDER_DEADLINE_MAX_ATTEMPTS: must be greater than or equal to 1",
        ),
        ("MAX_DOWNLOAD_BYTES", "0", "FORWARDER_MAX_DOWNLOAD_BYTES: must be greater than 0"),
        ("LOG_LEVEL", "LOUD", "FORWARDER_LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR"),
        ("TELEGRAM_SERVER", "localhost", "FORWARDER_TELEGRAM_SERVER: must be host:port"),
        ("TELEGRAM_SERVER", "localhost:70000", "FORWARDER_TELEGRAM_SERVER: must be host:port"),
        ("TELEGRAM_SERVER", "http://x:80", "FORWARDER_TELEGRAM_SERVER: must be host:port"),
        ("SESSION_NAME", "../elsewhere", "FORWARDER_SESSION_NAME: must be a plain file name"),
        ("API_TIMEOUT", "5", "FORWARDER_API_TIMEOUT: is not a known setting"),
    ],
)
def test_bad_value_gives_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, secrets_set: None, variable: str, value: str, line: str
) -> None:
    monkeypatch.setenv(f"FORWARDER_{variable}", value)

    with pytest.raises(SettingsError) as caught:
        load_settings()

    assert str(caught.value).startswith(line)
    assert_error_line(caught.value, str(caught.value).partition(":")[0])


def test_error_line_never_quotes_the_input(monkeypatch: pytest.MonkeyPatch) -> None:
    # A secret pasted into the wrong variable must not come back in the message or traceback.
    monkeypatch.setenv("FORWARDER_API_ID", SECRET_HASH)

    with pytest.raises(SettingsError) as caught:
        load_settings()

    assert_error_line(caught.value, "FORWARDER_API_ID")
    assert SECRET_HASH not in "".join(traceback.format_exception(caught.value))


def test_error_line_for_a_bad_dotenv_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f"FORWARDER_API_HASH={SECRET_HASH}\nFORWARDER_FLOOD_MAX_WAITS=10\n"
    )

    with pytest.raises(SettingsError) as caught:
        load_settings()

    assert_error_line(caught.value, "FORWARDER_FLOOD_MAX_WAITS")


def test_error_line_for_a_misspelt_override() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env_file=None, api_timout_s=1)

    assert_error_line(caught.value, "FORWARDER_API_TIMOUT_S")


@pytest.mark.parametrize(
    ("server", "address"),
    [
        ("localhost:443", ("localhost", 443)),
        ("10.0.0.7:8888", ("10.0.0.7", 8888)),
        ("sim.internal:1", ("sim.internal", 1)),
        ("[::1]:65535", ("::1", 65535)),
    ],
)
def test_telegram_server_address(server: str, address: tuple[str, int]) -> None:
    settings = load_settings(telegram_server=server)

    assert settings.telegram_server == server
    assert settings.telegram_server_address == address


def test_repr_and_str_hide_secrets(secrets_set: None) -> None:
    settings = load_settings(api_id=1)

    for text in (repr(settings), str(settings)):
        for secret in SECRETS:
            assert secret not in text


def account(tmp_path: Path, **overrides: object) -> Settings:
    """Settings complete enough to run, except for what `overrides` takes away."""
    values: dict[str, object] = {
        "api_id": 12345,
        "api_hash": SECRET_HASH,
        "session_string": SECRET_SESSION,
        "data_dir": tmp_path / "data",
        "routes": ROUTE,
    }
    values.update(overrides)

    return load_settings(env_file=None, **values)


@pytest.mark.parametrize(
    "login",
    [
        {"session_string": SECRET_SESSION},
        {"session_string": None, "bot_token": SECRET_TOKEN},
    ],
)
def test_require_account_passes_with_a_login(tmp_path: Path, login: dict[str, object]) -> None:
    account(tmp_path, **login).require_account()


def test_require_account_accepts_a_session_file(tmp_path: Path) -> None:
    settings = account(tmp_path, session_string=None, session_name="main")
    settings.data_dir.mkdir()
    (settings.data_dir / "main.session").write_bytes(b"")

    settings.require_account()


@pytest.mark.parametrize(
    ("missing", "variable"),
    [
        ({"api_id": None}, "FORWARDER_API_ID"),
        ({"api_hash": None}, "FORWARDER_API_HASH"),
        ({"api_hash": ""}, "FORWARDER_API_HASH"),
        ({"session_string": None}, "FORWARDER_SESSION_STRING"),
        ({"session_string": "", "bot_token": ""}, "FORWARDER_SESSION_STRING"),
        ({"routes": "[]"}, "FORWARDER_ROUTES"),
    ],
)
def test_require_account_names_what_is_missing(
    tmp_path: Path, missing: dict[str, object], variable: str
) -> None:
    settings = account(tmp_path, **missing)

    with pytest.raises(SettingsError) as caught:
        settings.require_account()

    assert_error_line(caught.value, variable)


def test_require_account_says_no_routes_configured(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"^FORWARDER_ROUTES: no routes configured$"):
        account(tmp_path, routes=[]).require_account()


def test_env_example_documents_every_setting_and_loads() -> None:
    example = Path(__file__).resolve().parent.parent / ".env.example"
    lines = example.read_text().splitlines()
    documented = {
        line.partition("=")[0]
        for index, line in enumerate(lines)
        if line.startswith("FORWARDER_") and lines[index - 1].startswith("# ")
    }

    assert documented == {f"FORWARDER_{name.upper()}" for name in Settings.model_fields}
    assert load_settings(example).routes
