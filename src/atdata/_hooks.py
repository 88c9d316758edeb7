"""Named factories that a higher layer installs for a lower one to call.

A lower layer never imports a higher one (``tests/test_layers.py``). When it must reach up, for
example :class:`~atdata.Index` (layer 5) making the anonymous atmosphere client (layer 6) that
resolves ``@handle/name``, the top package registers a small factory here at import time; the
factory imports the heavy module only when it is first called.

Examples:
    >>> register("example", lambda: 42)
    >>> make("example", "an example")
    42
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["ANONYMOUS_ATMOSPHERE", "make", "register"]

#: An ``atdata.atmosphere.Atmosphere()`` that reads public records (no login).
ANONYMOUS_ATMOSPHERE = "anonymous_atmosphere"

_factories: dict[str, Callable[[], Any]] = {}


def register(name: str, factory: Callable[[], Any]) -> None:
    """Install ``factory`` under ``name`` (a later registration replaces it)."""
    _factories[name] = factory


def make(name: str, what: str) -> Any:
    """Call the factory registered as ``name``.

    Args:
        name: The factory's name.
        what: What it is for, named in the error.

    Raises:
        ConfigError: (a ``ValueError``) When nothing is registered under ``name``.
    """
    factory = _factories.get(name)
    if factory is None:
        from atdata._errors import ConfigError  # (not at import: ``import atdata`` stays light)

        raise ConfigError(f"{what} is not available: nothing provides {name!r} (import atdata)")
    return factory()
