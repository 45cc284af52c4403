"""`python -m forwarder [run|demo|status|failed|retry]`.

Exit codes: 0 after a clean stop, 2 when the settings or the journal do not let it start,
1 on an unexpected error (its traceback logged once, secrets never in it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from forwarder import commands
from forwarder.journal import JournalError
from forwarder.settings import Settings, SettingsError, load_settings

log = logging.getLogger("forwarder")

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m forwarder", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="forward the configured routes until stopped (the default)")
    sub.add_parser("demo", help="run the pipeline against the simulated Telegram")
    sub.add_parser("status", help="jobs by state per route, and the last id per source")
    sub.add_parser("failed", help="list failed jobs with their reasons")
    sub.add_parser("retry", help="put failed jobs back in their lanes")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    command = arguments.command or "run"
    if command == "demo":
        configure_logging("INFO")
        from forwarder.demo import run_demo

        return asyncio.run(run_demo())
    try:
        settings = load_settings()
        configure_logging(settings.log_level)
        if command == "run":
            settings.require_account()
            return asyncio.run(run_until_signalled(settings))
        return asyncio.run(commands.run_command(command, settings))
    except (SettingsError, JournalError) as error:
        print(f"forwarder: {error}", file=sys.stderr)
        return EXIT_USAGE
    except Exception:
        log.exception("forwarder stopped on an unexpected error")
        return EXIT_ERROR


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("pyrogram").setLevel(max(logging.WARNING, logging.getLevelName(level)))


async def run_until_signalled(settings: Settings) -> int:
    """Runs the service until SIGINT or SIGTERM, then stops it within the grace period."""
    from forwarder.app import Forwarder
    from forwarder.telegram import build_client

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    forwarder = Forwarder(settings, build_client(settings))
    try:
        await forwarder.start()
        await stop.wait()
        log.info("stopping on a signal")
    finally:
        with contextlib.suppress(Exception):
            await forwarder.stop()
    return EXIT_OK
