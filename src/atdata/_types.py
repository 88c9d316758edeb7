"""Type aliases re-exported at the top level (kept apart so numpy loads only when used)."""

from __future__ import annotations

from numpy.typing import NDArray

__all__ = ["NDArray"]
