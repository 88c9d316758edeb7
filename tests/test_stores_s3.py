"""S3DataStore and S3Source against moto in server mode on loopback (boto3 speaks HTTP to it)."""

from __future__ import annotations

import contextlib
import hashlib

import numpy as np
import pytest

import atdata

BUCKET = "atdata-test"


@atdata.packable
class Vec:
    v: atdata.NDArray
    name: str


@pytest.fixture
def store(s3_endpoint, monkeypatch):
    from atdata.stores._s3 import make_client

    creds = {
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing-secret",
        "region_name": "us-east-1",
    }
    client = make_client(endpoint_url=s3_endpoint, **creds)
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=BUCKET)
    return atdata.S3DataStore(
        BUCKET, "runs", endpoint_url=s3_endpoint, multipart_threshold=5 * 1024 * 1024,
        multipart_chunksize=5 * 1024 * 1024, **creds,
    )  # fmt: skip


def test_put_verify_and_skip_existing(store, tmp_path):
    data = b"a" * 12_000_000  # > threshold: multipart upload (3 parts)
    p = tmp_path / "big.tar"
    p.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    url = store.put_shard(str(p), "x/big.tar", sha256=sha, size=len(data))
    assert url == f"s3://{BUCKET}/runs/x/big.tar"
    assert store.exists("x/big.tar", size=len(data), sha256=sha)
    assert not store.exists("x/big.tar", size=len(data), sha256="0" * 64)
    assert store.put_shard(str(p), "x/big.tar", sha256=sha, size=len(data), move=True) == url
    assert not p.exists()
    head = store.client.head_object(Bucket=BUCKET, Key="runs/x/big.tar")
    assert head["ContentLength"] == len(data) and head["Metadata"]["sha256"] == sha


def test_wrong_checksum_is_integrity_error(store, tmp_path):
    p = tmp_path / "a.tar"
    p.write_bytes(b"abc")
    with pytest.raises(atdata.IntegrityError, match="nothing recorded"):
        store.put_shard(str(p), "bad/a.tar", sha256="0" * 64, size=3)


def test_index_on_s3_round_trip(store, tmp_path):
    idx = atdata.Index(path=str(tmp_path / "i.db"), data_store=store)
    samples = [Vec(v=np.arange(3, dtype="f4") + i, name=f"n{i}") for i in range(7)]
    e = idx.write_samples(samples, name="vecs", maxcount=3)
    assert [s.url.startswith(f"s3://{BUCKET}/runs/vecs/") for s in e.shards] == [True] * 3
    ds = idx.open_dataset("vecs")
    got = list(ds.ordered())
    assert [s.name for s in got] == [f"n{i}" for i in range(7)]
    assert got[6].v.tolist() == [6.0, 7.0, 8.0]
    assert ds[4].name == "n4"  # random access through read_range


def test_s3source_braces_and_prefix(store, tmp_path):
    idx = atdata.Index(path=str(tmp_path / "i.db"), data_store=store)
    e = idx.write_samples([Vec(v=np.zeros(1), name=str(i)) for i in range(4)], name="b", maxcount=1)
    base = e.shards[0].url.rsplit("-", 1)[0]
    src = atdata.S3Source(f"{base}-{{000000..000003}}.tar", client=store.client)
    assert src.list_shards() == e.urls
    assert [s.name for s in atdata.Dataset(src, sample_type=Vec).ordered()] == ["0", "1", "2", "3"]
    by_prefix = atdata.S3Source(e.urls[0].rsplit("/", 1)[0] + "/", client=store.client)
    assert by_prefix.list_shards() == e.urls
    with pytest.raises(KeyError, match="not one of this source's 4 shards"):
        src.open_shard(f"s3://{BUCKET}/nope.tar")  # documented: KeyError for an unknown shard
    missing = atdata.S3Source(BUCKET, ["nope.tar"], client=store.client)
    with pytest.raises(atdata.ShardError, match="not found") as ei:
        missing.open_shard(f"s3://{BUCKET}/nope.tar")
    from botocore.exceptions import ClientError

    assert isinstance(ei.value, ClientError)  # still catchable as botocore's error
    assert ei.value.response["Error"]["Code"] in ("NoSuchKey", "404")


def test_failed_upload_leaves_no_entry(store, tmp_path, s3_endpoint):
    broken = atdata.S3DataStore("no-such-bucket", endpoint_url=s3_endpoint, max_attempts=1,
                                aws_access_key_id="testing", aws_secret_access_key="secret-xyz",
                                region_name="us-east-1")  # fmt: skip
    idx = atdata.Index(path=str(tmp_path / "i.db"), data_store=broken)
    with pytest.raises(atdata.StorageError) as ei:
        idx.write_samples([Vec(v=np.zeros(1), name="a")], name="x")
    assert "secret-xyz" not in str(ei.value)
    assert idx.list_datasets() == []
    assert idx.status()["data_store"]["ok"] is False


def test_write_id_retry_puts_only_the_missing_shards(store, tmp_path, monkeypatch):
    """A write_id retry after the third upload failed PUTs the third shard alone (moto counts)."""
    idx = atdata.Index(path=str(tmp_path / "i.db"), data_store=store)
    rows = [Vec(v=np.arange(2, dtype="f4") + i, name=f"n{i}") for i in range(6)]
    puts: list[str] = []
    store.client.meta.events.register(
        "before-parameter-build.s3.PutObject", lambda params, **_: puts.append(params["Key"])
    )
    real = atdata.S3DataStore.put_shard

    def flaky(self, path, key, **k):
        if key.endswith("d-000002.tar"):
            raise atdata.StorageError("connection reset")
        return real(self, path, key, **k)

    monkeypatch.setattr(atdata.S3DataStore, "put_shard", flaky)
    with pytest.raises(atdata.StorageError, match="connection reset"):
        idx.write_samples(rows, name="d", maxcount=2, write_id="job")
    assert idx.list_datasets() == []
    first = [p.rsplit("/", 1)[1] for p in puts]
    assert first == ["d-000000.tar", "d-000001.tar"]
    etags = {k: store.client.head_object(Bucket=BUCKET, Key=k)["ETag"] for k in puts}
    monkeypatch.setattr(atdata.S3DataStore, "put_shard", real)
    puts.clear()
    e = idx.write_samples(rows, name="d", maxcount=2, write_id="job")
    assert [p.rsplit("/", 1)[1] for p in puts] == ["d-000002.tar"]
    assert [u.rsplit("/", 1)[1] for u in e.urls] == ["d-000000.tar", "d-000001.tar", "d-000002.tar"]
    assert e.urls[:2] == [f"s3://{BUCKET}/{k}" for k in etags]  # the stored ones, kept as they were
    assert {k: store.client.head_object(Bucket=BUCKET, Key=k)["ETag"] for k in etags} == etags
    assert [s.name for s in idx.open_dataset("d").ordered()] == [f"n{i}" for i in range(6)]
    assert e.urls[0].startswith(f"s3://{BUCKET}/runs/d/job/")


def test_gc_collects_a_losing_write_id_runs_objects_in_s3(store, tmp_path):
    """A losing write_id run's shards in an S3 store were never collected; gc now lists the
    objects of the entry's write directory that no entry references and deletes them (when old
    enough), leaving the entry's objects and everything outside its directory."""
    from atdata.index._gc import collect, find_leftovers

    idx = atdata.Index(path=str(tmp_path / "index.db"), data_store=store)

    def rows_b():
        idx.write_samples([{"i": 1}, {"i": 2}], name="s3gc", write_id="w", manifest=True)
        yield from ({"i": 10 + i} for i in range(3))

    with pytest.raises(atdata.IntegrityError, match="another run with this write_id"):
        idx.write_samples(rows_b(), name="s3gc", write_id="w", maxcount=2, manifest=True)
    entry = idx.get_dataset("s3gc")
    stray = "runs/s3gc/other/x.tar"  # not an entry's write directory
    store.client.put_object(Bucket=BUCKET, Key=stray, Body=b"x")
    listed = store.client.list_objects_v2(Bucket=BUCKET, Prefix="runs/s3gc/w/")["Contents"]
    keys = {o["Key"] for o in listed}
    ours = {u[len(f"s3://{BUCKET}/") :] for s in entry.shards for u in [s.url]}
    ours |= {k[: -len(".tar")] + x for k in ours for x in (".manifest.json", ".manifest.parquet")}
    lost = sorted(keys - ours)
    assert len(lost) == 6 and all(k.startswith("runs/s3gc/w/") for k in lost)
    assert find_leftovers(idx, min_age=3600) == []
    found = find_leftovers(idx, min_age=0)
    assert sorted(lo.path for lo in found) == [f"s3://{BUCKET}/{k}" for k in lost]
    assert {lo.kind for lo in found} == {"orphan"}
    assert collect(idx, min_age=0, dry_run=True).bytes == sum(lo.size for lo in found) > 0
    rep = collect(idx, min_age=0)
    assert sorted(lo.path for lo in rep.removed) == [f"s3://{BUCKET}/{k}" for k in lost]
    left = {
        o["Key"]
        for o in store.client.list_objects_v2(Bucket=BUCKET, Prefix="runs/s3gc/")["Contents"]
    }
    assert left == ours | {stray}
    assert [s["i"] for s in idx.open_dataset("s3gc").ordered()] == [1, 2]
    assert find_leftovers(idx, min_age=0) == []


@pytest.mark.parametrize("name", ["données v1", "a#b?c", "x%20y+z", "数据/v1"])
def test_odd_dataset_names_round_trip_through_an_s3_store(store, tmp_path, name):
    idx = atdata.Index(path=str(tmp_path / "index.db"), data_store=store)
    e = idx.write_samples([{"i": 1}, {"i": 2}], name=name, maxcount=1, manifest=True)
    assert e.shards[0].url.startswith(f"s3://{BUCKET}/runs/{name}/")
    ds = idx.open_dataset(name)
    assert [s["i"] for s in ds.ordered()] == [1, 2]
    assert all(r["ok"] for r in ds.verify())


@pytest.mark.parametrize("key", ["plain/x.tar", "a#b?c d.tar", "données/x+y%20.tar"])
def test_read_url_of_an_odd_key_fetches_that_object_over_http(store, key):
    """read_url pasted the key into the HTTP URL as it was: 'a#b?c d.tar' fetched 'a' (404)
    and a non-ASCII key could not be requested at all; the key is now percent-encoded."""
    import urllib.request

    store.client.put_object(Bucket=BUCKET, Key=f"runs/{key}", Body=b"hello", ACL="public-read")
    url = store.read_url(f"s3://{BUCKET}/runs/{key}")
    assert url.startswith(f"{store.endpoint_url}/{BUCKET}/runs/")
    with urllib.request.urlopen(url) as resp:
        assert resp.read() == b"hello"


def test_write_shards_of_nothing_raises_the_documented_runtime_error(store):
    # upstream documents S3DataStore.write_shards: RuntimeError if no shards were written
    with pytest.raises(RuntimeError, match="no samples, so nothing was written under 'empty'"):
        store.write_shards([], prefix="empty")
    with pytest.raises(ValueError):  # still the ConfigError it was
        store.write_shards([], prefix="empty")
