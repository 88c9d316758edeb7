"""``atdata.atmosphere.records``: publish and load dataset entry records (:class:`DatasetPublisher`, :class:`DatasetLoader`)."""

from __future__ import annotations

from atdata.atmosphere._api_records import DatasetLoader, DatasetPublisher

__all__ = [
    "DatasetLoader",
    "DatasetPublisher",
]
