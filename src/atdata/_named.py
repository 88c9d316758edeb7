"""Dataset names: ``@local/name`` and ``@local/name@1.2.0`` through the default index; any other
``@handle/...`` through :mod:`atdata.atmosphere`.

Examples:
    >>> split_name("@local/mnist@1.2.0"), split_name("@local/a/b")
    (('local', 'mnist', '1.2.0'), ('local', 'a/b', None))
"""

from __future__ import annotations

import importlib
from typing import Any

from atdata._errors import ConfigError

__all__ = ["load_named", "split_name"]


def split_name(path: str) -> tuple[str, str, str | None]:
    """``"@handle/name@version"`` -> ``(handle, name, version)``.

    Raises:
        ConfigError: When ``path`` is not ``@handle/name`` shaped.
    """
    if not path.startswith("@") or "/" not in path:
        raise ConfigError(
            f"{path!r} is not a dataset name like '@local/name' or '@handle/name@1.0.0'"
        )
    handle, _, rest = path[1:].partition("/")
    name, _, version = rest.partition("@")
    if not handle or not name:
        raise ConfigError(
            f"{path!r} is not a dataset name like '@local/name' or '@handle/name@1.0.0'"
        )
    return handle, name, version or None


def _open_local(index: Any, name: str, version: str | None, sample_type: type | None) -> Any:
    """Dataset ``name`` of ``index``: through :meth:`~atdata.Index.open_dataset` (recorded sizes
    and checksums come along) for ours, else through the documented index protocol
    (``get_dataset(ref)`` -> an entry with ``data_urls`` and ``schema_ref``, then
    ``get_schema_type(schema_ref)`` unless ``sample_type`` is given)."""
    from atdata.index._catalog import Catalog

    if isinstance(index, Catalog):
        return index.open_dataset(name, version, sample_type=sample_type)
    from atdata._wire.sample import DictSample
    from atdata.dataset._dataset import Dataset

    entry = index.get_dataset(f"{name}@{version}" if version else name)
    if sample_type is None:
        ref = getattr(entry, "schema_ref", None)
        sample_type = index.get_schema_type(ref) if ref else DictSample
    return Dataset(list(entry.data_urls), sample_type=sample_type)


def _remote(path: str) -> Any:
    try:
        return importlib.import_module("atdata.atmosphere._remote")
    except ImportError:
        raise ConfigError(
            f"cannot load {path!r}: atmosphere support is not available in this installation "
            '(pip install "atdata[atmosphere]")'
        ) from None


def load_named(
    path: str,
    sample_type: type | None = None,
    split: str | None = None,
    atmosphere: Any = None,
    index: Any = None,
) -> Any:
    """Load a named dataset: ``@local/...`` from an index, other handles from the atmosphere,
    ``at://.../science.alt.dataset.entry/...`` as that one entry (its split: metadata's, else
    ``train``).

    A local name is one dataset: without ``split`` it comes as the ``train`` split of a
    :class:`~atdata.DatasetDict`; with ``split`` (any name) the dataset itself. An atmosphere
    name gives a :class:`~atdata.DatasetDict` of its published splits (unsplit data is
    ``train``), or one :class:`~atdata.Dataset` with ``split``. ``atmosphere`` (a logged-in
    client) resolves names and DIDs through its own PDS first.

    Raises:
        ConfigError: For a malformed name or a missing atmosphere.
        NotFoundError: (a ``KeyError``) When the local dataset or version does not exist.
    """
    from atdata._load import DatasetDict

    if path.startswith("at://"):  # one dataset entry record: one split
        if atmosphere is None and index is not None:
            atmosphere = getattr(index, "atmosphere", None)
        got = _remote(path).load_entry_uri(path, sample_type, split, atmosphere=atmosphere)
        return next(iter(got.values())) if split is not None else DatasetDict(got)
    handle, name, version = split_name(path)
    if handle == "local":
        if index is None:
            from atdata.index._index import get_default_index

            index = get_default_index()
        ds = _open_local(index, name, version, sample_type)
        return ds if split is not None else DatasetDict({"train": ds}, ds.sample_type)
    remote = _remote(path)
    if atmosphere is None and index is not None:  # Index(atmosphere=client)
        atmosphere = getattr(index, "atmosphere", None)
    out = remote.load_remote_splits(path, sample_type, split, atmosphere=atmosphere)
    if split is not None:
        return out
    return DatasetDict(out)
