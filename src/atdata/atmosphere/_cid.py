"""Content identifiers for records and blobs: CIDv1, sha256, dag-cbor (records) or raw (blobs).

Records travel as atproto JSON (links as ``{"$link": cid}``, bytes as ``{"$bytes": b64}``);
:func:`to_ipld` turns that into the IPLD data model that ``libipld`` encodes, and refuses floats,
which the ATProto data model does not have.

Examples:
    >>> generate_cid({"hello": "world"})
    'bafyreidykglsfhoixmivffc5uwhcgshx4j465xwqntbmu43nb2dzqwfvae'
    >>> verify_cid({"hello": "world"}, generate_cid({"hello": "world"}))
    True
    >>> generate_cid(b"shard bytes")  # a blob: raw codec
    'bafkreie7xylqyimvml3hpehdqcjvbgahk5nlobrvz7nyr5ihboiqkoue7i'
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Mapping
from typing import Any

from atdata._errors import SchemaError
from atdata._extras import require

__all__ = ["check_no_floats", "generate_cid", "to_ipld", "verify_cid"]

_DAG_CBOR = 0x71
_RAW = 0x55
_SHA256 = 0x12


def _libipld() -> Any:
    return require("libipld", "atmosphere", "record CIDs")


def check_no_floats(obj: Any, path: str = "record") -> None:
    """Raise :class:`SchemaError` if ``obj`` holds a float anywhere (ATProto has no floats).

    Examples:
        >>> check_no_floats({"a": [1, "0.5"]})
        >>> check_no_floats({"a": [1, 0.5]})
        Traceback (most recent call last):
        ...
        atdata._errors.SchemaError: record.a[1] is the float 0.5, but the ATProto data model has no floats; store it as a string (e.g. "0.5") or inside the msgpack metadata bytes
    """
    if isinstance(obj, float):
        shown = repr(obj) if math.isfinite(obj) else str(obj)
        raise SchemaError(
            f"{path} is the float {shown}, but the ATProto data model has no floats; "
            f'store it as a string (e.g. "{shown}") or inside the msgpack metadata bytes'
        )
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            check_no_floats(v, f"{path}.{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            check_no_floats(v, f"{path}[{i}]")


def to_ipld(obj: Any, path: str = "record") -> Any:
    """Convert atproto JSON (``$link``/``$bytes`` objects) into the IPLD model ``libipld`` encodes.

    Raises:
        SchemaError: For floats, non-string keys or values with no IPLD form.
    """
    if obj is None or isinstance(obj, (bool, int, str, bytes)):
        return obj
    if isinstance(obj, float):
        check_no_floats(obj, path)
    if isinstance(obj, (bytearray, memoryview)):
        return bytes(obj)
    if isinstance(obj, Mapping):
        if len(obj) == 1 and "$link" in obj:
            return _libipld().decode_multibase(obj["$link"])[1]
        if len(obj) == 1 and "$bytes" in obj:
            b64 = obj["$bytes"]
            return base64.b64decode(b64 + "=" * (-len(b64) % 4))
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise SchemaError(
                    f"{path} has the non-string key {k!r}; record keys must be strings"
                )
            out[k] = to_ipld(v, f"{path}.{k}")
        return out
    if isinstance(obj, (list, tuple)):
        return [to_ipld(v, f"{path}[{i}]") for i, v in enumerate(obj)]
    if hasattr(obj, "to_dict"):  # SDK models / DotDict
        return to_ipld(obj.to_dict(), path)
    raise SchemaError(f"{path} holds a {type(obj).__name__}, which has no ATProto data model form")


def _cid(codec: int, data: bytes) -> str:
    raw = bytes([0x01, codec, _SHA256, 0x20]) + hashlib.sha256(data).digest()
    return str(_libipld().encode_cid(raw))


def generate_cid(obj: Any) -> str:
    """The CIDv1 (base32) of a record (dag-cbor, sha256) or of blob bytes (raw codec, sha256).

    Args:
        obj: A record as a dict in atproto JSON form (or SDK model), or ``bytes`` of a blob.

    Raises:
        SchemaError: When the record holds a float or a value with no ATProto form.
    """
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return _cid(_RAW, bytes(obj))
    return _cid(_DAG_CBOR, bytes(_libipld().encode_dag_cbor(to_ipld(obj))))


def verify_cid(obj: Any, cid: str) -> bool:
    """Whether ``cid`` is the CID of ``obj`` (see :func:`generate_cid`).

    Examples:
        >>> verify_cid(b"abc", generate_cid(b"abd"))
        False
    """
    return generate_cid(obj) == cid
