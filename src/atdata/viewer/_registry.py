"""The datasets a viewer shows, fixed when it starts: paths, names, objects and an index.

A request names a dataset only by the id this registry gave it; an id is a key of a dict, never
joined into a path, so nothing outside what the viewer was started with can be reached.

Ids: an index entry is ``name@version``; a path or name with one split is its base name, with
several ``name:split``; a clash gets ``-2``, ``-3`` ... appended.

Examples:
    >>> import os, tempfile, atdata
    >>> d = tempfile.mkdtemp()
    >>> _ = atdata.write_samples([{"x": 1}], os.path.join(d, "pets-000.tar"))
    >>> reg = Registry([os.path.join(d, "pets-000.tar")])
    >>> [v.id for v in reg.list_datasets()], reg.get("pets-000").dataset().count()
    (['pets-000'], 1)
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from atdata._errors import ConfigError, NotFoundError

if TYPE_CHECKING:
    from atdata.dataset._dataset import Dataset
    from atdata.index._entry import DatasetEntry
    from atdata.index._index import Index

__all__ = ["Registry", "ViewerDataset", "Target"]

#: What ``create_app`` takes: a path or pattern, a ``@local/``/``@handle/`` name, a Dataset, or a
#: DatasetDict (a mapping of split -> Dataset).
Target = Any


@dataclasses.dataclass
class ViewerDataset:
    """One dataset (one split of one version) the viewer can show.

    Attributes:
        id: The id requests name it by.
        name: Dataset name (a path's base name, or the index name).
        split: The split, when the source had several.
        version: The index version, for index entries.
        origin: ``"index"``, ``"path"``, ``"name"`` or ``"object"``.
        description, license, tags, created_at, schema_ref: From the index entry, if any.
        num_samples, size: Known totals (``None`` when unknown without reading).
        opener: Makes the :class:`~atdata.Dataset` (called once, on first use).
        lock: Held while the dataset is read (a dataset's readers are not shared across threads).
    """

    id: str
    name: str
    opener: Callable[[], Dataset[Any]]
    split: str | None = None
    version: str | None = None
    origin: str = "path"
    description: str | None = None
    license: str | None = None
    tags: list[str] = dataclasses.field(default_factory=list)
    created_at: str | None = None
    schema_ref: str | None = None
    num_samples: int | None = None
    size: int | None = None
    lock: threading.RLock = dataclasses.field(default_factory=threading.RLock, repr=False)
    cache: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    _ds: Dataset[Any] | None = dataclasses.field(default=None, repr=False)

    def dataset(self) -> Dataset[Any]:
        """The dataset (opened on first use)."""
        with self.lock:
            if self._ds is None:
                self._ds = self.opener()
            return self._ds

    def summary(self) -> dict[str, Any]:
        """The JSON listing row: id, name, split, version, origin, sizes, licence, tags, description."""
        return {
            "id": self.id,
            "name": self.name,
            "split": self.split,
            "version": self.version,
            "origin": self.origin,
            "samples": self.num_samples,
            "bytes": self.size,
            "license": self.license,
            "tags": list(self.tags),
            "description": self.description,
            "created_at": self.created_at,
            "schema_ref": self.schema_ref,
        }


def _base_name(path: str) -> str:
    """``/data/pets/train-{000..009}.tar`` -> ``train``; a directory -> its name."""
    p = path.rstrip("/\\").split("::")[0]
    base = os.path.basename(p) or "data"
    base = re.sub(r"\.tar(\.gz)?$", "", base)
    base = re.sub(r"[-_.]*[{\[*?%].*$", "", base) or "data"
    return base


def _constant(ds: Dataset[Any]) -> Callable[[], Dataset[Any]]:
    return lambda: ds


def _local_count(ds: Dataset[Any]) -> int | None:
    """``len(ds)`` when it needs no download (``None`` otherwise)."""
    try:
        return len(ds)
    except (TypeError, OSError):
        return None


def _check_shards(ds: Dataset[Any], target: str) -> None:
    """Fail at start, not on the first page, when a path given is not tar shards (a CSV ...)."""
    from atdata._errors import DataNotFoundError, ShardError

    try:
        len(ds)
    except DataNotFoundError:
        raise
    except ShardError as exc:
        fix = (
            ""
            if "atdata ingest" in str(exc)
            else (
                "; atdata serve shows tar shards (atdata ingest makes them from JSONL, CSV, parquet)"
            )
        )
        raise ConfigError(f"cannot serve {target}: {exc}{fix}") from None
    except (TypeError, OSError):
        pass  # remote shards of unknown length: counted on request


def _local_size(ds: Dataset[Any]) -> int | None:
    try:
        return int(ds.describe()["bytes"]) or None
    except OSError:
        return None


class Registry:
    """The datasets of one viewer: id -> :class:`ViewerDataset`.

    Args:
        targets: Paths/patterns/directories, ``@local/name`` or ``@handle/name`` names,
            :class:`~atdata.Dataset` s or :class:`~atdata.DatasetDict` s.
        index: The index that ``@local/`` names resolve through (default: the default index).
        include_index: List every entry of ``index`` too (re-read on each listing, so entries
            committed while the viewer runs appear).

    Raises:
        ConfigError: For a target of an unknown kind, or none at all.
    """

    def __init__(
        self,
        targets: Sequence[Target] = (),
        *,
        index: Index | None = None,
        include_index: bool = False,
    ) -> None:
        self._index = index
        self._include_index = include_index
        self._fixed: dict[str, ViewerDataset] = {}
        self._indexed: dict[str, ViewerDataset] = {}
        self._lock = threading.Lock()
        if not targets and not include_index:
            raise ConfigError(
                "the viewer needs something to show: give dataset paths/names, or index=... "
                "with include_index=True (atdata serve --index)"
            )
        for t in targets:
            for vd in self._resolve(t):
                self._add(self._fixed, vd)
        if include_index:
            self.refresh()

    # -- resolution --------------------------------------------------------------------------
    def index(self) -> Index:
        """The index names resolve through."""
        if self._index is None:
            from atdata.index._index import get_default_index

            self._index = get_default_index()
        return self._index

    def _unique(self, base: str, taken: Iterable[str]) -> str:
        used = set(taken) | set(self._fixed) | set(self._indexed)
        if base not in used:
            return base
        n = 2
        while f"{base}-{n}" in used:
            n += 1
        return f"{base}-{n}"

    def _add(self, into: dict[str, ViewerDataset], vd: ViewerDataset) -> None:
        vd.id = self._unique(vd.id, into)
        into[vd.id] = vd

    def _from_entry(self, e: DatasetEntry) -> ViewerDataset:
        idx = self.index()
        name, version = e.name, e.version
        return ViewerDataset(
            id=f"{name}@{version}",
            name=name,
            opener=lambda: idx.open_dataset(name, version),
            version=version,
            origin="index",
            description=e.description,
            license=e.license,
            tags=list(e.tags),
            created_at=e.created_at,
            schema_ref=e.schema_ref,
            num_samples=e.num_samples,
            size=e.size,
        )

    def _splits(self, name: str, splits: dict[str, Any], origin: str) -> list[ViewerDataset]:
        out = []
        for split, ds in splits.items():
            several = len(splits) > 1
            out.append(
                ViewerDataset(
                    id=f"{name}:{split}" if several else name,
                    name=name,
                    opener=_constant(ds),
                    split=split if several else None,
                    origin=origin,
                    num_samples=_local_count(ds),
                    size=_local_size(ds),
                )
            )
        return out

    def _resolve(self, target: Target) -> list[ViewerDataset]:
        from atdata.dataset._dataset import Dataset

        if isinstance(target, Dataset):
            return self._splits(_base_name(target.url), {"": target}, "object")
        if isinstance(target, dict):
            return self._splits("dataset", dict(target), "object")
        if not isinstance(target, (str, os.PathLike)):
            raise ConfigError(
                f"cannot show a {type(target).__name__}: give a path, a '@local/name' or "
                "'@handle/name', a Dataset or a DatasetDict"
            )
        path = os.fspath(target)
        if path.startswith("@local/"):
            from atdata._named import split_name

            _, name, version = split_name(path)
            entries = [e for e in self.index().list_entries() if e.name == name]
            if version is not None:
                entries = [e for e in entries if e.version == version]
            if not entries:
                self.index().get_dataset(name, version)  # raises NotFoundError naming the index
            return [self._from_entry(e) for e in entries]
        from atdata._load import load_dataset

        loaded = load_dataset(path, index=self._index)
        origin = "name" if path.startswith("@") else "path"
        if origin == "path":
            for ds in loaded.values():
                _check_shards(ds, path)
        name = path.partition("/")[2].partition("@")[0] if origin == "name" else _base_name(path)
        return self._splits(name.replace("/", "_") or "data", dict(loaded), origin)

    # -- lookup ------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the index's entries (only with ``include_index``)."""
        if not self._include_index:
            return
        entries = self.index().list_entries()
        with self._lock:
            fresh: dict[str, ViewerDataset] = {}
            for e in entries:
                key = f"{e.name}@{e.version}"
                old = self._indexed.get(key)
                if old is not None and old.name == e.name and old.version == e.version:
                    fresh[key] = old  # keep its opened dataset and caches
                else:
                    fresh[key] = self._from_entry(e)
            self._indexed = fresh

    def list_datasets(self) -> list[ViewerDataset]:
        """Every dataset: those given at start, then the index's (by name and version)."""
        self.refresh()
        return [*self._fixed.values(), *self._indexed.values()]

    def get(self, dataset_id: str) -> ViewerDataset:
        """The dataset with id ``dataset_id``.

        Raises:
            NotFoundError: (a ``KeyError``) When no dataset has that id.
        """
        vd = self._fixed.get(dataset_id) or self._indexed.get(dataset_id)
        if vd is None and self._include_index:
            self.refresh()
            vd = self._indexed.get(dataset_id)
        if vd is None:
            raise NotFoundError(f"no dataset {dataset_id[:80]!r} in this viewer")
        return vd

    def versions(self, vd: ViewerDataset) -> list[dict[str, Any]]:
        """The versions of ``vd``'s name that this viewer shows: ``[{"id", "version"}]``."""
        if vd.version is None:
            return []
        pool = [*self._fixed.values(), *self._indexed.values()]
        same = [v for v in pool if v.name == vd.name and v.version is not None]
        seen: dict[str, dict[str, Any]] = {}
        for v in same:
            seen.setdefault(str(v.version), {"id": v.id, "version": v.version})
        return list(seen.values())
