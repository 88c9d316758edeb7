"""Array thumbnails: which arrays are images, their 8-bit view, and a small PNG encoder.

An array is an image when it is shaped ``HW``, ``HWC`` or ``CHW`` with 1, 3 or 4 channels
(``HWC`` wins when both fit) and both sides are at least :data:`MIN_SIDE`. ``uint8`` values
are used as they are; any other numeric dtype is min-max scaled to 0..255 (NaN shows black, a
constant array mid-grey). Thumbnails are shrunk by striding to at most ``max_side`` pixels.

The PNG is written by hand (``zlib`` + ``struct``, filter type 0): grey, RGB or RGBA, 8 bits.

Examples:
    >>> import numpy as np
    >>> image_layout((3, 64, 48)), image_layout((64, 48, 3)), image_layout((256,))
    ('CHW', 'HWC', None)
    >>> png = thumbnail_png(np.arange(12, dtype=np.float32).reshape(3, 4))
    >>> png is None
    True
    >>> png = thumbnail_png(np.zeros((16, 20, 3), np.uint8))
    >>> png[:8] == PNG_SIGNATURE, png_size(png)
    (True, (20, 16))
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

__all__ = [
    "MIN_SIDE",
    "PNG_SIGNATURE",
    "encode_png",
    "image_layout",
    "image_view",
    "png_size",
    "thumbnail_png",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MIN_SIDE = 4  # smaller arrays are tables of numbers, not pictures
_CHANNELS = (1, 3, 4)
_COLOUR_TYPE = {1: 0, 3: 2, 4: 6}  # channels -> PNG colour type (grey, RGB, RGBA)


def image_layout(shape: tuple[int, ...]) -> str | None:
    """``"HW"``, ``"HWC"`` or ``"CHW"`` when an array of ``shape`` reads as an image, else ``None``.

    Examples:
        >>> image_layout((28, 28)), image_layout((1, 28, 28)), image_layout((28, 28, 2))
        ('HW', 'CHW', None)
    """
    if len(shape) == 2:
        h, w = shape
        return "HW" if min(h, w) >= MIN_SIDE else None
    if len(shape) == 3:
        if shape[2] in _CHANNELS and min(shape[0], shape[1]) >= MIN_SIDE:
            return "HWC"
        if shape[0] in _CHANNELS and min(shape[1], shape[2]) >= MIN_SIDE:
            return "CHW"
    return None


def image_view(arr: Any, max_side: int = 128) -> Any:
    """``arr`` as a ``uint8`` ``(H, W, C)`` array of at most ``max_side`` pixels a side, or ``None``
    when it is not an image (wrong shape, or a non-numeric dtype).

    Examples:
        >>> import numpy as np
        >>> v = image_view(np.array([[0.0, 1.0] * 4] * 4))
        >>> v.shape, v.dtype.name, int(v.min()), int(v.max())
        ((4, 8, 1), 'uint8', 0, 255)
    """
    import numpy as np

    layout = image_layout(tuple(arr.shape))
    if layout is None or arr.dtype.kind not in "biuf":
        return None
    if layout == "HW":
        arr = arr[:, :, None]
    elif layout == "CHW":
        arr = np.moveaxis(arr, 0, -1)
    h, w = arr.shape[0], arr.shape[1]
    step = max(1, -(-max(h, w) // max_side))  # ceil: the result fits in max_side
    if step > 1:
        arr = arr[::step, ::step]
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype.kind == "b":
        return np.ascontiguousarray(arr.astype(np.uint8) * 255)
    f = arr.astype(np.float64)
    finite = np.isfinite(f)
    if not finite.any():
        return np.zeros(f.shape, np.uint8)
    lo, hi = float(f[finite].min()), float(f[finite].max())
    if hi <= lo:
        out = np.full(f.shape, 128, np.uint8)
    else:
        out = np.clip((f - lo) * (255.0 / (hi - lo)), 0, 255).round().astype(np.uint8)
    out[~finite] = 0
    return out


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def encode_png(img: Any, level: int = 6) -> bytes:
    """An 8-bit PNG of a ``uint8`` array shaped ``(H, W)`` or ``(H, W, C)`` with C in 1, 3, 4.

    Examples:
        >>> import numpy as np
        >>> png = encode_png(np.full((2, 3), 7, np.uint8))
        >>> png.startswith(PNG_SIGNATURE), png_size(png)
        (True, (3, 2))
    """
    import numpy as np

    if img.ndim == 2:
        img = img[:, :, None]
    h, w, c = img.shape
    if c not in _COLOUR_TYPE or img.dtype != np.uint8:
        raise ValueError(f"encode_png needs uint8 (H, W, 1|3|4), got {img.dtype} {img.shape}")
    rows = np.empty((h, 1 + w * c), np.uint8)
    rows[:, 0] = 0  # filter type 0 (None) on every scanline
    rows[:, 1:] = img.reshape(h, w * c)
    header = struct.pack(">IIBBBBB", w, h, 8, _COLOUR_TYPE[c], 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), level))
        + _chunk(b"IEND", b"")
    )


def png_size(png: bytes) -> tuple[int, int]:
    """``(width, height)`` from a PNG's header."""
    w, h = struct.unpack(">II", png[16:24])
    return int(w), int(h)


def thumbnail_png(arr: Any, max_side: int = 128) -> bytes | None:
    """A PNG thumbnail of an image-like array (see :func:`image_view`), or ``None``."""
    view = image_view(arr, max_side)
    return None if view is None else encode_png(view)
