"""Sizes and random access over a dataset's shards: :class:`ShardTable`.

A :class:`ShardTable` owns everything positional about a set of shards: per-shard counts, the
member indexes of :mod:`atdata._shards.members`, the cumulative counts behind ``ds[i]``, the
key -> position map behind ``ds.get(key)``, and the ranged reads that fetch one sample (local
shards with one ``pread`` per sample). A :class:`~atdata.Dataset` holds one, shared with the
datasets derived from it (they read the same shards through the same source).

Examples:
    >>> import os, tempfile, atdata
    >>> d = tempfile.mkdtemp()
    >>> ds = atdata.write_samples(
    ...     [{"x": i} for i in range(5)], os.path.join(d, "a-%d.tar"), maxcount=2, key="index"
    ... )
    >>> fresh = atdata.Dataset(os.path.join(d, "a-*.tar"))
    >>> len(fresh), fresh[3]["x"], [s["x"] for s in fresh.select([4, 0])]
    (5, 3, [4, 0])
    >>> t = ShardTable(fresh.source, "raise")
    >>> t.base_len(), t.locate_pos(3)[1:], t.locate_key("00000003") == t.locate_pos(3)[::2]
    (5, ('00000003', 1), True)
"""

from __future__ import annotations

import bisect
import itertools
import logging
from collections.abc import Iterable, Iterator
from typing import Any

import msgpack

from atdata._errors import (
    AtdataError,
    DataNotFoundError,
    DecodeError,
    SampleIndexError,
    SampleKeyError,
)
from atdata._shards.members import FdCache, KeyLookup, ShardIndex
from atdata._shards.sources import DataSource, URLSource, is_remote
from atdata._shards.tar import iter_tar
from atdata._wire.sample import not_a_map, unpack_failure

__all__ = ["ShardTable"]

log = logging.getLogger("atdata")

_unpackb = msgpack.unpackb


class ShardTable:
    """Counts, member indexes and positions of the shards of one source, and ranged reads.

    Args:
        source: The source the shards are read through.
        on_error: ``"skip"``: a shard that cannot be indexed counts as empty (iterating reports
            it); ``"raise"``: the error propagates.

    Attributes:
        counts: Shard -> number of samples (known from shard infos, manifests or indexes).
        indexes: Shard -> its :class:`~atdata._shards.members.ShardIndex` (compact: integer
            arrays and packed keys, about 12 bytes plus the key length per sample).
        skipped: What ``on_error="skip"`` skipped: dicts with shard, key and error.
        cum: ``(shards, cumulative counts)`` for positional access, built on first use.
        fds: Open local shard files for ``pread`` (never pickled: workers open their own).
        keymap: Key -> overall position over :attr:`keymap_shards` (first shard wins), a
            :class:`~atdata._shards.members.KeyLookup` of hashes (12-16 bytes per sample);
            built on the first ``get``.
    """

    def __init__(self, source: DataSource, on_error: str) -> None:
        self.source = source
        self.on_error = on_error
        self.counts: dict[str, int] = {}
        self.indexes: dict[str, ShardIndex] = {}
        self.skipped: list[dict[str, str]] = []
        self.cum: tuple[list[str], list[int]] | None = None
        self.fds: FdCache | None = None
        self.keymap: KeyLookup | None = None
        self.keymap_shards: list[str] = []

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers (spawn): open their own files
        return {**self.__dict__, "fds": None, "keymap": None}  # (hashes differ per process)

    # -- counts ---------------------------------------------------------------------------------
    def bad(self, shard: str, key: str | None, err: Exception) -> None:
        """Raise ``err`` (``on_error="raise"``), or record it in :attr:`skipped` and return."""
        if self.on_error != "skip":
            raise err from None
        self.skipped.append({"shard": shard, "key": key or "", "error": str(err)})
        log.warning("skipped %s%s: %s", shard, f" sample {key}" if key else "", err)

    def shard_index(self, shard: str) -> ShardIndex:
        """The member index of ``shard`` (persisted beside local shards; see ``_shards.members``)."""
        idx = self.indexes.get(shard)
        if idx is None:
            from atdata._shards.members import load_index

            try:
                idx = load_index(shard, self.source)
            except DataNotFoundError as exc:
                raise self._missing(exc) from None
            self.indexes[shard] = idx
            self.counts[shard] = len(idx)
        return idx

    def _missing(self, exc: DataNotFoundError) -> DataNotFoundError:
        """``exc`` naming what the shard belongs to (the source's ``origin``, if it has one)."""
        origin = getattr(self.source, "origin", "")
        if not isinstance(origin, str) or not origin or origin in str(exc):
            return exc
        return DataNotFoundError(f"{exc} ({origin})")

    def shard_count(self, shard: str) -> int:
        """Samples in ``shard``: a known count, a fresh manifest's, or a header-only scan."""
        n = self.counts.get(shard)
        if n is None:
            from atdata.manifest._read import manifest_count  # a fresh manifest saves the scan

            n = manifest_count(shard)
            if n is None:
                try:
                    n = len(self.shard_index(shard))
                except AtdataError:
                    if self.on_error != "skip":
                        raise
                    return 0  # unreadable: counts as empty; iterating reports it in list_skipped()
            else:
                self.counts[shard] = n
        return n

    def base_len(self) -> int:
        """Samples in all shards."""
        return sum(self.shard_count(s) for s in self.source.list_shards())

    def streams_to_count(self, shard: str) -> bool:
        """Whether counting ``shard`` means downloading it (no known count, no header scan)."""
        if shard in self.counts:
            return False
        return is_remote(shard) or not hasattr(self.source, "read_range")

    def local(self) -> bool:
        """Whether every shard is a local file read through pread (random access is cheap)."""
        return type(self.source) is URLSource and not any(
            is_remote(s) for s in self.source.list_shards()
        )

    # -- positions ------------------------------------------------------------------------------
    def cumulative(self) -> tuple[list[str], list[int]]:
        """``(shards, cumulative sample counts)``."""
        c = self.cum
        if c is None:
            shards = list(self.source.list_shards())
            c = self.cum = (
                shards,
                list(itertools.accumulate(self.shard_count(s) for s in shards)),
            )
        return c

    def locate_pos(self, i: int) -> tuple[str, str, int]:
        """``(shard, key, position in shard)`` of the sample at overall position ``i``.

        Raises:
            SampleIndexError: (an ``IndexError``) When ``i`` is out of range.
        """
        shards, cum = self.cumulative()
        total = cum[-1] if cum else 0
        asked = i
        if i < 0:
            i += total
        if not 0 <= i < total:
            raise SampleIndexError(
                f"sample index {asked} out of range for a dataset of {total} samples"
            )
        si = bisect.bisect_right(cum, i)
        shard = shards[si]
        local = i - (cum[si - 1] if si else 0)
        return shard, self.shard_index(shard).keys[local], local

    def locate_key(self, key: str) -> tuple[str, int] | None:
        """``(shard, position in shard)`` of ``key`` (the first shard that holds it), or ``None``."""
        keymap = self.keymap
        if keymap is None:
            from atdata._shards.members import KeyLookup

            shards = list(self.source.list_shards())
            keymap = self.keymap = KeyLookup([self.shard_index(s).keys for s in shards])
            self.keymap_shards = shards
        hit = keymap.find(key)
        return None if hit is None else (self.keymap_shards[hit[0]], hit[1])

    # -- reading --------------------------------------------------------------------------------
    def read_member(self, shard: str, key: str, pos: int | None = None) -> dict:
        """The raw field map of sample ``key`` of ``shard`` (one ranged read where possible).

        Raises:
            DecodeError: When the payload is not a msgpack map.
        """
        idx = self.shard_index(shard)
        if pos is None:
            pos = idx.position(key)
            if pos is None:
                raise SampleKeyError(f"no sample with key {key!r} in shard {shard}")
        off, size = idx.offsets[pos], idx.sizes[pos]
        where = f" in shard {shard}, sample {key!r}"
        source = self.source
        if not is_remote(shard) and type(source) is URLSource:
            fds = self.fds
            if fds is None:
                fds = self.fds = FdCache()
            try:
                data = fds.pread(shard, off, size)
            except DataNotFoundError as exc:
                raise self._missing(exc) from None
        elif (read_range := getattr(source, "read_range", None)) is not None:
            data = read_range(shard, off, size)
        else:
            f = source.open_shard(shard)
            try:
                data = next(
                    bytes(d) for n, _o, d in iter_tar(f.read, where) if n.startswith(key + ".")
                )
            finally:
                f.close()
        try:
            raw = _unpackb(data)
        except Exception as exc:
            err = unpack_failure(exc, where) or DecodeError(
                f"payload is not valid msgpack ({exc}){where}"
            )
            raise err from None
        if type(raw) is not dict:
            raise not_a_map(raw, where)
        return raw

    def raw_selection(self, indices: Iterable[int]) -> Iterator[tuple[str, str, dict]]:
        """``(shard, key, raw map)`` of the samples at these overall positions, in order."""
        for i in indices:
            shard, key, pos = self.locate_pos(i)
            yield shard, key, self.read_member(shard, key, pos)
