"""Sizes and random access of :class:`~atdata.Dataset`: ``len``, ``ds[i]``, ``get(key)``, ``select``.

Positions come from the per-shard member indexes of :mod:`atdata._shards.members`; local shards are read
with one ``pread`` per sample.

Examples:
    >>> import os, tempfile, atdata
    >>> d = tempfile.mkdtemp()
    >>> ds = atdata.write_samples([{"x": i} for i in range(5)], os.path.join(d, "a-%d.tar"), maxcount=2)
    >>> fresh = atdata.Dataset(os.path.join(d, "a-*.tar"))
    >>> len(fresh), fresh[3]["x"], [s["x"] for s in fresh.select([4, 0])]
    (5, 3, [4, 0])
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgpack

from atdata._errors import AtdataError, DecodeError, SampleKeyError, in_sample
from atdata._shards.sources import URLSource, is_remote
from atdata._shards.tar import iter_tar

if TYPE_CHECKING:
    from atdata.dataset._dataset import Dataset

__all__ = ["RandomAccessMixin"]

T = TypeVar("T")
_unpackb = msgpack.unpackb


class RandomAccessMixin(Generic[T]):
    """``len``, positional and keyed access of :class:`~atdata.Dataset` (not used on its own)."""

    def select(self, indices: Iterable[int]) -> Dataset[T]:
        """A dataset of the samples at these positions (in this order), read by random access."""
        n = None
        idx = []
        for i in indices:
            i = int(i)
            if i < 0:
                n = n if n is not None else self._base_len()
                i += n
            idx.append(i)
        if self._selection is not None:
            sel = self._selection
            idx = [sel[i] for i in idx]
        return self._derive(_selection=idx)

    def _shard_index(self, shard: str) -> Any:
        """The member index of ``shard`` (persisted beside local shards; see ``_members``)."""
        idx = self._shared.indexes.get(shard)
        if idx is None:
            from atdata._shards.members import load_index

            idx = load_index(shard, self.source)
            self._shared.indexes[shard] = idx
            self._shared.counts[shard] = len(idx)
            self._shared.key_lists[shard] = idx.keys
        return idx

    def _members(self, shard: str) -> dict[str, tuple[int, int]]:
        cache = self._shared.members
        m = cache.get(shard)
        if m is None:
            m = cache[shard] = self._shard_index(shard).as_dict()
        return m

    def _shard_count(self, shard: str) -> int:
        n = self._shared.counts.get(shard)
        if n is None:
            from atdata.manifest._read import (
                manifest_count,
            )  # a fresh manifest saves the shard scan

            n = manifest_count(shard)
            if n is None:
                try:
                    n = len(self._members(shard))
                except AtdataError:
                    if self.on_error != "skip":
                        raise
                    return 0  # unreadable: counts as empty; iterating reports it in list_skipped()
            else:
                self._shared.counts[shard] = n
        return n

    def _base_len(self) -> int:
        return sum(self._shard_count(s) for s in self.list_shards())

    def _exact_len(self) -> int:
        """``len`` without the guard against streaming shards (for explicit requests)."""
        if any(op == "filter" for op, _ in self._ops):
            raise TypeError(
                "the length of a filtered dataset is unknown until it is read; "
                "use sum(1 for _ in ds) or ds.count() to count it"
            )
        if self._selection is not None:
            return len(self._selection)
        if self._known_total is not None:  # type: ignore[attr-defined]
            return self._known_total  # type: ignore[attr-defined]
        return self._base_len()

    def _streams_to_count(self, shard: str) -> bool:
        """Whether counting ``shard`` means downloading it (no known count, no header scan)."""
        if shard in self._shared.counts:
            return False
        return is_remote(shard) or not hasattr(self.source, "read_range")

    def __len__(self) -> int:
        # list(ds), tuple(ds), ... ask len() for a size hint before iterating; a TypeError makes
        # them fall back, so an uncounted remote shard is never downloaded just to count it.
        known = self._known_total is not None  # type: ignore[attr-defined]
        if self._selection is None and not known and not any(op == "filter" for op, _ in self._ops):
            costly = [s for s in self.list_shards() if self._streams_to_count(s)]
            if costly:
                raise TypeError(
                    f"the length of this dataset is unknown without downloading {len(costly)} "
                    f"remote shard(s) (first: {costly[0]}); call ds.count() to count them "
                    "once (len(ds) works afterwards)"
                )
        return self._exact_len()

    def count(self) -> int:
        """The exact number of samples, counting however it takes.

        Local shards are counted from their member indexes (a header-only scan, cached); remote
        shards whose counts are not known are streamed once, and their counts remembered, so
        ``len(ds)`` works afterwards. A filtered dataset is read through and its samples counted.

        Examples:
            >>> import os, tempfile, atdata
            >>> d = tempfile.mkdtemp()
            >>> ds = atdata.write_samples([{"x": i} for i in range(4)], os.path.join(d, "a.tar"))
            >>> ds.count(), ds.filter(lambda s: s["x"] % 2 == 0).count()
            (4, 2)
        """
        if any(op == "filter" for op, _ in self._ops):
            return sum(1 for _ in self)  # type: ignore[attr-defined]
        return self._exact_len()

    def _read_member(self, shard: str, key: str, pos: int | None = None) -> dict:
        idx = self._shard_index(shard)
        if pos is None:
            pos = idx.positions[key]
        off, size = idx.offsets[pos], idx.sizes[pos]
        where = f" in shard {shard}, sample {key!r}"
        if not is_remote(shard) and type(self.source) is URLSource:
            if self._shared.fds is None:
                from atdata._shards.members import FdCache

                self._shared.fds = FdCache()
            data = self._shared.fds.pread(shard, off, size)
        elif hasattr(self.source, "read_range"):
            data = self.source.read_range(shard, off, size)
        else:
            f = self.source.open_shard(shard)
            try:
                data = next(
                    bytes(d) for n, _o, d in iter_tar(f.read, where) if n.startswith(key + ".")
                )
            finally:
                f.close()
        try:
            raw = _unpackb(data)
        except Exception as exc:
            raise DecodeError(f"payload is not valid msgpack ({exc}){where}") from None
        if type(raw) is not dict:
            raise DecodeError(f"payload is not a msgpack map{where}")
        return raw

    def _local(self) -> bool:
        """Whether every shard is a local file read through pread (random access is cheap)."""
        return type(self.source) is URLSource and not any(is_remote(s) for s in self.list_shards())

    def _cumulative(self) -> tuple[list[str], list[int]]:
        c = self._shared.cum
        if c is None:
            shards = self.list_shards()
            c = self._shared.cum = (
                shards,
                list(itertools.accumulate(self._shard_count(s) for s in shards)),
            )
        return c

    def _locate_pos(self, i: int) -> tuple[str, str, int]:
        shards, cum = self._cumulative()
        total = cum[-1] if cum else 0
        if i < 0:
            i += total
        if not 0 <= i < total:
            raise IndexError(f"sample index {i} out of range for a dataset of {total} samples")
        si = bisect.bisect_right(cum, i)
        shard = shards[si]
        local = i - (cum[si - 1] if si else 0)
        return shard, self._shard_index(shard).keys[local], local

    def _locate(self, i: int) -> tuple[str, str]:
        shard, key, _ = self._locate_pos(i)
        return shard, key

    def _raw_selection(self, indices: Iterable[int]) -> Iterator[tuple[str, str, dict]]:
        for i in indices:
            shard, key, pos = self._locate_pos(i)
            yield shard, key, self._read_member(shard, key, pos)

    def get(self, key: str) -> T:
        """The sample stored under ``key`` (a per-shard member index is built once and reused).

        Raises:
            SampleKeyError: When no shard holds the key.
        """
        keymap = self._shared.keymap
        if keymap is None:  # key -> (shard, position), first shard wins; built on the first get
            keymap = {}
            for shard in self.list_shards():
                for key_, pos_ in self._shard_index(shard).positions.items():
                    keymap.setdefault(key_, (shard, pos_))
            self._shared.keymap = keymap
        hit = keymap.get(key)
        if hit is not None:
            return self._one(hit[0], key, hit[1])
        shards = self.list_shards()
        raise SampleKeyError(f"no sample with key {key!r} in {len(shards)} shard(s) of {self.url}")

    def _one(self, shard: str, key: str, pos: int | None = None) -> Any:
        if (
            not self._ops
            and self.on_error == "raise"
            and hasattr(self._decode_type, "atdata_fields")
        ):
            from atdata._wire.decode import decoder_for

            raw = self._read_member(shard, key, pos)
            try:
                return decoder_for(self._decode_type, self.copy_arrays)(raw, "", key)
            except AtdataError as exc:
                raise in_sample(exc, shard, key) from None
        raws = iter([(shard, key, self._read_member(shard, key, pos))])
        if not self._ops:
            for obj in self._decoded(raws):
                return obj
            out = []
        else:
            out = list(self._with_ops(self._decoded(raws)))
        if not out:
            raise SampleKeyError(
                f"sample {key!r} in shard {shard} is excluded by this dataset's filter"
            )
        return out[0]

    def __getitem__(self, item: int | str | slice) -> Any:
        if isinstance(item, str):
            return self.get(item)
        if isinstance(item, slice):
            return self.select(range(*item.indices(self._exact_len())))
        if self._selection is not None:
            item = self._selection[item]
        shard, key, pos = self._locate_pos(int(item))
        return self._one(shard, key, pos)
