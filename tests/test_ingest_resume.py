"""Ingestion killed (SIGKILL) and resumed; HTTP and S3 (moto server) inputs and outputs."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import pathlib
import random
import signal
import subprocess
import sys

import pytest

import atdata
from tests._helpers import serve_directory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import os, signal, sys
import atdata
from atdata._ingest import _state

src, out, mode, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
validate = None
if mode == "row":  # killed while a shard is half written
    seen = [0]
    def validate(sample):
        seen[0] += 1
        if seen[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return True
elif mode == "save":  # killed after a shard took its name, before the state says so
    orig, calls = _state.write_atomic, [0]
    def killing_write(path, data, *, fsync=False):
        calls[0] += 1
        if calls[0] == n:
            d, b = os.path.split(path)
            with open(os.path.join(d, "." + b + ".tmp-1-deadbeef"), "wb") as f:
                f.write(data[: len(data) // 2])  # a torn temporary the rerun must ignore
            os.kill(os.getpid(), signal.SIGKILL)
        orig(path, data, fsync=fsync)
    _state.write_atomic = killing_write
elif mode.startswith("after:"):  # killed right after the n-th rename onto a name ending so
    suffix, orig_replace, hits = mode[len("after:"):], os.replace, [0]
    def killing_replace(src_path, dst_path, *args, **kwargs):
        orig_replace(src_path, dst_path, *args, **kwargs)
        if os.fspath(dst_path).endswith(suffix):
            hits[0] += 1
            if hits[0] == n:
                os.kill(os.getpid(), signal.SIGKILL)
    os.replace = killing_replace
elif mode == "lock":  # killed right after taking .ingest/lock, before anything else is written
    orig_lock = _state.IngestState.lock
    def killing_lock(self):
        orig_lock(self)
        os.kill(os.getpid(), signal.SIGKILL)
    _state.IngestState.lock = killing_lock
elif mode == "complete":  # killed at the state write that marks the ingestion complete
    orig_save = _state.IngestState.save
    def killing_save(self):
        if self.progress.complete:
            os.kill(os.getpid(), signal.SIGKILL)
        orig_save(self)
    _state.IngestState.save = killing_save
elif mode == "drop":  # s3:// output: killed after the n-th upload is recorded, before the
    from atdata._ingest import _output  # staged copy is removed
    orig_drop, calls = _output.Output.drop_local, [0]
    def killing_drop(self, name):
        calls[0] += 1
        if calls[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        orig_drop(self, name)
    _output.Output.drop_local = killing_drop
elif mode == "timer":  # killed from outside at whatever it is doing (write, fsync, manifest)
    try:  # imported now, so that the kill lands in the ingestion, not in an import
        import pyarrow, pyarrow.parquet
        pyarrow.array([1])
    except ImportError:
        pass
    print("ready", flush=True)
kw = {}
if os.environ.get("INGEST_S3_ENDPOINT"):  # an s3:// output, staged in INGEST_WORK_DIR
    kw = {"work_dir": os.environ["INGEST_WORK_DIR"], "s3_options": {
        "endpoint_url": os.environ["INGEST_S3_ENDPOINT"], "region_name": "us-east-1",
        "aws_access_key_id": "testing", "aws_secret_access_key": "testing-secret"}}
r = atdata.ingest(src, out, dedup_on="text", maxcount=97, max_invalid_fraction=0.02,
                  validate=validate, progress=False, **kw)
print(r.rows_read, r.rows_written, r.duplicates, r.rejected.get("parse", 0))
"""


def _make_source(path, n=4000, seed=7):
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        if rng.random() < 0.004:
            lines.append(f'{{"id": {i}, "text": ')  # a torn line: rejected as parse
            continue
        text = f"t{rng.randrange(3600)}"  # many texts repeat: dropped by dedup
        lines.append(json.dumps({"id": i, "text": text, "w": rng.random()}))
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _run_child(tmp_path, src, out, mode="none", n=0, env=None):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, **(env or {})}
    env["PYTHONPATH"] = os.pathsep.join([ROOT, os.path.join(ROOT, "src")])
    return subprocess.run(
        [sys.executable, str(script), src, out, mode, str(n)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


_OUTPUT = (".tar", ".manifest.json", ".manifest.parquet")


def _shard_bytes(d):
    """Each shard's bytes and its manifest's (header and rows): all byte-identical between an
    uninterrupted run and a resumed one (no clock, no file stamp, no random token in them)."""
    return {
        n: pathlib.Path(d, n).read_bytes() for n in sorted(os.listdir(d)) if n.endswith(_OUTPUT)
    }


def test_sigkill_at_five_points_then_resume_is_byte_identical(tmp_path):
    src = _make_source(tmp_path / "rows.jsonl")
    ref = _run_child(tmp_path, src, str(tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr
    rng = random.Random(20261130)
    points = [("row", rng.randrange(50, 700)), ("save", rng.randrange(1, 4)),
              ("row", rng.randrange(50, 700)), ("save", rng.randrange(1, 4)),
              ("row", rng.randrange(1, 97))]  # fmt: skip
    out = str(tmp_path / "out")
    for mode, n in points:
        p = _run_child(tmp_path, src, out, mode, n)
        assert p.returncode == -signal.SIGKILL, (mode, n, p.stdout, p.stderr)
    last = _run_child(tmp_path, src, out)
    assert last.returncode == 0, last.stderr
    assert last.stdout == ref.stdout  # same counts: rows read, written, duplicates, rejects
    want, got = _shard_bytes(tmp_path / "ref"), _shard_bytes(out)
    assert list(got) == list(want) and len(want) == 3 * 25  # shards, headers, rows
    assert [n for n in want if got[n] != want[n]] == []
    header = json.loads(got["data-000024.manifest.json"])
    assert (header["created_at"], header["shard_stat"]) == ("1970-01-01T00:00:00+00:00", None)
    read, written, dups, bad = map(int, ref.stdout.split())
    assert (read, bad, written + dups + bad) == (4000, read - written - dups, 4000)
    tars = sorted(os.path.join(out, n) for n in got if n.endswith(".tar"))
    stats = atdata.Dataset(tars).query("id >= 0").stats  # the manifests are trusted and used
    assert (stats.shards_scanned, stats.rows_matched) == (25, written)
    samples = list(atdata.Dataset(tars).ordered())
    assert [s.__key__ for s in samples] == [f"{i:08d}" for i in range(written)]
    texts = [s["text"] for s in samples]
    assert len(set(texts)) == len(texts) == written  # no duplicate, none missing
    with open(os.path.join(out, ".ingest", "rejects.jsonl")) as f:
        assert sum(1 for _ in f) == bad  # each reject recorded exactly once
    assert not [n for n in os.listdir(out) if ".tmp-" in n]


def test_sigkill_at_random_times_then_resume_is_byte_identical(tmp_path):
    src = _make_source(tmp_path / "rows.jsonl", n=12000, seed=3)
    ref = _run_child(tmp_path, src, str(tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr
    script = tmp_path / "child.py"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.path.join(ROOT, "src")])}
    out, rng, killed = str(tmp_path / "out"), random.Random(99), 0
    for attempt in range(5):
        p = subprocess.Popen(
            [sys.executable, str(script), src, out, "timer", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        try:
            # the first kill lands early, so at least one lands mid-run even on a fast machine
            p.wait(timeout=0.05 if attempt == 0 else rng.uniform(0.05, 0.6))
        except subprocess.TimeoutExpired:
            p.kill()  # SIGKILL
            killed += 1
            p.wait()
        p.stdout.close()
        p.stderr.close()  # type: ignore[union-attr]
    last = _run_child(tmp_path, src, out)
    assert last.returncode == 0, last.stderr
    assert last.stdout == ref.stdout
    assert _shard_bytes(out) == _shard_bytes(tmp_path / "ref")
    assert killed >= 1  # at least one kill landed mid-run (the others may find it finished)


# -- SIGKILL at chosen crash points ------------------------------------------------------------
@pytest.fixture(scope="module")
def crash_ref(tmp_path_factory):
    """A source and the output of an uninterrupted run of the child over it."""
    d = tmp_path_factory.mktemp("crash-ref")
    src = _make_source(d / "rows.jsonl", n=1500, seed=5)
    ref = _run_child(d, src, str(d / "ref"))
    assert ref.returncode == 0, ref.stderr
    return src, d / "ref", ref.stdout


def _names(first, last, sides=True):
    """Output file names of shards ``first..last`` (and their manifests)."""
    ext = (".tar", ".manifest.json", ".manifest.parquet") if sides else (".tar",)
    return [f"data-{i:06d}{e}" for i in range(first, last + 1) for e in ext]


# Each point: the kills, in order, each with the output files it must leave (None: unchecked).
# Each kill lands between a step that makes something visible in OUT and the state write that
# records it; a rerun must take it up and write what an uninterrupted run writes. The first
# shard's windows used to come before any state write, and a rerun then refused the output as
# someone else's ("already holds shards ... but no ingestion state").
CRASH_POINTS = {
    "lock-taken": [("lock", 0, [])],
    "first-state-write": [("save", 1, None)],
    "first-shard-renamed": [("after:.tar", 1, _names(0, 0, sides=False))],
    "first-manifest-rows-renamed": [
        ("after:.manifest.parquet", 1, [*_names(0, 0, sides=False), "data-000000.manifest.parquet"])
    ],
    "first-manifest-renamed": [("after:.manifest.json", 1, _names(0, 0))],
    "fourth-shard-renamed": [("after:.tar", 4, [*_names(0, 2), "data-000003.tar"])],
    "before-complete": [("complete", 0, None)],
    "first-shard-window-three-times": [
        ("after:.tar", 1, _names(0, 0, sides=False)),
        ("after:.manifest.json", 1, _names(0, 0)),  # the rerun rewrites shard 0, killed again
        ("save", 1, _names(0, 0)),  # ... and once more, at the state write that seals it
    ],
}


@pytest.mark.parametrize("point", list(CRASH_POINTS))
def test_sigkill_at_crash_point_then_resume_is_byte_identical(crash_ref, tmp_path, point):
    src, ref_dir, ref_stdout = crash_ref
    out = str(tmp_path / "out")
    for mode, n, left in CRASH_POINTS[point]:
        p = _run_child(tmp_path, src, out, mode, n)
        assert p.returncode == -signal.SIGKILL, (mode, n, p.stdout, p.stderr)
        if left is not None:
            assert list(_shard_bytes(out)) == sorted(left), (mode, n)
    last = _run_child(tmp_path, src, out)
    assert last.returncode == 0, last.stderr
    assert last.stdout == ref_stdout  # same counts: rows read, written, duplicates, rejects
    want = _shard_bytes(ref_dir)
    assert len(want) == 3 * 13
    assert _shard_bytes(out) == want
    for log in ("rejects.jsonl", "dedup.bin"):  # each reject and kept digest exactly once
        assert (
            pathlib.Path(out, ".ingest", log).read_bytes()
            == (ref_dir / ".ingest" / log).read_bytes()
        )
    state = json.loads(pathlib.Path(out, ".ingest", "state.json").read_text())
    assert (state["complete"], state["shard_no"], len(state["shards"])) == (True, 13, 13)
    assert not [n for n in os.listdir(out) if ".tmp-" in n]
    assert not [n for n in os.listdir(os.path.join(out, ".ingest")) if ".tmp-" in n]


@pytest.mark.parametrize(
    ("mode", "n", "staged"),
    [("after:.tar", 1, ["data-000000.tar"]), ("drop", 2, _names(1, 1))],
    ids=["first-shard-staged", "second-upload-recorded"],
)
def test_sigkill_with_s3_output_then_resume(crash_ref, s3_endpoint, tmp_path, mode, n, staged):
    """An ``s3://`` output stages its shards in ``work_dir``, uploads each, records it, then
    drops the staged copy: killed in those windows, a rerun uploads the same bytes and leaves
    no staged copy behind."""
    from atdata.stores._s3client import make_client

    client = make_client(endpoint_url=s3_endpoint, aws_access_key_id="testing",
                         aws_secret_access_key="testing-secret", region_name="us-east-1")  # fmt: skip
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=BUCKET)
    src, ref_dir, ref_stdout = crash_ref
    prefix = f"crash/{mode.replace(':', '')}"
    out, work = f"s3://{BUCKET}/{prefix}", str(tmp_path / "stage")
    env = {"INGEST_S3_ENDPOINT": s3_endpoint, "INGEST_WORK_DIR": work}
    p = _run_child(tmp_path, src, out, mode, n, env=env)
    assert p.returncode == -signal.SIGKILL, (p.stdout, p.stderr)
    assert list(_shard_bytes(work)) == sorted(staged)
    last = _run_child(tmp_path, src, out, env=env)
    assert last.returncode == 0, last.stderr
    assert last.stdout == ref_stdout
    want = _shard_bytes(ref_dir)
    got = {}
    for name in want:
        got[name] = client.get_object(Bucket=BUCKET, Key=f"{prefix}/{name}")["Body"].read()
    assert got == want
    assert _shard_bytes(work) == {}  # every staged copy uploaded and dropped


def test_rerun_with_other_settings_before_anything_was_sealed(crash_ref, tmp_path):
    """A run stopped before its first seal commits to nothing: a rerun with other settings
    starts over (removing the shard the stopped run had renamed into place but not sealed)."""
    src, ref_dir, _ = crash_ref
    kw = {"dedup_on": "text", "max_invalid_fraction": 0.02, "progress": False}
    out = str(tmp_path / "out")
    p = _run_child(tmp_path, src, out, "after:.tar", 1)  # data-000000.tar unsealed
    assert p.returncode == -signal.SIGKILL, (p.stdout, p.stderr)
    with pytest.raises(Stop):  # a stop before any seal, with other settings again
        atdata.ingest(src, out, maxcount=500, validate=_interrupt_at(300), **kw)
    r = atdata.ingest(src, out, maxcount=97, shard_prefix="part", **kw)
    assert not r.resumed and r.num_shards == 13
    fresh = atdata.ingest(src, tmp_path / "fresh", maxcount=97, shard_prefix="part", **kw)
    assert (r.rows_read, r.rows_written, r.rejected) == (
        fresh.rows_read, fresh.rows_written, fresh.rejected,
    )  # fmt: skip
    want = _shard_bytes(tmp_path / "fresh")
    assert _shard_bytes(out) == want  # none of the unsealed data-* files is left
    assert [n.replace("part-", "data-") for n in want if n.endswith(".tar")] == [
        n for n in _shard_bytes(ref_dir) if n.endswith(".tar")
    ]
    # once a shard is sealed, other settings are refused as before
    with pytest.raises(atdata.ConfigError, match="other settings"):
        atdata.ingest(src, out, maxcount=500, **kw)


def test_foreign_shards_are_refused_even_beside_an_unsealed_state(tmp_path):
    """Shards that no ingestion state accounts for are someone else's: never overwritten."""
    from atdata._shards.writer import ShardWriter
    from atdata._wire.sample import DictSample

    src = _make_source(tmp_path / "rows.jsonl", n=300, seed=1)
    out = tmp_path / "out"
    with ShardWriter(str(out / "data-%06d.tar"), maxcount=10, key="index") as w:
        w.write(DictSample(text="theirs"))
    theirs = (out / "data-000000.tar").read_bytes()
    kw = {"dedup_on": "text", "max_invalid_fraction": 0.02, "maxcount": 97, "progress": False}
    with pytest.raises(atdata.ConfigError, match="already holds shards"):
        atdata.ingest(src, out, **kw)
    with pytest.raises(Stop):  # another prefix is free: a run starts, then stops
        atdata.ingest(src, out, shard_prefix="mine", validate=_interrupt_at(50), **kw)
    with pytest.raises(atdata.ConfigError, match="already holds shards"):  # now data- again
        atdata.ingest(src, out, **kw)
    assert (out / "data-000000.tar").read_bytes() == theirs


# -- HTTP ------------------------------------------------------------------------------------
@pytest.fixture
def http_dir(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    with serve_directory(root) as srv:
        yield root, srv.url


def test_http_csv_gz_and_jsonl(http_dir, tmp_path):
    root, base = http_dir
    with gzip.open(root / "a.csv.gz", "wt") as f:
        f.write("id,text\n" + "".join(f"{i},t{i}\n" for i in range(40)))
    (root / "b.jsonl").write_text(
        "".join(json.dumps({"id": i, "text": f"j{i}"}) + "\n" for i in range(5))
    )
    r = atdata.ingest(f"{base}/a.csv.gz", tmp_path / "o1", maxcount=16)
    assert (r.rows_read, r.rows_written, r.num_shards) == (40, 40, 3)
    assert r.schema == "A(id: int, text: str)"

    @atdata.packable
    class Row:
        id: int
        text: str

    r2 = atdata.ingest([f"{base}/b.jsonl", f"{base}/a.csv.gz"], tmp_path / "o2", sample_type=Row)
    assert [s.text for s in r2.dataset().ordered()][3:7] == ["j3", "j4", "t0", "t1"]
    with pytest.raises(atdata.StorageError, match="cannot read input"):
        atdata.ingest(f"{base}/missing.jsonl", tmp_path / "o3", sample_type=Row)


# -- S3 (moto server) ------------------------------------------------------------------------
BUCKET = "ingest-test"


@pytest.fixture
def s3(s3_endpoint):
    from atdata.stores._s3client import make_client

    client = make_client(endpoint_url=s3_endpoint, aws_access_key_id="testing",
                         aws_secret_access_key="testing-secret", region_name="us-east-1")  # fmt: skip
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=BUCKET)
    return client


class FlakyClient:
    """An S3 client whose ``fail_on``-th ``upload_file`` raises (an injected network failure)."""

    def __init__(self, inner, fail_on):
        self.inner, self.fail_on, self.calls = inner, fail_on, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def upload_file(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.fail_on:
            raise ConnectionError("injected: connection reset during upload")
        return self.inner.upload_file(*args, **kwargs)


def test_s3_input_glob_to_local(s3, tmp_path):
    for k in range(2):
        body = gzip.compress(
            "".join(
                json.dumps({"id": k * 10 + i, "text": f"s{i}"}) + "\n" for i in range(10)
            ).encode()
        )
        s3.put_object(Bucket=BUCKET, Key=f"in/part-{k}.jsonl.gz", Body=body)
    s3.put_object(Bucket=BUCKET, Key="in/readme.txt", Body=b"not data")
    r = atdata.ingest(f"s3://{BUCKET}/in/part-*.jsonl.gz", tmp_path / "out", s3_client=s3,
                      dedup_on="text")  # fmt: skip
    assert (r.rows_read, r.rows_written, r.duplicates) == (20, 10, 10)
    r2 = atdata.ingest(f"s3://{BUCKET}/in/", tmp_path / "out2", s3_client=s3)
    assert r2.rows_written == 20


def test_s3_jsonl_input_resumes_at_byte_offset(s3, tmp_path):
    body = "".join(json.dumps({"id": i, "text": f"s{i % 70}"}) + "\n" for i in range(200))
    s3.put_object(Bucket=BUCKET, Key="in/big.jsonl", Body=body.encode())
    src, kw = f"s3://{BUCKET}/in/big.jsonl", {"dedup_on": "text", "maxcount": 16, "s3_client": s3}
    ref = atdata.ingest(src, tmp_path / "ref", **kw)
    with pytest.raises(Stop):
        atdata.ingest(src, tmp_path / "out", validate=_interrupt_at(40), **kw)
    state = json.loads((tmp_path / "out" / ".ingest" / "state.json").read_text())
    assert state["position"] == 32  # two shards of 16 sealed before the stop at row 40
    assert state["offset"] == len("".join(body.splitlines(keepends=True)[:32]).encode())
    r = atdata.ingest(src, tmp_path / "out", **kw)
    assert (r.rows_read, r.rows_written, r.duplicates) == (200, 70, 130)
    assert _shard_bytes(tmp_path / "ref") == _shard_bytes(tmp_path / "out")
    assert ref.num_shards == 5


def test_s3_output_resumes_on_another_machine(s3, tmp_path):
    import shutil

    src = _make_source(tmp_path / "rows.jsonl", n=900, seed=11)
    kw = {"dedup_on": "text", "maxcount": 64, "max_invalid_fraction": 0.05, "s3_client": s3}
    ref = atdata.ingest(src, tmp_path / "ref", **{k: v for k, v in kw.items() if k != "s3_client"})
    out = f"s3://{BUCKET}/runs/moved"
    with pytest.raises(Stop):  # machine A stops part-way ...
        atdata.ingest(src, out, work_dir=str(tmp_path / "a"), validate=_interrupt_at(300), **kw)
    shutil.rmtree(tmp_path / "a")  # ... and its disk is gone
    keys = {
        o["Key"]
        for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/moved/.ingest/")["Contents"]
    }
    assert "runs/moved/.ingest/state.json" in keys and any("/dedup-" in k for k in keys)
    with pytest.raises(Stop):  # machine B resumes, stops too, and loses its disk
        atdata.ingest(src, out, work_dir=str(tmp_path / "b"), validate=_interrupt_at(250), **kw)
    shutil.rmtree(tmp_path / "b")
    r = atdata.ingest(src, out, work_dir=str(tmp_path / "c"), **kw)  # machine C finishes
    assert r.resumed
    assert (r.rows_read, r.rows_written, r.duplicates, r.rejected) == (
        ref.rows_read, ref.rows_written, ref.duplicates, ref.rejected,
    )  # fmt: skip
    for url, local in zip(r.shards, ref.shards, strict=True):
        body = s3.get_object(Bucket=BUCKET, Key=url[len(f"s3://{BUCKET}/") :])["Body"].read()
        assert body == pathlib.Path(local).read_bytes()
    rejects = s3.get_object(Bucket=BUCKET, Key="runs/moved/.ingest/rejects.jsonl")["Body"].read()
    assert rejects == pathlib.Path(ref.rejects_path).read_bytes()


def test_s3_output_failed_upload_is_resumed(s3, tmp_path):
    src = _make_source(tmp_path / "rows.jsonl", n=600)
    ref = atdata.ingest(src, tmp_path / "ref", dedup_on="text", maxcount=100,
                        max_invalid_fraction=0.05)  # fmt: skip
    out, work = f"s3://{BUCKET}/runs/a", str(tmp_path / "stage")
    flaky = FlakyClient(s3, fail_on=4)  # shard 0 + 2 manifest files, then shard 1 fails
    with pytest.raises(atdata.StorageError, match="upload of shard"):
        atdata.ingest(src, out, dedup_on="text", maxcount=100, max_invalid_fraction=0.05,
                      s3_client=flaky, work_dir=work)  # fmt: skip
    state = json.loads(pathlib.Path(work, ".ingest", "state.json").read_text())
    assert (state["shard_no"], state["pending"]) == (2, ["data-000001.tar"])
    r = atdata.ingest(src, out, dedup_on="text", maxcount=100, max_invalid_fraction=0.05,
                      s3_client=s3, work_dir=work)  # fmt: skip
    assert r.resumed and (r.rows_written, r.duplicates) == (ref.rows_written, ref.duplicates)
    assert r.list_shards() == [f"{out}/data-{i:06d}.tar" for i in range(ref.num_shards)]
    for url, local in zip(r.shards, ref.shards, strict=True):
        key = url[len(f"s3://{BUCKET}/") :]
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert (
            hashlib.sha256(body).digest()
            == hashlib.sha256(pathlib.Path(local).read_bytes()).digest()
        )
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/a/")["Contents"]}
    assert {"runs/a/.ingest/state.json", "runs/a/data-000001.manifest.json"} <= keys
    assert not [n for n in os.listdir(work) if n.endswith(".tar")]  # staged copies dropped
    assert [s.__key__ for s in r.dataset().ordered()][-1] == f"{ref.rows_written - 1:08d}"
    idx = atdata.Index(path=str(tmp_path / "i.db"))
    r2 = atdata.ingest(src, out, dedup_on="text", maxcount=100, max_invalid_fraction=0.05,
                       s3_client=s3, work_dir=work, index=idx, name="rows")  # fmt: skip
    assert [sh.url for sh in r2.entry.shards] == r.list_shards()
    remote_state = json.loads(
        s3.get_object(Bucket=BUCKET, Key="runs/a/.ingest/state.json")["Body"].read()
    )
    assert remote_state["complete"] is True and remote_state["pending"] == []


# -- interrupted in-process (KeyboardInterrupt) then resumed, per format ------------------------
class Stop(BaseException):
    pass


def _interrupt_at(n):
    seen = [0]

    def validate(sample):
        seen[0] += 1
        if seen[0] == n:
            raise Stop
        return True

    return validate


@pytest.mark.parametrize("fmt", ["csv.gz", "parquet", "hf", "hf-stream"])
def test_interrupted_resume_per_format(tmp_path, fmt):
    rows = [{"id": i, "text": f"t{i % 150}", "w": i / 7} for i in range(400)]
    if fmt == "csv.gz":
        src = str(tmp_path / "rows.csv.gz")
        with gzip.open(src, "wt") as f:
            f.write("id,text,w\n" + "".join(f"{r['id']},{r['text']},{r['w']}\n" for r in rows))
    elif fmt == "parquet":
        pa = pytest.importorskip("pyarrow")
        pq = pytest.importorskip("pyarrow.parquet")
        src = str(tmp_path / "rows.parquet")
        pq.write_table(pa.Table.from_pylist(rows), src, row_group_size=64)
    else:
        datasets = pytest.importorskip("datasets")
        src = datasets.Dataset.from_list(rows)
        if fmt == "hf-stream":
            src = src.to_iterable_dataset()
    kw = {"dedup_on": "text", "maxcount": 30, "name": "rows"}
    ref = atdata.ingest(src, tmp_path / "ref", **kw)
    out = tmp_path / "out"
    for n in (45, 17, 61):  # each run stops part-way, after sealing some shards
        with pytest.raises(Stop):
            atdata.ingest(src, out, validate=_interrupt_at(n), **kw)
    r = atdata.ingest(src, out, **kw)
    assert (r.rows_read, r.rows_written, r.duplicates) == (400, 150, 250)
    assert _shard_bytes(tmp_path / "ref") == _shard_bytes(out) and r.num_shards == ref.num_shards


def test_s3_errors_name_the_fix(s3, tmp_path):
    with pytest.raises(atdata.StorageError, match=r"NoSuchKey; check the key"):
        atdata.ingest(f"s3://{BUCKET}/no/such.jsonl", tmp_path / "a", s3_client=s3)
    with pytest.raises(atdata.StorageError, match=r"NoSuchBucket; check the bucket name"):
        atdata.ingest("s3://qa-no-such-bucket/x.jsonl", tmp_path / "b", s3_client=s3)
    with pytest.raises(atdata.StorageError, match=r"cannot list .*; check the bucket name"):
        atdata.ingest("s3://qa-no-such-bucket/*.jsonl", tmp_path / "c", s3_client=s3)


# -- resuming at the byte offset of the last sealed record ------------------------------------
def _csv_rows(n):
    rows = [{"id": i, "text": f"t{i % 150}", "w": i / 7} for i in range(n)]
    return rows, "id,text,w\n" + "".join(f"{r['id']},{r['text']},{r['w']}\n" for r in rows)


def test_csv_input_resumes_at_byte_offset(tmp_path):
    _rows, text = _csv_rows(400)
    src = tmp_path / "rows.csv"
    src.write_text("\ufeff" + text)  # (with a byte order mark: it counts in the offsets)
    kw = {"dedup_on": "text", "maxcount": 30, "name": "rows"}
    ref = atdata.ingest(str(src), tmp_path / "ref", **kw)
    out = tmp_path / "out"
    with pytest.raises(Stop):
        atdata.ingest(str(src), out, validate=_interrupt_at(70), **kw)
    state = json.loads((out / ".ingest" / "state.json").read_text())
    assert state["position"] == 60  # two shards of 30 sealed before the stop at row 70
    lines = ("\ufeff" + text).splitlines(keepends=True)
    assert state["offset"] == len("".join(lines[:61]).encode())  # the header and 60 records
    r = atdata.ingest(str(src), out, **kw)
    assert (r.rows_read, r.rows_written, r.duplicates) == (400, 150, 250)
    assert _shard_bytes(tmp_path / "ref") == _shard_bytes(out) and r.num_shards == ref.num_shards


@pytest.mark.parametrize("ranges", [True, False])
@pytest.mark.parametrize("name", ["rows.jsonl", "rows.csv", "rows.csv.gz"])
def test_http_input_resumes_at_byte_offset(tmp_path, name, ranges):
    # a server with ranges is asked for the rest; without them (and for a compressed input)
    # the bytes before the offset are read and dropped, not parsed: the output is the same
    rows, text = _csv_rows(300)
    root = tmp_path / "www"
    root.mkdir()
    if name.endswith(".jsonl"):
        text = "".join(json.dumps(r) + "\n" for r in rows)
    (root / name).write_bytes(
        gzip.compress(text.encode()) if name.endswith(".gz") else text.encode()
    )
    kw = {"dedup_on": "text", "maxcount": 40, "name": "rows"}
    with serve_directory(root, ranges=ranges) as srv:
        url = f"{srv.url}/{name}"
        ref = atdata.ingest(url, tmp_path / "ref", **kw)
        out = tmp_path / "out"
        with pytest.raises(Stop):
            atdata.ingest(url, out, validate=_interrupt_at(100), **kw)
        offset = json.loads((out / ".ingest" / "state.json").read_text())["offset"]
        head = 1 if name.startswith("rows.csv") else 0
        assert offset == len("".join(text.splitlines(keepends=True)[: 80 + head]).encode())
        del srv.gets[:]
        r = atdata.ingest(url, out, **kw)
        asked = [rng for _p, rng in srv.gets]
    assert (r.rows_read, r.rows_written) == (300, 150)
    assert _shard_bytes(tmp_path / "ref") == _shard_bytes(out) and r.num_shards == ref.num_shards
    # the first rows (the schema is inferred again), for csv the header, then the records
    # from the offset (a compressed input from its start, dropping the bytes before it)
    want = [None] * (1 + head) + [None if name.endswith(".gz") else f"bytes={offset}-"]
    assert asked == want


def test_resume_offset_past_the_end_of_a_changed_input_is_refused(tmp_path):
    from atdata._ingest._sources import Input, open_binary

    src = tmp_path / "a.jsonl.gz"
    src.write_bytes(gzip.compress(b'{"a": 1}\n' * 3))
    with open_binary(Input(str(src), "jsonl", "gz", "local"), None, 18) as f:
        assert f.read() == b'{"a": 1}\n'
    with pytest.raises(atdata.StorageError, match=r"ends 13 bytes before byte 40, where the last"):
        open_binary(Input(str(src), "jsonl", "gz", "local"), None, 40)


def test_closing_a_compressed_input_closes_its_file(tmp_path):
    from atdata._ingest._sources import Input, open_binary

    src = tmp_path / "a.csv.gz"
    src.write_bytes(gzip.compress(b"a\n1\n"))
    fds = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        with open_binary(Input(str(src), "csv", "gz", "local")) as f:
            assert f.read() == b"a\n1\n"
    assert len(os.listdir("/proc/self/fd")) == fds
