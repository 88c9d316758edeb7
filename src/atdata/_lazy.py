"""Lazy attribute loading for package namespaces (PEP 562), shared by every public package.

Examples:
    >>> ns = {"__name__": "atdata"}
    >>> getattr_, dir_ = lazy_module(ns, {"ShardError": "._errors"})
    >>> getattr_("ShardError").__name__, "ShardError" in ns
    ('ShardError', True)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["lazy_module"]


def lazy_module(
    namespace: dict[str, Any], names: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package whose public ``names`` load on first use.

    Args:
        namespace: The package's ``globals()``; a loaded value is cached there.
        names: Public name -> relative module that defines it.

    Returns:
        The ``(__getattr__, __dir__)`` pair to assign at module level.
    """
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        mod = names.get(name)
        if mod is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(mod, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
