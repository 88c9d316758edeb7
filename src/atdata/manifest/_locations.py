"""Where a sample lives (:class:`SampleLocation`) and reading it from there by a ranged read.

A location's offset is the byte offset of the sample's msgpack payload inside its tar; the 512
bytes before it are the member's tar header, which is read along and checked (name and size), so
a stale manifest never yields another sample's bytes.

Examples:
    >>> import os, tempfile, atdata
    >>> d = tempfile.mkdtemp()
    >>> ds = atdata.write_samples([{"i": i} for i in range(3)], os.path.join(d, "a.tar"),
    ...                           key="index", manifest=True)
    >>> loc = ds.query(lambda df: df["i"] == 2)[0]
    >>> (loc.key, loc.offset % 512, fetch_sample(ds.source, atdata.DictSample, loc).i)
    ('00000002', 0, 2)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator
from typing import Any

from atdata._errors import IntegrityError, shard_open_error

__all__ = ["SampleLocation", "fetch_raw", "fetch_sample", "fetch_samples"]


@dataclasses.dataclass(frozen=True, order=True)
class SampleLocation:
    """Where one sample lives: its shard, key, the byte offset of its payload in the tar and the
    payload's size (``None`` when the manifest does not record it).

    Examples:
        >>> SampleLocation(shard="data/shard-000000", key="sample_00042", offset=52480).shard
        'data/shard-000000'
    """

    shard: str
    key: str
    offset: int
    size: int | None = None


def _member_size(head: bytes) -> int:
    size_field = head[124:136].split(b"\0", 1)[0].strip()
    try:
        return int(size_field or b"-1", 8)
    except ValueError:
        return -1


def _check_header(head: bytes, loc: SampleLocation) -> None:
    name = head[:100].split(b"\0", 1)[0].decode("utf-8", "replace")
    want = (loc.key + ".msgpack").encode("utf-8")[:100].decode("utf-8", "replace")
    size = _member_size(head)
    if name != want or size != loc.size:
        raise IntegrityError(
            f"shard {loc.shard} holds {name!r} ({size} bytes) at offset {loc.offset}, not sample "
            f"{loc.key!r} ({loc.size} bytes): the manifest is stale; rebuild it with: "
            f"atdata manifest build {loc.shard} --force"
        )


def _local_reader(source: Any) -> Any:
    """A ``read_range`` that keeps local shards open (URLSource only), or ``None``."""
    from atdata._shards.sources import URLSource, is_remote, pread_exact

    if type(source) is not URLSource:
        return None
    fds: dict[str, int] = {}

    def read(shard: str, offset: int, size: int) -> bytes:
        if is_remote(shard):
            return source.read_range(shard, offset, size)
        fd = fds.get(shard)
        if fd is None:
            try:
                fd = fds[shard] = os.open(shard, os.O_RDONLY)
            except OSError as exc:
                raise shard_open_error(shard, exc) from None
        return pread_exact(fd, size, offset, shard)

    def close() -> None:
        for fd in fds.values():
            os.close(fd)
        fds.clear()

    read.close = close  # type: ignore[attr-defined]
    return read


def fetch_raw(source: Any, loc: SampleLocation, read: Any = None) -> dict:
    """The raw field map of the sample at ``loc``, checked against its tar header.

    Raises:
        IntegrityError: When the bytes at ``loc`` are not that sample (a stale manifest).
    """
    from atdata._wire.sample import unpack_payload

    where = f" in shard {loc.shard}, sample {loc.key!r}"
    read = read or getattr(source, "read_range", None)
    payload: bytes | memoryview | None
    if read is not None and loc.offset >= 512 and loc.size is None:
        size = _member_size(read(loc.shard, loc.offset - 512, 512))
        if size >= 0:
            loc = dataclasses.replace(loc, size=size)
    if read is not None and loc.offset >= 512 and loc.size is not None:
        data = read(loc.shard, loc.offset - 512, loc.size + 512)
        _check_header(data[:512], loc)
        payload = memoryview(data)[512:]
    else:
        from atdata._shards.tar import iter_tar, split_member_name

        f = source.open_shard(loc.shard)
        try:
            payload = next(
                (
                    bytes(d)
                    for n, _o, d in iter_tar(f.read, where)
                    if split_member_name(n)[0] == loc.key
                ),
                None,
            )
        finally:
            f.close()
        if payload is None:
            raise IntegrityError(
                f"sample {loc.key!r} is not in shard {loc.shard}: the manifest is stale"
            )
    return unpack_payload(payload, where)


def fetch_sample(source: Any, sample_type: type[Any], loc: SampleLocation, read: Any = None) -> Any:
    """Decode the sample at ``loc`` as ``sample_type`` (reads only its tar member)."""
    raw = fetch_raw(source, loc, read)
    obj = sample_type._from_wire(raw, f" in shard {loc.shard}, sample {loc.key!r}")
    from atdata._wire.sample import set_key

    set_key(obj, loc.key)
    return obj


def fetch_samples(source: Any, sample_type: type, locs: Iterable[SampleLocation]) -> Iterator[Any]:
    """Decode the samples at ``locs`` in order, keeping local shards open between reads."""
    read = _local_reader(source)
    try:
        for loc in locs:
            yield fetch_sample(source, sample_type, loc, read)
    finally:
        if read is not None:
            read.close()
