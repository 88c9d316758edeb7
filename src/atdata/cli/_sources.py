"""What a CLI argument names: shards (a path, pattern or URL) or an index entry / schema name.

``schema show``/``schema diff`` and ``verify`` take either. Shards without a sample type get
their schema from the first sample's values.

Examples:
    >>> looks_like_shards("data/train-{000..009}.tar"), looks_like_shards("mnist@1.0.0")
    (True, False)
"""

from __future__ import annotations

import glob
import os
from typing import Any

__all__ = ["inferred_type", "looks_like_shards", "open_index", "schema_of"]


def open_index(path: str | None) -> Any:
    """The SQLite index at ``path`` (``--index``/``--db``), else the default index.

    A command that reads an index never creates one: a mistyped path is an error, not a new
    empty index (and directory) that answers "no such dataset".

    Raises:
        ConfigError: When ``path`` does not exist.
    """
    from atdata.index._index import Index, get_default_index

    if not path:
        return get_default_index()
    if not os.path.exists(os.path.expanduser(path)):
        from atdata._errors import ConfigError

        raise ConfigError(f"no index at {path}: check the path, or omit it for the default index")
    return Index(path=path)


def looks_like_shards(arg: str) -> bool:
    """Whether ``arg`` names shards rather than a name in the index (or ``@local/name``,
    ``@handle/name``)."""
    from atdata._shards.sources import is_remote

    if arg.startswith("@") and not os.path.exists(arg):
        return False
    return (
        is_remote(arg)
        or arg.startswith("file://")
        or os.path.exists(os.path.expanduser(arg))
        or glob.has_magic(arg)
        or "{" in arg
        or arg.endswith(".tar")
        or os.sep in arg
    )


def _annotation(v: Any) -> Any:
    from atdata._types import NDArray
    from atdata._wire.arrays import is_array_bytes

    if isinstance(v, bool):
        return bool
    if type(v).__name__ == "ndarray":
        return NDArray
    if isinstance(v, (int, float, str)):
        return type(v)
    if isinstance(v, (bytes, bytearray)):
        return NDArray if is_array_bytes(v) else bytes
    if isinstance(v, list):
        kinds = {type(x) for x in v if x is not None}
        if len(kinds) == 1 and next(iter(kinds)) in (str, int, float, bool):
            return list[next(iter(kinds))]  # type: ignore[misc]
        return list
    if isinstance(v, dict):
        return dict
    return None


def inferred_type(name: str, raw: dict[str, Any]) -> type:
    """A ``@packable`` type whose fields match one sample's raw values (``None``: optional)."""
    from atdata._wire.sample import packable

    ann: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    for k, v in raw.items():
        if not k.isidentifier() or k.startswith("_"):
            continue
        t = _annotation(v)
        if v is None or t is None:
            ann[k], defaults[k] = Any if t is None and v is not None else str | None, None
        else:
            ann[k] = t
    required = {k: a for k, a in ann.items() if k not in defaults}
    optional = {k: a for k, a in ann.items() if k in defaults}
    cls = type(name, (), {"__annotations__": {**required, **optional}, **defaults})
    return packable(cls)


def schema_of(arg: str, index: Any = None, sample_type: type | None = None) -> tuple[str, dict]:
    """``(title, JSON Schema body)`` of a shard spec (its sample type, else inferred from the
    first sample), of a schema in ``index`` (NAME, NAME@VERSION or its ref), or of a dataset's
    schema (``@local/NAME[@VERSION]`` in ``index``; ``@handle/NAME`` from the atmosphere).

    Raises:
        ConfigError: When the shards hold no sample to infer from.
        NotFoundError: When the schema or dataset is not in ``index``.
    """
    from atdata._wire.schema_json import schema_body

    if looks_like_shards(arg):
        from atdata.dataset._dataset import Dataset

        ds: Dataset[Any] = Dataset(arg, sample_type)
        if sample_type is not None:
            return f"{arg} ({sample_type.__name__})", schema_body(sample_type)
        return _inferred(arg, ds)
    if arg.startswith("@local/"):  # a dataset of the index: its recorded schema
        ref = index.get_dataset(arg).schema_ref
        if not ref:
            return _inferred(arg, index.open_dataset(arg))
        rec = index.get_schema_record(ref)
        return f"{arg} ({rec.name}@{rec.version})", rec.body
    if arg.startswith("@"):  # @handle/name: the sample type of its (first) split
        from atdata._load import load_dataset
        from atdata._wire.sample import DictSample

        remote = next(iter(dict(load_dataset(arg, sample_type)).values()))
        if remote.sample_type is DictSample:
            return _inferred(arg, remote)
        return f"{arg} ({remote.sample_type.__name__})", schema_body(remote.sample_type)
    rec = index.get_schema_record(arg)
    return f"{rec.name}@{rec.version}", rec.body


def _inferred(arg: str, ds: Any) -> tuple[str, dict]:
    """The schema of ``ds``'s first sample's fields."""
    from atdata._errors import ConfigError
    from atdata._wire.schema_json import schema_body

    first = next(iter(ds.head(1)), None)
    if first is None:
        raise ConfigError(f"{arg} holds no samples to read a schema from; pass --type")
    return f"{arg} (from the first sample)", schema_body(
        inferred_type("Inferred", dict(first.to_dict()))
    )
