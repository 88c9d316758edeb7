"""Label records (``science.alt.dataset.label``): names, with an optional version, for entries.

A label maps ``(name, version)`` to a dataset entry's AT-URI. Upstream atdata resolves
``@handle/name[@version]`` through labels only, so every publish writes one; we resolve through
labels first and fall back to entry names (entries published before labels existed).

Examples:
    >>> rec = label_record("mnist", "at://did:plc:a/science.alt.dataset.entry/3k", version="1.0.0",
    ...                    created_at="2025-01-01T00:00:00+00:00")
    >>> sorted(rec)
    ['$type', 'createdAt', 'datasetUri', 'name', 'version']
    >>> pick_label([{"name": "m", "datasetUri": "a", "createdAt": "1"},
    ...             {"name": "m", "datasetUri": "b", "createdAt": "2", "version": "2.0"}], "m")
    'b'
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from atdata._errors import ConfigError

__all__ = ["LABEL", "label_record", "pick_label"]

LABEL = "science.alt.dataset.label"


def label_record(
    name: str,
    dataset_uri: str,
    *,
    version: str | None = None,
    description: str | None = None,
    created_at: str | None = None,
) -> dict[str, Any]:
    """A ``science.alt.dataset.label`` record pointing ``name`` (and ``version``) at an entry.

    Raises:
        ConfigError: When ``dataset_uri`` is not an AT-URI or ``name`` is empty.
    """
    from atdata.atmosphere._records import now_iso

    if not name:
        raise ConfigError("a label needs a name")
    if not str(dataset_uri).startswith("at://"):
        raise ConfigError(f"a label points at an entry's AT-URI, got {dataset_uri!r}")
    rec: dict[str, Any] = {
        "$type": LABEL,
        "name": name,
        "datasetUri": str(dataset_uri),
        "createdAt": created_at or now_iso(),
    }
    if version:
        rec["version"] = version
    if description is not None:
        rec["description"] = description
    return rec


def pick_label(
    labels: Iterable[dict[str, Any]], name: str, version: str | None = None
) -> str | None:
    """The ``datasetUri`` of the newest label named ``name`` (with ``version`` when given)."""
    best: dict[str, Any] | None = None
    for rec in labels:
        if rec.get("name") != name or not isinstance(rec.get("datasetUri"), str):
            continue
        if version is not None and rec.get("version") != version:
            continue
        if best is None or str(rec.get("createdAt", "")) >= str(best.get("createdAt", "")):
            best = rec
    return None if best is None else str(best["datasetUri"])
