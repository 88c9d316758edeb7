"""Locks made fresh in a forked child (a DataLoader worker started with ``fork``).

A fork copies every lock in the state it had at that instant: one that a thread of the parent
(a prefetch thread still finishing a download) held stays locked in the child forever, where no
thread will release it, and the worker's first use of it hangs. Objects that guard their state
with locks register here; in the child, each named attribute gets a new lock (or an empty dict
for a map of per-key locks) before anything else runs.

Examples:
    >>> import threading
    >>> class Box:
    ...     def __init__(self):
    ...         self._mu, self._per_key = threading.Lock(), {"a": threading.Lock()}
    ...         fresh_after_fork(self, "_mu", "_per_key")
    >>> box = Box()
    >>> _in_child()  # (what a fork runs in the child)
    >>> box._mu.locked(), box._per_key
    (False, {})
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

__all__ = ["fresh_after_fork"]

_REGISTERED: weakref.WeakKeyDictionary[Any, tuple[str, ...]] = weakref.WeakKeyDictionary()


def fresh_after_fork(obj: Any, *names: str) -> None:
    """Give ``obj``'s attributes ``names`` fresh values in a forked child: a new lock for a lock,
    an empty dict for a dict of locks."""
    _REGISTERED[obj] = names


def _in_child() -> None:
    for obj, names in list(_REGISTERED.items()):
        for name in names:
            old = getattr(obj, name, None)
            setattr(obj, name, {} if isinstance(old, dict) else threading.Lock())


if hasattr(os, "register_at_fork"):  # (not on Windows, which does not fork)
    os.register_at_fork(after_in_child=_in_child)
