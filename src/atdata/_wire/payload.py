"""Sample payloads: a field map to msgpack bytes and back, with errors that name the field.

A payload is one msgpack map of field name to value (``docs/wire-format.md``); the sample
types of :mod:`atdata._wire.sample` pack and unpack theirs through these functions.
"""

from __future__ import annotations

from typing import Any

import msgpack

from atdata._errors import DecodeError, PayloadTypeError, SchemaError

__all__ = ["not_a_map", "pack_wire", "unpack_failure", "unpack_payload"]

_packb = msgpack.Packer(use_bin_type=True, autoreset=True).pack


def pack_wire(wire: dict[str, Any], owner: str = "", where: str = "") -> bytes:
    """The msgpack payload of a sample's field map (from ``_to_wire``).

    Args:
        wire: The field map.
        owner: The sample type's name and a dot (``"Img."``), for messages.
        where: Context appended to messages (e.g. the sample key).

    Raises:
        SchemaError: For a value msgpack cannot store (a numpy scalar, a set, an int beyond
            64 bits, a str with lone surrogates ...), naming the field.

    Examples:
        >>> pack_wire({"n": 1})
        b'\\x81\\xa1n\\x01'
        >>> pack_wire({"n": {1, 2}}, "P.", " (sample 'k')")
        Traceback (most recent call last):
        ...
        atdata._errors.SchemaError: field P.'n' cannot be stored (sample 'k'): can not serialize 'set' object; ...
    """
    try:
        return _packb(wire)
    except (TypeError, ValueError, OverflowError) as exc:
        name, err = next(
            ((k, e) for k, v in wire.items() if (e := _pack_failure(v)) is not None),
            ("?", exc),
        )
        raise SchemaError(
            f"field {owner}{name!r} cannot be stored{where}: {err}; a payload holds str, int "
            "(64-bit), float, bool, bytes, None, lists and str-keyed dicts of these, and arrays "
            "in NDArray fields (declare the field's type, e.g. list[NDArray]; for a numpy "
            "scalar use .item())"
        ) from None


def _pack_failure(v: Any) -> Exception | None:
    try:
        _packb(v)
    except (TypeError, ValueError, OverflowError) as exc:
        return exc
    return None


def not_a_map(obj: Any, where: str, extra: int = 0) -> PayloadTypeError:
    """The error for a payload whose (first) msgpack object ``obj`` is not a map."""
    more = f" followed by {extra} more byte(s)" if extra else ""
    return PayloadTypeError(
        f"payload is a msgpack {type(obj).__name__}{more}, not a map{where}; "
        "a sample payload is one msgpack map of its fields"
    )


def unpack_failure(exc: Exception, where: str) -> PayloadTypeError | None:
    """:func:`not_a_map` when ``exc`` (from ``msgpack.unpackb``) says the bytes hold a non-map
    object followed by more bytes; ``None`` for other failures (the caller's DecodeError).

    Examples:
        >>> try:
        ...     msgpack.unpackb(b"\\xff\\xff")
        ... except Exception as exc:
        ...     print(unpack_failure(exc, " in sample 'k'"))
        payload is a msgpack int followed by 1 more byte(s), not a map in sample 'k'; a sample payload is one msgpack map of its fields
    """
    if isinstance(exc, msgpack.ExtraData) and type(exc.unpacked) is not dict:
        return not_a_map(exc.unpacked, where, len(exc.extra))
    return None


def unpack_payload(data: bytes | memoryview, where: str = "") -> dict:
    """Unpack one msgpack sample payload into its raw field map.

    Raises:
        DecodeError: When the bytes are not msgpack.
        PayloadTypeError: (a ``DecodeError`` and a ``TypeError``) When they are not a map.
    """
    try:
        obj = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types
        err = unpack_failure(exc, where)
        if err is not None:
            raise err from None
        raise DecodeError(f"payload is not valid msgpack{where}: {exc}") from None
    if type(obj) is not dict:
        raise not_a_map(obj, where)
    return obj
