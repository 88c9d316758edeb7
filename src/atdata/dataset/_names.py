"""Type names that ``atdata.dataset`` documents in its signatures (raw WebDataset dicts, export
rows, the sample type variables), for code that imports them from there.

Examples:
    >>> from atdata.dataset import WDSRawSample, SampleExportMap, ST
    >>> WDSRawSample
    dict[str, typing.Any]
    >>> ST.__name__, ST.__bound__.__name__
    ('ST', 'Packable')
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeAlias, TypeVar

from atdata._wire.sample import Packable

__all__ = [
    "DT",
    "RT",
    "ST",
    "Pathlike",
    "SampleExportMap",
    "SampleExportRow",
    "WDSRawBatch",
    "WDSRawSample",
]

#: A local path (``str`` or ``os.PathLike``).
Pathlike: TypeAlias = str | os.PathLike[str]
#: One raw WebDataset sample: ``{"__key__": ..., "msgpack": payload bytes}``.
WDSRawSample: TypeAlias = dict[str, Any]
#: A raw WebDataset batch: ``{"__key__": [...], "msgpack": [payload, ...]}``.
WDSRawBatch: TypeAlias = dict[str, Any]
#: One exported row (``to_parquet(sample_map=...)`` returns one per sample).
SampleExportRow: TypeAlias = dict[str, Any]
#: A function from a sample to its exported row.
SampleExportMap: TypeAlias = Callable[[Any], SampleExportRow]

#: A sample type.
ST = TypeVar("ST", bound=Packable)
#: The sample type a lens or map returns.
RT = TypeVar("RT", bound=Packable)
#: Any type (dataset-level content metadata, ...).
DT = TypeVar("DT")
