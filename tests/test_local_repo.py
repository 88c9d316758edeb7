"""``atdata.local.Repo``: the deprecated S3-plus-Redis repository (a facade over Index with an
S3DataStore), against a moto S3 server and Redis db 15."""

from __future__ import annotations

import contextlib
import uuid

import pytest

import atdata
import atdata.local
from tests._index_backends import REDIS_URL, port_open
from tests._services import require_service


@atdata.packable
class Reading:
    sensor: str
    value: int


@pytest.fixture
def redis_prefix():
    if not port_open(6379):
        require_service("Redis", "nothing listens on 127.0.0.1:6379")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    prefix = f"atdata-repo-test-{uuid.uuid4().hex[:10]}:"
    yield client, prefix
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)
    client.close()


def _creds(endpoint):
    return {"AWS_ENDPOINT": endpoint, "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing-secret", "AWS_REGION": "us-east-1"}  # fmt: skip


def test_repo_warns_and_needs_a_hive_path_with_credentials(redis_prefix):
    client, prefix = redis_prefix
    with pytest.warns(DeprecationWarning, match="use Index with S3DataStore"):
        repo = atdata.local.Repo(redis=client, prefix=prefix)
    assert repo.s3_credentials is None and repo.hive_path is None and repo.hive_bucket is None
    assert type(repo.index.provider).__name__ == "RedisProvider"
    with pytest.raises(ValueError, match=r"Repo.insert needs S3"):
        repo.insert(atdata.Dataset("x.tar"), name="x")
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="needs hive_path"):
        atdata.local.Repo(s3_credentials={"AWS_ACCESS_KEY_ID": "k"}, redis=client)


def test_repo_insert_stores_in_s3_and_indexes_in_redis(
    s3_endpoint, redis_prefix, tmp_path, monkeypatch
):
    from atdata.stores._s3 import make_client

    monkeypatch.setenv("ATDATA_S3_TRUSTED_ENDPOINTS", s3_endpoint)
    client, prefix = redis_prefix
    s3 = make_client(endpoint_url=s3_endpoint, aws_access_key_id="testing",
                     aws_secret_access_key="testing-secret", region_name="us-east-1")  # fmt: skip
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket="atdata-repo")
    src = atdata.write_samples(
        [Reading(sensor=f"s{i % 2}", value=i) for i in range(5)], str(tmp_path / "r.tar")
    )
    with pytest.warns(DeprecationWarning):
        repo = atdata.local.Repo(
            s3_credentials=_creds(s3_endpoint), hive_path="atdata-repo/hive/v1", redis=client,
            prefix=prefix,
        )  # fmt: skip
    assert repo.hive_bucket == "atdata-repo" and str(repo.hive_path) == "atdata-repo/hive/v1"
    assert repo.s3_credentials is not None and repo.s3_credentials["AWS_ACCESS_KEY_ID"] == "testing"
    entry, stored = repo.insert(src, name="readings", maxcount=2)
    assert entry.name == "readings" and len(entry.data_urls) == 3
    assert all(u.startswith("s3://atdata-repo/hive/v1/") for u in entry.data_urls)
    assert stored.sample_type is Reading
    assert [(s.sensor, s.value) for s in stored] == [(f"s{i % 2}", i) for i in range(5)]
    # the entry is in Redis: a fresh index over the same keys finds it
    again = atdata.Index(redis=client, prefix=prefix, atmosphere=None)
    assert again.get_dataset("readings").cid == entry.cid
