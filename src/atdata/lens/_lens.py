"""Lenses: typed, composable views of one sample type as another.

A lens has a *getter* ``Source -> View`` and optionally a *putter* ``(View, Source) -> Source``
that writes a changed view back. Lenses registered with ``@atdata.lens`` join the default
:class:`LensNetwork`, which finds direct lenses or composes the shortest chain.

Examples:
    >>> import atdata
    >>> @atdata.packable
    ... class Full:
    ...     name: str
    ...     score: float
    >>> @atdata.packable
    ... class Name:
    ...     name: str
    >>> @atdata.lens
    ... def full_name(s: Full) -> Name:
    ...     return Name(name=s.name)
    >>> @full_name.putter
    ... def full_name_put(v: Name, s: Full) -> Full:
    ...     return Full(name=v.name, score=s.score)
    >>> full_name(Full(name="ada", score=1.0)).name
    'ada'
    >>> full_name.put(Name(name="bob"), Full(name="ada", score=1.0))
    Full(name='bob', score=1.0)
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Generic, TypeAlias, TypeVar

from atdata._errors import ConfigError, LensNotFoundError

__all__ = ["Lens", "LensNetwork", "lens"]

S = TypeVar("S")
V = TypeVar("V")
W = TypeVar("W")

#: A lens's getter: source -> view.
LensGetter: TypeAlias = Callable[[S], V]
#: A lens's putter: (view, source) -> updated source.
LensPutter: TypeAlias = Callable[[V, S], S]


class Lens(Generic[S, V]):
    """A getter ``S -> V`` with an optional putter ``(V, S) -> S``.

    Without a putter, :meth:`put` is the trivial putter: it returns the source unchanged.
    Lenses compose with ``|`` ("this, then that") and ``@`` ("that, then this"):
    ``(a | b).get(s) == b.get(a.get(s))`` and ``b @ a`` is the same lens.

    Args:
        get: The getter; it takes exactly one parameter, annotated with the source type, and
            its return annotation is the view type (or pass ``source=``/``view=``).
        put: The putter ``(view, source) -> source``; default: the trivial putter.
        source: The source type, when the getter's annotation cannot say it.
        view: The view type, when the getter's annotation cannot say it.
        name: A display name (default: the getter's ``__name__``).

    Raises:
        ConfigError: (a ``ValueError``) When the getter does not take exactly one parameter or
            its annotations do not name the two types.

    Examples:
        >>> double = Lens(lambda x: 2 * x, lambda v, x: v // 2, source=int, view=int, name="double")
        >>> inc = Lens(lambda x: x + 1, lambda v, x: v - 1, source=int, view=int, name="inc")
        >>> (double | inc).get(5), (inc @ double).get(5), (double | inc).put(13, 0)
        (11, 11, 6)
        >>> Lens.identity(int).get(7), Lens.identity(int).put(8, 7)
        (7, 8)
    """

    source_type: type
    view_type: type
    name: str

    def __init__(
        self,
        get: Callable[[S], V],
        put: Callable[[V, S], S] | None = None,
        *,
        source: type | None = None,
        view: type | None = None,
        name: str | None = None,
        localns: dict[str, Any] | None = None,
    ) -> None:
        label: str = name or str(getattr(get, "__name__", "lens"))
        try:
            params = list(inspect.signature(get).parameters.values())
        except (TypeError, ValueError):  # a builtin without a signature: trust the caller
            params = None
        if params is not None and len(params) != 1:
            raise ConfigError(
                f"lens {label!r}: the getter must take exactly one parameter (the source), "
                f"got {len(params)}: {[p.name for p in params]}; bind extra values with a closure "
                "or functools.partial"
            )
        if source is None or view is None:
            try:
                hints = typing.get_type_hints(get, localns=localns)
            except Exception as exc:  # an annotation that names a type out of reach
                raise ConfigError(
                    f"lens {label!r}: cannot resolve the getter's annotations ({exc}); "
                    "pass source= and view= explicitly"
                ) from None
            if source is None:
                pname = params[0].name if params else None
                if pname not in hints:
                    raise ConfigError(
                        f"lens {label!r}: annotate the getter's parameter with the source type"
                    )
                source = hints[pname]
            if view is None:
                if "return" not in hints:
                    raise ConfigError(f"lens {label!r}: annotate the getter's return type")
                view = hints["return"]
        # __name__, __doc__, __wrapped__ ... (not a partial's: the name is given, the doc is
        # functools.partial's own)
        plain = not isinstance(get, functools.partial)
        functools.update_wrapper(
            self, get, assigned=functools.WRAPPER_ASSIGNMENTS if plain else (), updated=()
        )
        self.source_type = source
        self.view_type = view
        self.name = label
        self.__name__ = label
        self._get = get
        self._put = put

    @staticmethod
    def identity(sample_type: type[S]) -> Lens[S, S]:
        """The lens whose getter returns the source and whose putter returns the view.

        Examples:
            >>> Lens.identity(str).source_type is Lens.identity(str).view_type is str
            True
        """
        return Lens(
            _identity_get, _identity_put, source=sample_type, view=sample_type, name="identity"
        )

    @property
    def source(self) -> type:
        """Alias of :attr:`source_type`."""
        return self.source_type

    @property
    def view(self) -> type:
        """Alias of :attr:`view_type`."""
        return self.view_type

    def get(self, s: S) -> V:
        """Compute the view of source ``s``."""
        return self._get(s)

    def __call__(self, source: S) -> V:
        """Same as :meth:`get`."""
        return self._get(source)

    @property
    def has_putter(self) -> bool:
        """Whether this lens has a real putter (else :meth:`put` returns the source unchanged)."""
        return self._put is not None

    def put(self, v: V, s: S) -> S:
        """Write view ``v`` back into source ``s``, returning the updated source.

        A lens without a putter returns ``s`` unchanged (the trivial putter).
        """
        if self._put is None:
            return s
        return self._put(v, s)

    def putter(self, put: Callable[[V, S], S]) -> Callable[[V, S], S]:
        """Decorator registering the putter ``(view, source) -> source`` of this lens."""
        self._put = put
        return put

    def __or__(self, other: Lens[V, W]) -> Lens[S, W]:
        """Pipeline composition: ``self | other`` applies ``self``, then ``other``."""
        if not isinstance(other, Lens):
            return NotImplemented
        first, second = self, other
        put = None
        if first.has_putter and second.has_putter:  # else the trivial putter (source unchanged)
            put = functools.partial(_chain_put, first, second)
        return Lens(  # (partials of module-level functions: a chain pickles if its parts do)
            functools.partial(_chain_get, first, second),
            put,
            source=first.source_type,
            view=second.view_type,
            name=f"{first.name} | {second.name}",
        )

    def __matmul__(self, other: Lens[Any, S]) -> Lens[Any, V]:
        """Categorical composition: ``self @ other`` applies ``other``, then ``self``."""
        if not isinstance(other, Lens):
            return NotImplemented
        return other | self

    def __repr__(self) -> str:
        return f"Lens({self.name}: {_tname(self.source_type)} -> {_tname(self.view_type)})"

    def __reduce_ex__(self, protocol: Any) -> Any:
        """Pickled by name when its module holds it under its getter's name (``@lens`` at
        module level: that name is the lens, not the getter, so the getter cannot be pickled by
        name), else by value (DataLoader workers started by ``spawn`` receive lenses so)."""
        import sys

        qualname = self.__dict__.get("__qualname__")
        found: Any = sys.modules.get(self.__dict__.get("__module__") or "")
        for part in (qualname or "<none>").split("."):
            found = getattr(found, part, None)
        if found is self:
            return qualname
        return super().__reduce_ex__(protocol)


def _chain_get(first: Lens, second: Lens, s: Any) -> Any:
    return second.get(first.get(s))


def _chain_put(first: Lens, second: Lens, w: Any, s: Any) -> Any:
    return first.put(second.put(w, first.get(s)), s)


def _identity_get(s: Any) -> Any:
    return s


def _identity_put(v: Any, s: Any) -> Any:
    return v


def _tname(t: Any) -> str:
    return getattr(t, "__name__", repr(t))


class LensNetwork:
    """The registry of lenses; finds a registered lens or composes the shortest chain.

    ``LensNetwork()`` is the one process-wide registry (the same object on every call) that
    ``@atdata.lens`` registers into. :meth:`isolated` makes a separate, empty one (tests, or
    lenses that must not be visible to everyone). Every ``@packable`` type is reachable from
    :class:`~atdata.DictSample` (decoding by schema).

    Examples:
        >>> LensNetwork() is LensNetwork() is LensNetwork.default()
        True
        >>> net = LensNetwork.isolated()
        >>> net is LensNetwork(), net.list_lenses()
        (False, [])
    """

    _shared: ClassVar[LensNetwork | None] = None
    _edges: dict[type, dict[type, Lens]]

    def __new__(cls) -> LensNetwork:
        shared = cls.__dict__.get("_shared")
        if shared is None:
            shared = cls.isolated()
            cls._shared = shared
        return shared

    @classmethod
    def isolated(cls) -> LensNetwork:
        """A new, empty registry that is not the shared one."""
        net = object.__new__(cls)
        net._edges = {}
        return net

    @classmethod
    def default(cls) -> LensNetwork:
        """The shared registry (same as ``LensNetwork()``)."""
        return cls()

    def register(self, lens_: Lens) -> Lens:
        """Add a lens (replacing an earlier one between the same two types); returns it."""
        self._edges.setdefault(lens_.source_type, {})[lens_.view_type] = lens_
        return lens_

    def transform(self, source: type, view: type) -> Lens:
        """The lens registered from ``source`` to ``view`` (no composition; see :meth:`find`).

        Every ``@packable`` type has one from :class:`~atdata.DictSample` (as documented; a lens
        registered for the pair takes its place).

        Raises:
            LensNotFoundError: (a ``ValueError``) When no lens is registered for the pair; the
                message lists the lenses that do start at ``source``.
        """
        found = self._edges.get(source, {}).get(view) or self._implicit(source, view)
        if found is None:
            raise self._not_found(source, view)
        return found

    @property
    def lenses(self) -> Iterator[Lens]:
        """Registered lenses (lazy)."""
        return (lz for d in self._edges.values() for lz in d.values())

    def list_lenses(self) -> list[Lens]:
        """Registered lenses."""
        return list(self.lenses)

    @property
    def _registry(self) -> dict[tuple[type, type], Lens]:
        """``(source, view) -> lens`` of the registered lenses (a copy), as upstream's docs read
        it (``for (src, view), lens in LensNetwork()._registry.items()``)."""
        return {(src, view): lz for src, d in self._edges.items() for view, lz in d.items()}

    def lenses_from(self, source: type) -> list[Lens]:
        """Lenses whose source is ``source``."""
        return list(self._edges.get(source, {}).values())

    def _implicit(self, source: type, view: type) -> Lens | None:
        from atdata._wire.sample import DictSample

        if source is DictSample and getattr(view, "__atdata_sample__", False):
            return _dict_lens(view)
        return None

    def _neighbours(self, node: type) -> list[tuple[type, Lens]]:
        """Registered lenses from ``node``; from DictSample also the implicit decode hops."""
        out = list(self._edges.get(node, {}).items())
        from atdata._wire.sample import DictSample

        if node is DictSample:
            have = {t for t, _ in out}
            for mid in list(self._edges):
                if mid not in have and getattr(mid, "__atdata_sample__", False):
                    out.append((mid, _dict_lens(mid)))
        return out

    def find(self, source: type, view: type) -> Lens:
        """The lens from ``source`` to ``view``: direct, implicit, or the shortest composition.

        Raises:
            LensNotFoundError: When no chain exists (the message lists what does exist and shows
                the ``@lens`` stub that would fix it).
        """
        if source is view:
            return Lens.identity(source)
        direct = self._edges.get(source, {}).get(view) or self._implicit(source, view)
        if direct is not None:
            return direct
        # breadth-first search: the first chain found is a shortest one (fewest lenses)
        prev: dict[type, Lens] = {}
        queue = deque([source])
        seen = {source}
        while queue:
            node = queue.popleft()
            for tgt, lz in self._neighbours(node):
                if tgt in seen:
                    continue
                seen.add(tgt)
                prev[tgt] = lz
                if tgt is view:
                    chain = [lz]
                    while chain[0].source_type is not source:
                        chain.insert(0, prev[chain[0].source_type])
                    out = chain[0]
                    for nxt_lens in chain[1:]:
                        out = out | nxt_lens
                    return out
                queue.append(tgt)
        raise self._not_found(source, view)

    def _not_found(self, source: type, view: type) -> LensNotFoundError:
        existing = self.lenses_from(source)
        have = ", ".join(
            f"{lz.name} ({_tname(lz.source_type)} -> {_tname(lz.view_type)})" for lz in existing
        )
        sn, vn = _tname(source), _tname(view)
        return LensNotFoundError(
            f"No lens transforms {sn} into {vn}. "
            + (
                f"Lenses from {sn}: {have}. "
                if existing
                else f"No lenses are registered from {sn}. "
            )
            + "Define one:\n\n"
            f"    @atdata.lens\n    def {sn.lower()}_to_{vn.lower()}(source: {sn}) -> {vn}:\n"
            f"        return {vn}(...)\n"
        )


def _dict_lens(view: type) -> Lens:
    from atdata._wire.sample import DictSample

    return Lens(  # (partials of module-level functions: it pickles, for spawned workers)
        functools.partial(_dict_get, view),
        _dict_put,
        source=DictSample,
        view=view,
        name=f"DictSample->{view.__name__}",
    )


def _dict_get(view: type, s: Any) -> Any:
    return s.as_type(view)


def _dict_put(v: Any, s: Any) -> Any:
    from atdata._wire.sample import DictSample

    raw = dict(s._data)
    for k, val in v._to_wire().items():
        if val is not None or k in raw:  # an absent optional field stays absent (GetPut)
            raw[k] = val
    out = DictSample._from_wire(raw)
    out.__key__ = s.__key__
    return out


def lens(fn: Callable[[S], V] | None = None, /, *, network: LensNetwork | None = None) -> Any:
    """Decorator: turn a typed getter ``def f(s: Source) -> View`` into a registered :class:`Lens`.

    Add a putter with ``@f.putter``.
    """

    import sys

    frame = sys._getframe(1)
    if frame.f_globals.get("__name__") == "atdata.lens":  # called as the callable module
        frame = frame.f_back or frame
    localns = dict(frame.f_locals)  # types defined next to the getter (e.g. in a function)

    def wrap(f: Callable[[S], V]) -> Lens[S, V]:
        net = network or LensNetwork()
        return net.register(Lens(f, localns=localns))

    return wrap if fn is None else wrap(fn)
