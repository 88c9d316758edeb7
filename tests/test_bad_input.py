"""Bad input gives a specific AtdataError naming shard, key and field; never a bare builtin error."""

from __future__ import annotations

import io
import os
import pathlib
import struct

import msgpack
import numpy as np
import pytest

import atdata
from atdata import DecodeError, DictSample, NDArray, SchemaError, ShardError
from atdata._shards.tar import TarWriter


@atdata.packable
class Rec:
    name: str
    score: float
    arr: NDArray


def _arr_bytes(dt: bytes, shape: tuple[int, ...], data: bytes) -> bytes:
    return (
        bytes([len(dt)]) + dt + bytes([len(shape)]) + struct.pack(f"<{len(shape)}q", *shape) + data
    )


GOOD = {"name": "ok", "score": 1.0, "arr": atdata.encode_array(np.arange(3, dtype="<i2"))}


def _shard(path, members: list[tuple[str, bytes]]) -> str:
    buf = io.BytesIO()
    w = TarWriter(buf, mtime=0)
    for key, payload in members:
        w.add(key + ".msgpack", payload)
    w.close()
    path.write_bytes(buf.getvalue())
    return str(path)


def _one_bad(tmp_path, payload: bytes) -> str:
    return _shard(tmp_path / "bad.tar", [("k0", msgpack.packb(GOOD)), ("k1", payload)])


def _read(path, typ=Rec, **kw):
    return list(atdata.Dataset(path, sample_type=typ, **kw))


def _fails(path, exc_type, *fragments, typ=Rec):
    with pytest.raises(exc_type) as ei:
        _read(path, typ)
    msg = str(ei.value)
    assert isinstance(ei.value, atdata.AtdataError)
    for f in fragments:
        assert f in msg, (f, msg)
    return msg


# -- shard level -----------------------------------------------------------------------------


def test_missing_file(tmp_path):
    p = str(tmp_path / "absent.tar")
    msg = _fails(p, ShardError, "absent.tar")
    assert "not found" in msg or "No such file" in msg


def test_garbage_file(tmp_path):
    p = tmp_path / "garbage.tar"
    p.write_bytes(os.urandom(5000))
    _fails(str(p), ShardError, "not a tar archive", "garbage.tar")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.tar"
    p.write_bytes(b"")
    _fails(str(p), ShardError, "empty file is not a tar archive", "empty.tar")


@pytest.mark.parametrize(
    ("cut", "what"), [(1024 + 200, "truncated tar header"), (1024 + 512 + 10, "truncated shard")]
)
def test_truncated_shard(tmp_path, cut, what):
    full = _shard(
        tmp_path / "full.tar", [("k0", msgpack.packb(GOOD)), ("k1", b"\x91" + b"\x01" * 600)]
    )
    data = pathlib.Path(full).read_bytes()
    p = tmp_path / "cut.tar"
    p.write_bytes(data[:cut])
    msg = _fails(str(p), ShardError, what, "cut.tar")
    assert "k0" not in msg


def test_truncated_shard_yields_samples_before_the_cut(tmp_path):
    full = _shard(tmp_path / "full.tar", [("k0", msgpack.packb(GOOD)), ("k1", msgpack.packb(GOOD))])
    p = tmp_path / "cut.tar"
    p.write_bytes(pathlib.Path(full).read_bytes()[: 1024 + 300])
    it = iter(atdata.Dataset[Rec](str(p)))
    assert next(it).__key__ == "k0"
    with pytest.raises(ShardError, match=r"truncated"):
        next(it)


# -- sample level ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload", [b"\xc1", b"\x92\x01", b"\x81\xa1a\xc1", b"\xa3\xff\xfe\xfd", b"\x81\x01\x02"]
)
def test_member_not_msgpack_or_not_a_map(tmp_path, payload):
    p = _one_bad(tmp_path, payload)
    for typ in (Rec, DictSample):
        _fails(p, DecodeError, "bad.tar", "'k1'", typ=typ)


@pytest.mark.parametrize(
    ("payload", "what"),
    [(b"\x92\x01\x02", "list"), (b"\xff", "int"), (b"\xff\xff\xff", "int followed by 2")],
)
def test_payload_that_is_not_a_map_is_also_a_type_error(tmp_path, payload, what):
    # a non-map payload (alone or followed by more bytes) cannot be a sample: DecodeError
    # (ValueError) and TypeError both catch it, on every read path
    p = _one_bad(tmp_path, payload)
    reads = {
        "stream": lambda ds: list(ds),
        "batched": lambda ds: list(ds.ordered(batch_size=2)),
        "random access": lambda ds: ds[1],
        "by key": lambda ds: ds.get("k1"),
    }
    for how, read in reads.items():
        for typ in (Rec, DictSample):
            with pytest.raises(TypeError) as ei:
                read(atdata.Dataset(p, sample_type=typ))
            assert isinstance(ei.value, DecodeError) and isinstance(ei.value, TypeError), how
            assert f"payload is a msgpack {what}" in str(ei.value), (how, str(ei.value))
            assert "'k1'" in str(ei.value) and "not a map" in str(ei.value), how


def test_invalid_utf8_string(tmp_path):
    p = _one_bad(tmp_path, msgpack.packb({**GOOD, "name": "x"}).replace(b"\xa1x", b"\xa1\xff"))
    _fails(p, DecodeError, "bad.tar", "'k1'")


def test_missing_required_field(tmp_path):
    p = _one_bad(tmp_path, msgpack.packb({"name": "x", "arr": GOOD["arr"]}))
    msg = _fails(p, SchemaError, "missing required field Rec.'score'", "bad.tar", "'k1'")
    assert "score: float | None" in msg  # the fix


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [("score", "high", "float"), ("name", 5, "str"), ("arr", [1, 2], "array bytes")],
)
def test_wrong_field_type(tmp_path, field, value, expected):
    p = _one_bad(tmp_path, msgpack.packb({**GOOD, field: value}))
    _fails(p, SchemaError, f"field Rec.'{field}' should hold {expected}", "bad.tar", "'k1'")


@pytest.mark.parametrize(
    ("arr", "fragment"),
    [
        (_arr_bytes(b"<f4", (3,), b"\0" * 8), "but 8 data bytes follow"),
        (_arr_bytes(b"<f4", (2**60,), b"\0" * 8), "but 8 data bytes follow"),
        (_arr_bytes(b"<f8", (2**62, 2**62), b""), "data bytes follow"),
        (_arr_bytes(b"<f8", (-1,), b""), "negative dimension"),
        (_arr_bytes(b"|O", (1,), b"\0" * 8), "object-dtype arrays are refused"),
        (_arr_bytes(b"zz9", (1,), b"\0"), "invalid array dtype"),
        (_arr_bytes(b"|S0", (4,), b""), "zero-size or subarray"),
        (_arr_bytes(b"(2,)i4", (1,), b"\0" * 8), "zero-size or subarray"),
        (_arr_bytes(b"\xff\xfe", (1,), b"\0"), "invalid array dtype"),
        (b"\x03<f4\x05" + b"\0" * 8, "invalid ndim"),
        (b"\x40<f4", "invalid dtype length"),
        (b"\x03", "too short"),
        (b"\x93NUMPY\x01\x00\xff\xff{", "truncated .npy header"),
        (b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'}", "malformed .npy header"),
        (b"\x93NUMPY\x09\x00" + b"\0" * 8, "unsupported .npy version 9"),
    ],
)
def test_bad_array_bytes(tmp_path, arr, fragment):
    p = _one_bad(tmp_path, msgpack.packb({**GOOD, "arr": arr}))
    _fails(p, DecodeError, fragment, "field 'arr'", "bad.tar", "'k1'")
    with pytest.raises(DecodeError, match=r"field 'arr'"):
        DictSample.from_bytes(msgpack.packb({**GOOD, "arr": arr})).array("arr")


def test_lying_header_does_not_allocate(tmp_path):
    import tracemalloc

    payload = msgpack.packb({**GOOD, "arr": _arr_bytes(b"<f8", (2**60,), b"")})
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError):
            Rec.from_bytes(payload)
        _cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_pickled_npy_object_array_refused(tmp_path):
    buf = io.BytesIO()
    np.save(buf, np.array([None, 1], dtype=object), allow_pickle=True)
    p = _one_bad(tmp_path, msgpack.packb({**GOOD, "arr": buf.getvalue()}))
    _fails(p, DecodeError, "object-dtype arrays are refused", "bad.tar", "'k1'")


def test_errors_in_batches_name_the_sample(tmp_path):
    p = _shard(
        tmp_path / "b.tar",
        [("k0", msgpack.packb(GOOD)), ("k1", msgpack.packb({**GOOD, "score": "x"}))],
    )
    with pytest.raises(SchemaError) as ei:
        list(atdata.Dataset[Rec](p).ordered(batch_size=2))
    assert "'score'" in str(ei.value) and "b.tar" in str(ei.value) and "'k1'" in str(ei.value)
    q = _shard(
        tmp_path / "c.tar",
        [("k0", msgpack.packb(GOOD)), ("k1", msgpack.packb({"name": "n", "score": 1.0}))],
    )
    with pytest.raises(SchemaError) as ei:
        list(atdata.Dataset[Rec](q).ordered(batch_size=2))
    assert "'arr'" in str(ei.value) and "c.tar" in str(ei.value) and "'k1'" in str(ei.value)
    for arr in (_arr_bytes(b"<i2", (2**60,), b""), b"\x93NUMPY\x09\x00" + b"\0" * 8):
        r = _shard(
            tmp_path / "d.tar",
            [("k0", msgpack.packb(GOOD)), ("k1", msgpack.packb({**GOOD, "arr": arr}))],
        )
        with pytest.raises(DecodeError) as ei:
            list(atdata.Dataset[Rec](r).ordered(batch_size=2))
        assert "'arr'" in str(ei.value) and "d.tar" in str(ei.value) and "'k1'" in str(ei.value)


# -- on_error="skip" ---------------------------------------------------------------------------


def test_skip_corrupt_shard_and_samples(tmp_path):
    good1 = _shard(tmp_path / "a.tar", [("a0", msgpack.packb(GOOD)), ("a1", msgpack.packb(GOOD))])
    (tmp_path / "b.tar").write_bytes(b"this is not a tar file" * 40)
    mixed = _shard(
        tmp_path / "c.tar",
        [
            ("c0", msgpack.packb(GOOD)),
            ("c1", b"\xc1"),
            ("c2", msgpack.packb({"name": "no score", "arr": GOOD["arr"]})),
            ("c3", msgpack.packb({**GOOD, "arr": _arr_bytes(b"<f4", (2**60,), b"")})),
            ("c4", msgpack.packb([1, 2])),
            ("c5", msgpack.packb(GOOD)),
        ],
    )
    missing = str(tmp_path / "d.tar")
    ds = atdata.Dataset[Rec]([good1, str(tmp_path / "b.tar"), mixed, missing], on_error="skip")
    assert [s.__key__ for s in ds] == ["a0", "a1", "c0", "c5"]
    skipped = ds.list_skipped()
    assert [(os.path.basename(s["shard"]), s["key"]) for s in skipped] == [
        ("b.tar", ""),
        ("c.tar", "c1"),
        ("c.tar", "c2"),
        ("c.tar", "c3"),
        ("c.tar", "c4"),
        ("d.tar", ""),
    ]
    assert "not a tar archive" in skipped[0]["error"]
    assert "missing required field Rec.'score'" in skipped[2]["error"]
    assert "field 'arr'" in skipped[3]["error"]
    assert "d.tar" in skipped[5]["error"]
    assert list(ds.skipped) == skipped
    assert len(ds) == 8  # unreadable shards count as empty under on_error="skip"
    # batches skip too
    ds2 = atdata.Dataset[Rec]([good1, str(tmp_path / "b.tar"), mixed], on_error="skip")
    assert [b.keys for b in ds2.ordered(batch_size=3)] == [["a0", "a1", "c0"], ["c5"]]


def test_skip_truncated_shard_keeps_earlier_samples(tmp_path):
    full = _shard(tmp_path / "f.tar", [("k0", msgpack.packb(GOOD)), ("k1", msgpack.packb(GOOD))])
    p = tmp_path / "t.tar"
    p.write_bytes(pathlib.Path(full).read_bytes()[: 1024 + 300])
    ds = atdata.Dataset[Rec](str(p), on_error="skip")
    assert [s.__key__ for s in ds] == ["k0"]
    assert len(ds.list_skipped()) == 1 and "truncated" in ds.list_skipped()[0]["error"]


def test_from_bytes_errors_are_atdata_errors():
    for bad in (b"", b"\xc1", b"\x93\x01\x02\x03", msgpack.packb({"name": 1})):
        with pytest.raises(atdata.AtdataError):
            Rec.from_bytes(bad)
        if bad[:1] in (b"\x93", b"", b"\xc1"):
            with pytest.raises(DecodeError):
                DictSample.from_bytes(bad)


# -- secrets and names (issue 9, item 11) ------------------------------------------------------


@pytest.mark.parametrize(
    ("dsn", "masked"),
    [
        ("redis://u:p@SECRET@host:6379/0", "redis://u:***@host:6379/0"),
        ("redis://:p@SECRET@host", "redis://:***@host"),
        ("postgresql://bob:s@cr@t@db:5432/x", "postgresql://bob:***@db:5432/x"),
        ("host=db password='a\\'SECRET' dbname=x", "host=db password=*** dbname=x"),
        ("host=db password = 'two words' dbname=x", "host=db password = *** dbname=x"),
        ("host=db PASSWORD='unterminated SECRET", "host=db PASSWORD=***"),
        ("host=db password=plain dbname=x", "host=db password=*** dbname=x"),
        ("postgresql://bob@db/x", "postgresql://bob@db/x"),
    ],
)
def test_mask_url_hides_the_whole_password(dsn, masked):
    from atdata.providers import mask_url

    assert mask_url(dsn) == masked
    assert "SECRET" not in mask_url(dsn) and "cr@t" not in mask_url(dsn)


def test_providers_with_passwords_refuse_pickling():
    import pickle

    from atdata.providers._postgres import PostgresProvider

    pg = object.__new__(PostgresProvider)
    pg.dsn, pg.schema, pg.connect_timeout = "postgresql://bob:SECRET@127.0.0.1/x", "atdata", 1.0
    with pytest.raises(atdata.ConfigError, match=r"holds a password") as ei:
        pickle.dumps(pg)
    assert "SECRET" not in str(ei.value) and "bob:***@" in str(ei.value)
    pg.dsn = "host=127.0.0.1 password='a\\'SECRET' dbname=x"
    with pytest.raises(atdata.ConfigError, match=r"holds a password"):
        pickle.dumps(pg)
    pytest.importorskip("redis")
    from atdata.providers._redis import RedisProvider

    r = RedisProvider("redis://:SECRET@127.0.0.1:6379/15", prefix="never-used:")  # no connection
    with pytest.raises(atdata.ConfigError, match=r"holds a password"):
        pickle.dumps(r)
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=15, password="SECRET")
    with pytest.raises(atdata.ConfigError, match=r"holds a password") as ei:
        pickle.dumps(RedisProvider(client, prefix="never-used:"))
    assert "SECRET" not in str(ei.value)
    plain = pickle.loads(pickle.dumps(RedisProvider("redis://127.0.0.1:6379/15", prefix="p:")))
    assert plain.url == "redis://127.0.0.1:6379/15 (prefix 'p:')"


@pytest.mark.parametrize("bad", ["1.0.0\n", "1.0.0\n\n", "\n1.0.0"])
def test_versions_with_newlines_are_refused(bad):
    from atdata.index._entry import parse_version

    with pytest.raises(atdata.ConfigError, match=r"not semantic"):
        parse_version(bad)


@pytest.mark.parametrize("bad", ["mnist\n", "a/b\n", "x\ny"])
def test_names_with_newlines_are_refused(bad):
    from atdata.index._entry import check_name

    with pytest.raises(atdata.ConfigError, match=r"is invalid"):
        check_name(bad)


def test_session_directory_is_private_whatever_the_umask(tmp_path):
    from atdata.atmosphere._session import write_private as _write_private

    old = os.umask(0)
    try:
        _write_private(tmp_path / "cfg" / "atdata" / "session.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "cfg" / "atdata").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "cfg" / "atdata" / "session.json").stat().st_mode & 0o777 == 0o600
