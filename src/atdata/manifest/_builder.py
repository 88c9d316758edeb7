"""Per-shard manifests: ``<shard>.manifest.json`` (header, aggregates) + ``<shard>.manifest.parquet``.

The parquet file has one row per sample: ``__key__``, ``__offset__`` (byte offset of the member's
payload inside the tar), ``__size__`` (payload bytes) and the queryable fields; ``list[str]`` fields
are JSON text columns. Both files are written under temporary names and renamed into place, the
JSON header last, and only for shards that were finished.

Headers we write carry ``offset_kind: "tar"`` and a ``manifest_token`` repeated in the parquet
metadata. Manifests without the marker (written by upstream atdata 0.7) have offsets that are not
tar offsets and may miss samples; readers verify those against the shard (see ``_manifest_io``).

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
import json
import os
import uuid
from typing import Any

from atdata._errors import SchemaError
from atdata._extras import require
from atdata._version import __version__
from atdata.manifest._fields import Aggregator, infer_kind, manifest_fields

__all__ = [
    "MANIFEST_VERSION",
    "ManifestObserver",
    "build_manifest",
    "manifest_paths",
    "write_manifest",
]

MANIFEST_VERSION = "1.0.0"
TOKEN_META = b"atdata.manifest_token"
SYSTEM_COLUMNS = ("__key__", "__offset__", "__size__")


def manifest_paths(shard: str) -> tuple[str, str]:
    """The JSON and parquet manifest paths (or URLs) beside a shard.

    Examples:
        >>> manifest_paths("data/img-000001.tar")
        ('data/img-000001.manifest.json', 'data/img-000001.manifest.parquet')
    """
    base = shard[:-4] if shard.endswith(".tar") else shard
    return base + ".manifest.json", base + ".manifest.parquet"


def shard_id_of(shard: str) -> str:
    """The shard's file name without ``.tar`` (what the header's ``shard_id`` holds)."""
    name = shard.rstrip("/").rsplit("/", 1)[-1]
    return name[:-4] if name.endswith(".tar") else name


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
    if kind == "set":
        text = [None if v is None else json.dumps(list(v), separators=(",", ":")) for v in values]
        return pa.ExtensionArray.from_storage(pa.json_(), pa.array(text, pa.string()))
    try:
        return pa.array(values, typ) if typ is not None else pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        if typ is None:  # loose DictSample data of mixed types: keep it queryable as text
            return pa.array([None if v is None else str(v) for v in values], pa.string())
        raise SchemaError(f"manifest column {where} holds values that do not fit {typ}") from None


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

    Returns:
        The JSON and parquet paths.
    """
    pa = require("pyarrow", "query", "manifests")
    pq = require("pyarrow.parquet", "query", "manifests")
    jpath, ppath = manifest_paths(shard)
    token = uuid.uuid4().hex
    arrays = {
        "__key__": pa.array(keys, pa.string()),
        "__offset__": pa.array(offsets, pa.int64()),
        "__size__": pa.array(sizes, pa.int64()),
    }
    aggregates: dict[str, Any] = {}
    for name, kind in kinds.items():
        vals = columns.get(name, [None] * len(keys))
        typ = _arrow_type(pa, sample_type, name, kind)
        arrays[name] = _column(pa, vals, kind, typ, f"{name!r} of shard {shard}")
        agg = Aggregator(kind)
        for v in vals:
            agg.add(v)
        aggregates[name] = agg.result()
    table = pa.table(arrays).replace_schema_metadata({TOKEN_META: token.encode()})
    d = os.path.dirname(jpath) or "."
    tmp_p = os.path.join(d, f".{os.path.basename(ppath)}.tmp-{uuid.uuid4().hex[:8]}")
    tmp_j = os.path.join(d, f".{os.path.basename(jpath)}.tmp-{uuid.uuid4().hex[:8]}")
    header = {
        "manifest_version": MANIFEST_VERSION,
        "shard_id": shard_id_of(shard),
        "schema_type": getattr(sample_type, "__name__", "DictSample")
        if sample_type
        else "DictSample",
        "schema_version": str(getattr(sample_type, "__schema_version__", "1.0.0")),
        "num_samples": len(keys),
        "size_bytes": shard_size if shard_size is not None else os.path.getsize(shard),
        "created_at": _dt.datetime.now(_dt.UTC).isoformat(),
        "aggregates": aggregates,
        "offset_kind": "tar",
        "fields": dict(kinds),
        "shard_file": os.path.basename(shard),
        "shard_sha256": shard_sha256,
        "manifest_token": token,
        "writer": f"atdata {__version__}",
    }
    try:
        pq.write_table(table, tmp_p)
        with open(tmp_j, "w", encoding="utf-8") as f:
            json.dump(header, f, indent=2)
        os.replace(tmp_p, ppath)
        os.replace(tmp_j, jpath)
    finally:
        for t in (tmp_p, tmp_j):
            if os.path.exists(t):
                os.unlink(t)
    return jpath, ppath


class ManifestObserver:
    """A :class:`~atdata._shards.writer.ShardObserver` that writes a manifest for each finished shard.

    Args:
        sample_type: The sample type (default: the first sample's type); its fields decide the
            columns. :class:`~atdata.DictSample` data gets columns from the first sample's values.
    """

    def __init__(self, sample_type: type | None = None) -> None:
        require("pyarrow", "query", "manifests")
        self.sample_type = sample_type
        self.kinds: dict[str, str] | None = None
        self.written: list[tuple[str, str]] = []
        self._reset()

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
        for name, col in self.columns.items():
            col.append(_field_value(sample, name))

    def end_shard(self, info: Any) -> None:
        self.written.append(
            write_manifest(
                info.path,
                self.keys,
                self.offsets,
                self.sizes,
                self.columns,
                self.kinds or {},
                sample_type=self.sample_type,
                shard_size=info.size,
                shard_sha256=info.sha256,
            )
        )
        self._reset()

    def abort_shard(self, path: str) -> None:
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

    from atdata._errors import ShardError

    try:
        f = open(shard, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise ShardError(f"cannot open shard {shard}: {exc.strerror}") from None

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
