"""``Dataset[T]``: the subscripted dataset class, which builds datasets whose samples decode as
``T`` (``Dataset[T](url)`` is ``Dataset(url, sample_type=T)``).

Examples:
    >>> import atdata
    >>> alias = DatasetAlias(atdata.Dataset, atdata.DictSample)
    >>> alias, alias == DatasetAlias(atdata.Dataset, atdata.DictSample)
    (Dataset[DictSample], True)
"""

from __future__ import annotations

import os
from typing import Any, TypeVar

__all__ = ["DatasetAlias"]


class DatasetAlias:
    """``Dataset[T]``: calling it builds a dataset whose samples decode as ``T``."""

    def __init__(self, origin: type, arg: Any) -> None:
        self.__origin__ = origin
        self.__args__ = (arg,)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        arg = self.__args__[0]
        if len(args) > 1 and isinstance(args[1], (str, os.PathLike)):  # (source, metadata_url)
            kwargs.setdefault("metadata_url", os.fspath(args[1]))
            args = args[:1] + args[2:]
        if not isinstance(arg, TypeVar):
            kwargs.setdefault("sample_type", arg)
        return self.__origin__(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__origin__, name)

    def __mro_entries__(self, bases: tuple) -> tuple:
        return (self.__origin__,)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DatasetAlias) and (other.__origin__, other.__args__) == (
            self.__origin__,
            self.__args__,
        )

    def __hash__(self) -> int:
        return hash((self.__origin__, self.__args__))

    def __repr__(self) -> str:
        a = self.__args__[0]
        return f"{self.__origin__.__name__}[{getattr(a, '__name__', repr(a))}]"
