"""Upstream atdata's PostgreSQL index tables beside ours: rows upstream wrote are read and our
commits are written into them; by hand and live against upstream 0.7.0b1's own Index, each test
in its own pair of PostgreSQL schemas."""

from __future__ import annotations

import json
import subprocess
import textwrap
import uuid

import msgpack
import numpy as np
import pytest

import atdata
from atdata.index._entry import entry_cid
from tests._index_backends import pg_dsn


@atdata.packable
class PgProbe:
    sensor: str
    value: int
    trace: atdata.NDArray


def _probes(n):
    return [PgProbe(sensor=f"s{i}", value=i, trace=np.arange(2, dtype="f4") + i) for i in range(n)]


@pytest.fixture
def pg():
    import psycopg

    from atdata.providers._postgres import PostgresProvider

    dsn, run = pg_dsn(), uuid.uuid4().hex[:8]
    ours, theirs = f"atdata_pgup_{run}", f"upstream_pgup_{run}"
    yield dsn, theirs, lambda: PostgresProvider(dsn, schema=ours, legacy_schema=theirs)
    with psycopg.connect(dsn, autocommit=True) as c:
        for s in (ours, theirs):
            c.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')


def test_legacy_schema_defaults(pg):
    from atdata.providers._postgres import PostgresProvider

    dsn, _theirs, _ = pg
    p = PostgresProvider(dsn, schema=f"atdata_pgup_{uuid.uuid4().hex[:8]}")
    try:
        assert p.legacy_schema == ""  # a schema of its own: no upstream tables
    finally:
        p.drop()


def test_rows_upstream_wrote_are_read_and_ours_are_written(pg, tmp_path):
    import psycopg

    dsn, theirs, make = pg
    idx = atdata.Index(make(), atmosphere=None)
    ds = atdata.write_samples(_probes(3), str(tmp_path / "p.tar"))
    ref = "atdata://local/schema/PgProbe@1.0.0"
    cid = entry_cid(ref, ds.list_shards())
    fields = [
        {"name": "sensor", "fieldType": {"$type": "local#primitive", "primitive": "str"}, "optional": False},
        {"name": "value", "fieldType": {"$type": "local#primitive", "primitive": "int"}, "optional": False},
        {"name": "trace", "fieldType": {"$type": "local#ndarray", "dtype": "float32"}, "optional": False},
    ]  # fmt: skip
    with psycopg.connect(dsn, autocommit=True) as c:  # what upstream's PostgresProvider writes
        c.execute(f'INSERT INTO "{theirs}".schemas (name, version, schema_json) VALUES (%s, %s, %s)',
                  ("PgProbe", "1.0.0", json.dumps({"name": "PgProbe", "version": "1.0.0", "fields": fields})))  # fmt: skip
        c.execute(f'INSERT INTO "{theirs}".dataset_entries (cid, name, schema_ref, data_urls, metadata) '
                  "VALUES (%s, %s, %s, %s, %s)", (cid, "pg-probes", ref, msgpack.packb(ds.list_shards()),
                  msgpack.packb({"k": 1})))  # fmt: skip
        c.execute(
            f"INSERT INTO \"{theirs}\".labels (name, cid, version) VALUES ('best', %s, '2.0.0')",
            (cid,),
        )
    e = idx.get_dataset("pg-probes")
    assert (e.cid, e.schema_ref, e.data_urls, e.metadata) == (cid, ref, ds.list_shards(), {"k": 1})
    assert [(s.sensor, s.value) for s in idx.open_dataset("pg-probes")] == [
        ("s0", 0), ("s1", 1), ("s2", 2),
    ]  # fmt: skip
    assert idx.list_labels() == [("best", cid, "2.0.0")]
    # ours, written into upstream's tables too (and read back once)
    other = atdata.write_samples(_probes(2), str(tmp_path / "o.tar"))
    mine = idx.insert_dataset(other, name="mine", schema_ref=ref)
    with psycopg.connect(dsn, autocommit=True) as c:
        row = c.execute(f'SELECT name, data_urls FROM "{theirs}".dataset_entries WHERE cid=%s',
                        (mine.cid,)).fetchone()  # fmt: skip
        label = c.execute(
            f"SELECT cid FROM \"{theirs}\".labels WHERE name='mine' AND version=''"
        ).fetchone()
    assert row[0] == "mine" and msgpack.unpackb(bytes(row[1])) == other.list_shards()
    assert label[0] == mine.cid
    assert sorted(x.name for x in idx.list_entries()) == ["mine", "pg-probes"]


_UPSTREAM_WRITE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from numpy.typing import NDArray
    import atdata
    from atdata.local import Index
    from atdata.providers._postgres import PostgresProvider

    shard, dsn = sys.argv[1], sys.argv[2]

    @atdata.packable
    class PgUp:
        label: str
        vec: NDArray

    ds = atdata.write_samples([PgUp(label=f"u{i}", vec=np.arange(2, dtype=np.float32) * i)
                               for i in range(3)], shard)
    idx = Index(provider=PostgresProvider(dsn=dsn))
    ref = idx.publish_schema(PgUp, version="1.0.0")
    e = idx.insert_dataset(ds, name="pg-up", schema_ref=ref)
    print(json.dumps({"cid": e.cid}))
    """
)


def _run_upstream(script: str, *args: str) -> dict:
    """``run_upstream`` once upstream's venv has its postgres extra (psycopg)."""
    import shutil

    from tests._services import require_service
    from tests._upstream import run_upstream, upstream_python

    py = upstream_python()
    probe = subprocess.run([py, "-c", "import psycopg"], capture_output=True)
    if probe.returncode:  # upstream's postgres extra, into its throwaway venv
        uv = shutil.which("uv")
        got = subprocess.run(
            [uv or "uv", "pip", "install", "-q", "--python", py, "psycopg[binary]"],
            capture_output=True, text=True,
        )  # fmt: skip
        if got.returncode:
            require_service("upstream atdata", f"installing psycopg failed: {got.stderr[-300:]}")
    return run_upstream(script, *args)


def test_live_upstream_postgres_index_is_read_here(pg, tmp_path):
    import psycopg

    dsn, theirs, make = pg
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(f'CREATE SCHEMA IF NOT EXISTS "{theirs}"')
    sep = "&" if "?" in dsn else "?"
    upstream_dsn = f"{dsn}{sep}options=-csearch_path%3D{theirs}"  # upstream's tables there
    out = _run_upstream(_UPSTREAM_WRITE, str(tmp_path / "u.tar"), upstream_dsn)
    idx = atdata.Index(make(), atmosphere=None)
    assert idx.get_dataset("pg-up").cid == out["cid"]
    rows = [(s.label, s.vec.tolist()) for s in idx.open_dataset("pg-up")]
    assert rows == [("u0", [0.0, 0.0]), ("u1", [0.0, 1.0]), ("u2", [0.0, 2.0])]
