"""``load_dataset``: open a dataset by path, Hugging Face style, split by split.

A path may be one shard, a glob, a brace pattern, ``::``-joined patterns, or a directory. In a
directory, splits come from sub-directories (``train/``, ``test/``) or from split names in file
names (``train-000.tar``, ``mnist-test-000.tar``); ``valid``/``val``/``dev`` count as
``validation``. Anything else is one ``train`` split. Names starting with ``@`` (``@local/name``,
``@handle/name``) are resolved through the index and the atmosphere.

Examples:
    >>> import os, tempfile, atdata
    >>> d = tempfile.mkdtemp()
    >>> for split, n in [("train", 3), ("test", 2)]:
    ...     _ = atdata.write_samples([{"i": i} for i in range(n)], os.path.join(d, f"{split}-000.tar"))
    >>> dd = atdata.load_dataset(d)
    >>> sorted(dd), len(dd["train"]), len(dd["test"])
    (['test', 'train'], 3, 2)
    >>> [s.i for s in atdata.load_dataset(d, split="test")]
    [0, 1]
"""

from __future__ import annotations

import glob as _glob
import importlib
import importlib.util
import os
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from atdata._errors import (
    AmbiguousSplitError,
    AtdataError,
    ConfigError,
    DataNotFoundError,
    SplitNotFoundError,
)
from atdata._shards.sources import expand_urls, is_remote
from atdata._wire.sample import DictSample
from atdata.dataset._dataset import Dataset

if TYPE_CHECKING:
    from atdata.atmosphere._client import Atmosphere
    from atdata.index._index import Index

T = TypeVar("T")
V = TypeVar("V")

__all__ = ["DatasetDict", "infer_splits", "load_dataset"]

# canonical split name -> the words that name it in a file or directory name
_SPLIT_WORDS: dict[str, tuple[str, ...]] = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "val", "dev"),
    "test": ("test", "testing", "eval"),
}
_WORD_TO_SPLIT = {w: s for s, ws in _SPLIT_WORDS.items() for w in ws}
_SPLIT_RE = re.compile(
    r"(?:^|[-_.\s])("
    + "|".join(sorted(_WORD_TO_SPLIT, key=len, reverse=True))
    + r")(?=$|[-_.\s\d])",
    re.IGNORECASE,
)
_SPLIT_ORDER = ("train", "validation", "test")


# (quoted: at run time ``Dataset[T]`` is a callable alias, whose type variable is Dataset's own)
class DatasetDict(dict[str, "Dataset[T]"], Generic[T]):
    """A ``dict`` of split name -> :class:`~atdata.Dataset`, as :func:`load_dataset` returns.

    With exactly one split, the ``Dataset`` methods and properties that ``dict`` lacks
    (``ordered``, ``shuffled``, ``head``, ``list_shards``, ...) are served by that split; with
    more, asking one raises :class:`~atdata.AmbiguousSplitError` (an ``AttributeError``) that
    names the splits. ``as_type`` always maps every split.

    Args:
        splits: Split name -> dataset.
        sample_type: The sample type of the splits (default: the first split's).
        streaming: Whether it was loaded with ``streaming=True`` (atdata datasets always stream
            their shards; this records the intent).

    Examples:
        >>> DatasetDict()
        DatasetDict({})
        >>> DatasetDict(streaming=True).streaming
        True
    """

    def __init__(
        self,
        splits: Mapping[str, Dataset[T]] | None = None,
        sample_type: type[T] | None = None,
        streaming: bool = False,
    ) -> None:
        super().__init__(splits or {})
        self._sample_type = sample_type
        self.streaming = streaming

    @property
    def sample_type(self) -> type[T] | None:
        """The sample type of the splits (``None`` when there are none)."""
        if self._sample_type is not None:
            return self._sample_type
        first = next(iter(self.values()), None)
        return first.sample_type if first is not None else None

    @property
    def num_shards(self) -> dict[str, int]:
        """Split name -> how many shards it has."""
        return {name: len(ds.list_shards()) for name, ds in self.items()}

    def as_type(self, view: type[V]) -> DatasetDict[V]:
        """Every split viewed as ``view`` (see :meth:`Dataset.as_type`)."""
        return DatasetDict(
            {k: v.as_type(view) for k, v in self.items()}, view, streaming=self.streaming
        )

    @property
    def splits(self) -> list[str]:
        """The split names, in order."""
        return list(self)

    def __getattr__(self, name: str) -> Any:
        # Reached only for names neither DatasetDict nor dict has: a Dataset method or property
        # is served by the one split, as upstream's docs show (``single.ordered(batch_size=32)``).
        if name.startswith("_") or not hasattr(Dataset, name):
            raise AttributeError(f"'DatasetDict' object has no attribute {name!r}")
        if len(self) == 1:
            return getattr(next(iter(self.values())), name)
        if not self:
            raise AmbiguousSplitError(f"DatasetDict.{name}: this DatasetDict holds no split")
        first = next(iter(self))
        raise AmbiguousSplitError(
            f"DatasetDict.{name}: this DatasetDict holds {len(self)} splits "
            f"({', '.join(map(repr, self))}); pick one first, e.g. ds_dict[{first!r}].{name}"
        )

    def __repr__(self) -> str:
        if not self:
            return "DatasetDict({})"
        lines = []
        for name, ds in self.items():
            tn = getattr(ds.sample_type, "__name__", "?")
            n = len(ds.list_shards())
            lines.append(f"    {name}: Dataset[{tn}] ({n} shard{'s' if n != 1 else ''}: {ds.url})")
        return "DatasetDict({\n" + ",\n".join(lines) + "\n})"


def _split_of(name: str) -> str | None:
    """The canonical split named in a file or directory name, if any.

    Examples:
        >>> [_split_of(n) for n in ["train-000.tar", "mnist-val-1.tar", "valid", "data-0.tar"]]
        ['train', 'validation', 'validation', None]
    """
    base = os.path.basename(name.rstrip("/"))
    m = _SPLIT_RE.search(base)
    return _WORD_TO_SPLIT[m.group(1).lower()] if m else None


def _ordered(splits: dict[str, list[str]]) -> dict[str, list[str]]:
    known = [s for s in _SPLIT_ORDER if s in splits]
    return {k: splits[k] for k in [*known, *sorted(set(splits) - set(known))]}


def _tars_in(directory: str) -> list[str]:
    return sorted(_glob.glob(os.path.join(_glob.escape(directory), "*.tar")))


def infer_splits(directory: str | os.PathLike[str]) -> dict[str, list[str]]:
    """Split name -> shard paths for a local directory.

    Sub-directories named after splits win (``train/``, ``test/``, also any sub-directory holding
    shards); otherwise the split names in file names group the shards (files naming no split are
    left out when others do); a directory without split names is one ``train`` split.

    Raises:
        DataNotFoundError: (a ``FileNotFoundError``) When the directory holds no ``.tar`` shards.

    Examples:
        >>> import os, tempfile
        >>> d = tempfile.mkdtemp()
        >>> for n in ["a-train-0.tar", "a-train-1.tar", "a-valid-0.tar"]:
        ...     open(os.path.join(d, n), "wb").close()
        >>> {k: [os.path.basename(p) for p in v] for k, v in infer_splits(d).items()}
        {'train': ['a-train-0.tar', 'a-train-1.tar'], 'validation': ['a-valid-0.tar']}
    """
    d = os.fspath(directory)
    subdirs: dict[str, list[str]] = {}
    for entry in sorted(os.scandir(d), key=lambda e: e.name):
        if entry.is_dir() and not entry.name.startswith("."):
            shards = _tars_in(entry.path)
            if shards:
                split = _split_of(entry.name) or entry.name
                subdirs.setdefault(split, []).extend(shards)
    if subdirs:
        return _ordered(subdirs)
    files = _tars_in(d)
    if not files:
        raise DataNotFoundError(
            f"directory {d!r} holds no .tar shards (nor split sub-directories with any)"
        )
    by_split: dict[str, list[str]] = {}
    for f in files:
        named = _split_of(f)
        if named is not None:
            by_split.setdefault(named, []).append(f)
    if not by_split:
        return {"train": files}
    return _ordered(by_split)


def _patterns(value: str | os.PathLike[str] | Sequence[Any]) -> list[str]:
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)]
    return [os.fspath(v) for v in value]


def _resolve_data_files(base: str | None, data_files: Any) -> dict[str, list[str]]:
    if isinstance(data_files, Mapping):
        spec = {str(k): _patterns(v) for k, v in data_files.items()}
    else:
        spec = {"train": _patterns(data_files)}
    out: dict[str, list[str]] = {}
    for split, pats in spec.items():
        if not pats:
            raise ConfigError(f"data_files for split {split!r} is empty")
        full = [
            p if base is None or is_remote(p) or os.path.isabs(p) else os.path.join(base, p)
            for p in pats
        ]
        out[split] = expand_urls(full)
    return out


def _resolve(path: str, data_files: Any) -> dict[str, list[str]]:
    local = path[7:] if path.startswith("file://") else path
    is_dir = not is_remote(path) and os.path.isdir(os.path.expanduser(local))
    if data_files is not None:
        if is_dir:
            return _resolve_data_files(os.path.expanduser(local), data_files)
        if path and not is_remote(path) and not os.path.exists(os.path.expanduser(local)):
            raise DataNotFoundError(
                f"directory not found: {path!r} (data_files are relative to it)"
            )
        return _resolve_data_files(None, data_files)
    if is_dir:
        return infer_splits(os.path.expanduser(local))
    shards = expand_urls(path)
    if not any(is_remote(x) or os.path.exists(x) for x in shards):
        raise DataNotFoundError(f"no data files found at {path!r}")
    return {"train": shards}


def _load_named(
    path: str,
    sample_type: type | None,
    split: str | None,
    atmosphere: Any = None,
    *,
    index: Any = None,
    streaming: bool = False,
) -> Any:
    if importlib.util.find_spec("atdata._named") is None:
        raise AtdataError(
            f"cannot load {path!r}: named datasets ('@local/name', '@handle/name') need the index "
            "and atmosphere support, which this installation does not have"
        )
    mod = importlib.import_module("atdata._named")
    out = mod.load_named(
        path, sample_type=sample_type, split=split, atmosphere=atmosphere, index=index
    )
    if isinstance(out, DatasetDict):
        out.streaming = streaming
    return out


_DataFiles = str | Sequence[str] | Mapping[str, str | Sequence[str]] | None


@overload
def load_dataset(
    path: str | os.PathLike[str],
    sample_type: type[T],
    split: str,
    data_files: _DataFiles = None,
    *,
    streaming: bool = False,
    index: Index | None = None,
    on_error: str = "raise",
    atmosphere: Atmosphere | None = None,
) -> Dataset[T]: ...
@overload
def load_dataset(
    path: str | os.PathLike[str],
    sample_type: type[T],
    split: None = None,
    data_files: _DataFiles = None,
    *,
    streaming: bool = False,
    index: Index | None = None,
    on_error: str = "raise",
    atmosphere: Atmosphere | None = None,
) -> DatasetDict[T]: ...
@overload
def load_dataset(
    path: str | os.PathLike[str],
    sample_type: None,
    split: str,
    data_files: _DataFiles = None,
    *,
    streaming: bool = False,
    index: Index | None = None,
    on_error: str = "raise",
    atmosphere: Atmosphere | None = None,
) -> Dataset[DictSample]: ...
@overload
def load_dataset(
    path: str | os.PathLike[str],
    sample_type: None = None,
    *,
    split: str,
    data_files: _DataFiles = None,
    streaming: bool = False,
    index: Index | None = None,
    on_error: str = "raise",
    atmosphere: Atmosphere | None = None,
) -> Dataset[DictSample]: ...
@overload
def load_dataset(
    path: str | os.PathLike[str],
    sample_type: None = None,
    split: None = None,
    data_files: _DataFiles = None,
    *,
    streaming: bool = False,
    index: Index | None = None,
    on_error: str = "raise",
    atmosphere: Atmosphere | None = None,
) -> DatasetDict[DictSample]: ...


def load_dataset(
    path: str | os.PathLike[str],
    sample_type: type | None = None,
    split: str | None = None,
    data_files: _DataFiles = None,
    *,
    streaming: bool = False,
    index: Index | None = None,
    on_error: str = "raise",
    atmosphere: Atmosphere | None = None,
) -> Dataset[Any] | DatasetDict[Any]:
    """Open a dataset by path; a :class:`DatasetDict` of splits, or one split's ``Dataset``.

    Args:
        path: A shard, a glob, a brace pattern, a directory (splits inferred, see
            :func:`infer_splits`), an ``http(s)://`` URL, or a name ``@local/name`` /
            ``@handle/name`` (resolved through the index and the atmosphere).
        sample_type: The ``@packable`` type to decode into (default :class:`~atdata.DictSample`).
        split: Return only this split as a :class:`~atdata.Dataset`.
        data_files: Explicit shards: a pattern or a list of them (one ``train`` split), or a
            dict ``{split: pattern(s)}``. Relative patterns are relative to ``path`` when it is a
            directory.
        streaming: Recorded on the :class:`DatasetDict` (``.streaming``); atdata datasets stream
            their shards either way.
        index: The :class:`~atdata.Index` that resolves ``@local/name`` (default: the default
            index).
        on_error: ``"raise"`` or ``"skip"`` (see :class:`~atdata.Dataset`).
        atmosphere: A logged-in :class:`~atdata.atmosphere.Atmosphere` for ``@handle/name``: its
            PDS resolves names and DIDs first.

    Returns:
        A :class:`DatasetDict` without ``split``; a :class:`~atdata.Dataset` with it.

    Raises:
        SplitNotFoundError: (a ``ValueError``) When ``split`` is not among the splits found (the
            message lists them).
        DataNotFoundError: (a ``FileNotFoundError``) When no data files match ``path``.
        NotFoundError: (a ``KeyError``) When a ``@local`` name is not in the index.

    Examples:
        >>> import os, tempfile, atdata
        >>> d = tempfile.mkdtemp()
        >>> _ = atdata.write_samples([{"x": 1}], os.path.join(d, "only.tar"))
        >>> atdata.load_dataset(os.path.join(d, "*.tar"), split="train").head(1)[0].x
        1
        >>> atdata.load_dataset(d, split="test")
        Traceback (most recent call last):
        ...
        atdata._errors.SplitNotFoundError: split 'test' not found in ...; available splits: train
    """
    path_s = os.fspath(path)
    if path_s.startswith(("@", "at://")):
        return _load_named(path_s, sample_type, split, atmosphere, index=index, streaming=streaming)
    splits = _resolve(path_s, data_files)
    if split is not None:
        if split not in splits:
            raise SplitNotFoundError(
                f"split {split!r} not found in {path_s!r}; available splits: {', '.join(splits) or 'none'}"
            )
        return Dataset(splits[split], sample_type=sample_type, on_error=on_error)
    return DatasetDict(
        {
            name: Dataset(shards, sample_type=sample_type, on_error=on_error)
            for name, shards in splits.items()
        },
        sample_type,
        streaming=streaming,
    )
