"""The viewer's JSON API as plain functions of a :class:`~atdata.viewer._registry.Registry`.

:class:`ViewerAPI` answers the requests the ASGI app routes to it; each method returns a JSON-able
dict (or PNG bytes) and raises the package's errors, which the app turns into HTTP statuses. The
datasets are read by random access (``ds[i]``), by key (``ds.get``) and through the manifest
query engine (``ds.query``), so the viewer shows what the library reads.
"""

from __future__ import annotations

import collections
import json
import os
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from atdata._errors import (
    AtdataError,
    ConfigError,
    DataNotFoundError,
    NotFoundError,
    SampleKeyError,
)
from atdata.viewer._cells import CellPolicy, to_cell, type_name
from atdata.viewer._png import image_layout, thumbnail_png
from atdata.viewer._stats import manifest_summary

if TYPE_CHECKING:
    from atdata.dataset._dataset import Dataset
    from atdata.viewer._registry import Registry, ViewerDataset

__all__ = ["MAX_PAGE", "ThumbCache", "ViewerAPI"]

MAX_PAGE = 100  # rows per page, at most
MAX_WHERE = 2000  # characters of a query's WHERE clause
MAX_SHARDS_LISTED = 500
MAX_CACHED_ROWS = 200_000  # matched locations kept by the remembered queries, all together
_CELL_BUDGET = 4096  # bytes of JSON one list/dict cell may take before it is shown as cut text


class ThumbCache:
    """PNG thumbnails by ``(shard checksum, key, field)``, least recently used first out, bounded
    in bytes.

    Examples:
        >>> c = ThumbCache(max_bytes=10)
        >>> c.put(("s", "k", "f"), b"123456"); c.put(("s", "k2", "f"), b"123456")
        >>> c.get(("s", "k", "f")) is None, c.get(("s", "k2", "f")), c.nbytes
        (True, b'123456', 6)
    """

    def __init__(self, max_bytes: int = 32 << 20) -> None:
        self.max_bytes = max_bytes
        self.nbytes = 0
        self._items: collections.OrderedDict[tuple[str, str, str], bytes] = (
            collections.OrderedDict()
        )
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str]) -> bytes | None:
        """The cached PNG, or ``None``."""
        with self._lock:
            png = self._items.get(key)
            if png is not None:
                self._items.move_to_end(key)
            return png

    def put(self, key: tuple[str, str, str], png: bytes) -> None:
        """Cache ``png`` (evicting the least recently used until it fits)."""
        if len(png) > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.nbytes -= len(old)
            self._items[key] = png
            self.nbytes += len(png)
            while self.nbytes > self.max_bytes:
                _, gone = self._items.popitem(last=False)
                self.nbytes -= len(gone)

    def __len__(self) -> int:
        return len(self._items)


def _fields(sample: Any) -> dict[str, Any]:
    """Field name -> value; a schema-free sample's array bytes decoded (zero-copy)."""
    specs = getattr(type(sample), "atdata_fields", None)
    if specs is not None:
        return {s.name: getattr(sample, s.name, None) for s in specs()}
    if hasattr(sample, "items"):
        from atdata._wire.arrays import decode_array, is_array_bytes

        return {
            str(k): decode_array(v, copy=False) if is_array_bytes(v) else v
            for k, v in sample.items()
        }
    if hasattr(sample, "to_dict"):
        return dict(sample.to_dict())
    return {"value": sample}


def _int(params: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        raise ConfigError(f"parameter {name}={raw[:40]!r} is not an integer") from None
    if v < lo:
        raise ConfigError(f"parameter {name}={v} is below {lo}")
    return min(v, hi)


class ViewerAPI:
    """What the viewer answers, independent of HTTP.

    Args:
        registry: The datasets.
        policy: Cell limits.
        max_response_bytes: Pages stop adding rows past this many bytes (``truncated`` then says
            so and ``next_offset`` continues); any larger response is refused.
        thumb_cache_bytes: Bytes of PNG thumbnails kept.
        thumb_side: Largest thumbnail side in pixels.
    """

    def __init__(
        self,
        registry: Registry,
        *,
        policy: CellPolicy | None = None,
        max_response_bytes: int = 1 << 20,
        thumb_cache_bytes: int = 32 << 20,
        thumb_side: int = 128,
    ) -> None:
        self.registry = registry
        self.policy = policy or CellPolicy()
        self.max_response_bytes = max_response_bytes
        self.thumbs = ThumbCache(thumb_cache_bytes)
        self.thumb_side = thumb_side
        self._queries: collections.OrderedDict[tuple[str, str], Any] = collections.OrderedDict()
        self._queries_lock = threading.Lock()
        self._checksums: dict[tuple[str, int, int], str] = {}

    # -- listing and detail -------------------------------------------------------------------
    def datasets(self) -> dict[str, Any]:
        """``{"datasets": [summary, ...]}``."""
        return {"datasets": [vd.summary() for vd in self.registry.list_datasets()]}

    def detail(self, dataset_id: str) -> dict[str, Any]:
        """One dataset: summary, schema, versions, shards, manifest aggregates and histograms."""
        vd = self.registry.get(dataset_id)
        with vd.lock:
            cached = vd.cache.get("detail")
            if cached is None:
                cached = self._detail(vd)
                vd.cache["detail"] = cached
        return cached

    def _detail(self, vd: ViewerDataset) -> dict[str, Any]:
        ds = vd.dataset()
        infos = {i.path: i for i in ds.list_shard_infos()}
        shards = ds.list_shards()
        size_of = getattr(ds.source, "shard_size", None)
        rows = []
        for s in shards[:MAX_SHARDS_LISTED]:
            info = infos.get(s)
            size = info.size if info is not None and info.size else None
            if size is None and size_of is not None:
                try:
                    size = size_of(s)
                except OSError:
                    size = None
            rows.append(
                {
                    "name": os.path.basename(s.split("?")[0]) or s,
                    "samples": info.num_samples if info is not None else None,
                    "bytes": size,
                    "sha256": (info.sha256 or None) if info is not None else None,
                }
            )
        schema = dict(ds.schema)
        if not schema:  # schema-free: the first sample's field types
            try:
                schema = {k: type_name(v) for k, v in _fields(ds[0]).items()} if len(ds) else {}
            except (IndexError, TypeError, OSError):
                schema = {}
        out = vd.summary()
        if out["samples"] is None:
            try:
                out["samples"] = len(ds)
            except TypeError:
                out["samples"] = None
        out.update(
            sample_type=getattr(ds.sample_type, "__name__", str(ds.sample_type)),
            schema=schema,
            versions=self.registry.versions(vd),
            shards=rows,
            shards_total=len(shards),
            manifest=manifest_summary(ds, self.policy.item_limit * 2),
        )
        return out

    # -- rows ---------------------------------------------------------------------------------
    def _thumb_url(self, vd: ViewerDataset, key: str | None, field: str) -> Any:
        if key is None:
            return lambda _arr: None

        def url(arr: Any) -> str | None:
            if image_layout(tuple(arr.shape)) is None or arr.dtype.kind not in "biuf":
                return None
            return (
                f"api/datasets/{quote(vd.id, safe='')}/thumb?key={quote(key, safe='')}"
                f"&field={quote(field, safe='')}"
            )

        return url

    def _row(self, vd: ViewerDataset, sample: Any, extra: dict[str, Any]) -> dict[str, Any]:
        key = getattr(sample, "__key__", None)
        cells = {}
        for name, value in _fields(sample).items():
            c = to_cell(value, self.policy, self._thumb_url(vd, key, name))
            if c["t"] in ("list", "dict") and len(json.dumps(c)) > _CELL_BUDGET:
                c = {"t": "obj", "type": type(value).__name__, "v": "(too large to show)",
                     "cut": True, "len": c["len"]}  # fmt: skip
            cells[name[: self.policy.string_limit]] = c
        return {**extra, "key": key, "cells": cells}

    def _safe_row(self, vd: ViewerDataset, ds: Dataset[Any], i: int) -> dict[str, Any]:
        """Row ``i``; a sample that cannot be read is a row with its error, not a failed page."""
        try:
            return self._row(vd, ds[i], {"i": i})
        except AtdataError as exc:
            return {"i": i, "key": None, "cells": {}, "error": str(exc)[:500]}

    def _page(self, rows: list[dict[str, Any]], budget: int) -> tuple[list[dict[str, Any]], bool]:
        """The leading rows that fit in ``budget`` bytes of JSON, and whether any were dropped."""
        used = 0
        for n, r in enumerate(rows):
            used += len(json.dumps(r)) + 1
            if used > budget:
                return rows[:n], True
        return rows, False

    def samples(self, dataset_id: str, params: dict[str, str]) -> dict[str, Any]:
        """``offset``/``length`` (at most :data:`MAX_PAGE`) samples by random access."""
        vd = self.registry.get(dataset_id)
        offset = _int(params, "offset", 0, 0, 1 << 62)
        length = _int(params, "length", 20, 0, MAX_PAGE)
        with vd.lock:
            ds = vd.dataset()
            try:
                total = len(ds)
            except TypeError as exc:  # remote shards of unknown count: not downloaded for a page
                raise ConfigError(str(exc)) from None
            rows = [self._safe_row(vd, ds, i) for i in range(offset, min(offset + length, total))]
        kept, cut = self._page(rows, self.max_response_bytes - 512)
        return {
            "id": vd.id,
            "offset": offset,
            "length": len(kept),
            "total": total,
            "truncated": cut,
            "next_offset": offset + len(kept) if offset + len(kept) < total else None,
            "rows": kept,
        }

    def query(self, dataset_id: str, params: dict[str, str]) -> dict[str, Any]:
        """Samples matching a SQL ``where`` over the manifests (``ds.query``), paged."""
        vd = self.registry.get(dataset_id)
        where = (params.get("where") or "").strip()
        if len(where) > MAX_WHERE:
            raise ConfigError(f"the query is {len(where)} characters long; at most {MAX_WHERE}")
        offset = _int(params, "offset", 0, 0, 1 << 62)
        length = _int(params, "length", 20, 0, MAX_PAGE)
        with vd.lock:
            ds = vd.dataset()
            res = self._query(vd, ds, where)
            page = res[offset : offset + length]
            rows = []
            for n, loc in enumerate(page):
                sample = ds.get_sample(loc)
                if getattr(sample, "__key__", None) is None:
                    sample.__key__ = loc.key
                extra = {"i": offset + n, "shard": os.path.basename(loc.shard)}
                rows.append(self._row(vd, sample, extra))
        kept, cut = self._page(rows, self.max_response_bytes - 1024)
        s = res.stats
        return {
            "id": vd.id,
            "where": where,
            "offset": offset,
            "length": len(kept),
            "total": len(res),
            "truncated": cut,
            "next_offset": offset + len(kept) if offset + len(kept) < len(res) else None,
            "stats": {
                "shards_total": s.shards_total,
                "shards_pruned": s.shards_pruned,
                "shards_scanned": s.shards_scanned,
                "rows_scanned": s.rows_scanned,
                "rows_matched": s.rows_matched,
            },
            "rows": kept,
        }

    def _query(self, vd: ViewerDataset, ds: Dataset[Any], where: str) -> Any:
        """``ds.query(where)``, the last few results remembered (paging re-runs nothing), at most
        :data:`MAX_CACHED_ROWS` locations in all (a larger result is not kept)."""
        k = (vd.id, where)
        with self._queries_lock:
            res = self._queries.get(k)
            if res is not None:
                self._queries.move_to_end(k)
                return res
        try:
            res = ds.query(where or None)
        except DataNotFoundError as exc:
            raise ConfigError(str(exc)) from None
        if len(res) > MAX_CACHED_ROWS:
            return res  # too big to keep: each page runs the query again
        with self._queries_lock:
            self._queries[k] = res
            while len(self._queries) > 8 or sum(map(len, self._queries.values())) > MAX_CACHED_ROWS:
                self._queries.popitem(last=False)
        return res

    # -- thumbnails ---------------------------------------------------------------------------
    def _checksum(self, vd: ViewerDataset, ds: Dataset[Any], shard: str) -> str:
        """The shard's sha256 as recorded (index entry or manifest), else a size+mtime stamp."""
        for info in ds.list_shard_infos():
            if info.path == shard and info.sha256:
                return info.sha256
        if "://" in shard:
            return "url:" + shard
        try:
            st = os.stat(shard)
        except OSError:
            return "path:" + shard
        k = (shard, st.st_size, st.st_mtime_ns)
        got = self._checksums.get(k)
        if got is None:
            from atdata.manifest._read import recorded_digest

            rec = recorded_digest(shard)
            got = rec[0] if rec is not None and rec[1] in (None, st.st_size) else None
            got = got or f"stat:{shard}:{st.st_size}:{st.st_mtime_ns}"
            self._checksums[k] = got
        return got

    def thumbnail(self, dataset_id: str, params: dict[str, str]) -> bytes:
        """The PNG thumbnail of array field ``field`` of sample ``key``.

        Raises:
            NotFoundError: When the sample, the field or an image-shaped array is missing.
        """
        vd = self.registry.get(dataset_id)
        key, field = params.get("key"), params.get("field")
        if not key or not field:
            raise ConfigError("a thumbnail needs key= and field=")
        with vd.lock:
            ds = vd.dataset()
            try:
                shard = ds.locate(key).shard  # for the cache key (nothing decoded)
            except SampleKeyError:
                raise SampleKeyError(f"no sample with key {key[:80]!r} in {vd.id}") from None
            ck = (self._checksum(vd, ds, shard), key, field)
            png = self.thumbs.get(ck)
            if png is not None:
                return png
            value = _fields(ds.get(key)).get(field)
        if value is None or not hasattr(value, "shape"):
            raise NotFoundError(f"sample {key[:80]!r} of {vd.id} has no array field {field[:80]!r}")
        png = thumbnail_png(value, self.thumb_side)
        if png is None:
            raise NotFoundError(
                f"field {field[:80]!r} of sample {key[:80]!r} ({value.dtype} {tuple(value.shape)}) "
                "is not an image (HW, HWC or CHW with 1, 3 or 4 channels)"
            )
        self.thumbs.put(ck, png)
        return png
