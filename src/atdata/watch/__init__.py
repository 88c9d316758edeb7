"""Watch a directory or S3 prefix and process each new shard exactly once.

:class:`Watcher` polls a source, waits until each new shard is complete, runs it through the
``Dataset.map(out=...)`` shard job and records it in a ledger kept on an index provider
(SQLite, PostgreSQL or Redis) with its checksum, status, attempts and lease.
"""

from __future__ import annotations

from atdata.watch._ledger import STATUSES, Ledger, LedgerRecord, ledger_for
from atdata.watch._listing import WatchEntry, list_local, list_s3
from atdata.watch._plan import Action, plan
from atdata.watch._watcher import PollReport, ShardHandler, Watcher

__all__ = [
    "STATUSES",
    "Action",
    "Ledger",
    "LedgerRecord",
    "PollReport",
    "ShardHandler",
    "WatchEntry",
    "Watcher",
    "ledger_for",
    "list_local",
    "list_s3",
    "plan",
]
