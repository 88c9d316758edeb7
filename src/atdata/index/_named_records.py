"""Labels and stored lenses of an :class:`~atdata.Index` (named records in its provider).

A label maps a name (and optionally a version) to a dataset entry's CID. A stored lens is a
JSON record naming its source and view schemas and where its code lives (``module:qualname``
of the getter and putter); loading one imports that code, it never unpickles or evaluates
stored text.

Examples:
    >>> lens_ref("pts_to_names", "1.0.0")
    'atdata://local/lens/pts_to_names@1.0.0'
    >>> parse_lens_ref("atdata://local/lens/pts_to_names@1.0.0")
    ('pts_to_names', '1.0.0')
"""

from __future__ import annotations

import importlib
from typing import Any

from atdata._errors import ConfigError, NotFoundError
from atdata.index._entry import bump, check_name, parse_version, utcnow
from atdata.providers._base import IndexProvider

__all__ = [
    "LENS_REF_PREFIX",
    "get_label",
    "get_lens_record",
    "lens_record",
    "lens_ref",
    "list_labels",
    "list_lens_records",
    "load_lens",
    "parse_lens_ref",
    "put_label",
]

LENS_REF_PREFIX = "atdata://local/lens/"


def lens_ref(name: str, version: str) -> str:
    """``atdata://local/lens/<name>@<version>``."""
    return f"{LENS_REF_PREFIX}{name}@{version}"


def parse_lens_ref(ref: str) -> tuple[str, str | None]:
    """``(name, version)`` of a lens reference (``name`` or ``name@1.0.0`` also accepted)."""
    s = ref[len(LENS_REF_PREFIX) :] if ref.startswith(LENS_REF_PREFIX) else ref
    if "://" in s or not s:
        raise ConfigError(f"{ref!r} is not a lens reference; use 'atdata://local/lens/name@1.0.0'")
    name, _, version = s.partition("@")
    return name, version or None


# -- labels -----------------------------------------------------------------------------------
def put_label(
    provider: IndexProvider, name: str, cid: str, version: str | None, description: str | None
) -> None:
    """Create or move label ``name`` (at ``version``) to the entry with ``cid``."""
    check_name(name, "label")
    if version:
        parse_version(version)
    rec = {"name": name, "cid": cid, "version": version, "description": description,
           "createdAt": utcnow()}  # fmt: skip
    provider.put_record("label", f"{name}@{version or ''}", rec)


def get_label(provider: IndexProvider, name: str, version: str | None) -> dict[str, Any]:
    """The label record of ``name`` at ``version`` (the most recently set one by default).

    Raises:
        NotFoundError: (a ``KeyError``) When there is no such label.
    """
    recs = [r for _, r in provider.list_records("label") if r.get("name") == name]
    if version is not None:
        recs = [r for r in recs if r.get("version") == version]
    if not recs:
        what = f"{name}@{version}" if version else name
        raise NotFoundError(
            f"no label {what!r} in the index at {provider.url}; set one with index.label(name, cid)"
        )
    return max(recs, key=lambda r: r.get("createdAt") or "")


def list_labels(provider: IndexProvider) -> list[tuple[str, str, str | None]]:
    """``(name, cid, version)`` of every label, by name then version."""
    return [(r["name"], r["cid"], r.get("version")) for _, r in provider.list_records("label")]


# -- lenses -----------------------------------------------------------------------------------
def _code_ref(fn: Any) -> str | None:
    if fn is None:
        return None
    mod, qual = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    return f"{mod}:{qual}" if mod and qual and "<" not in qual else None


def lens_record(
    provider: IndexProvider,
    lens_obj: Any,
    name: str,
    version: str | None,
    description: str | None,
    source_schema: str | None,
    view_schema: str | None,
) -> dict[str, Any]:
    """Store ``lens_obj`` as a lens record (version: given, or the latest's patch + 1)."""
    check_name(name, "lens")
    if not version:
        mine = [r["version"] for _, r in provider.list_records("lens") if r.get("name") == name]
        version = bump(max(mine, key=parse_version), "patch") if mine else "1.0.0"
    parse_version(version)
    src = source_schema or getattr(getattr(lens_obj, "source_type", None), "__name__", None)
    view = view_schema or getattr(getattr(lens_obj, "view_type", None), "__name__", None)
    getter = getattr(lens_obj, "_get", None) or getattr(lens_obj, "get", None)
    rec = {
        "name": name, "version": version, "description": description,
        "sourceSchema": src, "viewSchema": view,
        "getter": _code_ref(getter), "putter": _code_ref(getattr(lens_obj, "_put", None)),
        "createdAt": utcnow(),
    }  # fmt: skip
    key = f"{name}@{version}"
    if provider.get_record("lens", key) is not None:
        raise ConfigError(f"lens {key} already exists; omit version= to get the next one")
    provider.put_record("lens", key, rec)
    return {**rec, "$ref": lens_ref(name, version)}


def list_lens_records(provider: IndexProvider) -> list[dict[str, Any]]:
    """Every stored lens record (with its ``$ref``), by name then version."""
    recs = [r for _, r in provider.list_records("lens")]
    recs.sort(key=lambda r: (r["name"], parse_version(r["version"])))
    return [{**r, "$ref": lens_ref(r["name"], r["version"])} for r in recs]


def get_lens_record(provider: IndexProvider, ref: str) -> dict[str, Any]:
    """The lens record of ``ref`` (its latest version when ``ref`` has none).

    Raises:
        NotFoundError: (a ``KeyError``) When there is no such lens.
    """
    name, version = parse_lens_ref(ref)
    recs = [r for r in list_lens_records(provider) if r["name"] == name]
    if version is not None:
        recs = [r for r in recs if r["version"] == version]
    if not recs:
        raise NotFoundError(f"no lens {ref!r} in the index at {provider.url}")
    return recs[-1]


def _resolve(code: str, ref: str) -> Any:
    mod, _, qual = code.partition(":")
    try:
        obj: Any = importlib.import_module(mod)
        for part in qual.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"lens {ref}: cannot import its code {code!r} ({exc}); install or import the module "
            "that defines it"
        ) from None
    return obj


def load_lens(rec: dict[str, Any], source_type: type | None, view_type: type | None) -> Any:
    """A working :class:`~atdata.Lens` from a stored record (its code imported by name).

    Raises:
        ConfigError: When the record names no importable getter.
    """
    from atdata.lens._lens import Lens, LensNetwork

    ref = rec.get("$ref", rec.get("name"))
    if not rec.get("getter"):
        raise ConfigError(
            f"lens {ref} has no importable getter (it was defined inside a function or "
            "interactively); define it at module level and store it again"
        )
    getter = _resolve(rec["getter"], str(ref))
    if isinstance(getter, Lens):
        return getter
    putter = _resolve(rec["putter"], str(ref)) if rec.get("putter") else None
    got = Lens(getter, putter, source=source_type, view=view_type, name=rec.get("name"))
    LensNetwork().register(got)
    return got
