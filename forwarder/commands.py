"""The journal's commands: `status`, `failed` and `retry`, printed for a person."""

from __future__ import annotations

from forwarder.journal import JOURNAL_FILE, Journal
from forwarder.settings import Settings


async def run_command(command: str, settings: Settings) -> int:
    path = settings.data_dir / JOURNAL_FILE
    if not path.exists():
        print(f"no journal at {path} yet: the forwarder has not run with this data dir")
        return 0
    async with await Journal.open(path) as journal:
        if command == "status":
            await print_status(journal)
        elif command == "failed":
            await print_failed(journal)
        elif command == "retry":
            await requeue(journal)
    return 0


async def print_status(journal: Journal) -> None:
    rows = await journal.counts()
    header = ("source", "destination", "pending", "done", "skipped", "failed")
    print(" ".join(f"{word:>16}" if i < 2 else f"{word:>8}" for i, word in enumerate(header)))
    for row in rows:
        print(
            f"{row.source_chat_id:>16} {row.destination_chat_id:>16} {row.pending:>8}"
            f" {row.done:>8} {row.skipped:>8} {row.failed:>8}"
        )
    print()
    print(f"{'source':>16} {'last message id seen':>22}")
    for chat_id, message_id in sorted((await journal.all_last_seen()).items()):
        print(f"{chat_id:>16} {message_id:>22}")


async def print_failed(journal: Journal) -> None:
    failed = await journal.failed()
    if not failed:
        print("no failed jobs")
    for entry in failed:
        print(f"{entry.job.describe()} attempts={entry.attempts}: {entry.last_error}")


async def requeue(journal: Journal) -> None:
    jobs = await journal.requeue_failed()
    print(f"{len(jobs)} failed jobs put back as pending; they are delivered on the next start")
