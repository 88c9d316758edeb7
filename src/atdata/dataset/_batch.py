"""Batches of samples: :class:`SampleBatch` stacks array fields and lists the others.

Examples:
    >>> import numpy as np, atdata
    >>> @atdata.packable
    ... class V:
    ...     x: atdata.NDArray
    ...     name: str
    >>> b = SampleBatch([V(x=np.zeros(3), name="a"), V(x=np.ones(3), name="b")])
    >>> b.x.shape, b.name, len(b)
    ((2, 3), ['a', 'b'], 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from atdata._errors import DecodeError, UnknownFieldError
from atdata._wire.decode import missing_field

__all__ = ["SampleBatch"]

_NONE = object()
_PLAIN = {"str": {str}, "int": {int}, "float": {float}, "bool": {bool}, "bytes": {bytes}}

T = TypeVar("T")


_BYTES_ONLY = {bytes}


class SampleBatch(Generic[T]):
    """A batch of samples of one type.

    Attribute access on a field gives the whole column: ``NDArray`` fields as one stacked array
    with a leading batch dimension, other fields as lists. ``batch.samples`` gives the samples
    themselves and ``batch.keys`` their keys.
    """

    def __init__(
        self, samples: Sequence[T] | None = None, *, sample_type: type | None = None
    ) -> None:
        self._samples: list[T] | None = list(samples) if samples is not None else None
        self._columns: dict[str, Any] = {}
        self._keys: list[str | None] | None = None
        if sample_type is None and self._samples:
            sample_type = type(self._samples[0])
        self.sample_type = sample_type
        self._raw: list[dict] | None = None

    @classmethod
    def _from_raw(
        cls, sample_type: type, raws: list[dict], keys: list[str], alloc: Any = None
    ) -> SampleBatch:
        """Build a batch straight from raw payload maps, decoding arrays into stacked buffers
        (made by ``alloc(shape, dtype)``, default ``np.empty``)."""
        import numpy as np

        empty = alloc if alloc is not None else np.empty

        from atdata._wire.arrays import parse_header

        b = cls(None, sample_type=sample_type)
        b._raw = raws
        b._keys = list(keys)
        n = len(raws)
        for spec in sample_type.atdata_fields():  # type: ignore[attr-defined]
            name = spec.name
            if spec.kind == "ndarray":
                vals: list[Any] = [r.get(name) for r in raws]
                if set(map(type, vals)) != _BYTES_ONLY:  # nil, missing (default?), not bytes
                    col = _column(sample_type, spec, raws, keys)
                    arrays = all(type(v) is np.ndarray for v in col)
                    b._columns[name] = _stack(name, col, keys) if arrays else col
                    continue
                first = vals[0]
                if first[:6] == b"\x93NUMPY":
                    arrs = [
                        spec.decode(v, f" in sample {k!r}") for v, k in zip(vals, keys, strict=True)
                    ]
                    b._columns[name] = _stack(name, arrs, keys)
                    continue
                dt, shape, off = parse_header(first, f" in field {name!r}")
                out = empty((n, *shape), dt)
                flat = out.reshape(n, -1) if out.size else out
                nbytes = dt.itemsize * (out[0].size if n else 0)
                prefix = first[:off]
                total = off + nbytes
                if set(map(len, vals)) == {total} and all([v.startswith(prefix) for v in vals]):
                    if nbytes:  # each payload's element bytes copied once, into the batch buffer
                        # a uint8 view: memoryview refuses datetime64/timedelta64 buffers
                        dest = memoryview(out.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
                        at = 0
                        for v in vals:
                            dest[at : at + nbytes] = memoryview(v)[off:]
                            at += nbytes
                    b._columns[name] = out
                    continue
                for i, v in enumerate(vals):
                    if len(v) != off + nbytes or v[:off] != first[:off]:
                        d2, s2, _ = parse_header(v, f" in field {name!r} of sample {keys[i]!r}")
                        raise DecodeError(
                            f"ragged field {name!r} in batch: sample {keys[0]!r} has {dt.str}{shape}, "
                            f"sample {keys[i]!r} has {d2.str}{s2}; use batch_size=None or pad the arrays"
                        )
                    if nbytes:
                        flat[i] = np.frombuffer(v, dtype=dt, offset=off)
                b._columns[name] = out
            else:
                b._columns[name] = _column(sample_type, spec, raws, keys)
        return b

    def _for_transport(self, convert: Any) -> SampleBatch:
        """A copy with ``convert`` applied to every column and without the raw payloads (to
        send between processes; its samples are rebuilt from the columns if asked for)."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        if self._raw is not None and self._samples is None:  # _from_raw made every column
            new._raw = None
        new._columns = {k: convert(v) for k, v in self._columns.items()}
        return new

    @property
    def samples(self) -> list[T]:
        """The samples of this batch (decoded on first access for batches built from raw data)."""
        if self._samples is None and self._raw is None and self.sample_type is not None:
            cols = self._columns  # a batch that crossed processes: rebuild from the columns
            self._samples = []
            for i, key in enumerate(self._keys or ()):
                s = self.sample_type(**{k: v[i] for k, v in cols.items()})
                s.__key__ = key
                self._samples.append(s)
        if self._samples is None:
            assert self._raw is not None and self.sample_type is not None
            self._samples = []
            for raw, key in zip(self._raw, self._keys or [], strict=False):
                s = self.sample_type._from_wire(raw)  # type: ignore[attr-defined]
                s.__key__ = key
                self._samples.append(s)
        return self._samples

    @property
    def keys(self) -> list[str | None]:
        """Sample keys, in batch order."""
        if self._keys is None:
            self._keys = [getattr(s, "__key__", None) for s in self.samples]
        return self._keys

    def __len__(self) -> int:
        if self._samples is None:
            if self._raw is not None:
                return len(self._raw)
            if self._keys is not None:
                return len(self._keys)
        return len(self.samples)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        cols = self.__dict__.get("_columns")
        if cols is not None and name in cols:
            return cols[name]
        samples = self.samples
        if not samples:
            return []
        first: Any = samples[0]
        if not hasattr(first, name) and not (hasattr(first, "keys") and name in first):
            raise UnknownFieldError(
                f"samples of this batch (first key: {self.keys[0]!r}) have no field {name!r}"
            )
        vals = [getattr(s, name) for s in samples]
        spec = _spec(self.sample_type, name)
        if spec is not None and spec.kind == "ndarray" and all(v is not None for v in vals):
            col: Any = _stack(name, vals, self.keys)
        elif spec is None and vals and all(type(v).__name__ == "ndarray" for v in vals):
            col = _stack(name, vals, self.keys)
        else:
            col = vals
        self._columns[name] = col
        return col

    def to_dict(self) -> dict[str, Any]:
        """Every column, by field name."""
        if self.sample_type is not None and hasattr(self.sample_type, "atdata_fields"):
            return {s.name: getattr(self, s.name) for s in self.sample_type.atdata_fields()}
        first: Any = self.samples[0] if self.samples else None
        names = list(first.keys()) if first is not None else []
        return {n: getattr(self, n) for n in names}

    def __repr__(self) -> str:
        tn = self.sample_type.__name__ if self.sample_type else "?"
        return f"SampleBatch[{tn}](size={len(self)})"


def _column(sample_type: type, spec: Any, raws: list[dict], keys: list[str]) -> list[Any]:
    """The column of a field that is not an array, from the payload maps of a batch."""
    name = spec.name
    if spec.kind in _PLAIN:  # fast path: every value already has the wire type
        col = [r.get(name, _NONE) for r in raws]
        if set(map(type, col)) == _PLAIN[spec.kind]:
            return col
    col = []
    for r, k in zip(raws, keys, strict=True):
        if name in r:
            col.append(spec.decode(r[name], f" in sample {k!r}"))
        elif spec.optional or spec.has_default:
            col.append(spec.default_value())
        else:
            raise missing_field(sample_type, spec, f" in sample {k!r}")
    return col


def _spec(sample_type: type | None, name: str) -> Any:
    if sample_type is None or not hasattr(sample_type, "atdata_fields"):
        return None
    for s in sample_type.atdata_fields():
        if s.name == name:
            return s
    return None


def _stack(name: str, arrays: list[Any], keys: list[Any]) -> Any:
    import numpy as np

    shape0 = arrays[0].shape
    for i, a in enumerate(arrays):
        if a.shape != shape0:
            raise DecodeError(
                f"ragged field {name!r} in batch: sample {keys[0]!r} has shape {shape0}, "
                f"sample {keys[i]!r} has shape {a.shape}; use batch_size=None or pad the arrays"
            )
    return np.stack(arrays)
