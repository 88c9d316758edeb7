"""Pluggable logging: atdata logs through one replaceable logger.

By default that is the standard library's ``logging.getLogger("atdata")``; any object with
``debug``/``info``/``warning``/``error`` methods (a ``structlog`` logger, for instance) can
replace it with :func:`configure_logging`. Messages never contain credentials.

Examples:
    >>> import logging
    >>> get_logger().name
    'atdata'
    >>> class Recorder:
    ...     def __init__(self): self.lines = []
    ...     def debug(self, msg, *a, **k): self.lines.append(("debug", msg % a))
    ...     def info(self, msg, *a, **k): self.lines.append(("info", msg % a))
    ...     def warning(self, msg, *a, **k): self.lines.append(("warning", msg % a))
    ...     def error(self, msg, *a, **k): self.lines.append(("error", msg % a))
    >>> rec = Recorder()
    >>> configure_logging(rec)
    >>> with log_operation("copy", shards=2):
    ...     pass
    >>> [level for level, _ in rec.lines], rec.lines[0][1]
    (['info', 'info'], 'copy: started (shards=2)')
    >>> configure_logging(logging.getLogger("atdata"))
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

from atdata._errors import ArgumentTypeError

__all__ = ["LoggerProtocol", "configure_logging", "get_logger", "log_operation"]


@runtime_checkable
class LoggerProtocol(Protocol):
    """What a logger given to :func:`configure_logging` must provide."""

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None: ...

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None: ...

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None: ...

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None: ...


_current: LoggerProtocol = logging.getLogger("atdata")


def configure_logging(logger: LoggerProtocol) -> None:
    """Send atdata's log messages to ``logger`` from now on.

    Raises:
        ArgumentTypeError: (a ``TypeError``) When ``logger`` lacks one of ``debug``/``info``/``warning``/``error``.
    """
    global _current
    missing = [
        m for m in ("debug", "info", "warning", "error") if not callable(getattr(logger, m, None))
    ]
    if missing:
        raise ArgumentTypeError(
            f"configure_logging needs a logger with debug/info/warning/error methods; "
            f"{type(logger).__name__} lacks {', '.join(missing)}"
        )
    _current = logger


def get_logger() -> LoggerProtocol:
    """The logger atdata uses now (``logging.getLogger("atdata")`` unless configured)."""
    return _current


@contextlib.contextmanager
def log_operation(op_name: str, **context: Any) -> Iterator[None]:
    """Log that ``op_name`` started, then that it completed (with its duration) or failed.

    Args:
        op_name: A short label, e.g. ``"write_samples"``.
        **context: ``key=value`` pairs added to every message.
    """
    log = get_logger()
    ctx = ", ".join(f"{k}={v}" for k, v in context.items())
    suffix = f" ({ctx})" if ctx else ""
    log.info("%s: started%s", op_name, suffix)
    t0 = time.monotonic()
    try:
        yield
    except BaseException:
        log.error("%s: failed after %.2fs%s", op_name, time.monotonic() - t0, suffix)
        raise
    log.info("%s: completed in %.2fs%s", op_name, time.monotonic() - t0, suffix)
