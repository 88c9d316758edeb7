"""Checks of the lens laws, on given values or on values hypothesis draws.

For a lens with getter ``get: S -> V`` and putter ``put: (V, S) -> S``:

* **GetPut**: ``put(get(s), s) == s`` (writing back an unchanged view changes nothing);
* **PutGet**: ``get(put(v, s)) == v`` (what was written is what is read);
* **PutPut**: ``put(v2, put(v1, s)) == put(v2, s)`` (the last write wins).

Examples:
    >>> import atdata
    >>> from atdata.testing import check_lens_laws
    >>> @atdata.packable
    ... class Person:
    ...     name: str
    ...     age: int
    >>> @atdata.packable
    ... class Name:
    ...     name: str
    >>> @atdata.lens
    ... def person_name(p: Person) -> Name:
    ...     return Name(name=p.name)
    >>> @person_name.putter
    ... def _(v: Name, p: Person) -> Person:
    ...     return Person(name=v.name, age=p.age)
    >>> check_lens_laws(person_name, [Person(name="ada", age=36)], [Name(name="bob"), Name(name="")])
    >>> @person_name.putter
    ... def _(v: Name, p: Person) -> Person:
    ...     return Person(name=v.name, age=0)  # forgets the age
    >>> check_lens_laws(person_name, [Person(name="ada", age=36)], [Name(name="bob")])
    Traceback (most recent call last):
    ...
    AssertionError: lens person_name (Person -> Name) breaks GetPut: put(get(s), s) != s
    ...
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from atdata._errors import ConfigError
from atdata.testing._strategies import hypothesis_module, strategy_for

__all__ = ["LAWS", "assert_lens_laws", "check_lens_laws"]

LAWS = ("get_put", "put_get", "put_put")


def _eq(a: Any, b: Any) -> bool:
    try:
        r = a == b
    except Exception:
        return False
    if r is NotImplemented:
        return False
    if hasattr(r, "all") and not isinstance(r, bool):  # numpy arrays compared elementwise
        return bool(getattr(a, "shape", None) == getattr(b, "shape", None) and r.all())
    return bool(r)


def _fail(lz: Any, law: str, rule: str, values: list[tuple[str, Any]]) -> AssertionError:
    name = getattr(lz, "name", repr(lz))
    src = getattr(getattr(lz, "source_type", None), "__name__", "?")
    view = getattr(getattr(lz, "view_type", None), "__name__", "?")
    lines = [f"lens {name} ({src} -> {view}) breaks {law}: {rule}"]
    lines += [f"    {k} = {v!r}" for k, v in values]
    return AssertionError("\n".join(lines))


def _check_one(lz: Any, s: Any, v1: Any, v2: Any, laws: Sequence[str]) -> None:
    get, put = lz.get, lz.put
    if "get_put" in laws:
        view = get(s)
        back = put(view, s)
        if not _eq(back, s):
            raise _fail(
                lz,
                "GetPut",
                "put(get(s), s) != s",
                [("s", s), ("get(s)", view), ("put(get(s), s)", back)],
            )
    if "put_get" in laws:
        written = put(v1, s)
        got = get(written)
        if not _eq(got, v1):
            raise _fail(
                lz,
                "PutGet",
                "get(put(v, s)) != v",
                [("s", s), ("v", v1), ("put(v, s)", written), ("get(put(v, s))", got)],
            )
    if "put_put" in laws:
        twice = put(v2, put(v1, s))
        once = put(v2, s)
        if not _eq(twice, once):
            raise _fail(
                lz,
                "PutPut",
                "put(v2, put(v1, s)) != put(v2, s)",
                [
                    ("s", s),
                    ("v1", v1),
                    ("v2", v2),
                    ("put(v2, put(v1, s))", twice),
                    ("put(v2, s)", once),
                ],
            )


def _laws(laws: Iterable[str], lz: Any) -> tuple[str, ...]:
    out = tuple(laws)
    bad = [x for x in out if x not in LAWS]
    if bad:
        raise ConfigError(f"unknown lens law(s) {bad}; choose from {list(LAWS)}")
    if not getattr(lz, "has_putter", False):
        raise ConfigError(
            f"lens {getattr(lz, 'name', lz)!r} has no putter, so the lens laws do not apply"
        )
    return out


def check_lens_laws(
    lens: Any, sources: Iterable[Any], views: Iterable[Any], *, laws: Iterable[str] = LAWS
) -> None:
    """Check the lens laws on every source with every view (and every pair of views for PutPut).

    Args:
        lens: A :class:`~atdata.Lens` with a putter.
        sources: Source samples.
        views: View samples (at least one).
        laws: Which of ``"get_put"``, ``"put_get"``, ``"put_put"`` to check (default: all).

    Raises:
        AssertionError: On the first violation, naming the law, the lens and the values.
        ConfigError: When the lens has no putter or ``views`` is empty.
    """
    chosen = _laws(laws, lens)
    views = list(views)
    if not views:
        raise ConfigError("check_lens_laws needs at least one view")
    for s in sources:
        for v1 in views:
            for v2 in views:
                _check_one(lens, s, v1, v2, chosen)


def assert_lens_laws(
    lens: Any,
    source_strategy: Any = None,
    view_strategy: Any = None,
    *,
    max_examples: int = 50,
    laws: Iterable[str] = LAWS,
) -> None:
    """Check the lens laws on samples drawn by hypothesis (shrunk to a minimal failing example).

    Args:
        lens: A :class:`~atdata.Lens` with a putter.
        source_strategy: Strategy for sources (default: :func:`strategy_for` of ``lens.source_type``).
        view_strategy: Strategy for views (default: :func:`strategy_for` of ``lens.view_type``).
        max_examples: How many examples hypothesis tries.
        laws: Which laws to check (default: all three).

    Raises:
        AssertionError: On a violation (hypothesis reports the minimal falsifying example).
        MissingExtraError: When hypothesis is not installed (``pip install hypothesis``).
    """
    chosen = _laws(laws, lens)
    hyp = hypothesis_module()
    ss = source_strategy if source_strategy is not None else strategy_for(lens.source_type)
    vs = view_strategy if view_strategy is not None else strategy_for(lens.view_type)

    @hyp.settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=list(hyp.HealthCheck),
    )
    @hyp.given(s=ss, v1=vs, v2=vs)
    def laws_hold(s: Any, v1: Any, v2: Any) -> None:
        _check_one(lens, s, v1, v2, chosen)

    laws_hold()
