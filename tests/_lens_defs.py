"""Module-level sample types and a lens, so stored lens records can name importable code."""

from __future__ import annotations

import atdata


@atdata.packable
class Full:
    name: str
    value: int


@atdata.packable
class NameOnly:
    name: str


@atdata.lens
def full_to_name(s: Full) -> NameOnly:
    return NameOnly(name=s.name)


@full_to_name.putter
def full_to_name_put(v: NameOnly, s: Full) -> Full:
    return Full(name=v.name, value=s.value)
