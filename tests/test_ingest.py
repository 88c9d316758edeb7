"""atdata.ingest from local JSONL/CSV/parquet/HF: inference, coercion, gates, dedup, rejects."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

import atdata
from atdata._ingest._dedup import DigestSet, key_digest


@atdata.packable
class Item:
    id: int
    text: str
    score: float | None = None


def write_jsonl(path, rows, opener=open):
    with opener(path, "wt") as f:
        for r in rows:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return str(path)


def rows_of(n, dup_every=0):
    out = []
    for i in range(n):
        j = i - 1 if dup_every and i % dup_every == 0 and i else i
        out.append({"id": j, "text": f"t{j}", "score": j / 2})
    return out


def test_jsonl_typed_round_trip(tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl", rows_of(25))
    r = atdata.ingest(src, tmp_path / "out", sample_type=Item, maxcount=10)
    got = (r.rows_read, r.rows_written, r.num_shards, r.invalid, r.inferred)
    assert got == (25, 25, 3, 0, False)
    assert [os.path.basename(u) for u in r.shards] == [f"data-00000{i}.tar" for i in range(3)]
    got = list(r.dataset().ordered())
    assert [s.id for s in got] == list(range(25))
    assert got[3] == Item(id=3, text="t3", score=1.5)
    assert [s.__key__ for s in got][:3] == ["00000000", "00000001", "00000002"]
    assert r.bytes_written == sum(os.path.getsize(u) for u in r.shards)
    assert os.path.exists(tmp_path / "out" / "data-000000.manifest.json")


def test_tar_headers_are_fixed(tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl", rows_of(3))
    r = atdata.ingest(src, tmp_path / "out", sample_type=Item)
    with tarfile.open(r.list_shards()[0]) as tf:
        members = tf.getmembers()
    assert [m.name for m in members] == ["00000000.msgpack", "00000001.msgpack", "00000002.msgpack"]
    assert {(m.mtime, m.uid, m.gid) for m in members} == {(0, 0, 0)}


def test_inferred_type_and_gz(tmp_path):
    rows = [{"text": f"x{i}", "n": i, "f": i + 0.5, "tags": ["a", "b"], "ok": i % 2 == 0,
             "maybe": None if i % 3 else i} for i in range(10)]  # fmt: skip
    src = write_jsonl(tmp_path / "my-rows.jsonl.gz", rows, opener=gzip.open)
    r = atdata.ingest(src, tmp_path / "out")
    assert r.inferred
    assert r.schema == (
        "MyRows(text: str, n: int, f: float, tags: list[str], ok: bool, maybe: int | None)"
    )
    got = list(r.dataset().ordered())
    assert (got[3].maybe, got[4].maybe, got[4].tags, got[5].ok) == (3, None, ["a", "b"], False)


def test_zstd_input(tmp_path):
    zstd = pytest.importorskip("zstandard")
    data = "".join(json.dumps(r) + "\n" for r in rows_of(7)).encode()
    p = tmp_path / "a.jsonl.zst"
    p.write_bytes(zstd.ZstdCompressor().compress(data))
    r = atdata.ingest(str(p), tmp_path / "out", sample_type=Item)
    assert [s.text for s in r.dataset().ordered()] == [f"t{i}" for i in range(7)]


def test_csv_cells_are_parsed_and_columns_renamed(tmp_path):
    p = tmp_path / "people.csv"
    p.write_text(
        '\ufefffirst name,age,score,member\nAda,36,1.5,true\nBob,41,,false\n"C, D",7,2,True\n'
    )
    r = atdata.ingest(str(p), tmp_path / "out")
    assert r.schema == "People(first_name: str, age: int, score: float | None, member: bool)"
    got = [s.to_dict() for s in r.dataset().ordered()]
    assert got == [
        {"first_name": "Ada", "age": 36, "score": 1.5, "member": True},
        {"first_name": "Bob", "age": 41, "score": None, "member": False},
        {"first_name": "C, D", "age": 7, "score": 2.0, "member": True},
    ]


def test_parquet_and_glob_order(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    for k in (1, 0):
        t = pa.table({"id": list(range(k * 5, k * 5 + 5)), "text": [f"t{i}" for i in range(5)]})
        pq.write_table(t, tmp_path / f"part-{k}.parquet", row_group_size=2)
    r = atdata.ingest(str(tmp_path / "part-*.parquet"), tmp_path / "out", maxcount=4)
    assert r.schema == "Part0(id: int | None, text: str | None)"  # from the Arrow schema
    assert [s.id for s in r.dataset().ordered()] == list(range(10))
    assert r.num_shards == 3


def test_parquet_from_to_parquet_keeps_arrays(tmp_path):
    pytest.importorskip("pyarrow")

    @atdata.packable
    class Img:
        pixels: atdata.NDArray
        label: str

    rng = np.random.default_rng(0)
    src = [
        Img(pixels=rng.integers(0, 255, (8, 8), dtype=np.uint8), label=f"d{i}") for i in range(9)
    ]
    ds = atdata.write_samples(src, str(tmp_path / "src.tar"))
    ds.to_parquet(str(tmp_path / "digits.parquet"))
    r = atdata.ingest(str(tmp_path / "digits.parquet"), tmp_path / "out", maxcount=4)
    got = list(r.dataset().ordered())
    assert r.schema.startswith("Digits(pixels: NDArray")
    assert [g.label for g in got] == [s.label for s in src]
    assert got[4].pixels.dtype == np.uint8 and got[4].pixels.shape == (8, 8)
    assert all(np.array_equal(g.pixels, s.pixels) for g, s in zip(got, src, strict=True))
    r2 = atdata.ingest(str(tmp_path / "digits.parquet"), tmp_path / "out2", sample_type=Img)
    got2 = list(r2.dataset().ordered())
    assert all(np.array_equal(g.pixels, s.pixels) for g, s in zip(got2, src, strict=True))


def test_coercion_rejects_go_to_side_file(tmp_path):
    rows = [*rows_of(5), {"id": "x", "text": "bad"}, "{not json", {"text": "no id"}, [1, 2]]
    src = write_jsonl(tmp_path / "a.jsonl", rows)
    r = atdata.ingest(src, tmp_path / "out", sample_type=Item, max_invalid_fraction=1.0)
    assert (r.rows_read, r.rows_written, r.rejected) == (9, 5, {"coerce": 2, "parse": 2})
    assert r.rejects_path == str(tmp_path / "out" / ".ingest" / "rejects.jsonl")
    with open(r.rejects_path) as f:
        recs = [json.loads(line) for line in f]
    assert [(x["position"], x["reason"]) for x in recs] == [
        (5, "coerce"), (6, "parse"), (7, "coerce"), (8, "parse")
    ]  # fmt: skip
    assert recs[0]["input"] == src and recs[0]["row"] == {"id": "x", "text": "bad"}
    assert "'x' is not an int" in recs[0]["detail"]
    assert "required field 'id' is missing" in recs[2]["detail"]
    assert recs[1]["row"] == "{not json"


def test_validate_and_transform(tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl", rows_of(20))

    def transform(row):
        if row["id"] == 3:
            return None  # filtered
        if row["id"] == 4:
            raise RuntimeError("boom")
        if row["id"] == 8:
            return ["not", "a", "row"]
        return {**row, "text": row["text"].upper()}

    def validate(s):
        if s.id == 5:
            raise ValueError("five")
        return s.id != 6

    r = atdata.ingest(src, tmp_path / "out", sample_type=Item, transform=transform,
                      validate=validate, max_invalid_fraction=0.5)  # fmt: skip
    assert (r.rows_read, r.rows_written, r.filtered) == (20, 15, 1)
    assert r.rejected == {"transform": 2, "validate": 2}
    assert [s.text for s in r.dataset().ordered()][:4] == ["T0", "T1", "T2", "T7"]


def test_injected_duplicates_are_counted_exactly(tmp_path):
    base = rows_of(500)
    rng = np.random.default_rng(3)
    dup_idx = rng.choice(500, size=37, replace=False)
    rows = base + [dict(base[i], score=-1.0) for i in dup_idx]  # same id+text, other score
    order = rng.permutation(len(rows))
    src = write_jsonl(tmp_path / "a.jsonl", [rows[i] for i in order])
    r = atdata.ingest(src, tmp_path / "out", sample_type=Item, dedup_on=["id", "text"])
    assert (r.rows_read, r.duplicates, r.rows_written) == (537, 37, 500)
    ids = [s.id for s in r.dataset().ordered()]
    assert sorted(ids) == list(range(500))
    r2 = atdata.ingest(src, tmp_path / "out2", sample_type=Item, dedup_on=True)
    assert r2.duplicates == 0  # the score differs: whole-row keys are all distinct
    r3 = atdata.ingest(src, tmp_path / "out3", sample_type=Item, dedup_on=lambda s: s.id % 100)
    assert (r3.rows_written, r3.duplicates) == (100, 437)


def test_gate_aborts_at_two_percent_bad(tmp_path):
    rows = [r if i % 50 != 7 else {"id": "bad", "text": "x"} for i, r in enumerate(rows_of(5000))]
    src = write_jsonl(tmp_path / "a.jsonl", rows)
    with pytest.raises(atdata.QualityGateError) as ei:
        atdata.ingest(src, tmp_path / "out", sample_type=Item, maxcount=300,
                      max_invalid_fraction=0.01)  # fmt: skip
    e = ei.value
    assert isinstance(e, ValueError)
    assert e.read == 1000 and e.invalid == 20 and e.by_reason == {"coerce": 20}
    assert "20 of 1000 rows (2.0%) are invalid" in str(e) and "rejects.jsonl" in str(e)
    out = tmp_path / "out"
    sealed = sorted(n for n in os.listdir(out) if n.endswith(".tar"))
    assert sealed == ["data-000000.tar", "data-000001.tar", "data-000002.tar"]
    assert not [n for n in os.listdir(out) if ".tmp-" in n]
    state = json.loads((out / ".ingest" / "state.json").read_text())
    assert (state["shard_no"], state["written"], state["complete"]) == (3, 900, False)
    # a 3% gate lets the same input through, resuming after the sealed shards
    r = atdata.ingest(src, out, sample_type=Item, maxcount=300, max_invalid_fraction=0.03)
    got = (r.resumed, r.rows_read, r.rows_written, r.rejected)
    assert got == (True, 5000, 4900, {"coerce": 100})


def test_small_input_is_gated_at_the_end(tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl", [*rows_of(9), {"id": "x", "text": "y"}])
    with pytest.raises(atdata.QualityGateError, match="1 of 10 rows"):
        atdata.ingest(src, tmp_path / "out", sample_type=Item)
    assert not [n for n in os.listdir(tmp_path / "out") if n.endswith(".tar")]


def test_rerun_of_finished_ingestion_is_a_no_op(tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl", rows_of(30))
    r1 = atdata.ingest(src, tmp_path / "out", sample_type=Item, maxcount=7)
    before = {n: os.stat(tmp_path / "out" / n).st_mtime_ns for n in os.listdir(tmp_path / "out")}
    r2 = atdata.ingest(src, tmp_path / "out", sample_type=Item, maxcount=7)
    assert r2.already_complete and not r2.resumed and not r1.already_complete
    assert (r2.rows_read, r2.rows_written) == (r1.rows_read, r1.rows_written)
    assert r2.summary().endswith(
        "already complete: nothing read again (delete OUT/.ingest to redo it)"
    )
    assert r2.list_shards() == r1.list_shards()
    after = {n: os.stat(tmp_path / "out" / n).st_mtime_ns for n in os.listdir(tmp_path / "out")}
    assert after == before


def test_other_settings_on_same_output_are_refused(tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl", rows_of(30))
    atdata.ingest(src, tmp_path / "out", sample_type=Item, maxcount=7)
    with pytest.raises(atdata.ConfigError, match="maxcount differ"):
        atdata.ingest(src, tmp_path / "out", sample_type=Item, maxcount=8)
    import shutil

    shutil.rmtree(tmp_path / "out" / ".ingest")
    with pytest.raises(atdata.ConfigError, match="already holds shards"):
        atdata.ingest(src, tmp_path / "out", sample_type=Item, maxcount=7)


def test_concurrent_run_on_same_output_is_refused(tmp_path):
    from atdata._ingest._state import IngestState

    src = write_jsonl(tmp_path / "a.jsonl", rows_of(3))
    other = IngestState(str(tmp_path / "out"))
    other.lock()  # as another process would (flock is per open file)
    try:
        with pytest.raises(atdata.ConfigError, match="another ingestion is writing"):
            atdata.ingest(src, tmp_path / "out", sample_type=Item)
    finally:
        other.unlock()
    assert atdata.ingest(src, tmp_path / "out", sample_type=Item).rows_written == 3


def test_bad_options(tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl", rows_of(3))
    with pytest.raises(atdata.ConfigError, match="dedup_on names field 'nope'"):
        atdata.ingest(src, tmp_path / "o1", sample_type=Item, dedup_on="nope")
    with pytest.raises(atdata.DataNotFoundError, match="matches no files"):
        atdata.ingest(str(tmp_path / "*.csv"), tmp_path / "o2")
    with pytest.raises(atdata.ConfigError, match="format must be 'jsonl'"):
        atdata.ingest(src, tmp_path / "o3", format="xml")
    (tmp_path / "a.xml").write_text("<a/>")
    with pytest.raises(atdata.ConfigError, match=r"cannot tell the format of .*a\.xml"):
        atdata.ingest(str(tmp_path / "a.xml"), tmp_path / "o3")
    with pytest.raises(atdata.ConfigError, match=r"cannot use .* as the ingestion output"):
        atdata.ingest(src, src, sample_type=Item)  # a file, not a directory
    with pytest.raises(atdata.ConfigError, match="needs name="):
        atdata.ingest(src, tmp_path / "o4", index=object())


def test_into_index(tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl", rows_of(12))
    idx = atdata.Index(path=str(tmp_path / "i.db"))
    r = atdata.ingest(src, tmp_path / "out", sample_type=Item, maxcount=5, index=idx, name="items")
    assert r.entry is not None and [s.url for s in r.entry.shards] == r.list_shards()
    ds = idx.open_dataset("items")
    assert [s.id for s in ds.ordered()] == list(range(12))


def test_hf_dataset(tmp_path):
    datasets = pytest.importorskip("datasets")
    hf = datasets.Dataset.from_dict({"id": [1, 2, 3, 2], "text": ["a", "b", "c", "b"]})
    r = atdata.ingest(hf, tmp_path / "out", sample_type=Item, dedup_on="id", maxcount=2)
    assert (r.rows_read, r.rows_written, r.duplicates) == (4, 3, 1)
    assert [s.text for s in r.dataset().ordered()] == ["a", "b", "c"]
    r2 = atdata.ingest(hf, tmp_path / "out2", name="hf-rows")
    assert r2.schema == "HfRows(id: int | None, text: str | None)"
    stream = hf.to_iterable_dataset()  # streaming: no len, read in order, resumed by skip()
    r3 = atdata.ingest(stream, tmp_path / "out3", dedup_on="text", maxcount=1, name="s")
    assert (r3.rows_read, r3.rows_written, r3.schema) == (
        4,
        3,
        "S(id: int | None, text: str | None)",
    )
    assert _shard_names(tmp_path / "out3") == [f"data-00000{i}.tar" for i in range(3)]


def _shard_names(d):
    return sorted(n for n in os.listdir(d) if n.endswith(".tar"))


def test_digest_set_grows_and_survives_log(tmp_path):
    s = DigestSet(16)
    ds = [key_digest(str(i).encode()) for i in range(5000)]
    assert all(s.add(d) for d in ds) and not any(s.add(d) for d in ds[::7])
    t = DigestSet()
    t.add_log(b"".join(ds) + b"xx")  # a torn tail is ignored
    assert len(t) == 5000 and all(d in t for d in ds) and key_digest(b"x") not in t


@settings(max_examples=30, deadline=None)
@given(hs.lists(hs.binary(min_size=0, max_size=12), max_size=200))
def test_digest_set_is_a_set(keys):
    s, ref = DigestSet(16), set()
    for k in keys:
        d = key_digest(k)
        assert s.add(d) == (d not in ref)
        ref.add(d)
    assert len(s) == len(ref) and all(d in s for d in ref)


@settings(max_examples=40, deadline=None)
@given(
    hs.lists(
        hs.tuples(hs.sampled_from([0, 1, 15, 16, 31, 1 << 12]), hs.integers(1, (1 << 40) - 1)),
        max_size=400,
    ),
    hs.integers(0, 2),
)
def test_digest_set_clusters_past_the_end_and_grow_in_place(keys, tail):
    # Digests whose homes pile up on a few slots (and on the last ones): clusters run into the
    # spare tail, growth lifts it and re-places every slot in place; it must stay a set.
    s, ref = DigestSet(16), set()
    for home, high in keys:
        home = (s._mask - tail) if home == 31 else home
        d = ((high << 24) | home).to_bytes(8, "little") + high.to_bytes(8, "little")
        assert s.add(d) == (d not in ref)
        ref.add(d)
        assert s._hi[-1] == 0  # the last slot stays empty: probes end without a bounds check
    assert len(s) == len(ref) and all(d in s for d in ref)
    assert key_digest(b"absent") not in s and s.nbytes == 16 * len(s._hi)


def test_digest_set_grows_without_a_second_table():
    import tracemalloc

    ds = [key_digest(str(i).encode()) for i in range(23_000)]  # 2**15 slots hold 22,937
    tracemalloc.start()
    try:
        s = DigestSet(1 << 15)
        for d in ds:
            s.add(d)  # the 22,938th doubles the table
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert s.nbytes == 16 * ((1 << 16) + 64)
    # The peak is the grown table (+ the columns' over-allocation and a 64 KiB chunk), not
    # the old and the new table together (1.5x).
    assert peak < 1.25 * s.nbytes, (peak, s.nbytes)
    assert len(s) == 23_000 and all(d in s for d in ds)


@settings(max_examples=25, deadline=None)
@given(hs.lists(hs.integers(1, 9), min_size=1, max_size=6), hs.integers(0, 60))
def test_parquet_rows_from_any_start(tmp_path_factory, groups, start):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from atdata._ingest._readers import iter_parquet

    path = tmp_path_factory.mktemp("pq") / "g.parquet"
    with pq.ParquetWriter(path, pa.schema([("id", pa.int64())])) as w:
        n = 0
        for g in groups:  # row groups of uneven sizes
            w.write_table(pa.table({"id": list(range(n, n + g))}))
            n += g
    got = [(p, r["id"]) for p, r in iter_parquet(str(path), start)]
    assert got == [(i, i) for i in range(start, n)]


@settings(max_examples=25, deadline=None)
@given(hs.lists(hs.sampled_from(['{"a": 1}', "", "{bad", '"s"']), max_size=20), hs.integers(0, 25))
def test_jsonl_positions_from_any_start(lines, start):
    import io

    from atdata._ingest._readers import iter_jsonl

    data = "".join(x + "\n" for x in lines).encode()
    got = [p for p, _ in iter_jsonl(io.BytesIO(data), start)]
    assert got == [i for i in range(start, len(lines)) if lines[i]]


@atdata.packable
class Mixed:
    n: int
    x: float
    s: str
    b: bool
    tags: list[str]
    opt: int | None = None


_mixed = hs.builds(
    Mixed,
    n=hs.integers(-(2**63), 2**63 - 1),
    x=hs.floats(allow_nan=False, allow_infinity=False),
    s=hs.text(max_size=12),
    b=hs.booleans(),
    tags=hs.lists(hs.text(max_size=4), max_size=3),
    opt=hs.none() | hs.integers(-5, 5),
)


@settings(max_examples=20, deadline=None)
@given(hs.lists(_mixed, min_size=1, max_size=12))
def test_jsonl_round_trip_property(tmp_path_factory, samples):
    d = tmp_path_factory.mktemp("rt")
    src = write_jsonl(d / "m.jsonl", [s.to_dict() for s in samples])
    r = atdata.ingest(src, d / "out", sample_type=Mixed, maxcount=5, fsync=False)
    assert list(r.dataset().ordered()) == samples


@settings(max_examples=20, deadline=None)
@given(hs.lists(_mixed, min_size=1, max_size=12))
def test_csv_round_trip_property(tmp_path_factory, samples):
    import csv

    d = tmp_path_factory.mktemp("csv")
    with open(d / "m.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["n", "x", "s", "b", "tags", "opt"])
        for s in samples:  # text cells: numbers by repr, lists as JSON, None as empty
            w.writerow(
                [s.n, repr(s.x), s.s, s.b, json.dumps(s.tags), "" if s.opt is None else s.opt]
            )
    r = atdata.ingest(str(d / "m.csv"), d / "out", sample_type=Mixed, fsync=False)
    assert list(r.dataset().ordered()) == samples


@settings(max_examples=30, deadline=None)
@given(hs.lists(hs.sampled_from(['{"a": 1}', "", "{bad", '{"b": "é"}']), max_size=20), hs.data())
def test_jsonl_resume_at_recorded_offset(lines, data):
    import io

    from atdata._ingest._readers import iter_jsonl

    raw = "".join(x + "\n" for x in lines).encode()
    cell: list = [None]
    seen = []
    for pos, row in iter_jsonl(io.BytesIO(raw), 0, cell):
        seen.append((pos, cell[0], row if isinstance(row, dict) else row.reason))
    want = [(p, r) for p, _, r in seen]
    if not seen:
        return
    k = data.draw(hs.integers(0, len(seen) - 1))
    pos, off, _ = seen[k]  # a run sealed right after record `pos`: resume at pos+1, offset off
    f = io.BytesIO(raw)
    f.seek(off)
    rest = [
        (p, r if isinstance(r, dict) else r.reason) for p, r in iter_jsonl(f, pos + 1, [None], off)
    ]
    assert rest == want[k + 1 :]


_CSV_RECORDS = [b"1,a\n", b"2,a\r\n", b'3,"x\ny"\n', b'4,"q""\r\n"\r\n', b"5,\xff\n",
                b"6,\xc3\xa9\n", b"7\n", b"\n"]  # fmt: skip


def _csv_seen(raw, start=0, rest=None, offset=0):
    from atdata._ingest._readers import iter_csv

    cell: list = [None] if rest is None else [offset]
    return [
        (p, cell[0], r if isinstance(r, dict) else r.detail)
        for p, r in iter_csv(io.BytesIO(raw), start, "", cell, rest, offset)
    ]


@settings(max_examples=40, deadline=None)
@given(hs.booleans(), hs.lists(hs.sampled_from(_CSV_RECORDS), max_size=16), hs.data())
def test_csv_resume_at_recorded_offset(bom, records, data):
    # quoted newlines, CRLF, a BOM, bytes that are not UTF-8, short and blank records: a run
    # resumed at the offset recorded after any record yields exactly the records after it
    raw = (b"\xef\xbb\xbf" if bom else b"") + b"n,t\r\n" + b"".join(records)
    seen = _csv_seen(raw)
    good = {b"1": "a", b"2": "a", b"3": "x\ny", b"4": 'q"\r\n', b"6": "é"}
    assert [s[2] for s in seen] == [
        {"n": r[:1].decode(), "t": good[r[:1]]} if r[:1] in good
        else "a record that is not UTF-8 text" if r[:1] == b"5"
        else "1 cells where the header has 2"
        for r in records
        if r != b"\n"  # (a blank line is no record)
    ]  # fmt: skip
    if not seen:
        return
    k = data.draw(hs.integers(0, len(seen) - 1))
    pos, off, _ = seen[k]  # a run sealed right after record ``pos``
    f = io.BytesIO(raw)
    f.seek(off)
    assert _csv_seen(raw, pos + 1, f, off) == seen[k + 1 :]


def test_missing_zstandard_names_the_extra(tmp_path, monkeypatch):
    from atdata import _extras

    monkeypatch.setitem(__import__("sys").modules, "zstandard", None)  # as if not installed
    monkeypatch.delitem(_extras._cache, "zstandard", raising=False)
    p = tmp_path / "a.jsonl.zst"
    p.write_bytes(b"")
    with pytest.raises(atdata.MissingExtraError, match=r'pip install "atdata\[ingest\]"'):
        atdata.ingest(str(p), tmp_path / "out")


def test_unknown_url_scheme_names_what_is_read(tmp_path):
    with pytest.raises(
        atdata.ConfigError, match=r"hf:// is not a source ingest reads .*load_dataset"
    ):
        atdata.ingest("hf://mnist", tmp_path / "out")
