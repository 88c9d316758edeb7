"""Content identifiers (CIDv1, sha256) for values, ATProto records and blobs.

Three functions, one per kind of content:

* :func:`generate_cid` hashes any DAG-CBOR-encodable value exactly as given (upstream atdata's
  function: dicts, lists, strings, ints, floats, bytes).
* :func:`record_cid` hashes a record in atproto JSON form the way a PDS does (``{"$link": cid}``
  becomes a link, ``{"$bytes": b64}`` becomes bytes, floats are refused): it equals the CID the PDS
  reports for the record.
* :func:`blob_cid` hashes blob bytes with the raw codec: the CID a PDS gives an uploaded blob.

Examples:
    >>> generate_cid({"hello": "world"})
    'bafyreidykglsfhoixmivffc5uwhcgshx4j465xwqntbmu43nb2dzqwfvae'
    >>> verify_cid(generate_cid({"hello": "world"}), {"hello": "world"})
    True
    >>> blob_cid(b"shard bytes")
    'bafkreie7xylqyimvml3hpehdqcjvbgahk5nlobrvz7nyr5ihboiqkoue7i'
    >>> record_cid({"hello": "world"}) == generate_cid({"hello": "world"})
    True
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Mapping
from typing import Any

from atdata._errors import ConfigError, SchemaError
from atdata._extras import require

__all__ = [
    "blob_cid",
    "check_no_floats",
    "generate_cid",
    "record_cid",
    "to_ipld",
    "verify_cid",
]

_DAG_CBOR = 0x71
_RAW = 0x55
_SHA256 = 0x12


def _libipld() -> Any:
    return require("libipld", "atmosphere", "content identifiers (CIDs)")


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
        if len(obj) == 1 and ("$link" in obj or "$bytes" in obj):
            return _special(obj, path)
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
    if hasattr(obj, "to_record"):  # lexicon-mirror types
        return to_ipld(obj.to_record(), path)
    raise SchemaError(f"{path} holds a {type(obj).__name__}, which has no ATProto data model form")


def _special(obj: Mapping[str, Any], path: str) -> Any:
    """The bytes of a ``{"$link": CID}`` or ``{"$bytes": base64}`` object.

    Raises:
        SchemaError: When the link is not a CID or the bytes are not base64 (naming ``path``).
    """
    kind, text = next(iter(obj.items()))
    try:
        if kind == "$link":
            return _libipld().decode_multibase(text)[1]
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (TypeError, ValueError) as exc:  # (binascii.Error is a ValueError)
        what = "CID" if kind == "$link" else "base64 text"
        raise SchemaError(f"{path}.{kind} holds {text!r}, which is not a {what} ({exc})") from None


def _cid(codec: int, data: bytes) -> str:
    raw = bytes([0x01, codec, _SHA256, 0x20]) + hashlib.sha256(data).digest()
    return str(_libipld().encode_cid(raw))


def generate_cid(data: Any) -> str:
    """The CIDv1 (base32, dag-cbor, sha256) of any DAG-CBOR-encodable value, hashed as given.

    Args:
        data: dicts with string keys, lists, strings, ints, floats, bytes, booleans, ``None``.

    Raises:
        ValueError: (:class:`~atdata.ConfigError`) when ``data`` cannot be encoded as DAG-CBOR.

    Examples:
        >>> generate_cid({"name": "test", "value": 42})[:7]
        'bafyrei'
        >>> generate_cid({1: "a"})
        Traceback (most recent call last):
        ...
        atdata._errors.ConfigError: cannot encode the value as DAG-CBOR (...); use dicts with string keys, lists, strings, numbers, bytes, booleans and None
    """
    try:
        body = bytes(_libipld().encode_dag_cbor(data))
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConfigError(
            f"cannot encode the value as DAG-CBOR ({exc}); use dicts with string keys, lists, "
            "strings, numbers, bytes, booleans and None"
        ) from None
    return _cid(_DAG_CBOR, body)


def verify_cid(cid: str, data: Any) -> bool:
    """Whether ``cid`` is :func:`generate_cid` of ``data`` (upstream's argument order).

    Examples:
        >>> verify_cid(generate_cid({"a": 1}), {"a": 2})
        False
    """
    if not isinstance(cid, str):
        raise ConfigError(
            f"verify_cid(cid, data) takes the CID string first, got {type(cid).__name__}"
        )
    return generate_cid(data) == cid


def record_cid(record: Any) -> str:
    """The CID a PDS reports for ``record`` (atproto JSON form: ``$link``/``$bytes`` objects).

    Raises:
        SchemaError: When the record holds a float or a value with no ATProto form.
    """
    return _cid(_DAG_CBOR, bytes(_libipld().encode_dag_cbor(to_ipld(record))))


def blob_cid(data: bytes | bytearray | memoryview) -> str:
    """The CID a PDS gives ``data`` uploaded as a blob (raw codec, sha256).

    Examples:
        >>> blob_cid(b"abc") == blob_cid(bytearray(b"abc"))
        True
    """
    return _cid(_RAW, bytes(data))
