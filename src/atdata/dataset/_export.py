"""Description, export and query delegations of :class:`~atdata.Dataset`.

Examples:
    >>> import os, tempfile, atdata
    >>> d = tempfile.mkdtemp()
    >>> ds = atdata.write_samples([{"x": i} for i in range(3)], os.path.join(d, "a.tar"))
    >>> ds.describe()["samples"], ds.to_dict()["x"], [r["ok"] for r in ds.verify()]
    (3, [0, 1, 2], [True])
"""

from __future__ import annotations

import itertools
import os
from typing import Any, Generic, TypeVar

from atdata._errors import AtdataError, ConfigError
from atdata._shards.sources import is_remote

__all__ = ["ExportMixin"]

T = TypeVar("T")


class ExportMixin(Generic[T]):
    """Queries, description and export of :class:`~atdata.Dataset` (not used on its own)."""

    # -- manifest queries (see _query.py) -----------------------------------------------------
    def query(self, where: Any = None, *, limit: int | None = None) -> Any:
        """Find samples through the shards' manifests: a lambda over the manifest DataFrame, a
        field expression (``ds.fields``) or a SQL ``WHERE`` string. Returns a
        :class:`~atdata.manifest._query.QueryResult` of :class:`~atdata.SampleLocation` s.

        Raises:
            ConfigError: When the shards have no manifests (the message says how to build them).
        """
        self._check_plain("query")
        return _executor(self).query(where, limit=limit)

    def _check_plain(self, what: str) -> None:
        """Queries see the stored samples: refuse silently ignoring filter/map/lens/select."""
        if self._ops or self._selection is not None:  # type: ignore[attr-defined]
            ops = [op for op, _ in self._ops] + (["select"] if self._selection is not None else [])  # type: ignore[attr-defined]
            raise ConfigError(
                f"ds.{what}() runs over the shards' manifests and would ignore this dataset's "
                f"{', '.join(ops)}; query the base dataset, then apply them to the results "
                "(e.g. [s for s in ds.query(...) if pred(s)])"
            )

    @property
    def fields(self) -> Any:
        """Queryable fields for typed query expressions: ``Q = ds.fields; Q.label == "dog"``."""
        from atdata.manifest._expr import FieldSet, query_fields

        if hasattr(self.sample_type, "atdata_fields"):
            return query_fields(self.sample_type)
        return FieldSet(_executor(self).fields(), "this dataset")

    def get_sample(self, loc: Any) -> T:
        """The sample at a :class:`~atdata.SampleLocation`, read by one ranged read."""
        from atdata.manifest._query import fetch_sample

        self._check_plain("get_sample")
        return fetch_sample(self.source, self.sample_type, loc)

    def to_torch(self, **kwargs: Any) -> Any:
        """This dataset as a ``torch.utils.data.IterableDataset`` split across DataLoader workers
        and distributed ranks, with ``set_epoch`` and mid-epoch ``state_dict`` resume.

        Keyword arguments: ``batch_size``, ``shuffle``, ``seed``, ``rank``/``world_size`` (default
        from ``torch.distributed``), ``policy`` (``"drop_last"`` or ``"pad"``), ``drop_last_batch``,
        ``transform``. See :class:`atdata.dataset._torch.TorchDataset`. Needs ``atdata[torch]``.

        Raises:
            ConfigError: When the configuration cannot give every rank the same number of samples.
        """
        from atdata._extras import require

        require("torch", "torch", "Dataset.to_torch")
        from atdata.dataset._torch import TorchDataset

        return TorchDataset(self, **kwargs)

    def head(self, n: int = 5) -> list[T]:
        """The first ``n`` samples."""
        return list(itertools.islice(self.ordered(), n))

    # -- description and export ---------------------------------------------------------------
    @property
    def schema(self) -> dict[str, str]:
        """Field name -> type, for typed datasets (empty for :class:`DictSample`)."""
        if hasattr(self.sample_type, "atdata_fields"):
            return {s.name: s.type_name for s in self.sample_type.atdata_fields()}
        return {}

    def describe(self) -> dict[str, Any]:
        """Shards, sample count, bytes and schema, without decoding samples."""
        shards = self.list_shards()
        size = 0
        for s in shards:
            info = self._infos.get(s)
            sz = (
                info.size
                if info is not None
                else getattr(self.source, "shard_size", lambda _s: None)(s)
            )
            size += sz or 0
        return {
            "sample_type": getattr(self.sample_type, "__name__", str(self.sample_type)),
            "shards": len(shards),
            "samples": self._base_len() if self._selection is None else len(self._selection),
            "bytes": size,
            "schema": self.schema,
        }

    def to_dict(self) -> dict[str, list[Any]]:
        """Columns: field name -> list of values, plus ``__key__``."""
        cols: dict[str, list[Any]] = {"__key__": []}
        for s in self.ordered():
            row = s.to_dict()
            cols["__key__"].append(getattr(s, "__key__", None))
            for k, v in row.items():
                cols.setdefault(k, []).append(v)
        return cols

    def to_pandas(self) -> Any:
        """A pandas DataFrame, one row per sample (arrays kept as objects). Needs ``atdata[query]``."""
        from atdata._extras import require

        pd = require("pandas", "query", "Dataset.to_pandas")
        return pd.DataFrame(self.to_dict())

    def to_parquet(self, path: str | os.PathLike[str]) -> str:
        """Write the dataset as one parquet file (arrays as nested lists). Needs ``atdata[query]``."""
        from atdata._extras import require

        pa = require("pyarrow", "query", "Dataset.to_parquet")
        pq = require("pyarrow.parquet", "query", "Dataset.to_parquet")
        cols = self.to_dict()
        for k, vals in cols.items():
            cols[k] = [v.tolist() if type(v).__name__ == "ndarray" else v for v in vals]
        path = os.fspath(path)
        pq.write_table(pa.table(cols), path)
        return path

    def verify(self) -> list[dict[str, Any]]:
        """Check every shard: recorded size and sha256 when known, and a full decode.

        Returns:
            One report per shard: ``{"shard", "samples", "ok", "error"}``.
        """
        import hashlib

        reports = []
        for shard in self.list_shards():
            rep: dict[str, Any] = {"shard": shard, "samples": 0, "ok": True, "error": ""}
            try:
                info = self._infos.get(shard)
                if info is not None and not is_remote(shard):
                    h = hashlib.sha256()
                    with open(shard, "rb") as f:
                        for block in iter(lambda f=f: f.read(1 << 20), b""):
                            h.update(block)
                    if os.path.getsize(shard) != info.size or h.hexdigest() != info.sha256:
                        raise AtdataError(f"checksum mismatch for shard {shard}")
                for _ in self._decoded(self._raw_stream([shard])):
                    rep["samples"] += 1
            except AtdataError as exc:
                rep["ok"], rep["error"] = False, str(exc)
            reports.append(rep)
        return reports


def _executor(ds: Any) -> Any:
    """The manifest query executor over ``ds``'s shards (cached on the dataset)."""
    from atdata.manifest._query import QueryExecutor

    ex = ds.__dict__.get("_query_executor")
    if ex is None or ex.sample_type is not ds.sample_type:
        ex = QueryExecutor(ds.list_shards(), source=ds.source, sample_type=ds.sample_type)
        ds.__dict__["_query_executor"] = ex
    return ex
