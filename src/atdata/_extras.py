"""Lazy loading of optional dependencies with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from atdata._errors import MissingExtraError

__all__ = ["require"]

_cache: dict[str, ModuleType] = {}


def require(module: str, extra: str, feature: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``atdata[extra]``.

    Args:
        module: Dotted module name, e.g. ``"boto3"``.
        extra: The atdata extra that installs it, e.g. ``"s3"``.
        feature: What needed it, for the message (defaults to the module name).

    Returns:
        The imported module.

    Examples:
        >>> require("json", "none").dumps([1])
        '[1]'
        >>> require("surely_not_installed_xyz", "query")
        Traceback (most recent call last):
        ...
        atdata._errors.MissingExtraError: surely_not_installed_xyz is needed ...: pip install "atdata[query]"
    """
    mod = _cache.get(module)
    if mod is not None:
        return mod
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        what = feature or module
        raise MissingExtraError(
            f"{module.split('.')[0]} is needed for {what} but is not installed; "
            f'install it with: pip install "atdata[{extra}]"'
        ) from exc
    _cache[module] = mod
    return mod
