"""The provider conformance suite (atdata.testing) against SQLite, Redis and PostgreSQL."""

from __future__ import annotations

import pytest

from atdata import StorageError
from atdata.testing import provider_checks, run_provider_conformance
from tests._index_backends import make_factory

KINDS = ["sqlite", "redis", "postgres"]


@pytest.fixture(params=KINDS)
def factory(request, tmp_path):
    f, cleanup = make_factory(request.param, tmp_path)
    yield f
    cleanup()


@pytest.mark.services
@pytest.mark.parametrize("check", sorted(provider_checks))
def test_conformance(factory, check):
    provider_checks[check](factory)


def test_run_all_on_sqlite(tmp_path):
    f, _ = make_factory("sqlite", tmp_path)
    assert run_provider_conformance(f, skip=("concurrent_add",)) == [
        "entry_round_trip", "explicit_versions", "idempotent_entry_id", "listing", "schemas",
    ]  # fmt: skip


def test_conformance_reports_the_failing_check(tmp_path):
    from atdata.index import SQLiteProvider

    class Broken(SQLiteProvider):
        def list_entries(self):
            return []

    with pytest.raises(AssertionError, match="conformance check 'idempotent_entry_id' failed"):
        run_provider_conformance(lambda: Broken(str(tmp_path / "b.db")), skip=("concurrent_add",))


def test_down_redis_is_a_clear_storage_error():
    from atdata.index import RedisProvider

    p = RedisProvider("redis://:hunter2@127.0.0.1:1/0", connect_timeout=1)
    with pytest.raises(StorageError) as ei:
        p.list_entries()
    msg = str(ei.value)
    assert "redis://:***@127.0.0.1:1/0" in msg and "hunter2" not in msg


def test_down_postgres_is_a_clear_storage_error():
    from atdata.index import PostgresProvider

    with pytest.raises(StorageError) as ei:
        PostgresProvider("postgresql://bob:hunter2@127.0.0.1:1/test", connect_timeout=1)
    msg = str(ei.value)
    assert "postgresql://bob:***@127.0.0.1:1/test" in msg and "hunter2" not in msg


def test_unwritable_sqlite_path_is_storage_error(tmp_path):
    from atdata.index import SQLiteProvider

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="cannot open the SQLite index"):
        SQLiteProvider(str(blocker / "index.db"))


@pytest.mark.services
def test_latest_version_follows_semver_precedence(factory):
    """A release outranks its pre-releases (inserted in either order), pre-release identifiers
    compare numerically or in ASCII order, and equal precedence (build metadata) falls back to
    the version text: every provider then picks the same latest and lists in the same order."""
    from atdata.index import DatasetEntry, SchemaRecord

    p = factory()
    for i, v in enumerate(["1.0.0-rc.2", "1.0.0", "1.0.0-rc.10", "1.0.0-beta", "1.0.0+b2"]):
        p.add_entry(DatasetEntry("d", version=v, entry_id=f"d{i}"))
    assert p.get_entry("d").version == "1.0.0+b2"
    assert [e.version for e in p.list_entries()] == [
        "1.0.0-beta", "1.0.0-rc.2", "1.0.0-rc.10", "1.0.0", "1.0.0+b2",
    ]  # fmt: skip
    p.add_entry(DatasetEntry("e", version="2.0.0", entry_id="e0"))
    p.add_entry(DatasetEntry("e", version="2.0.0-rc.1", entry_id="e1"))
    assert p.get_entry("e").version == "2.0.0"
    for v in ["1.1.0-a.1", "1.1.0", "1.1.0-a"]:
        p.put_schema(SchemaRecord("S", v, {"properties": {v: {"type": "string"}}}))
    assert p.get_schema("S").version == "1.1.0"
    assert [r.version for r in p.list_schemas()] == ["1.1.0-a", "1.1.0-a.1", "1.1.0"]


def test_sqlite_opening_a_new_file_waits_out_an_immediate_lock(tmp_path):
    # processes creating one index file at once can meet SQLite's immediate "database is
    # locked" (no busy timeout: a reader upgrading to writer beside another); seen once in CI as
    # a watcher that could not open its ledger. Opening tries again until the timeout.
    import sqlite3

    from atdata.providers._sqlite import SQLiteProvider

    class Contended:  # a connection whose first two statements meet the lock
        def __init__(self, conn):
            self.conn, self.left = conn, 2

        def execute(self, *a):
            if self.left:
                self.left -= 1
                raise sqlite3.OperationalError("database is locked")
            return self.conn.execute(*a)

        def executescript(self, *a):
            return self.conn.executescript(*a)

    p = SQLiteProvider(tmp_path / "a.db")
    raw = sqlite3.connect(tmp_path / "b.db", isolation_level=None)
    c = Contended(raw)
    p._prepare(c)  # type: ignore[arg-type]
    assert c.left == 0
    assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    p.timeout = 0.0  # past the timeout the lock is reported
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        p._prepare(Contended(raw))  # type: ignore[arg-type]


_ODD_NAMES = ["données", "数据/v1", "a b", "a:b", "x!y", "a%d", ".x", "a..b", "Ωmega-1"]


@pytest.mark.services
def test_names_in_any_script_round_trip_on_every_provider(factory, tmp_path):
    """Upstream indexes any text as a dataset name ("Human-readable dataset name", at most 200
    in its entry record); ours refused every letter outside A-Z while saying "use letters".
    Unicode and punctuation names now write, list, read back and take labels on every
    provider."""
    import atdata

    idx = atdata.Index(factory(), data_store=atdata.LocalDiskStore(tmp_path / "data"))
    for i, n in enumerate(_ODD_NAMES):
        e = idx.write_samples([{"i": i}, {"i": i + 100}], name=n, maxcount=1)
        assert [s["i"] for s in idx.open_dataset(n).ordered()] == [i, i + 100]
        idx.label(f"lbl-{n}", e.cid)
        assert idx.get_label(f"lbl-{n}").name == n
    assert sorted(e.name for e in idx.list_datasets()) == sorted(_ODD_NAMES)
    assert idx.get_dataset("données").shards[0].url.endswith("/données-000000.tar")


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("", "it is empty"),
        ("x@1", "it holds '@'"),
        ("a\\b", "it holds '\\\\\\\\'"),
        ("a[1]", r"it holds '\['"),
        ("x{1..2}", "it holds '{'"),
        ("a::b", "it holds '::'"),
        ("a/../b", r"it has an empty, '\.' or '\.\.' part"),
        ("/a", r"it has an empty, '\.' or '\.\.' part"),
        (".staging/x", "'.staging' is the data store's own directory"),
        ("é" * 101, "it has 202 UTF-8 bytes, more than 200"),
    ],
)
def test_names_that_cannot_be_stored_or_read_back_say_why(bad, why):
    from atdata import ConfigError
    from atdata.index._entry import check_name

    assert check_name("é" * 100) == "é" * 100
    with pytest.raises(ConfigError, match=f"is invalid: {why}"):
        check_name(bad)


@pytest.mark.services
def test_redis_latest_pointers_written_before_semver_precedence_are_recomputed(tmp_path):
    """A Redis index written before the pointers followed semver precedence keeps
    ``latest`` = the pre-release its release was inserted after; reads trusted the pointer (and
    so did the next write's comparison). The first use by a provider recomputes every name's
    pointer from the stored records, once per database."""
    from atdata.index import DatasetEntry, SchemaRecord

    f, cleanup = make_factory("redis", tmp_path)
    try:
        p = f()
        for i, v in enumerate(["1.0.0-rc1", "1.0.0", "0.9.0"]):
            p.add_entry(DatasetEntry("d", version=v, entry_id=f"d{i}"))
        for v in ["2.0.0-beta", "2.0.0"]:
            p.put_schema(SchemaRecord("S", v, {"properties": {v: {"type": "string"}}}))
        # what the older code left: pointers at the pre-releases, no layout marker
        p._client.hset(p._k["latest"], "d", "1.0.0-rc1")
        p._client.hset(p._k["schema_latest"], "S", "2.0.0-beta")
        p._client.delete(p.prefix + "latest_order")
        old = f()
        assert (old.get_entry("d").version, old.get_schema("S").version) == ("1.0.0", "2.0.0")
        assert p._client.hget(p._k["latest"], "d") == b"1.0.0"
        # once repaired, a pointer is trusted (no rescan): the marker is there
        assert p._client.get(p.prefix + "latest_order") == b"2"
        old.add_entry(DatasetEntry("d", version="1.0.0-rc2", entry_id="d9"))
        assert f().get_entry("d").version == "1.0.0"
    finally:
        cleanup()
