"""One poll's decisions as a pure function of (listing, ledger records, clock).

:func:`plan` reads nothing and writes nothing: the watcher lists the source, reads the ledger,
asks the plan, then carries out each :class:`Action` with a compare-and-set on the record the
decision was made from (so a decision taken on a stale record simply loses).

The rules, per listed shard (``settle`` seconds, ``max_attempts``):

* new: complete by its manifest -> ``claim``; otherwise ``observe`` (a ``waiting`` record).
* ``waiting``: stamp changed -> ``observe`` again; unchanged for ``settle`` seconds since first
  seen (so at least two polls), or its manifest is written -> ``claim``.
* ``running``: the lease has expired -> ``claim`` (take over), or ``park`` after
  ``max_attempts``; otherwise it belongs to another watcher (``busy``).
* ``failed`` -> ``claim`` again; a rewritten one starts over as ``waiting``.
* ``done``/``refused``: stamp changed -> ``observe`` as ``changed``.
* ``changed``: stamp still moving -> ``observe``; settled -> ``verify`` (hash the bytes and
  compare with the processed checksum: same bytes -> done; else reprocess or refuse).
* ``parked``: left alone until it is rewritten (then ``waiting`` with no attempts).

Shards that need nothing get no action, so a poll over a settled directory is a loop of
dictionary lookups.

Examples:
    >>> from atdata.watch._listing import WatchEntry
    >>> e = WatchEntry("d/a.tar", 10, "10:1")
    >>> [a.kind for a in plan([e], {}, 100.0)]
    ['observe']
    >>> w = LedgerRecord("d/a.tar", "waiting", stamp="10:1", since=90.0, rev=1)
    >>> [a.kind for a in plan([e], {"d/a.tar": w}, 100.0)]
    ['claim']
    >>> [a.kind for a in plan([e], {"d/a.tar": w}, 95.0, settle=30.0)]
    ['wait']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from atdata.watch._ledger import LedgerRecord
from atdata.watch._listing import WatchEntry

__all__ = ["ACTIONS", "SETTLED", "Action", "plan"]

#: what an :class:`Action` can ask for
ACTIONS = ("observe", "claim", "verify", "park", "wait", "busy")

#: statuses that need nothing while the shard's stamp is unchanged
SETTLED = frozenset(("done", "refused", "parked"))


class Action(NamedTuple):
    """One decision of a poll.

    Attributes:
        kind: One of :data:`ACTIONS` (``wait``/``busy`` change nothing).
        entry: The shard as listed.
        record: The ledger record the decision was made from (``None`` for a new shard).
        status: For ``observe``: the status to record (``waiting`` or ``changed``).
    """

    kind: str
    entry: WatchEntry
    record: LedgerRecord | None
    status: str = ""


def _decide(
    e: WatchEntry, r: LedgerRecord | None, now: float, settle: float, max_attempts: int
) -> Action | None:
    if r is None:
        return Action("claim" if e.complete else "observe", e, r, "" if e.complete else "waiting")
    st, moved = r.status, r.stamp != e.stamp
    settled = e.complete or now - r.since >= settle
    if st == "waiting":
        if moved:
            return Action("observe", e, r, "waiting")
        return Action("claim" if settled else "wait", e, r)
    if st == "running":
        if r.lease_until > now:
            return Action("busy", e, r)
        return Action("park" if r.attempts >= max_attempts else "claim", e, r)
    if st == "failed":
        if moved:
            return Action("observe", e, r, "waiting")
        if r.attempts >= max_attempts:
            return Action("park", e, r)
        return Action("claim", e, r)
    if st in ("done", "refused"):
        return Action("observe", e, r, "changed") if moved else None
    if st == "changed":
        if moved:
            return Action("observe", e, r, "changed")
        return Action("verify" if settled else "wait", e, r)
    if st == "parked":
        return Action("observe", e, r, "waiting") if moved else None
    return None  # a status written by a newer atdata: leave it alone


def plan(
    entries: Iterable[WatchEntry],
    records: Mapping[str, LedgerRecord],
    now: float,
    *,
    settle: float = 0.0,
    max_attempts: int = 3,
) -> list[Action]:
    """The decisions of one poll, in listing order: one per listed shard that needs anything
    (a shard done, refused or parked whose stamp is unchanged needs nothing and gets none).

    Args:
        entries: The listing.
        records: The ledger's records by shard.
        now: The clock's time.
        settle: Seconds a shard without a manifest must keep its stamp before it counts as
            complete (it must also be seen by two polls).
        max_attempts: Attempts before a shard is parked.
    """
    out: list[Action] = []
    get = records.get
    for e in entries:
        r = get(e.url)
        if r is not None and r.stamp == e.stamp and r.status in SETTLED:
            continue  # the steady state of nearly every shard: decided without a call
        a = _decide(e, r, now, settle, max_attempts)
        if a is not None:
            out.append(a)
    return out
