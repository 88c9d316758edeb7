"""Decide whether a test of a real service runs, skips (locally) or fails (in CI)."""

from __future__ import annotations

import os

import pytest

__all__ = ["in_ci", "require_service"]


def in_ci() -> bool:
    """Whether this run is CI (``CI=true``): missing services then fail instead of skipping."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_service(name: str, reason: str) -> None:
    """Skip (locally) or fail (in CI) because service ``name`` is unavailable for ``reason``."""
    msg = f"{name} unavailable: {reason}"
    if in_ci():
        pytest.fail(f"{msg} (CI=true: services must be present)", pytrace=False)
    pytest.skip(msg)
