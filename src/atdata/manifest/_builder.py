"""Per-shard manifests: ``<shard>.manifest.json`` (header, aggregates) + ``<shard>.manifest.parquet``.

The parquet file has one row per sample: ``__key__``, ``__offset__`` (byte offset of the member's
payload inside the tar), ``__size__`` (payload bytes) and the queryable fields; ``list[str]`` fields
are JSON text columns. Both files are written under temporary names and renamed into place, the
JSON header last, and only for shards that were finished. The writer prepares them before the
shard takes its final name and renames them right after it, having first removed the manifest of
the shard it replaces: a writer killed at any point leaves either a manifest of the new bytes or
none, never one describing other bytes.

Headers we write carry ``offset_kind: "tar"``, a ``manifest_token`` repeated in the parquet
metadata, and the shard's ``shard_sha256`` and file stamp ``shard_stat`` (see ``_fresh``), so a
manifest is only trusted for the exact shard bytes it describes. The token is a digest of what
the rows are made from (the shard's sha256 and how it is described), so writing the same shard
the same way gives the same files, except for ``created_at`` and ``shard_stat``, which a caller
that wants byte-identical manifests fixes (``ManifestObserver(created_at=..., stamp=False)``, as
``atdata.ingest`` does). Writing imports no pandas: the columns are built from buffers
(``_arrowvals.typed_array``), and the parquet writer's scratch memory is handed back after
each file. Manifests without the marker
(written by upstream atdata 0.7) have offsets that are not tar offsets and may miss samples;
readers verify those against the shard (see ``_read``).

Examples:
    >>> import os, tempfile, json, atdata
    >>> @atdata.packable
    ... class Pet:
    ...     name: str
    ...     age: int
    >>> d = tempfile.mkdtemp()
    >>> ds = atdata.write_samples([Pet(name=n, age=i) for i, n in enumerate("abc")],
    ...                           os.path.join(d, "pets.tar"), key="index", manifest=True)
    >>> sorted(f for f in os.listdir(d))
    ['pets.manifest.json', 'pets.manifest.parquet', 'pets.tar']
    >>> h = json.load(open(os.path.join(d, "pets.manifest.json")))
    >>> h["shard_id"], h["num_samples"], h["offset_kind"], h["aggregates"]["age"]["max"]
    ('pets', 3, 'tar', 2.0)
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import operator
import os
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from atdata._errors import SchemaError, shard_open_error
from atdata._extras import require
from atdata._version import __version__
from atdata.manifest._aggregates import aggregate_values
from atdata.manifest._arrowvals import array_of, typed_array
from atdata.manifest._fields import infer_kind, manifest_fields
from atdata.manifest._paths import (
    MANIFEST_VERSION,
    TOKEN_META,
    manifest_paths,
    shard_id_of,
)

__all__ = [
    "MANIFEST_VERSION",
    "ManifestObserver",
    "build_manifest",
    "commit_manifest",
    "discard_manifest",
    "manifest_paths",
    "prepare_manifest",
    "write_manifest",
]


def _field_value(sample: Any, name: str) -> Any:
    try:
        return sample[name] if not hasattr(type(sample), "atdata_fields") else getattr(sample, name)
    except (KeyError, AttributeError):
        return None


def _arrow_type(pa: Any, sample_type: type | None, name: str, kind: str) -> Any:
    if kind == "set":
        return None  # JSON text, built separately
    get = getattr(sample_type, "atdata_fields", None)
    if get is not None:
        for spec in get():
            if spec.name == name:
                return {
                    "str": pa.string(),
                    "bool": pa.bool_(),
                    "int": pa.int64(),
                    "float": pa.float64(),
                }.get(spec.kind)
    return None


def _column(pa: Any, values: list[Any], kind: str, typ: Any, where: str) -> Any:
    # built from buffers (see _arrowvals): pa.array of Python values would import pandas
    if kind == "set":
        text = [None if v is None else json.dumps(list(v), separators=(",", ":")) for v in values]
        return pa.ExtensionArray.from_storage(pa.json_(), typed_array(text, pa.string()))
    try:
        if typ is not None:
            return typed_array(values, typ)
        return array_of(values) if any(v is not None for v in values) else pa.nulls(len(values))
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        if typ is None:  # loose DictSample data of mixed types: keep it queryable as text
            return typed_array([None if v is None else str(v) for v in values], pa.string())
        raise SchemaError(f"manifest column {where} holds values that do not fit {typ}") from None


def _token(shard_sha256: str | None, header: dict[str, Any], schema: Any, rows: list[Any]) -> str:
    """The token tying a parquet file to its header: a digest of what the rows are made from
    (the shard's sha256 and how it is described), so the same shard written the same way gets
    the same token, and byte-identical manifests. Without a sha256, the rows themselves count."""
    h = hashlib.sha256()
    ident = [shard_sha256, header, str(schema)]
    h.update(json.dumps(ident, sort_keys=True, default=str).encode())
    if shard_sha256 is None:
        h.update(repr(rows).encode())
    return h.hexdigest()[:32]


def write_manifest(
    shard: str,
    keys: list[str],
    offsets: list[int],
    sizes: list[int],
    columns: dict[str, list[Any]],
    kinds: dict[str, str],
    *,
    sample_type: type | None = None,
    shard_size: int | None = None,
    shard_sha256: str | None = None,
    created_at: _dt.datetime | None = None,
) -> tuple[str, str]:
    """Write the two manifest files of a local shard atomically (parquet first, then the header).

    Args:
        shard: Path of the shard the manifest describes.
        keys, offsets, sizes: Per sample: key, tar payload offset, payload bytes.
        columns: Field name -> values, one per sample.
        kinds: Field name -> manifest kind.
        sample_type: The sample type (names the schema, fixes column types).
        shard_size: Bytes of the tar file (default: its size on disk).
        shard_sha256: The shard's sha256, when known.
        created_at: The header's ``created_at`` (default: now).

    Returns:
        The JSON and parquet paths.
    """
    pending = prepare_manifest(
        shard, keys, offsets, sizes, columns, kinds, sample_type=sample_type,
        shard_size=shard_size, shard_sha256=shard_sha256, stamp_from=shard,
        created_at=created_at,
    )  # fmt: skip
    return commit_manifest(pending)


def prepare_manifest(
    shard: str,
    keys: list[str],
    offsets: list[int],
    sizes: list[int],
    columns: dict[str, list[Any]],
    kinds: dict[str, str],
    *,
    sample_type: type | None = None,
    shard_size: int | None = None,
    shard_sha256: str | None = None,
    stamp_from: str | None = None,
    created_at: _dt.datetime | None = None,
    stamp: bool = True,
    header: Mapping[str, Any] | None = None,
) -> tuple[str, str, str, str]:
    """Write a shard's manifest under temporary names; :func:`commit_manifest` renames it.

    ``header`` holds header fields the caller sets: ``schema_version`` (instead of the sample
    type's) and ``provenance`` (see :func:`provenance_header`).

    ``stamp_from`` is the file whose stamp the header records: the shard's temporary file when
    the manifest is prepared before the shard takes its name (renaming keeps mtime and inode).
    The files depend only on the arguments, except for the header's ``created_at`` (now, unless
    given) and ``shard_stat`` (the file's mtime and inode, unless ``stamp`` is false: readers
    then hash the shard once to trust the manifest). No pandas is imported: the columns are
    built from buffers.

    Returns:
        ``(tmp json, tmp parquet, json, parquet)`` paths.
    """
    pa = require("pyarrow", "query", "manifests")
    extra_header = dict(header or {})
    jpath, ppath = manifest_paths(shard)
    arrays = {
        "__key__": typed_array(keys, pa.string()),
        "__offset__": typed_array(offsets, pa.int64()),
        "__size__": typed_array(sizes, pa.int64()),
    }
    aggregates: dict[str, Any] = {}
    for name, kind in kinds.items():
        vals = columns.get(name, [None] * len(keys))
        typ = _arrow_type(pa, sample_type, name, kind)
        arrays[name] = _column(pa, vals, kind, typ, f"{name!r} of shard {shard}")
        aggregates[name] = aggregate_values(kind, vals)
    table = pa.Table.from_arrays(list(arrays.values()), names=list(arrays))
    when = created_at if created_at is not None else _dt.datetime.now(_dt.UTC)
    header = {
        "manifest_version": MANIFEST_VERSION,
        "shard_id": shard_id_of(shard),
        "schema_type": getattr(sample_type, "__name__", "DictSample")
        if sample_type
        else "DictSample",
        "schema_version": str(getattr(sample_type, "__schema_version__", "1.0.0")),
        "num_samples": len(keys),
        "size_bytes": shard_size if shard_size is not None else os.path.getsize(shard),
        "created_at": when.isoformat(),
        "aggregates": aggregates,
        "offset_kind": "tar",
        "fields": dict(kinds),
        "shard_file": os.path.basename(shard),
        "shard_sha256": shard_sha256,
        "shard_stat": _stamp(stamp_from or shard) if stamp else None,
        "manifest_token": "",
        "writer": f"atdata {__version__}",
    }
    header.update(extra_header)
    ident = {k: v for k, v in header.items() if k not in ("created_at", "shard_stat")}
    rows = [keys, offsets, sizes, columns]
    token = header["manifest_token"] = _token(shard_sha256, ident, table.schema, rows)
    table = table.replace_schema_metadata({TOKEN_META: token.encode()})
    return prepare_files(jpath, ppath, table, header)


def _stamp(shard: str) -> dict[str, int] | None:
    from atdata.manifest._fresh import stamp_of

    try:
        return stamp_of(shard)
    except OSError:
        return None


def write_files(jpath: str, ppath: str, table: Any, header: dict[str, Any]) -> None:
    """Write a manifest's parquet rows and JSON header under temporary names, then rename them
    into place (the header last), so a reader never sees a header without its rows."""
    commit_manifest(prepare_files(jpath, ppath, table, header))


def prepare_files(
    jpath: str, ppath: str, table: Any, header: dict[str, Any]
) -> tuple[str, str, str, str]:
    """Write a manifest's rows and header under temporary names beside their final ones.

    Returns:
        ``(tmp json, tmp parquet, json, parquet)`` for :func:`commit_manifest`.
    """
    pq = require("pyarrow.parquet", "query", "manifests")
    d = os.path.dirname(jpath) or "."
    os.makedirs(d, exist_ok=True)
    tmp_p = os.path.join(d, f".{os.path.basename(ppath)}.tmp-{uuid.uuid4().hex[:8]}")
    tmp_j = os.path.join(d, f".{os.path.basename(jpath)}.tmp-{uuid.uuid4().hex[:8]}")
    pending = (tmp_j, tmp_p, jpath, ppath)
    try:
        pq.write_table(table, tmp_p)
        # the parquet writer's scratch memory (mimalloc, by default) would otherwise stay
        # resident: ~20 MB for a 10k-row shard, on top of a long ingestion's own state
        _release_arrow_memory()
        with open(tmp_j, "w", encoding="utf-8") as f:
            json.dump(header, f, indent=2)
    except BaseException:
        discard_manifest(pending)
        raise
    return pending


def _release_arrow_memory() -> None:
    pa = require("pyarrow", "query", "manifests")
    release = getattr(pa.default_memory_pool(), "release_unused", None)
    if release is not None:
        release()


def commit_manifest(pending: tuple[str, str, str, str]) -> tuple[str, str]:
    """Rename a prepared manifest into place (the parquet first, the header last)."""
    tmp_j, tmp_p, jpath, ppath = pending
    try:
        os.replace(tmp_p, ppath)
        os.replace(tmp_j, jpath)
    finally:
        discard_manifest(pending)
    return jpath, ppath


def discard_manifest(pending: tuple[str, str, str, str]) -> None:
    """Remove the temporary files of a prepared manifest that will not be committed."""
    for t in pending[:2]:
        if os.path.exists(t):
            os.unlink(t)


def provenance_header(
    schema_version: str | None = None,
    source_job_id: str | None = None,
    parent_shards: Sequence[str] | None = None,
    pipeline_version: str | None = None,
) -> dict[str, Any]:
    """Manifest header fields for :class:`ManifestObserver`'s ``header``: ``schema_version``
    when given, and a ``provenance`` map of the values given (upstream's manifest layout: the
    key is left out when none is).

    Examples:
        >>> provenance_header("2.0.0", source_job_id="job-7", parent_shards=["a.tar"])
        {'schema_version': '2.0.0', 'provenance': {'source_job_id': 'job-7', 'parent_shards': ['a.tar']}}
        >>> provenance_header()
        {}
    """
    out: dict[str, Any] = {}
    if schema_version is not None:
        out["schema_version"] = str(schema_version)
    prov: dict[str, Any] = {}
    if source_job_id:
        prov["source_job_id"] = source_job_id
    if parent_shards:
        prov["parent_shards"] = list(parent_shards)
    if pipeline_version:
        prov["pipeline_version"] = pipeline_version
    if prov:
        out["provenance"] = prov
    return out


class ManifestObserver:
    """A :class:`~atdata._shards.writer.ShardObserver` that writes a manifest for each finished shard.

    Args:
        sample_type: The sample type (default: the first sample's type); its fields decide the
            columns. :class:`~atdata.DictSample` data gets columns from the first sample's values.
        created_at: The ``created_at`` every header records (default: when it is written).
        stamp: Record the shard file's stamp (mtime, inode) in the header. Without it (and
            with ``created_at`` given) the manifests are byte-identical for identical shards:
            readers hash a shard once to trust its manifest.
        header: Header fields every manifest carries (``schema_version``, ``provenance``:
            see :func:`provenance_header`).
    """

    def __init__(
        self,
        sample_type: type | None = None,
        *,
        created_at: _dt.datetime | None = None,
        stamp: bool = True,
        header: Mapping[str, Any] | None = None,
    ) -> None:
        require("pyarrow", "query", "manifests")
        self.sample_type = sample_type
        self.created_at = created_at
        self.stamp = stamp
        self.header = dict(header or {})
        self.kinds: dict[str, str] | None = None
        self.written: list[tuple[str, str]] = []
        self._pending: tuple[str, str, str, str] | None = None
        self._getter_type: type | None = None
        self._getter: Any = None
        self._reset()

    @classmethod
    def reproducible(
        cls, sample_type: type | None = None, header: Mapping[str, Any] | None = None
    ) -> ManifestObserver:
        """An observer whose manifests are a function of the shard bytes and the samples alone:
        ``created_at`` is :data:`~atdata._shards.tar.FIXED_MTIME` and no file stamp is recorded
        (what ``atdata.ingest`` and ``Index.write_samples(write_id=...)`` write)."""
        from atdata._shards.tar import FIXED_MTIME

        made = _dt.datetime.fromtimestamp(FIXED_MTIME, _dt.UTC)
        return cls(sample_type, created_at=made, stamp=False, header=header)

    def _reset(self) -> None:
        self.keys: list[str] = []
        self.offsets: list[int] = []
        self.sizes: list[int] = []
        self.columns: dict[str, list[Any]] = {}

    def _init_kinds(self, sample: Any) -> dict[str, str]:
        if self.sample_type is None:
            self.sample_type = type(sample)
        kinds = manifest_fields(self.sample_type)
        if not kinds and not hasattr(self.sample_type, "atdata_fields"):
            data = sample.to_dict() if hasattr(sample, "to_dict") else dict(sample)
            kinds = {k: kd for k, v in data.items() if (kd := infer_kind(v)) is not None}
        self.kinds = kinds
        return kinds

    def begin_shard(self, path: str) -> None:
        self._reset()
        if self.kinds is not None:
            self.columns = {k: [] for k in self.kinds}

    def add(self, key: str, offset: int, size: int, sample: Any) -> None:
        if self.kinds is None:
            self.columns = {k: [] for k in self._init_kinds(sample)}
        self.keys.append(key)
        self.offsets.append(offset)
        self.sizes.append(size)
        values = self._values(sample)
        if values is None:
            for name, col in self.columns.items():
                col.append(_field_value(sample, name))
        else:
            for col, v in zip(self.columns.values(), values, strict=True):
                col.append(v)

    def _values(self, sample: Any) -> tuple[Any, ...] | None:
        """The column values of a typed sample in one C call (``None``: go field by field)."""
        t = type(sample)
        if t is not self._getter_type:
            names = list(self.columns)
            self._getter_type = t
            self._getter = (
                operator.attrgetter(*names, names[0])  # a tuple even for one column
                if names and hasattr(t, "atdata_fields")
                else None
            )
        if self._getter is None:
            return None
        try:
            values: tuple[Any, ...] = self._getter(sample)
            return values[:-1]
        except AttributeError:
            return None

    def prepare_shard(self, tmp_path: str, info: Any) -> None:
        """Write the finished shard's manifest under temporary names, before the shard is
        renamed to ``info.path`` (the header records the stamp of ``tmp_path``, which the
        rename keeps)."""
        self._pending = prepare_manifest(
            info.path, self.keys, self.offsets, self.sizes, self.columns, self.kinds or {},
            sample_type=self.sample_type, shard_size=info.size, shard_sha256=info.sha256,
            stamp_from=tmp_path, created_at=self.created_at, stamp=self.stamp,
            header=self.header,
        )  # fmt: skip

    def end_shard(self, info: Any) -> None:
        pending, self._pending = self._pending, None
        if pending is None or pending[2] != manifest_paths(info.path)[0]:
            if pending is not None:
                discard_manifest(pending)
            pending = prepare_manifest(
                info.path, self.keys, self.offsets, self.sizes, self.columns, self.kinds or {},
                sample_type=self.sample_type, shard_size=info.size, shard_sha256=info.sha256,
                created_at=self.created_at, stamp=self.stamp, header=self.header,
            )  # fmt: skip
        self.written.append(commit_manifest(pending))
        self._reset()

    def abort_shard(self, path: str) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            discard_manifest(pending)
        self._reset()


def build_manifest(
    shard: str, sample_type: type | None = None, *, source: Any = None
) -> tuple[str, str]:
    """Build the manifest of an existing local shard (decodes every sample once).

    Args:
        shard: Path of the shard.
        sample_type: The sample type (default: :class:`~atdata.DictSample`, columns from values).
        source: Unused for local shards; reserved.

    Returns:
        The JSON and parquet paths written.

    Raises:
        ShardError: When the shard cannot be read.
    """
    import hashlib

    from atdata._shards.tar import iter_tar, split_member_name
    from atdata._wire.sample import DictSample, unpack_payload

    st: Any = sample_type or DictSample
    ob = ManifestObserver(st)
    ob.begin_shard(shard)
    h = hashlib.sha256()
    size = 0

    try:
        f = open(shard, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise shard_open_error(shard, exc) from None

    def read(n: int) -> bytes:
        nonlocal size
        b = f.read(n)
        h.update(b)
        size += len(b)
        return b

    where = f" in shard {shard}"
    try:
        for name, off, data in iter_tar(read, where):
            key, ext = split_member_name(name)
            if ext != "msgpack":
                continue
            raw = unpack_payload(data, f"{where}, sample {key!r}")
            sample = st._from_wire(raw, f"{where}, sample {key!r}")
            ob.add(key, off, len(data), sample)
        while read(1 << 20):
            pass
    finally:
        f.close()
    if ob.kinds is None:
        ob.kinds = manifest_fields(st)
        ob.columns = {k: [] for k in ob.kinds}
    from atdata._shards.writer import ShardInfo

    ob.end_shard(ShardInfo(shard, len(ob.keys), size, h.hexdigest()))
    return ob.written[-1]
