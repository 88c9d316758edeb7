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
import os
from collections.abc import Iterable, Iterator
from typing import Any

import msgpack

from atdata._errors import (
    AtdataError,
    DataNotFoundError,
    DecodeError,
    SampleIndexError,
    SampleKeyError,
    ShardChangedError,
    shard_open_error,
)
from atdata._shards.members import FdCache, KeyLookup, ShardIndex, Stamp
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
        stamps: Local shard -> the stamp of the file its index was built from (device, inode,
            size, mtime, ctime); :attr:`fds` checks the files it opens against them.
        refused: Local shard -> ``(stamp, message)`` of a new file :meth:`reindex` refused.
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
        self.stamps: dict[str, Stamp] = {}
        self.refused: dict[str, tuple[Stamp, str]] = {}

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
            idx, stamp = self._load(shard, False)
            if stamp is not None:
                self.stamps[shard] = stamp
            self.indexes[shard] = idx
            self.counts[shard] = len(idx)
        return idx

    def _load(self, shard: str, fresh: bool) -> tuple[ShardIndex, Stamp | None]:
        """``shard``'s member index and, for a local file read through pread, the stamp of the
        file it describes (stat'ed before the index is read: a change in between is seen by the
        next check, never missed)."""
        from atdata._shards.members import load_index, stamp_of

        st = None
        try:
            if not is_remote(shard) and type(self.source) is URLSource:
                path = shard[7:] if shard.startswith("file://") else shard
                try:
                    st = os.stat(path)
                except OSError as exc:
                    raise shard_open_error(shard, exc) from None
            idx = load_index(shard, self.source, stat=st, fresh=fresh)
        except DataNotFoundError as exc:
            raise self._missing(exc) from None
        return idx, None if st is None else stamp_of(st)

    def index_for_fd(self, shard: str, fd: int) -> ShardIndex:
        """``shard``'s member index, checked against the file open as ``fd`` (a reader that
        opens shards itself): indexed again when that file changed since (see :meth:`reindex`).

        Raises:
            ShardChangedError: When the file changed and its keys differ, or it changed again
                while this ran.
            DataNotFoundError: When the shard is gone.
        """
        from atdata._shards.members import stamp_of

        idx = self.shard_index(shard)
        want = self.stamps.get(shard)
        if want is None:
            return idx
        got = stamp_of(os.fstat(fd))
        if got == want:
            return idx
        idx = self.reindex(shard)
        if self.stamps.get(shard) != got:
            raise ShardChangedError(
                f"shard {shard} changed again while it was being read: read it again once it "
                "stops changing, or open the dataset again"
            )
        return idx

    def reindex(self, shard: str) -> ShardIndex:
        """The member index of a local shard that changed since it was indexed (see
        :class:`~atdata._shards.members.FdCache`), built afresh from the file there now.

        It replaces the old one only when it lists the same sample keys in the same order: the
        positions, keys and lengths this table (and every dataset and selection sharing it) hold
        then still mean the same samples, read from the new file at their new offsets.

        Raises:
            ShardChangedError: When the keys differ (samples added, removed or reordered):
                naming the shard and the fix (open the dataset again).
            DataNotFoundError: When the shard is gone.
        """
        from atdata._shards.members import stamp_of

        path = shard[7:] if shard.startswith("file://") else shard
        try:
            now = stamp_of(os.stat(path))
        except OSError as exc:
            err = shard_open_error(shard, exc)
            raise (self._missing(err) if isinstance(err, DataNotFoundError) else err) from None
        refused = self.refused.get(shard)
        if refused is not None and refused[0] == now:  # (the same file: no second scan)
            raise ShardChangedError(refused[1])
        old = self.indexes.get(shard)
        new, stamp = self._load(shard, True)
        if old is None or new.keys == old.keys:
            log.info("shard %s changed since it was indexed; indexed again (same samples)", shard)
            self.indexes[shard] = new
            self.counts[shard] = len(new)
            if stamp is not None:
                self.stamps[shard] = stamp
            self.refused.pop(shard, None)
            return new
        msg = (  # (the old index and stamp stay: the new file is never read at old offsets)
            f"shard {shard} changed after this dataset indexed it ({_how(old.keys, new.keys)}): "
            "the positions, keys and len() this dataset holds no longer fit it, so it is not "
            "read; open the dataset again (atdata.Dataset(url), load_dataset or "
            "index.get_dataset) to read the new file"
        )
        self.refused[shard] = (stamp or now, msg)
        raise ShardChangedError(msg)

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
                fds = self.fds = FdCache(self.stamps)
            try:
                data = fds.pread(shard, off, size)
            except ShardChangedError:  # indexed again (same keys: same position) or refused
                idx = self.reindex(shard)
                try:
                    data = fds.pread(shard, idx.offsets[pos], idx.sizes[pos])
                except DataNotFoundError as exc:
                    raise self._missing(exc) from None
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


def _how(old: Any, new: Any) -> str:
    """How the keys of a shard's new file differ from those indexed before (a few words)."""
    if len(old) != len(new):
        return f"{len(old)} samples then, {len(new)} now"
    i = next(i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b)
    return f"sample {i} was {old[i]!r}, is {new[i]!r} now"
