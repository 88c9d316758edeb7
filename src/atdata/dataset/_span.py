"""Where one msgpack value ends, from its headers alone (nothing is decoded).

:data:`SIZE` gives, for each first byte, the whole value's size when that byte alone says
(integers, floats, nil, booleans, fixstr, fixext); :func:`value_end` also reads the length of
str, bin and ext values and walks small arrays and maps item by item. A byte msgpack never
uses (``0xc1``), or arrays and maps of more than :data:`MAX_ITEMS` values in all, give ``-1``:
the caller then leaves the value to msgpack itself.

Examples:
    >>> import msgpack
    >>> v = msgpack.packb([1, "ab", {"k": 2.5}]) + b"rest"
    >>> SIZE[v[0]], value_end(v, 0), len(v) - 4
    (0, 17, 17)
    >>> value_end(msgpack.packb(list(range(MAX_ITEMS + 1))), 0)
    -1
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_ITEMS", "SIZE", "value_end"]

MAX_ITEMS = 64  # values walked for one value at most (each costs Python steps; msgpack is faster)


def _sizes() -> list[int]:
    size = [0] * 256
    for b in range(0x80):
        size[b] = 1  # positive fixint
    for b in range(0xE0, 0x100):
        size[b] = 1  # negative fixint
    for b in range(0xA0, 0xC0):
        size[b] = 1 + (b & 0x1F)  # fixstr
    fixed = {0xC0: 1, 0xC2: 1, 0xC3: 1, 0xCA: 5, 0xCB: 9}  # nil, false, true, float 32/64
    fixed |= {0xCC: 2, 0xCD: 3, 0xCE: 5, 0xCF: 9, 0xD0: 2, 0xD1: 3, 0xD2: 5, 0xD3: 9}  # ints
    fixed |= {0xD4: 3, 0xD5: 4, 0xD6: 6, 0xD7: 10, 0xD8: 18}  # fixext 1/2/4/8/16
    for b, n in fixed.items():
        size[b] = n
    return size


SIZE = _sizes()

# first byte -> (bytes of the length that follows, bytes before the payload after that length,
# values per counted item: 0 for a byte string, 1 for an array, 2 for a map)
_LENGTH = {
    0xC4: (1, 0, 0),  # bin 8/16/32
    0xC5: (2, 0, 0),
    0xC6: (4, 0, 0),
    0xC7: (1, 1, 0),  # ext 8/16/32 (a type byte, then the data)
    0xC8: (2, 1, 0),
    0xC9: (4, 1, 0),
    0xD9: (1, 0, 0),  # str 8/16/32
    0xDA: (2, 0, 0),
    0xDB: (4, 0, 0),
    0xDC: (2, 0, 1),  # array 16/32
    0xDD: (4, 0, 1),
    0xDE: (2, 0, 2),  # map 16/32
    0xDF: (4, 0, 2),
}


def value_end(buf: Any, pos: int) -> int:
    """Where the msgpack value starting at ``buf[pos]`` ends, or ``-1`` (see the module notes).

    The value is not validated (a str's UTF-8, an ext's contents): decode it to know it is one.

    Raises:
        IndexError: When a header lies past the end of ``buf``.
    """
    todo, walked = 1, 0  # values still to pass over; values passed over
    while todo:
        if walked > MAX_ITEMS:
            return -1
        todo -= 1
        walked += 1
        b = buf[pos]
        n = SIZE[b]
        if n:
            pos += n
        elif 0x80 <= b <= 0x9F:  # fixmap, fixarray
            todo += (b & 0x0F) * (2 if b < 0x90 else 1)
            pos += 1
        else:
            spec = _LENGTH.get(b)
            if spec is None:  # 0xc1
                return -1
            width, extra, per = spec
            length = int.from_bytes(buf[pos + 1 : pos + 1 + width], "big")
            if per:
                todo += length * per
                pos += 1 + width
            else:
                pos += 1 + width + extra + length
    return pos
