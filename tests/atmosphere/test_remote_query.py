"""Published datasets carry their manifests: a remote ds.query prunes and reads like a local one."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import atdata
from atdata.atmosphere import load_remote, publish_dataset, publish_schema

pytestmark = pytest.mark.services


@atdata.packable
class Obs:
    idx: int
    label: str
    score: float
    vec: atdata.NDArray


def _obs(i: int) -> Obs:
    label = "rare" if i in (37, 81) else ("a", "b", "c")[i % 3]
    return Obs(idx=i, label=label, score=(i * 7 % 100) / 100, vec=np.full(3, i, dtype="f4"))


def _key(s: Obs) -> tuple:
    return (s.idx, s.label, s.score, s.vec.tolist())


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    d = tmp_path_factory.mktemp("obs")
    return atdata.write_samples(
        [_obs(i) for i in range(120)], str(d / "obs.tar"), maxcount=30, manifest=True
    )


def test_remote_query_over_blobs_equals_local(publisher, local):
    acct, atmo = publisher
    schema = publish_schema(atmo, Obs, "1.0.0")
    pub = publish_dataset(atmo, "obs", schema.uri, shards=local.list_shards(), num_samples=120)
    rec = atmo.get_record(pub.uri)
    assert len(rec["manifests"]) == 4 and all(
        {"header", "samples"} <= set(m) for m in rec["manifests"]
    )
    remote = load_remote(f"@{acct['handle']}/obs", sample_type=Obs)
    for where in ("label = 'rare'", "score > 0.9 AND label IN ('a', 'b')"):
        want = local.query(where)
        got = remote.query(where)
        assert [_key(s) for s in got.samples] == [_key(s) for s in want.samples]
        assert len(got) == len(want) > 0
        assert got.stats.shards_pruned == want.stats.shards_pruned
    rare = remote.query(remote.fields.label == "rare")
    assert [s.idx for s in rare.samples] == [37, 81] and rare.stats.shards_pruned == 2
    # the reference PDS ignores Range on getBlob: each matching blob is read whole, once, and
    # the pruned ones not at all
    assert remote.source.inner._ranges._key == remote.list_shards()[2]
    # a dataset published without manifests says so (the documented FileNotFoundError)
    bare = publish_dataset(atmo, "bare", schema.uri, shards=local.list_shards(), manifests=False)
    assert "manifests" not in atmo.get_record(bare.uri)
    with pytest.raises(FileNotFoundError):
        load_remote(f"@{acct['handle']}/bare", sample_type=Obs).query("label = 'rare'")


def test_remote_query_over_http_shards_with_manifests_in_the_record(publisher, local, http_dir):
    acct, atmo = publisher
    root, base = http_dir
    for p in local.list_shards():  # shards on the web server, manifests only in the record
        shutil.copy(p, root / p.rsplit("/", 1)[1])
    urls = [f"{base}/{p.rsplit('/', 1)[1]}" for p in local.list_shards()]
    schema = publish_schema(atmo, Obs, "1.0.0")
    shas = [i.sha256 for i in local.list_shard_infos()]
    for p in local.list_shards():  # the publisher reads the manifests beside its local copies
        for ext in (".manifest.json", ".manifest.parquet"):
            shutil.copy(p[:-4] + ext, root / (p.rsplit("/", 1)[1][:-4] + ext))
    publish_dataset(atmo, "obs-web", schema.uri, shards=urls, sha256=shas, storage="http")
    for ext in (".manifest.json", ".manifest.parquet"):
        for f in root.glob(f"*{ext}"):
            f.unlink()  # gone from the web server: the record's copies answer
    remote = load_remote(f"@{acct['handle']}/obs-web", sample_type=Obs)
    got = remote.query("label = 'rare'")
    assert [_key(s) for s in got.samples] == [_key(_obs(37)), _key(_obs(81))]
