"""Shard references of an existing dataset: sizes, counts and sha256 for indexing it in place."""

from __future__ import annotations

import hashlib
from typing import Any

from atdata.index._entry import ShardRef

__all__ = ["shard_refs_of"]


def shard_refs_of(ds: Any) -> list[ShardRef]:
    """One :class:`ShardRef` per shard of ``ds``, in order.

    Sizes and sha256 come from ``ds.list_shard_infos()`` where known; other shards are read
    once to hash them (so the index never records a checksum it did not see).
    """
    known = {i.path: i for i in (ds.list_shard_infos() if hasattr(ds, "list_shard_infos") else ())}
    counts = getattr(getattr(ds, "_shared", None), "counts", {}) or {}
    refs = []
    for url in ds.list_shards():
        info = known.get(url)
        if info is not None and info.sha256:
            refs.append(ShardRef(url, info.sha256, info.size, info.num_samples))
            continue
        h, n = hashlib.sha256(), 0
        with ds.source.open_shard(url) as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
                n += len(chunk)
        refs.append(ShardRef(url, h.hexdigest(), n, counts.get(url)))
    return refs
