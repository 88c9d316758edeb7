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

import typing
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from atdata._errors import ConfigError, LensNotFoundError

__all__ = ["Lens", "LensNetwork", "lens"]

S = TypeVar("S")
V = TypeVar("V")
W = TypeVar("W")


class Lens(Generic[S, V]):
    """A getter ``S -> V`` with an optional putter ``(V, S) -> S``.

    Lenses compose with ``>>``: ``(a >> b).get(s) == b.get(a.get(s))``.
    """

    def __init__(
        self,
        get: Callable[[S], V],
        put: Callable[[V, S], S] | None = None,
        *,
        source: type | None = None,
        view: type | None = None,
        name: str | None = None,
        network: LensNetwork | None = None,
        localns: dict[str, Any] | None = None,
    ) -> None:
        if source is None or view is None:
            try:
                hints = typing.get_type_hints(get, localns=localns)
            except Exception as exc:  # an annotation that names a type out of reach
                raise ConfigError(
                    f"lens {getattr(get, '__name__', get)!r}: cannot resolve the getter's annotations "
                    f"({exc}); pass source= and view= explicitly"
                ) from None
            params = [k for k in hints if k != "return"]
            if source is None:
                if not params:
                    raise ConfigError(
                        f"lens {getattr(get, '__name__', get)!r}: annotate the getter's parameter "
                        "with the source type"
                    )
                source = hints[params[0]]
            if view is None:
                if "return" not in hints:
                    raise ConfigError(
                        f"lens {getattr(get, '__name__', get)!r}: annotate the getter's return type"
                    )
                view = hints["return"]
        self.source: type = source
        self.view: type = view
        self._get = get
        self._put = put
        self.name = name or getattr(get, "__name__", "lens")
        self._network = network
        self.__doc__ = getattr(get, "__doc__", None)

    def get(self, source: S) -> V:
        """Compute the view of ``source``."""
        return self._get(source)

    __call__ = get

    @property
    def has_putter(self) -> bool:
        """Whether this lens can write a view back."""
        return self._put is not None

    def put(self, view: V, source: S) -> S:
        """Write ``view`` back into ``source``, returning the updated source.

        Raises:
            ConfigError: When the lens has no putter.
        """
        if self._put is None:
            raise ConfigError(f"lens {self.name!r} has no putter; add one with @{self.name}.putter")
        return self._put(view, source)

    def putter(self, fn: Callable[[V, S], S]) -> Callable[[V, S], S]:
        """Decorator registering the putter ``(view, source) -> source`` of this lens."""
        self._put = fn
        return fn

    def compose(self, other: Lens[V, W]) -> Lens[S, W]:
        """This lens followed by ``other``."""
        first, second = self, other

        def get(s: Any) -> Any:
            return second.get(first.get(s))

        put = None
        if first.has_putter and second.has_putter:

            def put(w: Any, s: Any) -> Any:
                return first.put(second.put(w, first.get(s)), s)

        return Lens(
            get, put, source=first.source, view=second.view, name=f"{first.name} >> {second.name}"
        )

    def __rshift__(self, other: Lens[V, W]) -> Lens[S, W]:
        return self.compose(other)

    def __repr__(self) -> str:
        return f"Lens({self.name}: {_tname(self.source)} -> {_tname(self.view)})"


def _tname(t: Any) -> str:
    return getattr(t, "__name__", repr(t))


class LensNetwork:
    """A registry of lenses that finds a direct lens or composes the shortest chain.

    Every ``@packable`` type is reachable from :class:`~atdata.DictSample` (decoding by schema).
    """

    _default: LensNetwork | None = None

    def __init__(self) -> None:
        self._edges: dict[type, dict[type, Lens]] = {}

    @classmethod
    def default(cls) -> LensNetwork:
        """The process-wide network that ``@atdata.lens`` registers into."""
        if cls._default is None:
            cls._default = cls()
        return cls._default

    def register(self, lens_: Lens) -> Lens:
        """Add a lens (replacing an earlier one between the same two types)."""
        self._edges.setdefault(lens_.source, {})[lens_.view] = lens_
        return lens_

    @property
    def lenses(self):
        """Registered lenses (lazy)."""
        return (lz for d in self._edges.values() for lz in d.values())

    def list_lenses(self) -> list[Lens]:
        """Registered lenses."""
        return list(self.lenses)

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
            return Lens(lambda s: s, lambda v, s: v, source=source, view=view, name="identity")
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
                    while chain[0].source is not source:
                        chain.insert(0, prev[chain[0].source])
                    out = chain[0]
                    for nxt_lens in chain[1:]:
                        out = out >> nxt_lens
                    return out
                queue.append(tgt)
        existing = self.lenses_from(source)
        have = ", ".join(f"{lz.name} ({_tname(lz.source)} -> {_tname(lz.view)})" for lz in existing)
        sn, vn = _tname(source), _tname(view)
        raise LensNotFoundError(
            f"no lens from {sn} to {vn}. "
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

    def get(s: DictSample) -> Any:
        return s.as_type(view)

    def put(v: Any, s: DictSample) -> DictSample:
        raw = dict(s._data)
        for k, val in v._to_wire().items():
            if val is not None or k in raw:  # an absent optional field stays absent (GetPut)
                raw[k] = val
        out = DictSample._from_wire(raw)
        out.__key__ = s.__key__
        return out

    return Lens(get, put, source=DictSample, view=view, name=f"DictSample->{view.__name__}")


def lens(fn: Callable[[S], V] | None = None, /, *, network: LensNetwork | None = None) -> Any:
    """Decorator: turn a typed getter ``def f(s: Source) -> View`` into a registered :class:`Lens`.

    Add a putter with ``@f.putter``.
    """

    import sys

    localns = dict(
        sys._getframe(1).f_locals
    )  # types defined next to the getter (e.g. in a function)

    def wrap(f: Callable[[S], V]) -> Lens[S, V]:
        net = network or LensNetwork.default()
        return net.register(Lens(f, network=net, localns=localns))

    return wrap if fn is None else wrap(fn)
