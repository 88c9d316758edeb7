"""Array wire codec: the compact ndarray-bytes format, with the legacy ``.npy`` format read too.

Compact format (what atdata and upstream atdata 0.7 write)::

    u8   len(dtype_str)
    ...  dtype_str, ASCII numpy ``dtype.str`` (e.g. ``<f4``, ``|u1``, ``|b1``)
    u8   ndim
    ...  ndim little-endian int64 dimensions
    ...  raw C-order element bytes

Legacy format: a complete ``.npy`` file (magic ``\\x93NUMPY``), read without pickle.

Examples:
    >>> import numpy as np
    >>> b = encode_array(np.arange(3, dtype="<i2"))
    >>> b.hex()
    '033c6932010300000000000000000001000200'
    >>> decode_array(b)
    array([0, 1, 2], dtype=int16)
"""

from __future__ import annotations

import ast
import struct
from typing import Any

import numpy as np

from atdata._errors import DecodeError

__all__ = [
    "decode_array",
    "decode_array_into",
    "encode_array",
    "is_array_bytes",
    "npy_header",
    "parse_header",
]

_NPY_MAGIC = b"\x93NUMPY"
_MAX_NDIM = 32
_dtype_cache: dict[bytes, np.dtype] = {}
_le_dims: dict[int, struct.Struct] = {}


def _dims_struct(ndim: int) -> struct.Struct:
    st = _le_dims.get(ndim)
    if st is None:
        st = _le_dims[ndim] = struct.Struct(f"<{ndim}q")
    return st


def _checked_dtype(dstr: bytes | str, where: str = "") -> np.dtype:
    key = dstr.encode("ascii", "replace") if isinstance(dstr, str) else bytes(dstr)
    dt = _dtype_cache.get(key)
    if dt is not None:
        return dt
    try:
        dt = np.dtype(key.decode("ascii"))
    except (TypeError, ValueError, UnicodeDecodeError, SyntaxError) as exc:
        raise DecodeError(f"invalid array dtype {key!r}{where}") from exc
    if dt.hasobject:
        raise DecodeError(
            f"object-dtype arrays are refused{where}: atdata never unpickles; store a numeric dtype"
        )
    if dt.itemsize == 0 or dt.subdtype is not None:
        raise DecodeError(f"unsupported array dtype {dt.str!r} (zero-size or subarray){where}")
    if len(_dtype_cache) < 256:
        _dtype_cache[key] = dt
    return dt


def encode_array(arr: Any) -> bytes:
    """Encode an array in the compact ndarray-bytes format.

    Args:
        arr: A numpy array (or anything ``np.asarray`` accepts). Object dtypes are refused.

    Returns:
        The encoded bytes.

    Raises:
        DecodeError: For object-dtype arrays (they could only be stored by pickling) and
            structured ones (``dtype.str`` would keep their bytes but lose their field names).
    """
    a = arr if isinstance(arr, np.ndarray) else np.asarray(arr)
    dt = a.dtype
    if dt.hasobject:
        raise DecodeError("object-dtype arrays cannot be stored (atdata never pickles)")
    if dt.names is not None:
        raise DecodeError(
            f"structured arrays cannot be stored (fields {', '.join(map(repr, dt.names))} "
            "would be lost); store one field per column, e.g. one NDArray field each"
        )
    ds = dt.str.encode("ascii")
    shape = a.shape
    head = bytes((len(ds),)) + ds + bytes((len(shape),)) + _dims_struct(len(shape)).pack(*shape)
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    return head + a.tobytes()


def parse_header(
    buf: bytes | bytearray | memoryview, where: str = ""
) -> tuple[np.dtype, tuple[int, ...], int]:
    """Parse a compact array header and validate it against the buffer length.

    Returns:
        ``(dtype, shape, data_offset)``.

    Raises:
        DecodeError: When the header is malformed or promises more bytes than the buffer holds.
    """
    n = len(buf)
    if n < 2:
        raise DecodeError(f"array bytes too short ({n} bytes){where}")
    dlen = buf[0]
    if dlen == 0 or 1 + dlen + 1 > n:
        raise DecodeError(f"array header has an invalid dtype length {dlen}{where}")
    dt = _checked_dtype(bytes(buf[1 : 1 + dlen]), where)
    ndim = buf[1 + dlen]
    off = 2 + dlen
    if ndim > _MAX_NDIM or off + 8 * ndim > n:
        raise DecodeError(f"array header has an invalid ndim {ndim}{where}")
    shape = _dims_struct(ndim).unpack_from(buf, off)
    off += 8 * ndim
    count = 1
    for d in shape:
        if d < 0:
            raise DecodeError(f"array header has a negative dimension {shape}{where}")
        count *= d
    if count * dt.itemsize != n - off:
        raise DecodeError(
            f"array header says shape {tuple(shape)} of {dt.str} ({count * dt.itemsize} bytes) "
            f"but {n - off} data bytes follow{where}"
        )
    return dt, tuple(shape), off


def npy_header(
    buf: bytes | bytearray | memoryview, where: str = ""
) -> tuple[np.dtype, tuple[int, ...], bool, int]:
    """Parse and validate the header of a legacy ``.npy`` array against the buffer length.

    Returns:
        ``(dtype, shape, fortran_order, data_offset)``.

    Raises:
        DecodeError: When the header is malformed or promises other than the bytes that follow.

    Examples:
        >>> import io
        >>> f = io.BytesIO()
        >>> np.save(f, np.zeros((2, 3), "<f4"))
        >>> dt, shape, fortran, off = npy_header(f.getvalue())
        >>> dt.str, shape, fortran, len(f.getvalue()) - off
        ('<f4', (2, 3), False, 24)
    """
    mv = memoryview(buf)
    if len(mv) < 10:
        raise DecodeError(f"truncated .npy array{where}")
    major = mv[6]
    if major == 1:
        hlen = struct.unpack_from("<H", mv, 8)[0]
        start = 10
    elif major in (2, 3):
        if len(mv) < 12:
            raise DecodeError(f"truncated .npy array{where}")
        hlen = struct.unpack_from("<I", mv, 8)[0]
        start = 12
    else:
        raise DecodeError(f"unsupported .npy version {major}{where}")
    if start + hlen > len(mv):
        raise DecodeError(f"truncated .npy header{where}")
    try:
        header = ast.literal_eval(bytes(mv[start : start + hlen]).decode("latin1"))
        descr, fortran, shape = (
            header["descr"],
            bool(header["fortran_order"]),
            tuple(header["shape"]),
        )
    except Exception as exc:  # any malformed header is a decode error
        raise DecodeError(f"malformed .npy header{where}") from exc
    if not isinstance(descr, str):
        raise DecodeError(f"unsupported .npy dtype description {descr!r}{where}")
    dt = _checked_dtype(descr, where)
    count = 1
    for d in shape:
        if not isinstance(d, int) or d < 0:
            raise DecodeError(f"invalid .npy shape {shape}{where}")
        count *= d
    n = len(mv) - start - hlen
    if n != count * dt.itemsize:
        raise DecodeError(
            f".npy header says shape {shape} of {dt.str} but {n} data bytes follow{where}"
        )
    return dt, shape, fortran, start + hlen


def _decode_npy(buf: bytes | bytearray | memoryview, where: str) -> np.ndarray:
    dt, shape, fortran, off = npy_header(buf, where)
    data = memoryview(buf)[off:]
    arr = np.frombuffer(data, dtype=dt, count=len(data) // dt.itemsize)
    if fortran:
        return arr.reshape(shape[::-1]).T.copy()
    return arr.reshape(shape).copy()


def is_array_bytes(buf: Any) -> bool:
    """Whether ``buf`` parses as an encoded array (compact or ``.npy``).

    Examples:
        >>> import numpy as np
        >>> is_array_bytes(encode_array(np.zeros(2))), is_array_bytes(b"hello")
        (True, False)
    """
    if not isinstance(buf, (bytes, bytearray, memoryview)):
        return False
    if bytes(buf[:6]) == _NPY_MAGIC:
        return True
    try:
        parse_header(buf)
    except DecodeError:
        return False
    return True


def decode_array(
    buf: bytes | bytearray | memoryview, *, copy: bool = True, where: str = ""
) -> np.ndarray:
    """Decode array bytes (compact or legacy ``.npy``) into a numpy array.

    Args:
        buf: The encoded bytes, e.g. a raw field of a :class:`~atdata.DictSample`.
        copy: ``True`` (default) returns a writable array that owns its memory; ``False`` returns
            a read-only view of ``buf`` (zero-copy).
        where: Context appended to error messages (shard, key, field).

    Returns:
        The decoded array.

    Raises:
        DecodeError: When the bytes are not a valid array.
    """
    if not isinstance(buf, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected array bytes, got {type(buf).__name__}{where}")
    if bytes(buf[:6]) == _NPY_MAGIC:
        return _decode_npy(buf, where)
    dt, shape, off = parse_header(buf, where)
    arr = np.frombuffer(buf, dtype=dt, offset=off).reshape(shape)
    if copy:
        return arr.copy()
    if arr.flags.writeable:
        arr.flags.writeable = False
    return arr


def decode_array_into(buf: bytes | memoryview, out: np.ndarray, where: str = "") -> None:
    """Decode array bytes straight into ``out`` (a slot of a stacked batch buffer).

    Raises:
        DecodeError: When the bytes are invalid or their dtype/shape differ from ``out``.
    """
    if bytes(buf[:6]) == _NPY_MAGIC:
        arr = _decode_npy(buf, where)
        dt, shape = arr.dtype, arr.shape
    else:
        dt, shape, off = parse_header(buf, where)
        arr = np.frombuffer(buf, dtype=dt, offset=off).reshape(shape)
    if shape != out.shape:
        raise DecodeError(f"ragged array shapes in one batch: {shape} vs {out.shape}{where}")
    out[...] = arr
