"""``atdata.dataset``: typed datasets over WebDataset tar shards (:class:`Dataset`, :class:`SampleBatch`).

Names load lazily, so importing this module does not import numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from atdata._lazy import lazy_module

_LAZY: dict[str, str] = {
    "Dataset": "atdata.dataset._dataset",
    "SampleBatch": "atdata.dataset._batch",
    "write_samples": "atdata.dataset._write",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_module(globals(), _LAZY)

if TYPE_CHECKING:  # pragma: no cover
    from atdata.dataset._batch import SampleBatch
    from atdata.dataset._dataset import Dataset
    from atdata.dataset._write import write_samples
