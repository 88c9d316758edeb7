"""Upstream atdata's SQLite index tables (``dataset_entries``, ``schemas``, ``labels``) in the
same file as ours: rows upstream wrote are read, our commits are written into them, checked by
hand and live against upstream 0.7.0b1's own Index both ways."""

from __future__ import annotations

import json
import sqlite3
import textwrap

import msgpack
import numpy as np

import atdata
from atdata.index._entry import entry_cid
from tests._upstream import run_upstream


@atdata.packable
class Probe:
    sensor: str
    value: int
    trace: atdata.NDArray


def _probes(n):
    return [Probe(sensor=f"s{i}", value=i, trace=np.arange(2, dtype="f4") + i) for i in range(n)]


def _index(path):
    return atdata.Index(path=str(path), atmosphere=None)


def test_rows_upstream_wrote_are_read(tmp_path):
    db = tmp_path / "index.db"
    _index(db)  # our file, with upstream's tables beside ours
    ds = atdata.write_samples(_probes(3), str(tmp_path / "p.tar"))
    ref = "atdata://local/schema/Probe@1.0.0"
    cid = entry_cid(ref, ds.list_shards())
    fields = [
        {"name": "sensor", "fieldType": {"$type": "local#primitive", "primitive": "str"}, "optional": False},
        {"name": "value", "fieldType": {"$type": "local#primitive", "primitive": "int"}, "optional": False},
        {"name": "trace", "fieldType": {"$type": "local#ndarray", "dtype": "float32"}, "optional": False},
    ]  # fmt: skip
    with sqlite3.connect(db) as c:  # what upstream's SqliteProvider writes
        c.execute("INSERT INTO schemas (name, version, schema_json) VALUES (?, ?, ?)",
                  ("Probe", "1.0.0", json.dumps({"name": "Probe", "version": "1.0.0", "fields": fields})))  # fmt: skip
        c.execute("INSERT INTO dataset_entries (cid, name, schema_ref, data_urls, metadata) "
                  "VALUES (?, ?, ?, ?, ?)", (cid, "probes", ref, msgpack.packb(ds.list_shards()),
                  msgpack.packb({"k": 1})))  # fmt: skip
        c.execute("INSERT INTO labels (name, cid, version) VALUES ('probes', ?, '')", (cid,))
        c.execute("INSERT INTO labels (name, cid, version) VALUES ('best', ?, '2.0.0')", (cid,))
    idx = _index(db)
    e = idx.get_dataset("probes")
    assert (e.cid, e.schema_ref, e.data_urls, e.metadata) == (cid, ref, ds.list_shards(), {"k": 1})
    assert [x.cid for x in idx.list_entries()] == [cid]
    assert [s["name"] for s in idx.list_schemas()] == ["Probe"]
    opened = idx.open_dataset("probes")
    assert [(s.sensor, s.value) for s in opened] == [("s0", 0), ("s1", 1), ("s2", 2)]
    assert idx.list_labels() == [("best", cid, "2.0.0")]  # the insert's own label is not listed
    assert idx.get_label("best", version="2.0.0").cid == cid


def test_our_commits_are_written_into_upstreams_tables(tmp_path):
    db = tmp_path / "index.db"
    idx = _index(db)
    ds = atdata.write_samples(_probes(2), str(tmp_path / "o.tar"))
    entry = idx.insert_dataset(ds, name="ours", metadata={"origin": "ours"})
    idx.label("stable", entry.cid, version="1.0.0")
    with sqlite3.connect(db) as c:
        row = c.execute("SELECT name, schema_ref, data_urls, metadata FROM dataset_entries "
                        "WHERE cid=?", (entry.cid,)).fetchone()  # fmt: skip
        labels = c.execute("SELECT name, cid, version FROM labels ORDER BY name").fetchall()
        schemas = c.execute("SELECT name, version, schema_json FROM schemas").fetchall()
    assert row[0] == "ours" and row[1] == entry.schema_ref
    assert msgpack.unpackb(row[2]) == ds.list_shards() and msgpack.unpackb(row[3]) == {
        "origin": "ours"
    }
    assert labels == [("ours", entry.cid, ""), ("stable", entry.cid, "1.0.0")]
    ((name, version, text),) = schemas
    assert (name, version) == ("Probe", entry.schema_ref.rsplit("@", 1)[1])
    assert [f["fieldType"]["$type"] for f in json.loads(text)["fields"]] == [
        "local#primitive", "local#primitive", "local#ndarray",
    ]  # fmt: skip
    # read back once each: the rows written for upstream are not second copies
    assert [e.cid for e in idx.list_entries()] == [entry.cid]
    assert idx.list_labels() == [("stable", entry.cid, "1.0.0")]
    assert len(idx.list_schemas()) == 1


def test_without_legacy_tables_the_file_has_only_ours(tmp_path):
    from atdata.providers._sqlite import SQLiteProvider

    p = SQLiteProvider(tmp_path / "plain.db", legacy_tables=False)
    p.ping()
    with sqlite3.connect(tmp_path / "plain.db") as c:
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"atdata_schemas", "atdata_entries", "atdata_records"}


_UPSTREAM_WRITE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from numpy.typing import NDArray
    import atdata
    from atdata.local import Index
    from atdata.providers._sqlite import SqliteProvider

    shard, db = sys.argv[1], sys.argv[2]

    @atdata.packable
    class UpProbe:
        label: str
        vec: NDArray

    ds = atdata.write_samples([UpProbe(label=f"u{i}", vec=np.arange(2, dtype=np.float32) * i)
                               for i in range(3)], shard)
    idx = Index(provider=SqliteProvider(path=db))
    ref = idx.publish_schema(UpProbe, version="1.0.0")
    e = idx.insert_dataset(ds, name="up", schema_ref=ref)
    print(json.dumps({"cid": e.cid}))
    """
)

_UPSTREAM_READ = textwrap.dedent(
    """
    import json, sys
    import atdata
    from atdata.local import Index
    from atdata.providers._sqlite import SqliteProvider

    idx = Index(provider=SqliteProvider(path=sys.argv[1]))
    entry = idx.get_dataset(sys.argv[2])
    typ = idx.decode_schema(entry.schema_ref)
    ds = atdata.Dataset[typ](entry.data_urls[0])
    print(json.dumps({"cid": entry.cid, "rows": [[s.sensor, s.value] for s in ds.ordered()]}))
    """
)


def test_live_upstream_sqlite_index_is_read_here(tmp_path):
    db = tmp_path / "index.db"
    out = run_upstream(_UPSTREAM_WRITE, str(tmp_path / "u.tar"), str(db))
    idx = _index(db)
    assert idx.get_dataset("up").cid == out["cid"]
    rows = [(s.label, s.vec.tolist()) for s in idx.open_dataset("up")]
    assert rows == [("u0", [0.0, 0.0]), ("u1", [0.0, 1.0]), ("u2", [0.0, 2.0])]


def test_live_upstream_reads_what_we_index_in_sqlite(tmp_path):
    db = tmp_path / "index.db"
    entry = _index(db).insert_dataset(
        atdata.write_samples(_probes(2), str(tmp_path / "o.tar")), name="ours"
    )
    out = run_upstream(_UPSTREAM_READ, str(db), "ours")
    assert out == {"cid": entry.cid, "rows": [["s0", 0], ["s1", 1]]}
