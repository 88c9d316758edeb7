"""``atdata.dataset``: typed datasets over WebDataset tar shards (:class:`Dataset`, :class:`SampleBatch`).

It also serves the sample names (``DictSample``, ``PackableSample``, ``packable``, ``Packable``),
the sources and the type names its signatures use (``WDSRawSample``, ``SampleExportMap``,
``ST`` ...), all importable from here as from upstream atdata's ``atdata.dataset``.

Names load lazily, so importing this module does not import numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from atdata._lazy import lazy_module

_LAZY: dict[str, str] = {
    "DT": "atdata.dataset._names",
    "DataSource": "atdata._shards.sources",
    "Dataset": "atdata.dataset._dataset",
    "DictSample": "atdata._wire.sample",
    "Lens": "atdata.lens._lens",
    "LensNetwork": "atdata.lens._lens",
    "LensNotFoundError": "atdata._errors",
    "PartialFailureError": "atdata._errors",
    "SampleKeyError": "atdata._errors",
    "Packable": "atdata._wire.sample",
    "PackableSample": "atdata._wire.sample",
    "Pathlike": "atdata.dataset._names",
    "RT": "atdata.dataset._names",
    "ST": "atdata.dataset._names",
    "SampleBatch": "atdata.dataset._batch",
    "SampleExportMap": "atdata.dataset._names",
    "SampleExportRow": "atdata.dataset._names",
    "URLSource": "atdata._shards.sources",
    "WDSRawBatch": "atdata.dataset._names",
    "WDSRawSample": "atdata.dataset._names",
    "packable": "atdata._wire.sample",
    "write_samples": "atdata.dataset._write",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_module(globals(), _LAZY)

if TYPE_CHECKING:  # pragma: no cover
    from atdata._errors import LensNotFoundError, PartialFailureError, SampleKeyError
    from atdata._shards.sources import DataSource, URLSource
    from atdata._wire.sample import DictSample, Packable, PackableSample, packable
    from atdata.dataset._batch import SampleBatch
    from atdata.dataset._dataset import Dataset
    from atdata.dataset._names import (
        DT,
        RT,
        ST,
        Pathlike,
        SampleExportMap,
        SampleExportRow,
        WDSRawBatch,
        WDSRawSample,
    )
    from atdata.dataset._write import write_samples
    from atdata.lens._lens import Lens, LensNetwork
