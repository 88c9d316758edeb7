"""ShardWriter and write_samples: atomic shards, checksums, keys, splitting, progress."""

from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess
import sys
import tarfile
import uuid

import numpy as np
import pytest

import atdata
from atdata import ConfigError, DictSample, NDArray, SampleKeyError, SchemaError, ShardWriter


@atdata.packable
class Row:
    text: str
    vec: NDArray | None = None


class Boom(Exception):
    pass


def _listing(d) -> list[str]:
    return sorted(os.listdir(d))


def _rows(n, size=0):
    return [Row(text=f"r{i}", vec=np.zeros(size, "|u1") if size else None) for i in range(n)]


def test_exception_mid_write_leaves_nothing(tmp_path):
    with pytest.raises(Boom), ShardWriter(tmp_path / "a.tar", key="index") as w:
        w.write(Row(text="x"))
        w.write(Row(text="y"))
        raise Boom
    assert _listing(tmp_path) == []


def test_generator_failure_keeps_only_complete_shards(tmp_path):
    def gen():
        yield from _rows(5)
        raise Boom

    with pytest.raises(Boom):
        atdata.write_samples(gen(), tmp_path / "s-%02d.tar", maxcount=2, key="index")
    assert _listing(tmp_path) == ["s-00.tar", "s-01.tar"]
    ds = atdata.Dataset[Row](str(tmp_path / "s-{00..01}.tar"))
    assert [r.text for r in ds] == ["r0", "r1", "r2", "r3"]


def test_sample_that_fails_to_encode(tmp_path):
    bad = Row(text=5)  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match=r"field Row.'text' expects str"):
        atdata.write_samples([Row(text="ok"), bad], tmp_path / "b.tar", key="index")
    assert _listing(tmp_path) == []
    # caught and skipped by the caller: nothing of it is written, the shard stays valid
    with ShardWriter(tmp_path / "c.tar", key="index") as w:
        w.write(Row(text="a"))
        with pytest.raises(SchemaError):
            w.write(bad)
        w.write(Row(text="b"))
    assert _listing(tmp_path) == ["c.tar"]
    assert [(r.text, r.__key__) for r in atdata.Dataset[Row](str(tmp_path / "c.tar"))] == [
        ("a", "00000000"),
        ("b", "00000001"),
    ]


@atdata.packable
class Loose:
    name: str
    extra: list | None = None


@pytest.mark.parametrize(
    ("sample", "field", "why"),
    [
        ({"x": np.float32(1.5)}, "'x'", r"numpy.float32"),
        ({"x": {1, 2}}, "'x'", r"'set'"),
        ({"x": "\ud800"}, "'x'", r"surrogates not allowed"),
        ({"x": 2**70}, "'x'", r"out of range"),
        ({"x": [np.zeros(2)]}, "'x'", r"numpy.ndarray"),
        ({"x": {1: "a"}}, "'x'", r"map key 1 is an int"),
        ({"x": [{"ok": 1}, {2.5: 1}]}, "'x'", r"map key 2.5 is a float"),
        ({3: "a"}, "3", r"field names are str, not int"),
        (Loose(name="\udcff"), "Loose.'name'", r"surrogates not allowed"),
        (Loose(name="a", extra=[np.int64(1)]), "Loose.'extra'", r"numpy.int64"),
        (Loose(name="a", extra=[{(1,): 0}]), "Loose.'extra'", r"map key \(1,\) is a tuple"),
    ],
)
def test_values_msgpack_cannot_store_or_read_back_are_refused(tmp_path, sample, field, why):
    with ShardWriter(tmp_path / "v.tar", key="index") as w:
        w.write({"x": 1})
        with pytest.raises(SchemaError, match=rf"field {field}.*{why}.*sample '00000001'"):
            w.write(sample)
        w.write({"x": 2})
    assert [s.x for s in atdata.Dataset(str(tmp_path / "v.tar"))] == [1, 2]
    with pytest.raises(SchemaError, match=rf"field {field}.*{why}"):
        (sample if isinstance(sample, Loose) else DictSample(sample)).packed  # noqa: B018


def test_temp_file_is_hidden_while_writing(tmp_path):
    w = ShardWriter(tmp_path / "x.tar")
    w.write(Row(text="a"))
    names = _listing(tmp_path)
    assert len(names) == 1 and names[0].startswith(".x.tar.tmp-")
    w.abort()
    assert _listing(tmp_path) == []


def test_sha256_and_size_match_files(tmp_path):
    ds = atdata.write_samples(_rows(7, size=300), tmp_path / "h.tar", maxcount=3)
    infos = ds.list_shard_infos()
    assert [i.num_samples for i in infos] == [3, 3, 1]
    assert [os.path.basename(i.path) for i in infos] == [
        "h-000000.tar",
        "h-000001.tar",
        "h-000002.tar",
    ]
    for i in infos:
        data = pathlib.Path(i.path).read_bytes()
        assert i.size == len(data)
        assert i.sha256 == hashlib.sha256(data).hexdigest()
    assert ds.list_shards() == [i.path for i in infos]


def _keys(path):
    with tarfile.open(path) as tf:
        return [n.split(".", 1)[0] for n in tf.getnames()]


def test_key_policies(tmp_path):
    ds = atdata.write_samples(_rows(3), tmp_path / "i.tar", key="index")
    assert _keys(ds.list_shards()[0]) == ["00000000", "00000001", "00000002"]

    ds = atdata.write_samples(_rows(3), tmp_path / "u.tar", key="uuid")
    ks = _keys(ds.list_shards()[0])
    assert len(set(ks)) == 3 and all(uuid.UUID(k).version == 1 for k in ks)

    ds = atdata.write_samples(_rows(3), tmp_path / "c.tar", key=lambda s, i: f"{s.text}_{i * 10}")
    assert _keys(ds.list_shards()[0]) == ["r0_0", "r1_10", "r2_20"]

    rows = _rows(3)
    rows[0].__key__ = "own-a"
    rows[2].__key__ = "own-c"
    ds = atdata.write_samples(rows, tmp_path / "o.tar")
    ks = _keys(ds.list_shards()[0])
    assert ks[0] == "own-a" and ks[2] == "own-c" and uuid.UUID(ks[1]).version == 1

    # index keys keep counting across shards
    ds = atdata.write_samples(_rows(3), tmp_path / "m.tar", maxcount=2, key="index")
    assert [s.__key__ for s in ds] == ["00000000", "00000001", "00000002"]


@pytest.mark.parametrize("bad", ["", "a.b", "a\nb", "nul\x00", "/abs", 5, None])
def test_invalid_keys(tmp_path, bad):
    with pytest.raises(SampleKeyError, match=r"invalid sample key"):
        atdata.write_samples(_rows(1), tmp_path / "k.tar", key=lambda s, i: bad)
    assert _listing(tmp_path) == []


def test_duplicate_key(tmp_path):
    with pytest.raises(SampleKeyError, match=r"duplicate sample key 'same' in shard"):
        atdata.write_samples(_rows(2), tmp_path / "d.tar", key=lambda s, i: "same")
    assert _listing(tmp_path) == []
    # the same key in different shards is allowed (keys are unique per shard)
    ds = atdata.write_samples(_rows(2), tmp_path / "e.tar", maxcount=1, key=lambda s, i: "same")
    assert len(ds.list_shards()) == 2


def test_maxcount_split(tmp_path):
    with ShardWriter(tmp_path / "s-%03d.tar", maxcount=4, key="index") as w:
        for r in _rows(10):
            w.write(r)
    assert [i.num_samples for i in w.list_shard_infos()] == [4, 4, 2]
    assert w.count == 10
    assert _listing(tmp_path) == ["s-000.tar", "s-001.tar", "s-002.tar"]


@pytest.mark.parametrize(
    ("name", "maxcount", "match"),
    [
        ("100%.tar", None, r"100%.tar'.*one printf field"),
        ("a-%d-%d.tar", 1, r"a-%d-%d.tar'.*one printf field"),
        ("a-%s-%q.tar", 1, r"one printf field"),
    ],
)
def test_bad_printf_pattern_is_a_config_error(tmp_path, name, maxcount, match):
    with pytest.raises(ConfigError, match=match):
        ShardWriter(tmp_path / name, maxcount)
    assert _listing(tmp_path) == []


def test_percent_in_a_directory_is_not_a_printf_field(tmp_path):
    d = tmp_path / "100%"
    ds = atdata.write_samples(_rows(3), d / "s-%02d.tar", maxcount=2, key="index")
    assert _listing(d) == ["s-00.tar", "s-01.tar"]
    assert [r.text for r in ds] == ["r0", "r1", "r2"]
    ds = atdata.write_samples(_rows(3), tmp_path / "50%" / "t.tar", maxcount=2, key="index")
    assert _listing(tmp_path / "50%") == ["t-000000.tar", "t-000001.tar"]
    assert [r.text for r in ds] == ["r0", "r1", "r2"]
    ds = atdata.write_samples(_rows(3), tmp_path / "lit" / "q%%.tar", maxcount=2, key="index")
    assert _listing(tmp_path / "lit") == ["q%-000000.tar", "q%-000001.tar"]
    assert [r.text for r in ds] == ["r0", "r1", "r2"]


@pytest.mark.parametrize("name", ["a{b}.tar", "x-{0..2}.tar", "we[ir]d.tar", "s*.tar", "a::b.tar"])
def test_write_samples_refuses_names_it_could_not_read_back(tmp_path, name):
    with pytest.raises(ConfigError, match=r"read back as a pattern.*rename"):
        atdata.write_samples(_rows(2), tmp_path / name, maxcount=1)
    assert _listing(tmp_path) == []


def test_maxsize_split(tmp_path):
    ds = atdata.write_samples(_rows(20, size=1000), tmp_path / "z-%02d.tar", maxsize=6000)
    infos = ds.list_shard_infos()
    assert sum(i.num_samples for i in infos) == 20
    assert len(infos) > 1
    assert all(i.size <= 6000 for i in infos)
    assert len(ds) == 20


def test_sample_larger_than_maxsize_gets_its_own_shard(tmp_path):
    ds = atdata.write_samples(_rows(3, size=5000), tmp_path / "big-%02d.tar", maxsize=2048)
    assert [i.num_samples for i in ds.list_shard_infos()] == [1, 1, 1]


def test_start_index_and_pattern(tmp_path):
    with ShardWriter(tmp_path / "p-%02d.tar", maxcount=1, start_index=5) as w:
        w.write(Row(text="a"))
        w.write(Row(text="b"))
    assert _listing(tmp_path) == ["p-05.tar", "p-06.tar"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"maxcount": 0}, "maxcount must be >= 1"),
        ({"maxsize": 100}, r"maxsize \(bytes per shard\) must be >= 1536, got 100"),
        ({"maxcount": 1.5}, r"maxcount must be an integer >= 1, got 1.5 \(float\)"),
        ({"maxcount": True}, r"maxcount must be an integer >= 1, got True \(bool\)"),
        ({"maxsize": 4096.0}, r"maxsize \(bytes per shard\) must be an integer >= 1536"),
        ({"key": "sequential"}, "key must be None, 'index', 'uuid' or a callable"),
    ],
)
def test_config_errors(tmp_path, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ShardWriter(tmp_path / "x.tar", **kwargs)


def test_empty_input(tmp_path):
    with pytest.raises(ConfigError, match=r"samples must be non-empty: none were given"):
        atdata.write_samples([], tmp_path / "e.tar")
    assert _listing(tmp_path) == []


def test_unwritable_object(tmp_path):
    with pytest.raises(SchemaError, match=r"cannot write a int"):
        atdata.write_samples([1], tmp_path / "n.tar")


def test_dicts_and_dictsamples(tmp_path):
    ds = atdata.write_samples(
        [{"a": 1}, {"a": 2, "img": np.ones(2)}], tmp_path / "d.tar", key="index"
    )
    assert ds.sample_type is DictSample
    got = list(ds)
    assert [s.a for s in got] == [1, 2]
    assert got[1].array("img").tolist() == [1.0, 1.0]


class _Recorder:
    def __init__(self):
        self.events = []

    def begin_shard(self, path):
        self.events.append(("begin", os.path.basename(path)))

    def add(self, key, offset, size, sample):
        self.events.append(("add", key, offset, size))

    def end_shard(self, info):
        self.events.append(("end", os.path.basename(info.path), info.num_samples))

    def abort_shard(self, path):
        self.events.append(("abort", os.path.basename(path)))


def test_observers(tmp_path):
    rec = _Recorder()
    ds = atdata.write_samples(
        _rows(3), tmp_path / "o.tar", maxcount=2, key="index", observers=[rec]
    )
    sizes = [len(Row(text=f"r{i}").packed) for i in range(3)]
    assert rec.events == [
        ("begin", "o-000000.tar"),
        ("add", "00000000", 512, sizes[0]),
        ("add", "00000001", 1536, sizes[1]),
        ("end", "o-000000.tar", 2),
        ("begin", "o-000001.tar"),
        ("add", "00000002", 512, sizes[2]),
        ("end", "o-000001.tar", 1),
    ]
    data = pathlib.Path(ds.list_shards()[0]).read_bytes()
    assert data[1536 : 1536 + sizes[1]] == Row(text="r1").packed
    rec2 = _Recorder()
    with pytest.raises(Boom), ShardWriter(tmp_path / "q.tar", observers=[rec2]) as w:
        w.write(Row(text="a"))
        raise Boom
    assert rec2.events[0] == ("begin", "q.tar") and rec2.events[-1] == ("abort", "q.tar")


def test_progress_without_tty(tmp_path):
    script = (
        "import atdata, sys\n"
        "@atdata.packable\n"
        "class R:\n"
        "    t: str\n"
        "ds = atdata.write_samples([R(t=str(i)) for i in range(200)], sys.argv[1], progress=True)\n"
        "print(len(ds))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "p.tar")],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=True,
    )
    assert res.stdout.strip().splitlines()[-1] == "200"
    assert "200/200" in res.stdout + res.stderr
    assert _listing(tmp_path) == ["p.tar"]


def test_progress_default_off_when_not_a_tty(tmp_path, capsys):
    atdata.write_samples(_rows(2), tmp_path / "q.tar")
    assert capsys.readouterr().err == ""
