"""Upstream atdata's Redis index layout (``LocalDatasetEntry:<cid>``, ``LocalSchema:<Name>@<v>``,
``Label:<name>@<v>``): read by our RedisProvider, and our commits mirrored into it; checked with
hand-written upstream keys, and live against upstream 0.7.0b1's own Index both ways."""

from __future__ import annotations

import json
import textwrap
import uuid

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import atdata
from atdata._wire.schema_json import schema_body
from atdata.index._entry import entry_cid
from atdata.providers._redis_legacy import legacy_fields, schema_from_legacy
from tests._index_backends import REDIS_URL, port_open
from tests._services import require_service
from tests._upstream import run_upstream

# -- the schema conversion ----------------------------------------------------------------------
_FIELD_TYPES = {
    "str": str, "int": int, "float": float, "bool": bool, "bytes": bytes,
    "nd": atdata.NDArray, "list_str": list[str], "list_int": list[int],
}  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(sorted(_FIELD_TYPES)), st.booleans()), min_size=1, max_size=6
    )
)
def test_upstream_field_list_round_trips_our_schema_body(spec):
    ann, ns = {}, {}
    for i, (kind, optional) in enumerate(spec):
        t = _FIELD_TYPES[kind]
        ann[f"f{i}"] = t | None if optional else t
    required = {k: v for k, v in ann.items() if "None" not in str(v)}
    optional = {k: v for k, v in ann.items() if k not in required}
    ns["__annotations__"] = {**required, **optional}
    ns.update({k: None for k in optional})
    typ = atdata.packable(type("Probe", (), ns))
    body = schema_body(typ)
    fields = legacy_fields(body)
    assert fields is not None and [f["name"] for f in fields] == list(ns["__annotations__"])
    text = json.dumps({"name": "Probe", "version": "1.2.3", "fields": fields})
    back = schema_from_legacy(text)
    assert (back.name, back.version) == ("Probe", "1.2.3")
    assert back.body == body


def test_upstream_schema_kinds_we_cannot_type_decode_as_any():
    text = json.dumps({"name": "mod.Frame", "version": "1.0.0", "fields": [
        {"name": "df", "fieldType": {"$type": "local#dataframe"}, "optional": False},
        {"name": "m", "fieldType": {"$type": "local#ndarray", "dtype": "uint8"}, "optional": True},
    ]})  # fmt: skip
    rec = schema_from_legacy(text)
    assert rec.name == "Frame"  # upstream's legacy "module.Class" names
    assert rec.body["properties"]["df"] == {} and rec.body["required"] == ["df"]
    with pytest.raises(ValueError, match="LocalSchema:x"):
        schema_from_legacy("{}", "LocalSchema:x")


@atdata.packable
class Nested:
    inner: dict[str, int]


def test_fields_upstream_cannot_express_are_not_mirrored():
    assert legacy_fields(schema_body(Nested)) is None


# -- against Redis ------------------------------------------------------------------------------
@pytest.fixture
def redis_db():
    if not port_open(6379):
        require_service("Redis", "nothing listens on 127.0.0.1:6379")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    run = uuid.uuid4().hex[:8]
    yield client, run
    for pattern in (f"atdata-legacy-{run}:*", f"*{run}*", "LocalSchema:Reading@*",
                    "LocalSchema:UpstreamProbe@*"):  # fmt: skip
        for key in client.scan_iter(match=pattern):
            client.delete(key)
    for key in client.scan_iter(match="LocalDatasetEntry:*"):
        if run in (client.hget(key, "name") or b"").decode():
            client.delete(key)
    client.close()


@atdata.packable
class Reading:
    sensor: str
    value: int
    trace: atdata.NDArray


def _readings(n):
    return [Reading(sensor=f"s{i}", value=i, trace=np.arange(3, dtype="f4") + i) for i in range(n)]


def _provider(client, run):
    from atdata.providers._redis import RedisProvider

    return RedisProvider(client, prefix=f"atdata-legacy-{run}:", legacy_keys=True)


def test_legacy_keys_are_on_only_for_the_default_prefix(redis_db):
    from atdata.providers._redis import RedisProvider

    client, run = redis_db
    assert RedisProvider(client).legacy_keys is True
    assert RedisProvider(client, prefix=f"mine-{run}:").legacy_keys is False
    import pickle

    assert pickle.loads(
        pickle.dumps(RedisProvider(REDIS_URL, prefix="x:", legacy_keys=True))
    ).legacy_keys


def test_entries_schemas_and_labels_in_upstream_keys_are_read(redis_db, tmp_path):
    client, run = redis_db
    name, sname = f"legacy-ds-{run}", f"Reading{run}"
    ds = atdata.write_samples(_readings(3), str(tmp_path / "r.tar"))
    ref = f"atdata://local/schema/{sname}@1.0.0"
    cid = entry_cid(ref, ds.list_shards())
    # what upstream 0.7.0b1 writes (keys and values as observed from its Index)
    client.set(f"LocalSchema:{sname}@1.0.0", json.dumps({
        "name": sname, "version": "1.0.0", "description": "readings",
        "createdAt": "2026-01-01T00:00:00+00:00", "fields": [
            {"name": "sensor", "fieldType": {"$type": "local#primitive", "primitive": "str"}, "optional": False},
            {"name": "value", "fieldType": {"$type": "local#primitive", "primitive": "int"}, "optional": False},
            {"name": "trace", "fieldType": {"$type": "local#ndarray", "dtype": "float32"}, "optional": False},
        ]}))  # fmt: skip
    client.hset(f"LocalDatasetEntry:{cid}", mapping={
        "name": name, "schema_ref": ref, "cid": cid,
        "data_urls": msgpack.packb(ds.list_shards()), "metadata": msgpack.packb({"k": 1}),
    })  # fmt: skip
    client.hset(f"Label:{name}@", mapping={"cid": cid, "name": name, "version": ""})
    client.hset(
        f"Label:{name}-v@2.0.0", mapping={"cid": cid, "name": f"{name}-v", "version": "2.0.0"}
    )
    index = atdata.Index(_provider(client, run), atmosphere=None)
    entry = index.get_dataset(name)
    assert (entry.cid, entry.schema_ref, entry.data_urls, entry.metadata) == (
        cid, ref, ds.list_shards(), {"k": 1},
    )  # fmt: skip
    assert cid in {e.cid for e in index.list_entries()}
    assert index.get_entry(cid).name == name
    schema = index.get_schema(ref)
    assert schema["name"] == sname and schema["version"] == "1.0.0"
    assert any(s["name"] == sname for s in index.list_schemas())
    opened = index.open_dataset(name)
    assert opened.sample_type.__name__ == sname
    got = list(opened)
    assert [(s.sensor, s.value) for s in got] == [("s0", 0), ("s1", 1), ("s2", 2)]
    assert got[2].trace.tolist() == [2.0, 3.0, 4.0]
    assert index.get_label(f"{name}-v", version="2.0.0").cid == cid
    assert (f"{name}-v", cid, "2.0.0") in index.list_labels()


def test_our_commits_are_mirrored_into_upstream_keys(redis_db, tmp_path):
    client, run = redis_db
    name = f"ours-{run}"
    index = atdata.Index(_provider(client, run), atmosphere=None)
    ds = atdata.write_samples(_readings(2), str(tmp_path / "o.tar"))
    entry = index.insert_dataset(ds, name=name, metadata={"origin": "ours"})
    index.label(f"{name}-label", entry.cid, version="1.0.0")
    h = client.hgetall(f"LocalDatasetEntry:{entry.cid}")
    assert h[b"name"].decode() == name and h[b"cid"].decode() == entry.cid
    assert msgpack.unpackb(h[b"data_urls"]) == ds.list_shards()
    assert msgpack.unpackb(h[b"metadata"]) == {"origin": "ours"}
    assert client.hget(f"Label:{name}@", "cid").decode() == entry.cid
    assert client.hget(f"Label:{name}-label@1.0.0", "cid").decode() == entry.cid
    sname, sver = entry.schema_ref.rsplit("/", 1)[1].split("@")
    fields = json.loads(client.get(f"LocalSchema:{sname}@{sver}"))["fields"]
    assert [(f["name"], f["fieldType"]["$type"]) for f in fields] == [
        ("sensor", "local#primitive"), ("value", "local#primitive"), ("trace", "local#ndarray"),
    ]  # fmt: skip
    # read back: each entry and label once (the mirror is not a second copy)
    assert [e.cid for e in index.list_entries() if e.name == name] == [entry.cid]
    assert [x for x in index.list_labels() if x[0] == f"{name}-label"] == [
        (f"{name}-label", entry.cid, "1.0.0")
    ]


# -- live, with upstream 0.7.0b1's own Index ---------------------------------------------------------
_UPSTREAM_WRITE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from numpy.typing import NDArray
    from redis import Redis
    import atdata
    from atdata.local import Index

    shard, name, db = sys.argv[1], sys.argv[2], int(sys.argv[3])

    @atdata.packable
    class UpstreamProbe:
        label: str
        score: float
        vec: NDArray

    ds = atdata.write_samples(
        [UpstreamProbe(label=f"u{i}", score=i / 2, vec=np.arange(2, dtype=np.float32) * i)
         for i in range(3)], shard)
    idx = Index(redis=Redis(db=db))
    ref = idx.publish_schema(UpstreamProbe, version="1.0.0")
    e = idx.insert_dataset(ds, name=name, schema_ref=ref)
    print(json.dumps({"cid": e.cid, "ref": ref}))
    """
)

_UPSTREAM_READ = textwrap.dedent(
    """
    import json, sys
    from redis import Redis
    import atdata
    from atdata.local import Index

    name, db = sys.argv[1], int(sys.argv[2])
    idx = Index(redis=Redis(db=db))
    entry = idx.get_dataset(name)
    typ = idx.decode_schema(entry.schema_ref)
    ds = atdata.Dataset[typ](entry.data_urls[0])
    print(json.dumps({"cid": entry.cid, "rows": [[s.sensor, s.value, s.trace.tolist()] for s in ds.ordered()]}))
    """
)


def test_live_upstream_index_written_to_redis_is_read_here(redis_db, tmp_path):
    client, run = redis_db
    name = f"upstream-live-{run}"
    out = run_upstream(_UPSTREAM_WRITE, str(tmp_path / "u.tar"), name, "15")
    index = atdata.Index(_provider(client, run), atmosphere=None)
    entry = index.get_dataset(name)
    assert entry.cid == out["cid"] and entry.schema_ref == out["ref"]
    rows = [(s.label, s.score, s.vec.tolist()) for s in index.open_dataset(name)]
    assert rows == [("u0", 0.0, [0.0, 0.0]), ("u1", 0.5, [0.0, 1.0]), ("u2", 1.0, [0.0, 2.0])]


def test_live_upstream_reads_what_we_index_in_redis(redis_db, tmp_path):
    client, run = redis_db
    name = f"ours-live-{run}"
    index = atdata.Index(_provider(client, run), atmosphere=None)
    entry = index.insert_dataset(
        atdata.write_samples(_readings(2), str(tmp_path / "o.tar")), name=name
    )
    out = run_upstream(_UPSTREAM_READ, name, "15")
    assert out["cid"] == entry.cid
    assert out["rows"] == [["s0", 0, [0.0, 1.0, 2.0]], ["s1", 1, [1.0, 2.0, 3.0]]]


def test_index_schema_dicts_use_upstreams_field_types(tmp_path):
    index = atdata.Index(path=str(tmp_path / "i.db"), atmosphere=None)
    ref = index.publish_schema(Reading, version="1.0.0")
    fields = {f["name"]: f for f in index.get_schema(ref)["fields"]}
    assert fields["sensor"]["fieldType"] == {"$type": "local#primitive", "primitive": "str"}
    assert fields["value"]["fieldType"] == {"$type": "local#primitive", "primitive": "int"}
    assert fields["trace"]["fieldType"] == {"$type": "local#ndarray", "dtype": "float32"}
    assert fields["sensor"]["optional"] is False
    nested = {f["name"]: f for f in index.get_schema(index.publish_schema(Nested))["fields"]}
    assert nested["inner"]["fieldType"] == {  # no upstream form: the JSON Schema property
        "type": "object", "additionalProperties": {"type": "integer"},
    }  # fmt: skip
