"""Field introspection: turn a sample class's annotations into encoders and decoders.

Each field of a sample type gets a :class:`FieldSpec` with a *kind* (``str``, ``int``, ``float``,
``bool``, ``bytes``, ``ndarray``, ``list``, ``dict``, ``sample``, ``any``), whether it may be
``None``, and compiled ``encode``/``decode`` callables that map Python values to msgpack-ready
values and back.

Examples:
    >>> from atdata._wire.fields import spec_for_annotation
    >>> s = spec_for_annotation("tags", list[str])
    >>> s.kind, s.item.kind, s.optional
    ('list', 'str', False)
    >>> spec_for_annotation("x", int | None).optional
    True
"""

from __future__ import annotations

import dataclasses
import inspect
import operator
import types
import typing
from collections.abc import Callable
from typing import Any

from atdata._errors import DecodeError, SchemaError

__all__ = ["FieldSpec", "check_map_keys", "fields_of", "spec_for_annotation"]

SCALAR_KINDS = ("str", "int", "float", "bool", "bytes")
_MISSING = dataclasses.MISSING


@dataclasses.dataclass(eq=False)
class FieldSpec:
    """How one field is typed, encoded and decoded.

    Attributes:
        name: Field name (the msgpack map key).
        kind: One of ``str int float bool bytes ndarray list dict sample any``.
        optional: ``None`` is a valid value (``X | None``); a missing field decodes to ``None``.
        item: Spec of list items (kind ``list``) or dict values (kind ``dict``).
        sample_type: The nested packable class (kind ``sample``).
        dtype: The numpy dtype named in ``NDArray[np.float32]``-style hints, if any.
        annotation: The original annotation.
        metadata: ``Annotated[...]`` extras (e.g. manifest field hints).
        has_default: Whether the dataclass declares a default.
    """

    name: str
    kind: str
    optional: bool = False
    item: FieldSpec | None = None
    sample_type: Any = None  # a @packable class (its _from_wire/_to_wire are generated)
    dtype: Any = None
    annotation: Any = None
    metadata: tuple = ()
    has_default: bool = False
    default: Any = None
    default_factory: Callable[[], Any] | None = None
    encode: Callable[[Any], Any] = dataclasses.field(default=None, repr=False)  # type: ignore[assignment]
    decode: Callable[[Any, str], Any] = dataclasses.field(default=None, repr=False)  # type: ignore[assignment]

    @property
    def type_name(self) -> str:
        """A short readable type, e.g. ``list[str] | None``."""
        if self.kind == "list":
            base = f"list[{self.item.type_name}]" if self.item else "list"
        elif self.kind == "dict":
            base = f"dict[str, {self.item.type_name}]" if self.item else "dict"
        elif self.kind == "sample":
            base = self.sample_type.__name__ if self.sample_type else "sample"
        elif self.kind == "ndarray":
            base = f"NDArray[{self.dtype}]" if self.dtype is not None else "NDArray"
        else:
            base = self.kind
        return f"{base} | None" if self.optional else base

    def default_value(self) -> Any:
        """The value a missing field decodes to (``None`` for optional fields)."""
        if self.default_factory is not None:
            return self.default_factory()
        return self.default


def _is_type_alias(tp: Any) -> bool:
    return type(tp).__name__ == "TypeAliasType"


def _unalias(tp: Any) -> Any:
    """Resolve PEP 695 ``type X = ...`` aliases (numpy >= 2.5 defines ``NDArray`` as one)."""
    for _ in range(8):
        if _is_type_alias(tp):
            tp = tp.__value__
            continue
        origin = typing.get_origin(tp)
        if origin is not None and _is_type_alias(origin):  # e.g. NDArray[np.float32]
            args = typing.get_args(tp)
            try:
                tp = origin.__value__[args[0] if len(args) == 1 else args]
            except TypeError:
                tp = origin.__value__
            continue
        break
    return tp


def _is_ndarray(tp: Any) -> bool:
    import numpy as np

    origin = typing.get_origin(tp) or tp
    return origin is np.ndarray


def _ndarray_dtype(tp: Any) -> Any:
    import numpy as np

    args = typing.get_args(tp)
    if len(args) == 2:
        dt_arg = typing.get_args(args[1])
        if dt_arg and isinstance(dt_arg[0], type) and issubclass(dt_arg[0], np.generic):
            return np.dtype(dt_arg[0])
    return None


def _is_sample_class(tp: Any) -> bool:
    return isinstance(tp, type) and getattr(tp, "__atdata_sample__", False) is True


def spec_for_annotation(name: str, tp: Any, owner: str = "") -> FieldSpec:
    """Build a :class:`FieldSpec` for one annotation.

    Raises:
        SchemaError: For types atdata cannot store (the message names the field and the fix).
    """
    metadata: tuple = ()
    tp = _unalias(tp)
    if typing.get_origin(tp) is typing.Annotated:
        args = typing.get_args(tp)
        tp, metadata = _unalias(args[0]), tuple(args[1:])
    optional = False
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(members) != len(typing.get_args(tp)):
            optional = True
        if len(members) != 1:
            raise SchemaError(
                f"field {owner}{name!r}: unions other than `X | None` are not supported ({tp!r}); "
                "use one type per field"
            )
        tp = _unalias(members[0])
        if typing.get_origin(tp) is typing.Annotated:
            a2 = typing.get_args(tp)
            tp, metadata = _unalias(a2[0]), metadata + tuple(a2[1:])
        origin = typing.get_origin(tp)
    spec = FieldSpec(name=name, kind="any", optional=optional, annotation=tp, metadata=metadata)
    if tp in (str, int, float, bool, bytes):
        spec.kind = tp.__name__
    elif tp is Any:
        spec.kind = "any"
    elif _is_ndarray(tp):
        spec.kind = "ndarray"
        spec.dtype = _ndarray_dtype(tp)
    elif tp is list or origin is list:
        spec.kind = "list"
        args = typing.get_args(tp)
        spec.item = spec_for_annotation(f"{name}[]", args[0], owner) if args else None
    elif tp is dict or origin is dict:
        spec.kind = "dict"
        args = typing.get_args(tp)
        if args and args[0] is not str:
            raise SchemaError(f"field {owner}{name!r}: dict keys must be str, got {args[0]!r}")
        spec.item = spec_for_annotation(f"{name}{{}}", args[1], owner) if len(args) == 2 else None
    elif _is_sample_class(tp):
        spec.kind = "sample"
        spec.sample_type = tp
    else:
        raise SchemaError(
            f"field {owner}{name!r} has type {tp!r}, which atdata cannot store; use str, int, float, "
            "bool, bytes, NDArray, list[...], dict[str, ...], a @packable type, or `X | None` of these"
        )
    spec.encode = _make_encoder(spec, owner)
    spec.decode = _make_decoder(spec, owner)
    return spec


# -- encoders ---------------------------------------------------------------------------------


def check_map_keys(v: Any, where: str) -> None:
    """Refuse maps inside ``v`` whose keys are not ``str`` (or ``bytes``): msgpack writes them,
    but no payload holding one can be read back (maps are read with str keys only).

    Raises:
        SchemaError: Naming the key and ``where`` (the field).

    Examples:
        >>> check_map_keys([{"a": 1}, (b"k", {"b": [2]})], "field 'x'")
        >>> check_map_keys([{"a": {3: 1}}], "field 'x'")
        Traceback (most recent call last):
        ...
        atdata._errors.SchemaError: field 'x': map key 3 is an int; payload maps need str keys
    """
    t = type(v)
    if t is dict:
        for k, x in v.items():
            if type(k) is not str and type(k) is not bytes:
                raise SchemaError(
                    f"{where}: map key {k!r:.40} is {_a(type(k).__name__)}; payload maps need str keys"
                )
            check_map_keys(x, where)
    elif t is list or t is tuple:
        for x in v:
            check_map_keys(x, where)


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"


def _make_encoder(spec: FieldSpec, owner: str) -> Callable[[Any], Any]:
    kind, optional, name = spec.kind, spec.optional, spec.name
    where = f"field {owner}{name!r}"

    def bad(v: Any, expected: str) -> SchemaError:
        return SchemaError(f"{where} expects {expected}, got {type(v).__name__}: {v!r:.80}")

    if kind == "str":

        def enc(v: Any) -> Any:
            if type(v) is str or isinstance(v, str):
                return v
            raise bad(v, "str")
    elif kind == "int":

        def enc(v: Any) -> Any:
            if type(v) is not int:
                if isinstance(v, (bool, float)):
                    raise bad(v, "int")
                try:
                    v = operator.index(v)
                except TypeError:
                    raise bad(v, "int") from None
            if not -(1 << 63) <= v < (1 << 64):  # msgpack integers are int64 or uint64
                raise bad(v, "an int in [-2**63, 2**64)")
            return v
    elif kind == "float":

        def enc(v: Any) -> Any:
            if type(v) is float:
                return v
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v)
            if hasattr(v, "dtype") and getattr(v, "shape", None) == () and v.dtype.kind in "fiu":
                return float(v)
            raise bad(v, "float")
    elif kind == "bool":

        def enc(v: Any) -> Any:
            if v is True or v is False:
                return v
            t = type(v)
            if t.__module__ == "numpy" and t.__name__ in ("bool_", "bool"):  # numpy 1.x / 2.x
                return bool(v)
            raise bad(v, "bool")
    elif kind == "bytes":

        def enc(v: Any) -> Any:
            if type(v) is bytes:
                return v
            if isinstance(v, (bytearray, memoryview)):
                return bytes(v)
            raise bad(v, "bytes")
    elif kind == "ndarray":
        from atdata._wire.arrays import encode_array

        def enc(v: Any) -> Any:
            if v is None:  # np.asarray(None) is an object array: say what is really wrong
                raise SchemaError(
                    f"{where} is required but got None; give it an array, or declare it "
                    "optional (NDArray | None)"
                )
            try:
                return encode_array(v)
            except DecodeError as exc:
                raise SchemaError(f"{where}: {exc}") from None
    elif kind == "list":
        ienc = spec.item.encode if spec.item is not None and spec.item.kind != "any" else None

        def enc(v: Any) -> Any:
            if isinstance(v, (str, bytes, dict)) or not hasattr(v, "__iter__"):
                raise bad(v, "a list")
            if hasattr(v, "dtype") and hasattr(v, "tolist"):
                v = v.tolist()
            if ienc is not None:
                return [ienc(x) for x in v]
            v = list(v)
            check_map_keys(v, where)
            return v
    elif kind == "dict":
        ienc = spec.item.encode if spec.item is not None and spec.item.kind != "any" else None

        def enc(v: Any) -> Any:
            if not isinstance(v, dict):
                raise bad(v, "a dict")
            for k in v:
                if not isinstance(k, str):
                    raise SchemaError(f"{where}: dict keys must be str, got {type(k).__name__}")
            if ienc is not None:
                return {k: ienc(x) for k, x in v.items()}
            check_map_keys(v, where)
            return dict(v)
    elif kind == "sample":
        st = spec.sample_type

        def enc(v: Any) -> Any:
            if not isinstance(v, st):
                raise bad(v, st.__name__)
            return v._to_wire()
    else:

        def enc(v: Any) -> Any:
            check_map_keys(v, where)
            return v

    if not optional:
        return enc

    def enc_opt(v: Any) -> Any:
        return None if v is None else enc(v)

    return enc_opt


# -- decoders ---------------------------------------------------------------------------------


_EXACT: dict[str, type] = {"str": str, "int": int, "bytes": bytes}


def _make_decoder(spec: FieldSpec, owner: str) -> Callable[[Any, str], Any]:
    kind, optional, name = spec.kind, spec.optional, spec.name

    def bad(v: Any, expected: str, where: str) -> SchemaError:
        return SchemaError(
            f"field {owner}{name!r} should hold {expected} but the payload has "
            f"{type(v).__name__}{where}"
        )

    if kind in _EXACT:  # str, int, bytes: the wire type is the field type (bool is no int)
        want = _EXACT[kind]

        def dec(v: Any, where: str) -> Any:
            if type(v) is want:
                return v
            raise bad(v, kind, where)
    elif kind == "float":

        def dec(v: Any, where: str) -> Any:
            if type(v) is float:
                return v
            if type(v) is int:
                return float(v)
            raise bad(v, "float", where)
    elif kind == "bool":

        def dec(v: Any, where: str) -> Any:
            if v is True or v is False:
                return v
            raise bad(v, "bool", where)
    elif kind == "ndarray":
        from atdata._wire.arrays import decode_array

        def dec(v: Any, where: str) -> Any:
            if type(v) is not bytes:
                raise bad(v, "array bytes", where)
            return decode_array(v, where=f" in field {name!r}{where}")
    elif kind == "list":
        idec = spec.item.decode if spec.item is not None and spec.item.kind != "any" else None

        def dec(v: Any, where: str) -> Any:
            if type(v) is not list:
                raise bad(v, "a list", where)
            return [idec(x, where) for x in v] if idec is not None else v
    elif kind == "dict":
        idec = spec.item.decode if spec.item is not None and spec.item.kind != "any" else None

        def dec(v: Any, where: str) -> Any:
            if type(v) is not dict:
                raise bad(v, "a map", where)
            return {k: idec(x, where) for k, x in v.items()} if idec is not None else v
    elif kind == "sample":
        st = spec.sample_type

        def dec(v: Any, where: str) -> Any:
            if type(v) is not dict:
                raise bad(v, f"a {st.__name__} map", where)
            return st._from_wire(v, where)
    else:

        def dec(v: Any, where: str) -> Any:
            return v

    if not optional:
        return dec

    def dec_opt(v: Any, where: str) -> Any:
        return None if v is None else dec(v, where)

    return dec_opt


def _resolve_hints(cls: type) -> dict[str, Any]:
    """Annotations of ``cls`` and its bases, each evaluated in the scope that defined it."""
    import sys

    hints: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        ann = inspect.get_annotations(klass)
        if not ann:
            continue
        ns = klass.__dict__.get("__atdata_ns__")
        if ns is not None:
            globalns, localns = ns[0], dict(ns[1])
        else:
            mod = sys.modules.get(klass.__module__)
            globalns, localns = (mod.__dict__ if mod else {}), {}
        localns.setdefault(klass.__name__, klass)
        for name, tp in ann.items():
            if isinstance(tp, str):
                tp = eval(tp, globalns, localns)  # annotations of local source code
            hints[name] = tp
    return hints


def fields_of(cls: type) -> tuple[FieldSpec, ...]:
    """The field specs of a dataclass sample type, in declaration order (cached on the class).

    Raises:
        SchemaError: When a field's type cannot be stored.
    """
    cached = cls.__dict__.get("__atdata_fields__")
    if cached is not None:
        return cached
    try:
        hints = _resolve_hints(cls)
    except Exception as exc:
        raise SchemaError(f"cannot resolve the annotations of {cls.__qualname__}: {exc}") from exc
    specs = []
    for f in dataclasses.fields(cls):
        if f.name.startswith("__"):
            continue
        spec = spec_for_annotation(f.name, hints.get(f.name, Any), owner=f"{cls.__name__}.")
        spec.annotation = hints.get(f.name, Any)
        if f.default is not _MISSING:
            spec.has_default, spec.default = True, f.default
        elif f.default_factory is not _MISSING:
            spec.has_default, spec.default_factory = True, f.default_factory
        elif spec.optional:
            spec.default = None
        specs.append(spec)
    result = tuple(specs)
    cls.__atdata_fields__ = result  # type: ignore[attr-defined]
    return result
