"""Sample types: :class:`PackableSample`, the ``@packable`` decorator and :class:`DictSample`.

A sample serialises to a msgpack map of field name to value; arrays travel as msgpack ``bin`` in
the compact ndarray-bytes format (see :mod:`atdata._wire.arrays` and ``docs/wire-format.md``).

Examples:
    >>> import numpy as np
    >>> import atdata
    >>> @atdata.packable
    ... class Point:
    ...     xy: atdata.NDArray
    ...     label: str
    >>> p = Point(xy=np.array([1.0, 2.0]), label="a")
    >>> q = Point.from_bytes(p.packed)
    >>> q.label, q.xy.tolist()
    ('a', [1.0, 2.0])
    >>> p == q
    True
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import (
    Any,
    ClassVar,
    Protocol,
    Self,
    TypeVar,
    dataclass_transform,
    overload,
    runtime_checkable,
)

from atdata._errors import DecodeError, SchemaError, UnknownFieldError
from atdata._wire.fields import FieldSpec, check_map_keys, fields_of
from atdata._wire.payload import not_a_map, pack_wire, unpack_failure, unpack_payload

__all__ = [
    "DictSample",
    "Packable",
    "PackableSample",
    "not_a_map",
    "pack_wire",
    "packable",
    "set_key",
    "unpack_failure",
    "unpack_payload",
]

T = TypeVar("T")


def set_key(obj: Any, key: str) -> None:
    """Record ``key`` as ``obj.__key__`` (silently skipped for objects that take no attributes)."""
    try:
        obj.__dict__["__key__"] = key
    except AttributeError:
        with contextlib.suppress(AttributeError, TypeError):
            object.__setattr__(obj, "__key__", key)


def _values_equal(a: Any, b: Any) -> bool:
    if hasattr(a, "__array__") or hasattr(b, "__array__"):
        import numpy as np

        try:
            return bool(
                np.asarray(a).shape == np.asarray(b).shape
                and np.asarray(a).dtype == np.asarray(b).dtype
                and np.array_equal(a, b, equal_nan=np.asarray(a).dtype.kind in "fc")
            )
        except TypeError:
            return False
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_values_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_values_equal(a[k], b[k]) for k in a)
    if type(a) is float and type(b) is float and a != a:  # NaN equals NaN, as in arrays
        return b != b
    return a == b


class _WireSample:
    """What typed and schema-free samples share: their msgpack payload and WebDataset form."""

    __slots__ = ()
    __key__: str | None

    def _to_wire(self) -> dict[str, Any]:
        """The field map the msgpack payload holds (each kind of sample defines it)."""
        raise NotImplementedError

    @classmethod
    def _from_wire(cls, raw: dict, where: str = "") -> Self:
        """A sample of this type from a payload's field map (each kind of sample defines it)."""
        raise NotImplementedError

    @property
    def packed(self) -> bytes:
        """The msgpack payload of this sample (arrays in the compact encoding).

        Raises:
            SchemaError: When a field's value cannot be stored (the message names it).
        """
        owner = "" if isinstance(self, DictSample) else f"{type(self).__name__}."
        return pack_wire(self._to_wire(), owner)

    @property
    def as_wds(self) -> dict[str, Any]:
        """A WebDataset dict: ``{"__key__": key, "msgpack": payload}`` (a fresh uuid key if unset)."""
        key = self.__key__ if self.__key__ is not None else str(uuid.uuid1())
        return {"__key__": key, "msgpack": self.packed}

    @classmethod
    def from_bytes(cls, bs: bytes | memoryview) -> Self:
        """Decode a msgpack payload into this type."""
        return cls._from_wire(unpack_payload(bs))

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        """Build a sample from an unpacked msgpack payload (its field map); an array field may
        hold its encoded bytes or, as with upstream, a numpy array already.

        Raises:
            SchemaError: When a field is missing or has the wrong type. DecodeError: For a bad
                array payload.
        """
        raw = dict(data)
        for k, v in raw.items():
            if type(v).__name__ == "ndarray" and type(v).__module__ == "numpy":
                from atdata._wire.arrays import encode_array

                raw[k] = encode_array(v)
        return cls._from_wire(raw)


@runtime_checkable
class Packable(Protocol):
    """What a sample type offers: ``@packable`` classes, ``PackableSample`` subclasses and
    :class:`DictSample` all satisfy it (``isinstance`` works on instances).

    Examples:
        >>> import atdata
        >>> @atdata.packable
        ... class P:
        ...     x: int
        >>> isinstance(P(x=1), Packable), P.from_data({"x": 2}), isinstance(3, Packable)
        (True, P(x=2), False)
    """

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Packable: ...

    @classmethod
    def from_bytes(cls, bs: bytes | memoryview) -> Packable: ...

    @property
    def packed(self) -> bytes: ...

    @property
    def as_wds(self) -> dict[str, Any]: ...


class PackableSample(_WireSample):
    """Base class of typed samples.

    Subclass it with ``@dataclass`` or decorate a plain annotated class with
    :func:`packable`. ``sample.__key__`` holds the key a sample was read under (``None`` for new
    samples).
    """

    __atdata_sample__: ClassVar[bool] = True
    __key__: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # `@dataclass` (eq=True) only adds __eq__ when the class body lacks one: give explicit
        # subclasses the array-aware comparison instead of a tuple compare that fails on arrays.
        if "__eq__" not in cls.__dict__:
            cls.__eq__ = PackableSample.__eq__  # type: ignore[method-assign]
            cls.__hash__ = None  # type: ignore[assignment]

    @classmethod
    def atdata_fields(cls) -> tuple[FieldSpec, ...]:
        """The field specs of this type, in declaration order."""
        return fields_of(cls)

    def __post_init__(self) -> None:
        for spec in fields_of(type(self)):
            if spec.kind == "ndarray":
                v = self.__dict__.get(spec.name)
                if v is None or type(v).__name__ == "ndarray":
                    continue
                from atdata._wire.arrays import decode_array

                if isinstance(v, (bytes, bytearray, memoryview)):
                    self.__dict__[spec.name] = decode_array(v, where=f" in field {spec.name!r}")
                else:
                    import numpy as np

                    arr = np.asarray(v)
                    if arr.dtype.hasobject:
                        raise SchemaError(
                            f"field {type(self).__name__}.{spec.name!r}: cannot make a numeric array "
                            f"from {type(v).__name__}"
                        )
                    self.__dict__[spec.name] = arr

    # -- wire ---------------------------------------------------------------------------------
    def _to_wire(self) -> dict[str, Any]:
        d = self.__dict__
        out = {}
        for spec in fields_of(type(self)):
            out[spec.name] = spec.encode(d[spec.name])
        return out

    @classmethod
    def _from_wire(cls: type[T], raw: dict, where: str = "") -> T:
        from atdata._wire.decode import decoder_for

        return decoder_for(cls)(raw, where, None)

    @classmethod
    def _from_wire_slow(cls: type[T], raw: dict, where: str = "") -> T:
        """The reference decoder (the generated one in ``_wire.decode`` must agree with it)."""
        vals = {}
        for spec in fields_of(cls):
            name = spec.name
            if name in raw:
                vals[name] = spec.decode(raw[name], where)
            elif spec.optional or spec.has_default:
                vals[name] = spec.default_value()
            else:
                raise SchemaError(
                    f"payload is missing required field {cls.__name__}.{name!r}{where}; "
                    f"declare it `{name}: {spec.type_name} | None` to accept data written without it"
                )
        if _needs_init(cls):
            return cls(**vals)
        obj = cls.__new__(cls)
        obj.__dict__.update(vals)
        return obj

    @classmethod
    def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
        """Build a sample from a mapping of raw wire values (arrays may be bytes or arrays)."""
        vals = {}
        for spec in fields_of(cls):
            if spec.name in data:
                v = data[spec.name]
                if (
                    spec.kind == "ndarray"
                    and v is not None
                    and not isinstance(v, (bytes, bytearray))
                ):
                    vals[spec.name] = v
                else:
                    vals[spec.name] = spec.decode(v, "")
        return _finish(cls, vals)

    def to_dict(self) -> dict[str, Any]:
        """The field values as a dict (arrays stay arrays, nested samples become dicts)."""
        out = {}
        for spec in fields_of(type(self)):
            v = self.__dict__[spec.name]
            out[spec.name] = v.to_dict() if isinstance(v, PackableSample) else v
        return out

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(
            _values_equal(self.__dict__[s.name], other.__dict__[s.name])
            for s in fields_of(type(self))
        )

    __hash__ = None  # type: ignore[assignment]


def _needs_init(cls: type) -> bool:
    """Whether decoding must call ``__init__`` (the type defines its own ``__post_init__``)."""
    flag = cls.__dict__.get("__atdata_needs_init__")
    if flag is None:
        flag = any(
            "__post_init__" in k.__dict__
            or ("__atdata_custom_init__" in k.__dict__ and k.__dict__["__atdata_custom_init__"])
            for k in cls.__mro__
            if k is not PackableSample and k is not object
        )
        cls.__atdata_needs_init__ = flag  # type: ignore[attr-defined]
    return flag


def _finish(cls: type[T], vals: dict) -> T:
    missing = [
        s.name for s in fields_of(cls) if s.name not in vals and not (s.optional or s.has_default)
    ]
    if missing:
        raise SchemaError(f"{cls.__name__} is missing required field(s) {missing}")
    for s in fields_of(cls):
        if s.name not in vals:
            vals[s.name] = s.default_value()
    return cls(**vals)


@overload
def packable(cls: type[T], /) -> type[T]: ...
@overload
def packable(cls: None = None, /) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(eq_default=False)
def packable(cls: type | None = None, /) -> Any:
    """Make an annotated class a packable sample type (a dataclass subclassing PackableSample).

    Field types: ``str``, ``int``, ``float``, ``bool``, ``bytes``, ``NDArray``, ``list[...]``,
    ``dict[str, ...]``, other ``@packable`` types (nesting), and ``X | None`` of each.

    Raises:
        SchemaError: At decoration time, for a field type that cannot be stored.

    Examples:
        >>> import atdata
        >>> @atdata.packable
        ... class Caption:
        ...     text: str
        ...     lang: str | None = None
        >>> Caption(text="hi").packed
        b'\\x82\\xa4text\\xa2hi\\xa4lang\\xc0'
    """

    import sys

    caller = sys._getframe(1)
    frame_ns = (caller.f_globals, caller.f_locals)

    def wrap(c: type) -> type:
        ns = {k: v for k, v in c.__dict__.items() if k not in ("__dict__", "__weakref__")}
        bases = tuple(b for b in c.__bases__ if b is not object)
        if not any(issubclass(b, PackableSample) for b in bases):
            bases = (*bases, PackableSample)
        ns["__atdata_custom_init__"] = "__post_init__" in c.__dict__ or "__init__" in c.__dict__
        new: Any = type(c)(c.__name__, bases, ns)
        new.__qualname__ = c.__qualname__
        new.__module__ = c.__module__
        new.__atdata_ns__ = frame_ns  # the defining scope, to resolve string annotations
        new = dataclasses.dataclass(eq=False)(new)
        new.__eq__ = PackableSample.__eq__
        new.__hash__ = None
        try:
            fields_of(new)
        except SchemaError as exc:
            if "cannot resolve the annotations" not in str(exc):
                raise
        return new

    return wrap if cls is None else wrap(cls)


class DictSample(_WireSample):
    """A schema-free sample: the raw field map of a payload.

    Array fields stay as their encoded bytes (without a schema bytes and arrays cannot be told
    apart); decode one with :meth:`array` or :func:`atdata.decode_array`, or convert the whole
    sample with :meth:`as_type`.

    A ``"__key__"`` entry of the map given (WebDataset's name for it) is the sample's key, not
    a field.

    Examples:
        >>> s = DictSample({"label": "cat", "n": 3})
        >>> s["label"], s.n, sorted(s.keys()), s.get("missing", 0)
        ('cat', 3, ['label', 'n'], 0)
        >>> DictSample({"__key__": "img-1", "n": 3}).__key__
        'img-1'
    """

    __slots__ = ("__key__", "_data")
    __atdata_sample__: ClassVar[bool] = False

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        /,
        _data: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> None:
        d = dict(data) if data is not None else {}
        if _data is not None:  # the documented DictSample(_data={...}) spelling
            d.update(_data)
        d.update(fields)
        object.__setattr__(self, "__key__", d.pop("__key__", None))
        object.__setattr__(self, "_data", d)

    @classmethod
    def _from_wire(cls, raw: dict, where: str = "") -> DictSample:
        obj = cls.__new__(cls)
        object.__setattr__(obj, "_data", raw)
        object.__setattr__(obj, "__key__", None)
        return obj

    def _to_wire(self) -> dict[str, Any]:
        from atdata._wire.arrays import encode_array

        out = {}
        for k, v in self._data.items():
            if type(k) is not str:
                raise SchemaError(f"field {k!r:.40}: field names are str, not {type(k).__name__}")
            if type(v).__name__ == "ndarray":
                try:
                    out[k] = encode_array(v)
                except DecodeError as exc:
                    raise SchemaError(f"field {k!r}: {exc}") from None
            else:
                check_map_keys(v, f"field {k!r}")
                out[k] = v
        return out

    def __getitem__(self, name: str) -> Any:
        try:
            return self._data[name]
        except KeyError:
            raise self._unknown(name) from None

    def _unknown(self, name: object) -> UnknownFieldError:
        key = "" if self.__key__ is None else f" (sample {self.__key__!r})"
        return UnknownFieldError(
            f"DictSample has no field {name!r:.60}{key}; fields: {sorted(map(str, self._data))}"
        )

    def __getstate__(self) -> tuple[dict, str | None]:  # DataLoader workers send samples back
        return self._data, self.__key__

    def __setstate__(self, state: tuple[dict, str | None]) -> None:
        object.__setattr__(self, "_data", state[0])
        object.__setattr__(self, "__key__", state[1])

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_data":
            raise AttributeError(name)
        try:
            return self._data[name]
        except KeyError:
            raise self._unknown(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "__key__":
            object.__setattr__(self, name, value)
        else:
            self._data[name] = value

    def __contains__(self, name: object) -> bool:
        return name in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def keys(self):
        """Field names."""
        return self._data.keys()

    def values(self):
        """Raw field values."""
        return self._data.values()

    def items(self):
        """``(name, raw value)`` pairs."""
        return self._data.items()

    def get(self, key: str, default: Any = None) -> Any:
        """A field's raw value, or ``default``."""
        return self._data.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        """A shallow copy of the raw field map."""
        return dict(self._data)

    def array(self, name: str, *, copy: bool = True) -> Any:
        """Decode the array stored in field ``name``.

        Raises:
            DecodeError: When the field does not hold array bytes.
        """
        from atdata._wire.arrays import decode_array

        v = self._data[name]
        if type(v).__name__ == "ndarray":
            return v
        return decode_array(v, copy=copy, where=f" in field {name!r}")

    def as_type(self, sample_type: type[T]) -> T:
        """Convert to a typed sample (arrays decoded, fields checked)."""
        if not getattr(sample_type, "__atdata_sample__", False):
            raise SchemaError(f"{sample_type!r} is not a @packable sample type")
        try:
            out = sample_type._from_wire(self._to_wire())  # type: ignore[attr-defined]
        except DecodeError:
            raise
        out.__key__ = self.__key__
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DictSample):
            return NotImplemented
        return _values_equal(self._data, other._data)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = []
        for k, v in self._data.items():
            r = f"<{len(v)} bytes>" if isinstance(v, bytes) else repr(v)
            parts.append(f"{k}={r:.60}")
        return f"DictSample({', '.join(parts)})"
