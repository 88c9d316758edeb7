"""The ``science.alt.dataset`` lexicons: the ATProto record and query definitions atdata uses.

The JSON documents ship inside the package at their NSID path
(``atdata/lexicons/science/alt/dataset/<name>.json``), with ``ndarray_shim.json`` (the JSON Schema
definition of an NDArray field's bytes) beside them.

Examples:
    >>> load_lexicon("science.alt.dataset.label")["defs"]["main"]["type"]
    'record'
    >>> len(LEXICON_IDS), LEXICON_IDS[0]
    (15, 'science.alt.dataset.schema')
    >>> load_ndarray_shim()["$defs"]["ndarray"]["type"]
    'string'
"""

from __future__ import annotations

import json
import re
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from atdata._errors import DataNotFoundError

__all__ = [
    "LEXICON_IDS",
    "NAMESPACE",
    "get_lexicon_path",
    "list_lexicons",
    "load_lexicon",
    "load_ndarray_shim",
]

NAMESPACE = "science.alt.dataset"

LEXICON_IDS: tuple[str, ...] = tuple(
    f"{NAMESPACE}.{name}"
    for name in (
        "schema",
        "entry",
        "lens",
        "label",
        "lensVerification",
        "verificationMethod",
        "programmingLanguage",
        "schemaType",
        "arrayFormat",
        "storageHttp",
        "storageS3",
        "storageBlobs",
        "storageExternal",
        "resolveSchema",
        "resolveLabel",
    )
)

_ROOT = Path(__file__).parent
_NSID = re.compile(r"^[A-Za-z][A-Za-z0-9-]*(\.[A-Za-z][A-Za-z0-9-]*){2,}$")


def get_lexicon_path(lexicon_id: str) -> Path:
    """Where the document of ``lexicon_id`` lives in the package (it may not exist).

    Raises:
        DataNotFoundError: (a ``FileNotFoundError``) When ``lexicon_id`` is not an NSID (three
            or more dotted segments).
    """
    if not isinstance(lexicon_id, str) or not _NSID.match(lexicon_id):
        raise DataNotFoundError(
            f"No lexicon file found for {lexicon_id!r}: not an NSID like '{NAMESPACE}.entry'"
        )
    *dirs, name = lexicon_id.split(".")
    return _ROOT.joinpath(*dirs, f"{name}.json")


@cache
def load_lexicon(lexicon_id: str) -> dict[str, Any]:
    """The lexicon document of ``lexicon_id`` (cached: the same dict each call; do not mutate it).

    Raises:
        DataNotFoundError: (a ``FileNotFoundError``) When atdata ships no lexicon of that id.
    """
    path = get_lexicon_path(lexicon_id)
    if not path.is_file():
        raise DataNotFoundError(
            f"No lexicon file found for {lexicon_id!r} (atdata ships: {', '.join(LEXICON_IDS)})"
        )
    return dict(json.loads(path.read_text(encoding="utf-8")))


@cache
def load_ndarray_shim() -> dict[str, Any]:
    """The JSON Schema definitions of the NDArray bytes format (``$defs.ndarray``)."""
    return dict(json.loads((_ROOT / "ndarray_shim.json").read_text(encoding="utf-8")))


def list_lexicons() -> tuple[str, ...]:
    """Every lexicon id atdata ships (the :data:`LEXICON_IDS` tuple itself)."""
    return LEXICON_IDS
