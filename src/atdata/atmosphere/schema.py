"""``atdata.atmosphere.schema``: publish and load schema records (:class:`SchemaPublisher`, :class:`SchemaLoader`)."""

from __future__ import annotations

from atdata.atmosphere._api_records import SchemaLoader, SchemaPublisher

__all__ = [
    "SchemaLoader",
    "SchemaPublisher",
]
