"""Reading shards in order: the raw sample stream, lens views and the shuffle buffer.

Examples:
    >>> import os, tempfile, atdata
    >>> d = tempfile.mkdtemp()
    >>> ds = atdata.write_samples([{"x": i} for i in range(3)], os.path.join(d, "a.tar"), key="index")
    >>> def bad(shard, key, err):
    ...     raise err
    >>> [(k, raw) for _s, k, raw in raw_stream(ds.source, ds.list_shards(), bad)]
    [('00000000', {'x': 0}), ('00000001', {'x': 1}), ('00000002', {'x': 2})]
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import msgpack

from atdata._errors import AtdataError, DecodeError, ShardError, in_sample
from atdata._shards.sources import DataSource
from atdata._shards.tar import iter_tar
from atdata._wire.sample import not_a_map, set_key, unpack_failure

__all__ = ["lens_map", "raw_stream", "shuffle_buffer"]

_unpackb = msgpack.unpackb


def raw_stream(
    src: DataSource,
    shards: Iterable[str],
    bad: Callable[[str, str | None, Exception], None],
    dec: Any = None,
) -> Iterator[Any]:
    """``(shard, key, raw map)`` per sample of ``shards`` in order; with ``dec`` (a generated
    decoder, ``dec(raw, where, key)``) the decoded samples.

    ``bad(shard, key, error)`` is called for an unreadable shard or a sample that does not
    decode: it raises (``on_error="raise"``) or records the error and returns (``"skip"``).
    """
    for shard in shards:
        try:
            f = src.open_shard(shard)
        except AtdataError as exc:
            bad(shard, None, exc)
            continue
        where = f" in shard {shard}"
        try:
            for name, _off, data in iter_tar(f.read, where):
                dot = name.find(".", name.rfind("/") + 1)
                if dot < 0 or name[dot + 1 :] != "msgpack":
                    continue
                key = name[:dot]
                try:
                    raw = _unpackb(data)
                except Exception as exc:
                    msg = f"payload is not valid msgpack ({exc}){where}, sample {key!r}"
                    bad(
                        shard,
                        key,
                        unpack_failure(exc, f"{where}, sample {key!r}") or DecodeError(msg),
                    )
                    continue
                if type(raw) is not dict:
                    bad(shard, key, not_a_map(raw, f"{where}, sample {key!r}"))
                    continue
                if dec is None:
                    yield shard, key, raw
                    continue
                try:
                    obj = dec(raw, "", key)
                except AtdataError as exc:
                    bad(shard, key, in_sample(exc, shard, key))
                    continue
                yield obj
        except ShardError as exc:
            bad(shard, None, exc)
            continue
        finally:
            f.close()


def lens_map(lz: Any, it: Iterator[Any]) -> Iterator[Any]:
    """``lz.get(sample)`` of each sample, keeping the sample's ``__key__``."""
    get = lz.get
    for s in it:
        v = get(s)
        k = getattr(s, "__key__", None)
        if k is not None:
            set_key(v, k)
        yield v


def shuffle_buffer(it: Iterator[Any], size: int, rng: random.Random) -> Iterator[Any]:
    """``it`` shuffled through a buffer of ``size`` items (the same ``rng`` state, the same order)."""
    buf: list[Any] = []
    rand = rng.randrange
    for item in it:
        if len(buf) < size:
            buf.append(item)
            continue
        j = rand(size)
        out = buf[j]
        buf[j] = item
        yield out
    rng.shuffle(buf)
    yield from buf
