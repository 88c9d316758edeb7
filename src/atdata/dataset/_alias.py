"""``Dataset[T]``: the subscripted dataset class, which builds datasets whose samples decode as
``T`` (``Dataset[T](url)`` is ``Dataset(url, sample_type=T)``); and :func:`dataset_args`, how
``Dataset(...)``'s arguments are read.

Examples:
    >>> import atdata
    >>> alias = DatasetAlias(atdata.Dataset, atdata.DictSample)
    >>> alias, alias == DatasetAlias(atdata.Dataset, atdata.DictSample)
    (Dataset[DictSample], True)
"""

from __future__ import annotations

import os
from typing import Any, TypeVar

from atdata._errors import ArgumentTypeError, ConfigError

__all__ = ["DatasetAlias", "dataset_args"]


def dataset_args(
    source: Any, sample_type: Any, url: Any, metadata_url: str | None, on_error: str
) -> tuple[Any, type, str | None]:
    """``(DataSource, sample type, metadata_url)`` of ``Dataset(...)``'s arguments: a string as
    the second positional argument is upstream's ``metadata_url``; ``url=`` is the source.

    Raises:
        ArgumentTypeError: (a ``TypeError``) No shards given. ConfigError: A bad ``on_error`` or ``sample_type``.
    """
    from atdata._shards.sources import URLSource
    from atdata._wire.sample import DictSample

    if isinstance(sample_type, (str, os.PathLike)):  # upstream's Dataset(source, metadata_url)
        metadata_url, sample_type = os.fspath(sample_type), None
    if source is None:
        if url is None:
            raise ArgumentTypeError(
                "Dataset() needs the shards: Dataset(source) or Dataset(url=...)"
            )
        source = url
    if on_error not in ("raise", "skip"):
        raise ConfigError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if not (hasattr(source, "list_shards") and hasattr(source, "open_shard")):
        source = URLSource(source)
    st = sample_type if sample_type is not None else DictSample
    if st is not DictSample and not hasattr(st, "_from_wire"):
        raise ConfigError(f"sample_type {st!r} is not a @packable type or DictSample")
    return source, st, metadata_url


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
