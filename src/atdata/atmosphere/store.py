"""``atdata.atmosphere.store``: shards as PDS blobs (:class:`PDSBlobStore`, :class:`ShardUploadResult`)."""

from __future__ import annotations

from atdata.atmosphere._upload import PDSBlobStore, ShardUploadResult

__all__ = [
    "PDSBlobStore",
    "ShardUploadResult",
]
