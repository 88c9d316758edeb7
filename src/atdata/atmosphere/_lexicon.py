"""Typed mirrors of the ``science.alt.dataset`` records: dataclasses with ``to_record`` /
``from_record`` (a record dict in atproto JSON form, ``$type`` included).

Field names are the lexicons' in snake_case (``schemaRef`` -> ``schema_ref``; ``bytes`` ->
``bytes_``); ``created_at`` is a ``datetime``. An entry's ``metadata`` is written as the lexicon
says (msgpack ``$bytes``) and read in either form (bytes, or upstream's structured object).

Examples:
    >>> e = LexDatasetEntry.from_record({
    ...     "$type": "science.alt.dataset.entry", "name": "mnist",
    ...     "schemaRef": "at://did:plc:a/science.alt.dataset.schema/mnist:1.0.0",
    ...     "storage": {"$type": "science.alt.dataset.storageHttp", "shards": [
    ...         {"url": "https://e.org/a.tar", "checksum": {"algorithm": "sha256", "digest": "ab"}}]},
    ...     "createdAt": "2025-01-01T00:00:00+00:00", "size": {"samples": 3, "bytes": 10},
    ...     "metadata": {"version": "2.0.0", "custom": {"lr": "0.1"}}})
    >>> e.storage.shards[0].url, e.size.bytes_, e.metadata.version, e.metadata.custom
    ('https://e.org/a.tar', 10, '2.0.0', {'lr': '0.1'})
    >>> LexDatasetEntry.from_record(e.to_record()) == e
    True
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from typing import Any, ClassVar

from atdata._errors import ConfigError
from atdata.atmosphere._types import LEXICON_NAMESPACE

__all__ = [
    "BlobEntry",
    "DatasetMetadata",
    "DatasetSize",
    "HttpShardEntry",
    "JsonSchemaFormat",
    "LexCodeHash",
    "LexCodeReference",
    "LexDatasetEntry",
    "LexLabelRecord",
    "LexLensRecord",
    "LexLensVerification",
    "LexSchemaRecord",
    "S3ShardEntry",
    "ShardChecksum",
    "ShardManifestRef",
    "StorageBlobs",
    "StorageHttp",
    "StorageS3",
    "StorageUnion",
    "storage_from_record",
]

_NS = LEXICON_NAMESPACE


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def _camel(name: str) -> str:
    head, *rest = name.rstrip("_").split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _parse_time(value: Any) -> _dt.datetime:
    if isinstance(value, _dt.datetime):
        return value
    s = str(value)
    return _dt.datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith("Z") else s)


class _Record:
    """Field-by-field conversion for the dataclasses below (keys: the fields in camelCase).

    ``_TYPE`` is the record's ``$type`` (if it carries one); ``_NESTED`` maps a field to the
    class of its value (a list of them when the field's value is a list).
    """

    _TYPE: ClassVar[str | None] = None
    _NESTED: ClassVar[dict[str, type[_Record]]] = {}

    def to_record(self) -> dict[str, Any]:
        """This value as a record dict (``None`` fields left out)."""
        out: dict[str, Any] = {"$type": self._TYPE} if self._TYPE else {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if v is None:
                continue
            if isinstance(v, _dt.datetime):
                v = v.isoformat()
            elif isinstance(v, _Record):
                v = v.to_record()
            elif isinstance(v, list) and v and isinstance(v[0], _Record):
                v = [x.to_record() for x in v]
            out[_camel(f.name)] = v
        return out

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> Any:
        """Parse a record dict.

        Raises:
            ConfigError: When a required key is missing.
        """
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            key = _camel(f.name)
            if key not in d:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise ConfigError(
                        f"{cls._TYPE or cls.__name__} record has no {key!r}: {sorted(d)}"
                    )
                continue
            v = d[key]
            sub = cls._NESTED.get(f.name)
            if f.name == "created_at":
                v = _parse_time(v)
            elif sub is not None and isinstance(v, list):
                v = [sub.from_record(x) for x in v]
            elif sub is not None and v is not None:
                v = sub.from_record(v)
            kwargs[f.name] = v
        return cls(**kwargs)


@dataclasses.dataclass
class ShardChecksum(_Record):
    """``entry#shardChecksum``: a shard's hash (``algorithm`` e.g. ``sha256``, hex ``digest``)."""

    algorithm: str
    digest: str


@dataclasses.dataclass
class DatasetSize(_Record):
    """``entry#datasetSize``: samples, bytes (``bytes_``) and shards, each optional."""

    samples: int | None = None
    bytes_: int | None = None
    shards: int | None = None


@dataclasses.dataclass
class ShardManifestRef(_Record):
    """One shard's manifest: blob references of its JSON ``header`` and parquet ``samples``."""

    header: dict[str, Any]
    samples: dict[str, Any] | None = None


_META_FIELDS = ("source_uri", "created_by", "version", "processing_steps", "split")


@dataclasses.dataclass
class DatasetMetadata(_Record):
    """An entry's metadata: well-known fields plus ``custom`` (anything else).

    Examples:
        >>> m = DatasetMetadata.from_dict({"split": "train", "model": "bert"})
        >>> m.split, m.custom, m.to_dict()
        ('train', {'model': 'bert'}, {'split': 'train', 'model': 'bert'})
    """

    source_uri: str | None = None
    created_by: str | None = None
    version: str | None = None
    processing_steps: list[str] | None = None
    split: str | None = None
    custom: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DatasetMetadata:
        """From a flat dict (snake_case or camelCase well-known keys); other keys go to ``custom``."""
        known: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        camel = {_camel(k): k for k in _META_FIELDS}
        for k, v in d.items():
            name = k if k in _META_FIELDS else camel.get(k)
            if name is not None:
                if v is not None:
                    known[name] = v
            elif k == "custom" and isinstance(v, dict):
                custom.update(v)
            else:
                custom[k] = v
        return cls(**known, custom=custom or None)

    def to_dict(self) -> dict[str, Any]:
        """Flat: well-known fields by their Python names, then ``custom`` keys (never overriding)."""
        out = {k: getattr(self, k) for k in _META_FIELDS if getattr(self, k) is not None}
        for k, v in (self.custom or {}).items():
            out.setdefault(k, v)
        return out


@dataclasses.dataclass
class HttpShardEntry(_Record):
    """``storageHttp#shardEntry``: a shard URL and its checksum."""

    url: str
    checksum: ShardChecksum
    _NESTED: ClassVar[dict[str, type[_Record]]] = {"checksum": ShardChecksum}


@dataclasses.dataclass
class StorageHttp(_Record):
    """``science.alt.dataset.storageHttp``: shards at HTTP(S) URLs."""

    shards: list[HttpShardEntry]
    _TYPE: ClassVar[str | None] = f"{_NS}.storageHttp"
    _NESTED: ClassVar[dict[str, type[_Record]]] = {"shards": HttpShardEntry}


@dataclasses.dataclass
class S3ShardEntry(_Record):
    """``storageS3#shardEntry``: an object key and its checksum."""

    key: str
    checksum: ShardChecksum
    _NESTED: ClassVar[dict[str, type[_Record]]] = {"checksum": ShardChecksum}


@dataclasses.dataclass
class StorageS3(_Record):
    """``science.alt.dataset.storageS3``: shards as objects in one bucket."""

    bucket: str
    shards: list[S3ShardEntry]
    region: str | None = None
    endpoint: str | None = None
    _TYPE: ClassVar[str | None] = f"{_NS}.storageS3"
    _NESTED: ClassVar[dict[str, type[_Record]]] = {"shards": S3ShardEntry}


@dataclasses.dataclass
class BlobEntry(_Record):
    """``storageBlobs#blobEntry``: a blob reference (atproto JSON) and an optional checksum."""

    blob: dict[str, Any]
    checksum: ShardChecksum | None = None
    _NESTED: ClassVar[dict[str, type[_Record]]] = {"checksum": ShardChecksum}


@dataclasses.dataclass
class StorageBlobs(_Record):
    """``science.alt.dataset.storageBlobs``: shards as blobs in the publisher's repository."""

    blobs: list[BlobEntry]
    _TYPE: ClassVar[str | None] = f"{_NS}.storageBlobs"
    _NESTED: ClassVar[dict[str, type[_Record]]] = {"blobs": BlobEntry}


StorageUnion = StorageHttp | StorageS3 | StorageBlobs


def storage_from_record(d: dict[str, Any]) -> StorageUnion:
    """The storage object of an entry, by its ``$type`` (the deprecated ``storageExternal``
    reads as :class:`StorageHttp` with ``none`` checksums).

    Raises:
        ConfigError: For an unknown storage type.
    """
    kind = str(d.get("$type", ""))
    for cls in (StorageHttp, StorageS3, StorageBlobs):
        if kind == cls._TYPE:
            return cls.from_record(d)
    if kind == f"{_NS}.storageExternal":
        return StorageHttp(
            [HttpShardEntry(u, ShardChecksum("none", "")) for u in d.get("urls", [])]
        )
    raise ConfigError(
        f"unknown storage type {kind!r}: expected storageHttp, storageS3 or storageBlobs"
    )


class _Storage(_Record):
    """Parses the ``storage`` union."""

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> Any:
        return storage_from_record(d)


class _Metadata(_Record):
    """Parses an entry's ``metadata`` in either form."""

    @classmethod
    def from_record(cls, d: Any) -> Any:
        from atdata.atmosphere._records import unpack_metadata

        return DatasetMetadata.from_dict(unpack_metadata(d))


@dataclasses.dataclass
class LexDatasetEntry(_Record):
    """``science.alt.dataset.entry``: a dataset (name, schema, storage and what describes it)."""

    name: str
    schema_ref: str
    storage: StorageUnion
    created_at: _dt.datetime = dataclasses.field(default_factory=_now)
    description: str | None = None
    metadata: DatasetMetadata | None = None
    tags: list[str] | None = None
    size: DatasetSize | None = None
    license: str | None = None
    metadata_schema_ref: str | None = None
    content_metadata: dict[str, Any] | None = None
    manifests: list[ShardManifestRef] | None = None
    _TYPE: ClassVar[str | None] = f"{_NS}.entry"
    _NESTED: ClassVar[dict[str, type[_Record]]] = {
        "storage": _Storage,
        "metadata": _Metadata,
        "size": DatasetSize,
        "manifests": ShardManifestRef,
    }

    def to_record(self) -> dict[str, Any]:
        """The record; ``metadata`` as msgpack ``$bytes`` (the lexicon's form)."""
        from atdata.atmosphere._records import pack_metadata

        out = super().to_record()
        if self.metadata is not None:
            out["metadata"] = pack_metadata(self.metadata.to_dict())
        return out


@dataclasses.dataclass
class LexCodeReference(_Record):
    """``lens#codeReference``: code by repository, commit and ``path/to/file.py:function``."""

    repository: str
    commit: str
    path: str
    branch: str | None = None
    language: str | None = None


@dataclasses.dataclass
class JsonSchemaFormat(_Record):
    """``schema#jsonSchemaFormat``: a JSON Schema body (``schema_body``) and array formats."""

    schema_body: dict[str, Any]
    array_format_versions: dict[str, str] | None = None

    def to_record(self) -> dict[str, Any]:
        """The body with ``$type`` (and ``arrayFormatVersions``) added."""
        out = {"$type": f"{_NS}.schema#jsonSchemaFormat", **self.schema_body}
        if self.array_format_versions is not None:
            out["arrayFormatVersions"] = self.array_format_versions
        return out

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> JsonSchemaFormat:
        """Split the body from ``$type`` and ``arrayFormatVersions``."""
        body = {k: v for k, v in d.items() if k not in ("$type", "arrayFormatVersions")}
        return cls(body, d.get("arrayFormatVersions"))


@dataclasses.dataclass
class LexSchemaRecord(_Record):
    """``science.alt.dataset.schema``: a versioned sample type."""

    name: str
    version: str
    schema_type: str
    schema: JsonSchemaFormat
    created_at: _dt.datetime = dataclasses.field(default_factory=_now)
    description: str | None = None
    metadata: dict[str, Any] | None = None
    atdata_schema_version: int = 1
    _TYPE: ClassVar[str | None] = f"{_NS}.schema"
    _NESTED: ClassVar[dict[str, type[_Record]]] = {"schema": JsonSchemaFormat}


@dataclasses.dataclass
class LexLensRecord(_Record):
    """``science.alt.dataset.lens``: a transformation between two schemas, by code reference."""

    name: str
    source_schema: str
    target_schema: str
    getter_code: LexCodeReference
    putter_code: LexCodeReference
    created_at: _dt.datetime = dataclasses.field(default_factory=_now)
    description: str | None = None
    language: str | None = None
    metadata: dict[str, Any] | None = None
    source_schema_version: str | None = None
    target_schema_version: str | None = None
    _TYPE: ClassVar[str | None] = f"{_NS}.lens"
    _NESTED: ClassVar[dict[str, type[_Record]]] = {
        "getter_code": LexCodeReference,
        "putter_code": LexCodeReference,
    }


@dataclasses.dataclass
class LexCodeHash(_Record):
    """``lensVerification#codeHash``: a hash of lens code."""

    algorithm: str
    digest: str


@dataclasses.dataclass
class LexLensVerification(_Record):
    """``science.alt.dataset.lensVerification``: a statement that a lens was checked."""

    lens: str
    lens_commit: str
    verification_method: str
    created_at: _dt.datetime = dataclasses.field(default_factory=_now)
    code_hash: LexCodeHash | None = None
    proof_ref: LexCodeReference | None = None
    description: str | None = None
    _TYPE: ClassVar[str | None] = f"{_NS}.lensVerification"
    _NESTED: ClassVar[dict[str, type[_Record]]] = {
        "code_hash": LexCodeHash,
        "proof_ref": LexCodeReference,
    }


@dataclasses.dataclass
class LexLabelRecord(_Record):
    """``science.alt.dataset.label``: a name (and version) for a dataset entry."""

    name: str
    dataset_uri: str
    created_at: _dt.datetime = dataclasses.field(default_factory=_now)
    version: str | None = None
    description: str | None = None
    _TYPE: ClassVar[str | None] = f"{_NS}.label"
