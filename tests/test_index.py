"""atdata.Index: write/insert/get, schema versioning, default index, @local names, repositories."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

import atdata
from atdata.index import Index, set_default_index


@atdata.packable
class Img:
    pixels: atdata.NDArray
    label: str


@pytest.fixture
def index(tmp_path, monkeypatch):
    monkeypatch.setenv("ATDATA_HOME", str(tmp_path / "home"))
    idx = Index(path=str(tmp_path / "idx" / "index.db"))
    yield idx
    set_default_index(None)


def _imgs(n, start=0):
    return [Img(pixels=np.full((2, 2), i, "u1"), label=f"l{i}") for i in range(start, start + n)]


def test_zero_config_uses_atdata_home(tmp_path, monkeypatch):
    monkeypatch.setenv("ATDATA_HOME", str(tmp_path / "h"))
    idx = atdata.Index()
    assert idx.provider.path == str(tmp_path / "h" / "index.db")
    assert idx.data_store is None  # documented: none unless given
    assert idx.status()["data_store"]["url"] == str((tmp_path / "h" / "data").resolve())


def test_write_samples_records_everything(index):
    e = index.write_samples(
        _imgs(5),
        name="imgs",
        maxcount=2,
        description="tiny",
        license="MIT",
        tags=["t"],
        metadata={"k": 1},
    )
    assert (e.name, e.version, e.num_samples, len(e.shards)) == ("imgs", "1.0.0", 5, 3)
    assert [s.num_samples for s in e.shards] == [2, 2, 1]
    for s in e.shards:
        assert os.path.getsize(s.url) == s.size and len(s.sha256) == 64
    assert (e.description, e.license, e.tags, e.metadata) == ("tiny", "MIT", ["t"], {"k": 1})
    assert e.schema_ref == "atdata://local/schema/Img@1.0.0"
    assert index.get_dataset("imgs") == e  # the documented get_dataset returns the entry
    ds = index.open_dataset("imgs")
    assert ds.sample_type is Img
    assert [s.label for s in ds.ordered()] == ["l0", "l1", "l2", "l3", "l4"]


def test_same_name_makes_new_version_and_old_stays(index):
    a = index.write_samples(_imgs(2), name="d")
    b = index.write_samples(_imgs(3, 10), name="d")
    assert (a.version, b.version) == ("1.0.0", "1.1.0")
    assert [s.label for s in index.open_dataset("d", "1.0.0").ordered()] == ["l0", "l1"]
    assert len(index.open_dataset("d")) == 3
    assert index.get_dataset("d@1.0.0") == a and index.get_entry_by_name("d") == b
    assert index.get_entry(a.cid) == a and index.get_entry(b.cid) == b
    assert [(e.name, e.version) for e in index.list_datasets()] == [("d", "1.0.0"), ("d", "1.1.0")]
    assert [e.version for e in index.datasets] == ["1.0.0", "1.1.0"]
    with pytest.raises(atdata.ConfigError, match=r"already has version 1\.0\.0"):
        index.write_samples(_imgs(1), name="d", version="1.0.0")


def test_get_dataset_without_the_class(index):
    index.write_samples(_imgs(3), name="d")
    fresh = Index(path=index.provider.path)  # another process would know nothing of Img
    ds = fresh.open_dataset("d")
    assert ds.sample_type is not Img and ds.sample_type.__name__ == "Img"
    got = list(ds.ordered())
    assert got[2].label == "l2" and got[2].pixels.tolist() == [[2, 2], [2, 2]]


def test_missing_dataset_is_key_error(index):
    index.write_samples(_imgs(1), name="nopes")
    for call in (index.get_dataset, index.get_entry_by_name, index.open_dataset):
        with pytest.raises(KeyError, match=r"'nope' is not in the index.*similar: \['nopes'\]"):
            call("nope")
    with pytest.raises(atdata.NotFoundError, match="no dataset entry with CID 'bafyfake'"):
        index.get_entry("bafyfake")


def test_publish_schema_versions(index):
    @atdata.packable
    class S:
        a: int

    assert index.publish_schema(S, "auto") == "atdata://local/schema/S@1.0.0"
    assert index.publish_schema(S, "auto") == "atdata://local/schema/S@1.0.0"  # identical: same

    @atdata.packable
    class S:
        a: int
        b: str | None = None

    assert index.publish_schema(S, "auto") == "atdata://local/schema/S@1.1.0"

    @atdata.packable
    class S:
        a: float
        b: str | None = None

    assert index.publish_schema(S, version="auto") == "atdata://local/schema/S@2.0.0"
    assert [r["version"] for r in index.list_schemas()] == ["1.0.0", "1.1.0", "2.0.0"]
    assert index.get_schema("S")["version"] == "2.0.0"
    # the documented default (no version): the latest version's patch + 1, every time
    assert index.publish_schema(S) == "atdata://local/schema/S@2.0.1"
    assert index.publish_schema(S) == "atdata://local/schema/S@2.0.2"
    assert index.publish_schema(S, version="3.0.0") == "atdata://local/schema/S@3.0.0"
    assert index.publish_schema(S) == "atdata://local/schema/S@3.0.1"
    assert index.publish_schema(S, "auto") == "atdata://local/schema/S@3.0.1"  # identical latest
    d = index.get_schema("S@1.1.0")
    assert (d["$ref"], d["name"]) == ("atdata://local/schema/S@1.1.0", "S")
    assert [(f["name"], f["optional"]) for f in d["fields"]] == [("a", False), ("b", True)]
    fields = index.get_schema_record("S@1.1.0").fields
    assert [(f.name, f.field_type.kind, f.field_type.primitive, f.optional) for f in fields] == [
        ("a", "primitive", "int", False), ("b", "primitive", "str", True)
    ]  # fmt: skip
    assert index.get_schema("local://schemas/mymod.S@1.0.0")["version"] == "1.0.0"  # legacy ref
    T = index.get_schema_type("atdata://local/schema/S@1.0.0")
    assert [f.name for f in T.atdata_fields()] == ["a"]
    with pytest.raises(atdata.SchemaError, match="different body"):
        index.publish_schema(S, version="1.0.0")
    with pytest.raises(KeyError, match="'Nope' is not in the index"):
        index.get_schema("Nope")
    with pytest.raises(KeyError, match="not in the index"):
        index.get_schema_type("atdata://local/schema/Nope@1.0.0")
    with pytest.raises(ValueError, match=r"Invalid schema reference 'https://example.com/S': use"):
        index.get_schema("https://example.com/S")
    with pytest.raises(AttributeError, match=r"not loaded; call .*get_schema_type\(ref\)"):
        _ = index.types.NeverLoaded


def test_insert_dataset_registers_existing_shards(index, tmp_path):
    ds = atdata.write_samples(_imgs(4), str(tmp_path / "ext" / "x-%02d.tar"), maxcount=2)
    e = index.insert_dataset(ds, name="ext", license="CC0-1.0")
    assert e.urls == ds.list_shards() and e.num_samples == 4
    assert [s.sha256 for s in e.shards] == [i.sha256 for i in ds.list_shard_infos()]
    again = index.insert_dataset(ds, name="ext")
    assert again.version == e.version == "1.0.0"
    # without known infos the shards are hashed
    plain = atdata.Dataset(ds.list_shards(), sample_type=Img)
    e2 = index.insert_dataset(plain, name="ext2")
    assert [s.sha256 for s in e2.shards] == [s.sha256 for s in e.shards]


def test_write_id_retry_completes_without_duplicate(index):
    e1 = index.write_samples(_imgs(2), name="r", write_id="job-1")
    e2 = index.write_samples(_imgs(2), name="r", write_id="job-1")
    assert e1 == e2 and len(index.list_datasets()) == 1


def test_failed_upload_leaves_no_entry(index, monkeypatch):
    from atdata.stores import LocalDiskStore

    calls = []
    real = LocalDiskStore.put_shard

    def flaky(self, *a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise atdata.StorageError("disk full")
        return real(self, *a, **k)

    monkeypatch.setattr(LocalDiskStore, "put_shard", flaky)
    with pytest.raises(atdata.StorageError, match="disk full"):
        index.write_samples(_imgs(4), name="f", maxcount=2, write_id="w1")
    assert index.list_datasets() == []
    e = index.write_samples(_imgs(4), name="f", maxcount=2, write_id="w1")  # the retry completes
    assert e.version == "1.0.0" and e.num_samples == 4 and len(index.list_datasets()) == 1


def test_corrupt_shard_is_integrity_error(tmp_path):
    from atdata.stores import LocalDiskStore

    src = tmp_path / "a.tar"
    src.write_bytes(b"x" * 10)
    with pytest.raises(atdata.IntegrityError, match="nothing recorded"):
        LocalDiskStore(tmp_path / "store").put_shard(str(src), "k/a.tar", sha256="0" * 64, size=10)
    assert not (tmp_path / "store" / "k" / "a.tar").exists()


def test_manifest_sidecars_are_stored(index):
    pytest.importorskip("pyarrow")
    e = index.write_samples(_imgs(3), name="m", manifest=True)
    stem = e.shards[0].url[: -len(".tar")]
    assert os.path.exists(stem + ".manifest.json")


def test_dict_samples_have_no_schema(index):
    e = index.write_samples([{"a": 1}, {"a": 2}], name="dicts")
    assert e.schema_ref is None
    assert [s["a"] for s in index.open_dataset("dicts").ordered()] == [1, 2]


def test_local_names_through_default_index(index):
    index.write_samples(_imgs(2), name="mnist")
    index.write_samples(_imgs(3), name="mnist")
    atdata.set_default_index(index)
    dd = atdata.load_dataset("@local/mnist", streaming=True)  # one dataset: the train split
    assert isinstance(dd, atdata.DatasetDict) and list(dd) == ["train"] and dd.streaming
    assert len(dd["train"]) == 3
    assert len(atdata.load_dataset("@local/mnist@1.0.0", split="train")) == 2
    ds = atdata.load_dataset("@local/mnist", sample_type=Img, split="test")  # any split name
    assert ds.sample_type is Img
    assert len(atdata.load_dataset("@local/mnist", index=index, split="x")) == 3
    with pytest.raises(KeyError, match=r"mnist@9\.0\.0"):
        atdata.load_dataset("@local/mnist@9.0.0")


def test_bad_names(index):
    from atdata._named import load_named

    with pytest.raises(atdata.ConfigError, match="not a dataset name"):
        load_named("@local")
    with pytest.raises(atdata.ConfigError, match="invalid"):
        index.write_samples([], name="a@b")
    ext = atdata.write_samples(_imgs(1), str(index.provider.path) + "-ext.tar")
    for bad in ("x/", "a//b", "a/./b", "a/."):  # empty or '.' parts: refused by name, up front
        with pytest.raises(atdata.ConfigError, match=f"dataset name '{re.escape(bad)}' is invalid"):
            index.write(_imgs(1), name=bad)
        with pytest.raises(atdata.ConfigError, match=f"dataset name '{re.escape(bad)}' is invalid"):
            index.insert_dataset(ext, name=bad)
    assert index.list_entries() == []


def test_repositories_mounted_by_name(tmp_path):
    from atdata.repository import Repository, create_repository

    lab_store = atdata.LocalDiskStore(tmp_path / "lab-data")
    lab = create_repository("sqlite", path=tmp_path / "lab" / "i.db", data_store=lab_store)
    shared = Repository(atdata.providers.create_provider("sqlite", path=tmp_path / "s.db"))
    index = Index(path=str(tmp_path / "local" / "i.db"), repos={"lab": lab, "shared": shared})
    e_lab = index.write(_imgs(2), name="lab/x")
    index.write(_imgs(1), name="x")
    index.write(_imgs(3), name="shared/x")
    assert str(lab_store.root) in e_lab.shards[0].url  # the repository's own store
    assert len(index.open_dataset("lab/x")) == 2 and len(index.open_dataset("x")) == 1
    assert (
        len(index.open_dataset("@local/x@1.0.0")) == 1 and len(index.open_dataset("shared/x")) == 3
    )
    assert index.get_dataset("lab/x") == e_lab
    assert [e.name for e in index.list_datasets("lab")] == ["x"]
    assert [e.num_samples for e in index.list_datasets()] == [1, 2, 3]
    assert index.repos == {"local": Repository(index.provider), "lab": lab, "shared": shared}
    with pytest.raises(KeyError, match="no repository 'other'"):
        index.list_datasets("other")
    with pytest.raises(atdata.ConfigError, match="reserved or invalid"):
        Index(path=str(tmp_path / "z.db"), repos={"local": lab})
    with pytest.raises(atdata.ConfigError, match="needs an IndexProvider"):
        Repository("sqlite")  # type: ignore[arg-type]


def test_at_sign_before_a_mounted_repository_routes_to_it(tmp_path):
    """``@lab/x`` names dataset ``x`` of mounted repository ``lab`` (as ``@local/x`` names this
    index's), never the atmosphere handle ``lab``; it used to raise ConfigError."""
    from atdata.repository import create_repository

    lab = create_repository("sqlite", path=tmp_path / "lab.db")
    index = Index(path=str(tmp_path / "i.db"), repos={"lab": lab}, atmosphere=None)
    e = index.write(_imgs(2), name="@lab/x")
    assert [x.name for x in index.list_datasets("lab")] == ["x"]
    assert index.list_datasets("local") == []
    assert index.get_dataset("@lab/x") == e == index.get_dataset("lab/x")
    assert index.get_dataset("@lab/x@1.0.0") == e == index.get_entry_by_name("@lab/x")
    assert len(index.open_dataset("@lab/x")) == 2
    # an unmounted name is an atmosphere handle: refused here (atmosphere=None), with the fix
    with pytest.raises(atdata.ConfigError, match="atmosphere=None"):
        index.get_dataset("@other/x")


def test_repos_always_holds_local_with_the_index_provider_and_store(tmp_path):
    # upstream's docs: "The index stores all backends in a uniform repos dict; 'local' is always
    # present", iterated as name -> repo with .provider and .data_store
    store = atdata.LocalDiskStore(tmp_path / "data")
    index = Index(path=str(tmp_path / "i.db"), data_store=store)
    shown = {n: (type(r.provider).__name__, r.data_store) for n, r in index.repos.items()}
    assert shown == {"local": ("SqliteProvider", store)}  # the documented class name
    assert index.repos["local"].provider is index.provider
    bare = Index(path=str(tmp_path / "j.db"))
    assert list(bare.repos) == ["local"] and bare.repos["local"].data_store is None
    bare.repos.clear()  # a copy: the index keeps its repositories
    assert list(bare.repos) == ["local"]


def test_local_name_starting_with_a_repository_name(tmp_path):
    """``@local/lab/x`` is this index's own dataset ``lab/x``: found by every lookup, even
    though ``lab`` is also a mounted repository (get_dataset routed the name twice)."""
    from atdata.repository import create_repository

    lab = create_repository("sqlite", path=tmp_path / "lab.db")
    index = Index(path=str(tmp_path / "i.db"), repos={"lab": lab})
    e = index.write(_imgs(2), name="@local/lab/x")
    index.write(_imgs(3), name="lab/x")
    assert e.name == "lab/x" and [x.name for x in index.list_datasets("local")] == ["lab/x"]
    assert index.get_entry_by_name("@local/lab/x") == e
    assert index.get_dataset("@local/lab/x") == e == index.get_dataset("@local/lab/x@1.0.0")
    assert index.get_dataset("local/lab/x", "1.0.0") == e
    assert len(index.open_dataset("@local/lab/x")) == 2 and len(index.open_dataset("lab/x")) == 3


def test_add_entry_into_a_repository_with_a_store_never_copies(tmp_path):
    from atdata.repository import create_repository

    lab_store = atdata.LocalDiskStore(tmp_path / "lab-data")
    lab = create_repository("sqlite", path=tmp_path / "lab.db", data_store=lab_store)
    index = Index(path=str(tmp_path / "i.db"), repos={"lab": lab})
    ext = atdata.write_samples(_imgs(3), str(tmp_path / "ext-%02d.tar"), maxcount=2)
    e = index.add_entry(ext, name="lab/ext")
    assert e.name == "ext" and e.data_urls == ext.list_shards()
    assert not (tmp_path / "lab-data").exists() or not any((tmp_path / "lab-data").iterdir())
    assert index.get_dataset("lab/ext") == e and lab.provider.get_entry("ext") == e
    assert e.schema_ref == "atdata://local/schema/Img@1.0.0"
    assert lab.provider.get_schema("Img") is not None


def _img_with(field_type):
    """A sample class named ``Img`` with one field ``v`` of ``field_type``."""
    return atdata.packable(type("Img", (), {"__annotations__": {"v": field_type}}))


def test_same_schema_ref_in_a_repository_is_its_own_type(tmp_path):
    """Schema ``Img@1.0.0`` of the index and of a mounted repository may differ: each dataset
    decodes with its own provider's schema (the index's class cache was keyed by ref alone)."""
    from atdata.repository import create_repository

    local_t, lab_t = _img_with(int), _img_with(str)
    lab = create_repository("sqlite", path=tmp_path / "lab.db")
    index = Index(path=str(tmp_path / "i.db"), repos={"lab": lab})
    a = index.write([local_t(v=1)], name="a")
    b = index.write([lab_t(v="s")], name="lab/b")
    ext = atdata.write_samples([lab_t(v="t")], str(tmp_path / "ext.tar"))
    index.add_entry(ext, name="lab/c")
    assert a.schema_ref == b.schema_ref == "atdata://local/schema/Img@1.0.0"
    assert [s.v for s in index.open_dataset("a").ordered()] == [1]
    assert [s.v for s in index.open_dataset("lab/b").ordered()] == ["s"]
    assert [s.v for s in index.open_dataset("lab/c").ordered()] == ["t"]
    assert index.get_schema_type(a.schema_ref) is local_t


def test_status_reports_down_provider(tmp_path):
    from atdata.index import RedisProvider

    idx = Index(
        RedisProvider("redis://127.0.0.1:1/0", connect_timeout=0.5),
        data_store=atdata.LocalDiskStore(tmp_path),
    )
    st = idx.status()
    assert st["provider"]["ok"] is False and "127.0.0.1:1" in st["provider"]["error"]
    assert st["data_store"]["ok"] is True


def test_entries_is_a_generator(index):
    import types

    assert isinstance(index.entries, types.GeneratorType) and list(index.entries) == []


def test_types_namespace_get(index):
    @atdata.packable
    class Got:
        a: int

    ref = index.publish_schema(Got, version="1.0.0")
    assert index.types.get("Got") is None and index.types.get("Got", 5) == 5
    T = index.get_schema_type(ref)
    assert index.types.get("Got") is T


# -- write_id: reproducible shards, retries that upload nothing twice, concurrent runs ---------


def _keys(index, name):
    return [s.__key__ for s in index.open_dataset(name).ordered()]


def _write_key_for(write_id, i):
    import uuid

    return str(uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, "atdata:write_id"), f"{write_id}/{i}"))


def test_write_id_keys_derive_from_write_id_and_position(index):
    from atdata._wire.sample import set_key

    rows = _imgs(3)
    set_key(rows[1], "own-key")
    index.write_samples(rows, name="k", write_id="job")
    assert _keys(index, "k") == [_write_key_for("job", 0), "own-key", _write_key_for("job", 2)]
    assert _keys(index, "k")[0] == "0a5f3692-8a0a-52f2-87bc-aa50557620d3"  # a uuid5: same every run
    index.write_samples(_imgs(2), name="k2", key="index", write_id="job2")  # `key` still decides
    assert _keys(index, "k2") == ["00000000", "00000001"]


def test_without_write_id_keys_and_bytes_differ_between_writes(index):
    a = index.write_samples(_imgs(3), name="a")
    b = index.write_samples(_imgs(3), name="b")
    ka, kb = _keys(index, "a"), _keys(index, "b")
    assert len(set(ka) | set(kb)) == 6 and {len(k) for k in ka + kb} == {36}  # fresh uuid1s
    assert {k[14] for k in ka + kb} == {"1"}  # uuid version 1, as before
    assert a.shards[0].sha256 != b.shards[0].sha256
    assert os.path.dirname(a.urls[0]).endswith(f"/a/{a.entry_id}")  # no digest level


def test_same_write_id_in_two_indexes_writes_byte_identical_shards(tmp_path):
    pytest.importorskip("pyarrow")
    out = []
    for n in ("one", "two"):
        idx = Index(path=str(tmp_path / n / "i.db"), data_store=atdata.LocalDiskStore(tmp_path / n))
        e = idx.write_samples(_imgs(5), name="d", maxcount=2, manifest=True, write_id="job")
        files = {}
        for s in e.shards:
            stem = s.url[: -len(".tar")]
            for p in (s.url, stem + ".manifest.json", stem + ".manifest.parquet"):
                files[os.path.relpath(p, tmp_path / n)] = Path(p).read_bytes()
        out.append(files)
    assert out[0] == out[1] and len(out[0]) == 9  # 3 shards, each with its 2 manifest files
    (where,) = {os.path.dirname(p) for p in out[0]}  # one directory: d/job/<digest of bytes>
    assert re.fullmatch(r"d/job/[0-9a-f]{16}", where)


def test_concurrent_runs_with_the_same_write_id_commit_a_consistent_entry(tmp_path):
    """The job and its retry run at once: B stores its shards while A is about to commit."""
    db = str(tmp_path / "i.db")
    a, b = Index(path=db), Index(path=db)
    real = a.provider.add_entry
    seen = []

    def a_commit(entry):
        def paused(e):
            seen.append(e)
            raise RuntimeError("B paused before commit")

        b.provider.add_entry = paused
        with pytest.raises(RuntimeError, match="B paused"):
            b.write_samples(_imgs(3), name="d", write_id="job")
        return real(entry)

    a.provider.add_entry = a_commit
    e = a.write_samples(_imgs(3), name="d", write_id="job")
    assert atdata.verify_checksums(e) == {e.urls[0]: "ok"}
    assert [(s.url, s.sha256) for s in seen[0].shards] == [(s.url, s.sha256) for s in e.shards]
    b.provider.add_entry = real
    assert b.write_samples(_imgs(3), name="d", write_id="job") == e  # B resumed: the same entry
    assert len(a.list_datasets()) == 1


def test_same_write_id_with_other_samples_never_commits_other_bytes(tmp_path):
    """A non-deterministic source: B (other samples) commits while A is about to."""
    db = str(tmp_path / "i.db")
    a, b = Index(path=db), Index(path=db)
    real = a.provider.add_entry
    won = []

    def a_commit(entry):
        won.append(b.write_samples(_imgs(3, start=10), name="d", write_id="job"))
        return real(entry)

    a.provider.add_entry = a_commit
    with pytest.raises(atdata.IntegrityError) as ei:
        a.write_samples(_imgs(3), name="d", write_id="job")
    msg = str(ei.value)
    assert "write_id 'job' of dataset 'd'" in msg and won[0].urls[0] in msg
    assert "Rerun with the same write_id" in msg
    (committed,) = a.list_datasets()
    assert committed == won[0] and atdata.verify_checksums(committed) == {committed.urls[0]: "ok"}
    assert [s.label for s in a.open_dataset("d").ordered()] == ["l10", "l11", "l12"]
    # A's shards went beside B's, never over them
    job = os.path.dirname(os.path.dirname(committed.urls[0]))
    assert len(os.listdir(job)) == 2
    # the rerun the message names returns the committed entry
    assert a.write_samples(_imgs(3), name="d", write_id="job") == committed


def test_retry_after_a_failed_third_shard_stores_only_what_is_missing(index, monkeypatch):
    pytest.importorskip("pyarrow")
    from atdata.stores import LocalDiskStore

    real = LocalDiskStore.put_shard
    shards: list[str] = []

    def flaky(self, path, key, **k):
        if key.endswith(".tar"):
            shards.append(key)
            if len(shards) == 3:
                raise atdata.StorageError("network down")
        return real(self, path, key, **k)

    monkeypatch.setattr(LocalDiskStore, "put_shard", flaky)
    with pytest.raises(atdata.StorageError, match="network down"):
        index.write_samples(_imgs(6), name="f", maxcount=2, manifest=True, write_id="w1")
    assert index.list_datasets() == []
    root = index.write_store.root
    stored = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert [os.path.basename(p) for p in stored] == [
        "f-000000.manifest.json", "f-000000.manifest.parquet", "f-000000.tar",
        "f-000001.manifest.json", "f-000001.manifest.parquet", "f-000001.tar",
    ]  # fmt: skip
    before = {p: (os.stat(root / p).st_ino, (root / p).read_bytes()) for p in stored}

    wrote = []
    real_replace = os.replace

    def replace(src, dst):
        name = os.path.basename(dst)
        if str(dst).startswith(str(root)) and "/.staging/" not in str(dst) and name[0] != ".":
            wrote.append(name)
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    e = index.write_samples(_imgs(6), name="f", maxcount=2, manifest=True, write_id="w1")
    assert (e.num_samples, len(index.list_datasets())) == (6, 1)
    # only the third shard and its manifest were stored; the first two were left as they were
    assert sorted(wrote) == ["f-000002.manifest.json", "f-000002.manifest.parquet", "f-000002.tar"]
    assert {p: (os.stat(root / p).st_ino, (root / p).read_bytes()) for p in stored} == before
    assert [os.path.relpath(u, root) for u in e.urls] == [
        p for p in stored if p.endswith(".tar")
    ] + [os.path.join(os.path.dirname(stored[0]), "f-000002.tar")]
    assert set(atdata.verify_checksums(e).values()) == {"ok"}


def test_a_write_id_reused_for_another_name_is_refused_not_answered_with_its_entry(index):
    """write_samples(name="b", write_id="job-1") after "a" committed job-1 returned a's entry
    (name 'a', a's samples) without writing anything; it now raises, naming both datasets."""
    a = index.write_samples(_imgs(2), name="a", write_id="job-1")
    with pytest.raises(atdata.ConfigError, match=r"write_id 'job-1' was committed as dataset 'a'"):
        index.write_samples(_imgs(3), name="b", write_id="job-1")
    assert [e.name for e in index.list_datasets()] == ["a"]
    assert index.write_samples(_imgs(2), name="a", write_id="job-1") == a
    assert index.write_samples(_imgs(3), name="b", write_id="job-2").num_samples == 3


def _fix_for(ref: str) -> str:
    return (
        f"the file was moved or deleted; check the entry's shards with 'atdata verify {ref}', "
        "then restore them or write the dataset again"
    )


def test_a_deleted_shard_names_its_index_entry_and_the_fix(index):
    index.write_samples(_imgs(4), name="pics", maxcount=2)
    ds = index.open_dataset("pics")
    gone = ds.list_shards()[1]
    os.unlink(gone)
    want = f"shard not found: {gone} (index entry pics@1.0.0 of {index.provider.url}: "
    want += _fix_for("pics@1.0.0") + ")"
    for read in (list, lambda d: d[3]):  # a stream, a ranged read
        with pytest.raises(atdata.DataNotFoundError) as ei:
            read(index.open_dataset("pics"))
        assert str(ei.value) == want
    with pytest.raises(atdata.DataNotFoundError) as ei:  # the same files, not from the index
        list(atdata.Dataset(ds.list_shards(), sample_type=Img))
    assert str(ei.value) == f"shard not found: {gone}"


def test_a_deleted_s3_shard_names_its_index_entry(s3_endpoint, tmp_path):
    import contextlib

    from atdata.stores._s3 import make_client

    creds = {"AWS_ENDPOINT": s3_endpoint, "AWS_ACCESS_KEY_ID": "testing",
             "AWS_SECRET_ACCESS_KEY": "testing-secret", "AWS_REGION": "us-east-1"}  # fmt: skip
    client = make_client(endpoint_url=s3_endpoint, aws_access_key_id="testing",
                         aws_secret_access_key="testing-secret", region_name="us-east-1")  # fmt: skip
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket="atdata-gone")
    idx = Index(
        path=str(tmp_path / "i.db"), data_store=atdata.S3DataStore(creds, bucket="atdata-gone")
    )
    idx.write_samples(_imgs(4), name="pics", maxcount=2)
    gone = idx.open_dataset("pics").list_shards()[0]
    client.delete_object(Bucket="atdata-gone", Key=gone.split("/", 3)[3])
    with pytest.raises(atdata.ShardError) as ei:
        list(idx.open_dataset("pics"))
    assert str(ei.value) == (
        f"shard {gone} is not found (index entry pics@1.0.0 of {idx.provider.url}: "
        + _fix_for("pics@1.0.0")
        + ")"
    )
