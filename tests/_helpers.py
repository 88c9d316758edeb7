"""Sample types and helpers shared by several test modules."""

from __future__ import annotations

import atdata
from atdata import NDArray


# The two sample types upstream atdata 0.7.0b1 wrote the interop fixtures with (same names and
# fields, so schema records compare equal to upstream's).
@atdata.packable
class InteropImage:
    image: NDArray
    mask: NDArray | None
    label: str
    score: float
    idx: int
    tags: list[str]
    flag: bool


@atdata.packable
class InteropVectors:
    vec32: NDArray
    mat64: NDArray
    ints: NDArray
    name: str
    blob: bytes
