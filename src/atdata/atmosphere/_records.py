"""Building and reading ``science.alt.dataset.*`` records (the lexicons of :mod:`atdata.lexicons`).

Records are plain dicts in atproto JSON form (bytes as ``{"$bytes": ...}``, blobs as
``{"$type": "blob", "ref": {"$link": cid}, ...}``). They carry no floats.

Examples:
    >>> schema_rkey("InteropImage", "1.0.0")
    'interopimage:1.0.0'
    >>> storage_http([("https://example.org/a.tar", "00" * 32)])["shards"][0]["checksum"]["algorithm"]
    'sha256'
    >>> rec = entry_record("mnist", "at://did:plc:x/science.alt.dataset.schema/mnist@1.0.0",
    ...                    storage_http([("https://example.org/a.tar", "ab" * 32)]),
    ...                    metadata={"mean": 0.5}, created_at="2025-01-01T00:00:00+00:00")
    >>> sorted(rec), unpack_metadata(rec["metadata"])
    (['$type', 'createdAt', 'metadata', 'name', 'schemaRef', 'storage'], {'mean': 0.5})
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import re
from typing import Any

from atdata._errors import ConfigError, DecodeError, SchemaError
from atdata.atmosphere._cid import check_no_floats

__all__ = [
    "ENTRY",
    "LENS",
    "SCHEMA",
    "STORAGE_BLOBS",
    "STORAGE_HTTP",
    "STORAGE_S3",
    "CodeRef",
    "entry_record",
    "lens_record",
    "lexicon",
    "pack_metadata",
    "schema_rkey",
    "storage_blobs",
    "storage_http",
    "storage_s3",
    "unpack_metadata",
]

NS = "science.alt.dataset"
SCHEMA = f"{NS}.schema"
ENTRY = f"{NS}.entry"
LENS = f"{NS}.lens"
STORAGE_HTTP = f"{NS}.storageHttp"
STORAGE_S3 = f"{NS}.storageS3"
STORAGE_BLOBS = f"{NS}.storageBlobs"
_RKEY_BAD = re.compile(r"[^A-Za-z0-9._:~-]")


def lexicon(nsid: str) -> dict[str, Any]:
    """The shipped lexicon document for ``nsid`` (e.g. ``"science.alt.dataset.entry"``).

    Raises:
        ConfigError: When atdata ships no lexicon of that id.

    Examples:
        >>> lexicon("science.alt.dataset.storageBlobs")["defs"]["blobEntry"]["properties"]["blob"]["maxSize"]
        52428800
    """
    from atdata.lexicons import load_lexicon

    try:
        return load_lexicon(nsid)
    except FileNotFoundError:
        raise ConfigError(f"no shipped lexicon for {nsid!r}") from None


def now_iso() -> str:
    """The current UTC time as an ATProto datetime string."""
    return _dt.datetime.now(_dt.UTC).isoformat()


def schema_rkey(name: str, version: str) -> str:
    """A readable record key for a schema version: ``<lowercased name>:<version>``.

    Publishing generates a TID key unless given ``rkey=`` (pass this one for a readable key);
    earlier releases wrote every schema here, and publishing finds those records by listing.
    ``@`` is not a valid record-key character (the reference PDS refuses it); ``:`` is. Loading
    accepts any schema URI, whatever its key.
    """
    base = _RKEY_BAD.sub("-", name.rsplit(".", 1)[-1].lower()).strip("-") or "schema"
    return f"{base}:{_RKEY_BAD.sub('_', version)}"


def _checksum(sha256: str | None) -> dict[str, str] | None:
    if not sha256:
        return None
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ConfigError(f"{sha256!r} is not a lowercase hex sha256 digest")
    return {"algorithm": "sha256", "digest": sha256}


def storage_http(shards: list[tuple[str, str]]) -> dict[str, Any]:
    """``storageHttp`` for ``[(url, sha256), ...]``."""
    if not shards:
        raise ConfigError("a dataset needs at least one shard")
    out = []
    for url, sha in shards:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"shard URL {url!r} is not http(s); publish local shards as blobs")
        out.append({"url": url, "checksum": _checksum(sha)})
    return {"$type": STORAGE_HTTP, "shards": out}


def storage_s3(
    bucket: str,
    shards: list[tuple[str, str]],
    *,
    region: str | None = None,
    endpoint: str | None = None,
) -> dict[str, Any]:
    """``storageS3`` for object keys ``[(key, sha256), ...]`` in ``bucket``."""
    if not shards:
        raise ConfigError("a dataset needs at least one shard")
    out: dict[str, Any] = {"$type": STORAGE_S3, "bucket": bucket}
    if region:
        out["region"] = region
    if endpoint:
        out["endpoint"] = endpoint
    out["shards"] = [{"key": k, "checksum": _checksum(sha)} for k, sha in shards]
    return out


def storage_blobs(blobs: list[tuple[dict[str, Any], str | None]]) -> dict[str, Any]:
    """``storageBlobs`` for ``[(blob ref, sha256 or None), ...]``."""
    if not blobs:
        raise ConfigError("a dataset needs at least one shard")
    out = []
    for ref, sha in blobs:
        item: dict[str, Any] = {"blob": ref}
        c = _checksum(sha)
        if c:
            item["checksum"] = c
        out.append(item)
    return {"$type": STORAGE_BLOBS, "blobs": out}


def pack_metadata(metadata: dict[str, Any]) -> dict[str, str]:
    """``metadata`` as msgpack ``{"$bytes": b64}`` (unpadded base64, readable by upstream 0.7.0b1)."""
    import msgpack

    try:
        body = b"".join(
            msgpack.packb(k, use_bin_type=True) + msgpack.packb(v, use_bin_type=True)
            for k, v in metadata.items()
        )
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"dataset metadata cannot be msgpack-encoded: {exc}") from None
    # A PDS returns $bytes as unpadded base64 (the spec's form), and upstream 0.7.0b1 decodes it
    # with a padding-strict decoder. So pick the map header (fixmap, map16, map32: all valid
    # msgpack) that makes the length a multiple of 3: its base64 then has no padding at all.
    n = len(metadata)
    heads = [bytes([0x80 | n])] if n < 16 else []
    heads += [b"\xde" + n.to_bytes(2, "big")] if n < 1 << 16 else []
    heads += [b"\xdf" + n.to_bytes(4, "big")]
    head = next((h for h in heads if (len(h) + len(body)) % 3 == 0), heads[0])
    return {"$bytes": base64.b64encode(head + body).decode().rstrip("=")}


# structured metadata (upstream's ``datasetMetadata`` object): record key -> flat dict key
_META_KEYS = {
    "sourceUri": "source_uri",
    "createdBy": "created_by",
    "version": "version",
    "processingSteps": "processing_steps",
    "split": "split",
}


def unpack_metadata(value: Any) -> dict[str, Any]:
    """An entry's ``metadata`` as a flat dict, whichever form it was written in.

    Msgpack bytes (``{"$bytes": b64}`` or bytes, the lexicon's form, which we write) decode as
    they are; a structured object (``{"version", "split", "sourceUri", ..., "custom": {...}}``,
    which upstream atdata writes) flattens: known keys in snake_case, ``custom`` merged in.

    Examples:
        >>> unpack_metadata({"version": "2.0.0", "sourceUri": "s3://x", "custom": {"lr": "0.1"}})
        {'version': '2.0.0', 'source_uri': 's3://x', 'lr': '0.1'}

    Raises:
        DecodeError: When ``$bytes`` is not base64 or the value is neither bytes, ``$bytes`` nor
            an object (bytes that are not a msgpack map decode to ``{}``).
    """
    import msgpack

    if value is None:
        return {}
    if isinstance(value, dict) and "$bytes" not in value:
        out = {_META_KEYS[k]: v for k, v in value.items() if k in _META_KEYS and v is not None}
        custom = value.get("custom")
        if isinstance(custom, dict):
            for k, v in custom.items():
                out.setdefault(str(k), v)
        return out
    if isinstance(value, dict) and "$bytes" in value:
        b64 = value["$bytes"]
        try:
            if not isinstance(b64, str):
                raise ValueError("not a string")
            value = base64.b64decode(b64 + "=" * (-len(b64) % 4), validate=True)
        except ValueError:  # binascii.Error is a ValueError
            raise DecodeError(
                f"entry metadata {{'$bytes': {str(b64)[:60]!r}}} is not base64; the record "
                "does not follow the science.alt.dataset.entry lexicon"
            ) from None
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise DecodeError(
            f"entry metadata is a {type(value).__name__}, not {{'$bytes': ...}}; the record "
            "does not follow the science.alt.dataset.entry lexicon"
        )
    try:
        out = msgpack.unpackb(bytes(value), raw=False)
    except Exception:
        return {}
    return out if isinstance(out, dict) else {}


def entry_record(
    name: str,
    schema_ref: str,
    storage: dict[str, Any],
    *,
    description: str | None = None,
    tags: list[str] | None = None,
    license: str | None = None,
    size: dict[str, int] | None = None,
    metadata: dict[str, Any] | None = None,
    created_at: str | None = None,
) -> dict[str, Any]:
    """A ``science.alt.dataset.entry`` record.

    ``metadata`` may hold anything msgpack encodes (floats included): it travels as bytes.

    Raises:
        SchemaError: When a top-level field would carry a float.
    """
    rec: dict[str, Any] = {
        "$type": ENTRY,
        "name": name,
        "schemaRef": schema_ref,
        "storage": storage,
        "createdAt": created_at or now_iso(),
    }
    if description is not None:
        rec["description"] = description
    if tags:
        rec["tags"] = list(tags)
    if license:
        rec["license"] = license
    if size:
        rec["size"] = {k: v for k, v in size.items() if v is not None}
    if metadata:
        rec["metadata"] = pack_metadata(metadata)
    check_no_floats(rec, "entry record")
    return rec


@dataclasses.dataclass(frozen=True)
class CodeRef:
    """Where a lens function lives: repository URL, commit, ``path/to/file.py:function``."""

    repository: str
    commit: str
    path: str
    branch: str | None = None
    language: str = "python"

    def to_record(self) -> dict[str, str]:
        """The ``codeReference`` object."""
        if not re.fullmatch(r"[0-9a-f]{7,40}", self.commit):
            raise ConfigError(f"lens code commit {self.commit!r} is not a git commit hash")
        out = {"repository": self.repository, "commit": self.commit, "path": self.path}
        if self.branch:
            out["branch"] = self.branch
        if self.language:
            out["language"] = self.language
        return out

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> CodeRef:
        """Parse a ``codeReference`` object."""
        return cls(
            d["repository"], d["commit"], d["path"], d.get("branch"), d.get("language") or "python"
        )


def lens_record(
    name: str,
    source_schema: str,
    target_schema: str,
    getter: CodeRef,
    putter: CodeRef,
    *,
    description: str | None = None,
    created_at: str | None = None,
    language: str | None = None,
    metadata: dict[str, Any] | None = None,
    source_schema_version: str | None = None,
    target_schema_version: str | None = None,
) -> dict[str, Any]:
    """A ``science.alt.dataset.lens`` record pointing at code by repository + commit + path
    (the optional lexicon fields are written only when given)."""
    rec: dict[str, Any] = {
        "$type": LENS,
        "name": name,
        "sourceSchema": source_schema,
        "targetSchema": target_schema,
        "getterCode": getter.to_record(),
        "putterCode": putter.to_record(),
        "createdAt": created_at or now_iso(),
    }
    optional = {
        "description": description,
        "language": language,
        "metadata": metadata,
        "sourceSchemaVersion": source_schema_version,
        "targetSchemaVersion": target_schema_version,
    }
    rec.update({k: v for k, v in optional.items() if v is not None})
    return rec
