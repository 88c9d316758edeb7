"""atdata.Watcher on an S3 prefix served by a local moto server: a slow uploader, two watcher
processes on one ledger, a killed watcher recovered after its lease, a rewritten object."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from pathlib import Path

import pytest

import atdata
from atdata.providers._sqlite import SQLiteProvider
from atdata.watch import Watcher, list_s3
from tests._process_helpers import Num
from tests._watch_helpers import (
    counted_triple,
    counts,
    outputs,
    poll_until,
    run_watch,
    triple,
    unique,
    watch_cmd,
    write_shards,
)

BUCKET = "atdata-watch"
CREDS = {
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing-secret",
    "region_name": "us-east-1",
}
ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret",
       "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip


@pytest.fixture
def s3(s3_endpoint):
    from atdata.stores._s3 import make_client

    client = make_client(endpoint_url=s3_endpoint, **CREDS)
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=BUCKET)
    return client


def upload(client, local: Path, prefix: str) -> list[str]:
    keys = []
    for p in sorted(local.glob("*.tar")):
        client.put_object(Bucket=BUCKET, Key=f"{prefix}{p.name}", Body=p.read_bytes())
        keys.append(f"{prefix}{p.name}")
    return keys


def reference(tmp_path: Path, n: int) -> dict[str, str]:
    ds = atdata.Dataset(str(tmp_path / "local" / f"s-{{000000..{n - 1:06d}}}.tar"), Num)
    ds.map(triple, out=str(tmp_path / "ref"))
    return outputs(tmp_path / "ref")


def watcher(tmp_path: Path, client, prefix: str, **kw) -> Watcher:
    kw.setdefault("ledger", SQLiteProvider(str(tmp_path / "ledger.db")))
    kw.setdefault("name", "s3w")
    return Watcher(f"s3://{BUCKET}/{prefix}", kw.pop("fn", triple), tmp_path / "out",
                   sample_type=Num, s3={"client": client}, **kw)  # fmt: skip


def test_listing_stamps_and_manifest_completeness(s3, tmp_path):
    prefix = f"{unique()}/"
    write_shards(tmp_path / "local", 2, manifest=True)
    upload(s3, tmp_path / "local", prefix)
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}s-000000.manifest.json",
                  Body=(tmp_path / "local" / "s-000000.manifest.json").read_bytes())  # fmt: skip
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}.hidden.tar", Body=b"x")
    got = list_s3(f"s3://{BUCKET}/{prefix}", s3)
    assert [(e.url.rsplit("/", 1)[1], e.complete) for e in got] == [
        ("s-000000.tar", True), ("s-000001.tar", False)]  # fmt: skip
    size = (tmp_path / "local" / "s-000000.tar").stat().st_size
    assert got[0].size == size and got[0].stamp.startswith(f"{size}:")


def test_slow_uploader_each_object_processed_exactly_once(s3, tmp_path, monkeypatch):
    prefix = f"{unique()}/"
    write_shards(tmp_path / "local", 10)
    ref = reference(tmp_path, 10)
    counter = tmp_path / "counter"
    monkeypatch.setenv("ATDATA_WATCH_COUNTER", str(counter))
    w = watcher(tmp_path, s3, prefix, fn=counted_triple)

    def uploader() -> None:
        for p in sorted((tmp_path / "local").glob("*.tar")):
            s3.put_object(Bucket=BUCKET, Key=f"{prefix}{p.name}", Body=p.read_bytes())
            time.sleep(0.05)

    t = threading.Thread(target=uploader)
    t.start()
    processed = poll_until(w, 10)
    t.join()
    assert sorted(processed) == sorted(ref)
    assert counts(counter) == {x: 1 for x in range(50)}
    assert outputs(tmp_path / "out") == ref
    assert {r.status for r in w.list_records()} == {"done"}


def test_two_watcher_processes_on_s3_never_duplicate(s3, s3_endpoint, tmp_path):
    prefix = f"{unique()}/"
    write_shards(tmp_path / "local", 10)
    upload(s3, tmp_path / "local", prefix)
    ref = reference(tmp_path, 10)
    counter = tmp_path / "counter"
    env = {**ENV, "ATDATA_WATCH_COUNTER": str(counter), "ATDATA_WATCH_SLOW": "0.01"}
    cmd = watch_cmd(f"s3://{BUCKET}/{prefix}", tmp_path / "out",
                    "tests._watch_helpers:counted_triple", str(tmp_path / "ledger.db"), None, "two",
                    "--polls", "4", "--interval", "0.2", "--endpoint-url", s3_endpoint)  # fmt: skip
    procs = [run_watch(cmd, env) for _ in range(2)]
    logs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    done = [line.split()[1] for log in logs for line in log.splitlines()
            if line.startswith("processed ")]  # fmt: skip
    assert sorted(done) == sorted(ref)
    assert counts(counter) == {x: 1 for x in range(50)}
    assert outputs(tmp_path / "out") == ref


def test_killed_watcher_on_s3_recovered_with_identical_output(s3, s3_endpoint, tmp_path):
    prefix = f"{unique()}/"
    write_shards(tmp_path / "local", 4)
    upload(s3, tmp_path / "local", prefix)
    ref = reference(tmp_path, 4)
    env = {**ENV, "ATDATA_WATCH_DIE_X": "12", "ATDATA_WATCH_DIE_MARKER": str(tmp_path / "died")}
    cmd = watch_cmd(f"s3://{BUCKET}/{prefix}", tmp_path / "out", "tests._watch_helpers:die_once",
                    str(tmp_path / "ledger.db"), None, "s3w", "--polls", "3", "--interval", "0.05",
                    "--lease", "600", "--endpoint-url", s3_endpoint)  # fmt: skip
    p = run_watch(cmd, env)
    log = p.communicate(timeout=120)[0]
    assert p.returncode == -signal.SIGKILL, log
    assert log.splitlines()[1:] == ["processed s-000000.tar", "processed s-000001.tar"]
    w = watcher(tmp_path, s3, prefix, clock=lambda: time.time() + 601)
    rep = w.poll_once()
    assert rep.processed == ["s-000002.tar", "s-000003.tar"]
    assert outputs(tmp_path / "out") == ref
    recs = {r.shard.rsplit("/", 1)[1]: (r.status, r.attempts) for r in w.list_records()}
    assert recs == {"s-000000.tar": ("done", 1), "s-000001.tar": ("done", 1),
                    "s-000002.tar": ("done", 2), "s-000003.tar": ("done", 1)}  # fmt: skip


@pytest.mark.parametrize("on_change", ["reprocess", "refuse"])
def test_rewritten_object_reprocessed_or_refused(s3, tmp_path, on_change):
    prefix = f"{unique()}/"
    write_shards(tmp_path / "local", 1)
    upload(s3, tmp_path / "local", prefix)
    w = watcher(tmp_path, s3, prefix, on_change=on_change)
    w.poll_once()
    assert w.poll_once().processed == ["s-000000.tar"]
    write_shards(tmp_path / "new", 1, start=200)
    upload(s3, tmp_path / "new", prefix)  # same key, new bytes (new ETag)
    assert w.poll_once().waiting == 1  # seen changed; no manifest: wait one poll
    rep = w.poll_once()
    (rec,) = w.list_records()
    got = [s.x for s in atdata.Dataset(str(tmp_path / "out" / "s-000000.tar"), Num).ordered()]
    if on_change == "reprocess":
        assert rep.processed == ["s-000000.tar"] and got == [600, 603, 606, 609, 612]
        assert rec.status == "done"
    else:
        assert rep.refused == ["s-000000.tar"] and got == [0, 3, 6, 9, 12]
        assert rec.status == "refused" and "rewritten in place" in rec.error
