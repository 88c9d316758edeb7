"""The index provider conformance suite: one set of checks every provider must pass.

Third-party providers run it with a zero-argument, picklable factory returning a provider that
points at the same (empty or shared) storage on every call::

    from atdata.testing import provider_checks, run_provider_conformance
    run_provider_conformance(make_my_provider)          # all checks
    provider_checks["concurrent_add"](make_my_provider)  # one check (e.g. pytest parametrize)

Each check uses its own random dataset names, so checks can share one storage area.

Examples:
    >>> import os, tempfile, functools
    >>> from atdata.index import SQLiteProvider
    >>> factory = functools.partial(SQLiteProvider, os.path.join(tempfile.mkdtemp(), "i.db"))
    >>> provider_checks["entry_round_trip"](factory)
"""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Callable
from typing import Any

__all__ = ["provider_checks", "run_provider_conformance"]

Factory = Callable[[], Any]


def _tag() -> str:
    return "conf-" + uuid.uuid4().hex[:10]


def _body(fields: dict[str, str]) -> dict[str, Any]:
    return {
        "$type": "science.alt.dataset.schema#jsonSchemaFormat",
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {k: {"type": v} for k, v in fields.items()},
        "required": list(fields),
    }


def check_entry_round_trip(factory: Factory) -> None:
    """An entry reads back field for field; versions start at 1.0.0 and bump the minor."""
    from atdata.index import DatasetEntry, ShardRef

    p, name = factory(), _tag()
    e = DatasetEntry(
        name=name, shards=[ShardRef("s3://b/k-000.tar", "a" * 64, 10240, 7), ShardRef("/x/k-001.tar", "b" * 64, 2048, 3)],
        schema_ref="atdata://local/schema/T@1.0.0", description="d\u00e9j\u00e0 vu", license="CC-BY-4.0",
        tags=["a", "b"], metadata={"float": 0.1, "nested": {"k": [1, None, "x"]}},
    )  # fmt: skip
    got = p.add_entry(e)
    assert got.version == "1.0.0", got.version
    back = p.get_entry(name)
    assert back is not None and back == got, (back, got)
    assert back.num_samples == 10 and back.size == 12288
    assert back.metadata == {"float": 0.1, "nested": {"k": [1, None, "x"]}}
    assert p.get_entry(name, "1.0.0") == got
    assert p.get_entry(name, "9.9.9") is None and p.get_entry(name + "-missing") is None
    assert p.get_entry_by_id(got.entry_id) == got
    second = p.add_entry(DatasetEntry(name=name))
    assert second.version == "1.1.0", second.version
    assert p.get_entry(name).version == "1.1.0"


def check_explicit_versions(factory: Factory) -> None:
    """Explicit versions are kept, never replaced, and latest is the highest semver."""
    from atdata import ConfigError
    from atdata.index import DatasetEntry

    p, name = factory(), _tag()
    assert p.add_entry(DatasetEntry(name=name, version="1.10.0")).version == "1.10.0"
    assert p.add_entry(DatasetEntry(name=name, version="1.9.0")).version == "1.9.0"
    assert p.get_entry(name).version == "1.10.0"
    try:
        p.add_entry(DatasetEntry(name=name, version="1.9.0", description="replacement"))
    except ConfigError:
        pass
    else:
        raise AssertionError("an existing version was accepted again")
    assert p.get_entry(name, "1.9.0").description is None
    assert p.add_entry(DatasetEntry(name=name)).version == "1.11.0"


def check_idempotent_entry_id(factory: Factory) -> None:
    """Committing the same entry_id twice returns the first entry and writes nothing."""
    from atdata.index import DatasetEntry

    p, name = factory(), _tag()
    eid = uuid.uuid4().hex
    a = p.add_entry(DatasetEntry(name=name, entry_id=eid, description="first"))
    b = p.add_entry(DatasetEntry(name=name, entry_id=eid, description="retry"))
    assert b.version == a.version == "1.0.0" and b.description == "first"
    assert [e.version for e in p.list_entries() if e.name == name] == ["1.0.0"]


def check_listing(factory: Factory) -> None:
    """Listing returns every entry once, sorted by name then numeric version."""
    from atdata.index import DatasetEntry

    p, tag = factory(), _tag()
    for i in range(12):
        p.add_entry(DatasetEntry(name=f"{tag}-{i % 3}"))
    got = [(e.name, e.version) for e in p.list_entries() if e.name.startswith(tag)]
    want = [(f"{tag}-{n}", f"1.{v}.0") for n in range(3) for v in range(4)]
    assert got == want, got


def check_schemas(factory: Factory) -> None:
    """Schemas are stored by (name, version); same body is idempotent, a different one conflicts."""
    from atdata import SchemaError
    from atdata.index import SchemaRecord

    p, name = factory(), _tag()
    r1 = p.put_schema(SchemaRecord(name, "1.0.0", _body({"a": "string"}), "first"))
    assert p.put_schema(SchemaRecord(name, "1.0.0", _body({"a": "string"}))).description == "first"
    try:
        p.put_schema(SchemaRecord(name, "1.0.0", _body({"a": "integer"})))
    except SchemaError:
        pass
    else:
        raise AssertionError("a different body was accepted for an existing schema version")
    p.put_schema(SchemaRecord(name, "1.2.0", _body({"a": "string", "b": "number"})))
    p.put_schema(SchemaRecord(name, "1.10.0", _body({"a": "string", "c": "number"})))
    assert p.get_schema(name).version == "1.10.0"
    assert p.get_schema(name, "1.0.0") == r1
    assert p.get_schema(name, "3.0.0") is None and p.get_schema(name + "-x") is None
    mine = [(r.name, r.version) for r in p.list_schemas() if r.name == name]
    assert mine == [(name, "1.0.0"), (name, "1.2.0"), (name, "1.10.0")], mine


def _worker(args: tuple[Factory, str, int, int]) -> list[str]:
    from atdata.index import DatasetEntry

    factory, name, wid, n = args
    p = factory()
    out = []
    for i in range(n):
        e = p.add_entry(
            DatasetEntry(name=name, entry_id=f"{name}-{wid}-{i}", metadata={"w": wid, "i": i})
        )
        out.append(e.version)
    p.close()
    return out


def check_concurrent_add(factory: Factory, processes: int = 8, per_process: int = 50) -> None:
    """``processes`` processes add ``per_process`` versions of one name: none lost or duplicated."""
    name = _tag()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(processes) as pool:
        results = pool.map(_worker, [(factory, name, w, per_process) for w in range(processes)])
    total = processes * per_process
    versions = [v for r in results for v in r]
    assert len(set(versions)) == total, f"{total - len(set(versions))} duplicate versions"
    p = factory()
    stored = [e for e in p.list_entries() if e.name == name]
    assert len(stored) == total, f"{len(stored)} entries stored, expected {total}"
    assert sorted(e.version for e in stored) == sorted(f"1.{i}.0" for i in range(total))
    assert {(e.metadata["w"], e.metadata["i"]) for e in stored} == {
        (w, i) for w in range(processes) for i in range(per_process)
    }
    assert p.get_entry(name).version == f"1.{total - 1}.0"


provider_checks: dict[str, Callable[[Factory], None]] = {
    "entry_round_trip": check_entry_round_trip,
    "explicit_versions": check_explicit_versions,
    "idempotent_entry_id": check_idempotent_entry_id,
    "listing": check_listing,
    "schemas": check_schemas,
    "concurrent_add": check_concurrent_add,
}


def run_provider_conformance(factory: Factory, *, skip: tuple[str, ...] = ()) -> list[str]:
    """Run every check against providers made by ``factory``; return the names of those run.

    Raises:
        AssertionError: Naming the first check that failed.
    """
    ran = []
    for name, check in provider_checks.items():
        if name in skip:
            continue
        try:
            check(factory)
        except AssertionError as exc:
            raise AssertionError(f"provider conformance check {name!r} failed: {exc}") from exc
        ran.append(name)
    return ran
