"""The tar reader/writer: formats, long names, python tarfile interop, chunk boundaries."""

from __future__ import annotations

import io
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atdata import ShardError
from atdata._shards.tar import TarWriter, iter_tar, scan_tar_file, split_member_name


def _py_tar(files: list[tuple[str, bytes]], fmt: int, dirs: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for d in dirs:
            ti = tarfile.TarInfo(d)
            ti.type = tarfile.DIRTYPE
            tf.addfile(ti)
        for name, data in files:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _read_all(data: bytes, chunk: int = 1 << 20) -> list[tuple[str, int, bytes]]:
    return [(m.name, m.offset, bytes(m.data)) for m in iter_tar(io.BytesIO(data).read, chunk=chunk)]


LONG = "d" * 120 + "/" + "k" * 130 + ".msgpack"
PREFIXED = "p" * 90 + "/" + "q" * 60 + ".msgpack"  # fits ustar name+prefix


@pytest.mark.parametrize(
    ("fmt", "label"),
    [(tarfile.USTAR_FORMAT, "ustar"), (tarfile.GNU_FORMAT, "gnu"), (tarfile.PAX_FORMAT, "pax")],
)
def test_reads_python_tarfile_formats(fmt, label):
    files = [("a.msgpack", b"A" * 10), (PREFIXED, b"B" * 600), ("c.msgpack", b"")]
    if label != "ustar":
        files.append((LONG, b"long"))
    data = _py_tar(files, fmt, dirs=("somedir",))
    got = _read_all(data)
    assert [(n, d) for n, _o, d in got] == files
    assert all(o % 512 == 0 for _n, o, _d in got)
    for _n, o, d in got:
        assert data[o : o + len(d)] == d
    path_entries = [(n, s) for n, _o, s in _scan(data)]
    assert path_entries == [(n, len(d)) for n, d in files]


def _scan(data: bytes, tmp=None):
    import os
    import tempfile

    fd, p = tempfile.mkstemp(suffix=".tar")
    os.write(fd, data)
    os.close(fd)
    try:
        return scan_tar_file(p)
    finally:
        os.unlink(p)


def test_ustar_prefix_used_by_python_tarfile():
    data = _py_tar([(PREFIXED, b"x")], tarfile.USTAR_FORMAT)
    assert data[345:350] == b"ppppp"  # the directory part went into the ustar prefix field
    assert _read_all(data)[0][0] == PREFIXED


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_directory_name_does_not_rename_the_next_file(fmt):
    """A long-name (PAX path / GNU 'L') header belongs to the directory it precedes only."""
    data = _py_tar([("a.txt", b"abc")], fmt, dirs=("d" * 120,))
    assert _read_all(data) == [("a.txt", 2048, b"abc")]
    assert _scan(data) == [("a.txt", 2048, 3)]


def test_gnu_long_name_header():
    data = _py_tar([(LONG, b"x")], tarfile.GNU_FORMAT)
    assert data[156:157] == b"L"
    assert _read_all(data) == [(LONG, 1536, b"x")]


def test_writer_output_read_by_python_tarfile():
    buf = io.BytesIO()
    w = TarWriter(buf, mtime=1_700_000_000)
    offsets = [w.add("k1.msgpack", b"one"), w.add(LONG, b"two" * 300), w.add("k3.msgpack", b"")]
    w.close()
    data = buf.getvalue()
    assert len(data) % 512 == 0 and data[-1024:] == bytes(1024)
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        ms = tf.getmembers()
        assert [m.name for m in ms] == ["k1.msgpack", LONG, "k3.msgpack"]
        assert [tf.extractfile(m).read() for m in ms] == [b"one", b"two" * 300, b""]
        assert {m.mtime for m in ms} == {1_700_000_000}
        assert {m.mode for m in ms} == {0o444}
        assert [m.offset_data for m in ms] == offsets
    assert offsets == [512, 2560, 4096]  # the long name costs a PAX header + record block
    assert w.offset == len(data)


def test_writer_pax_record_length_is_self_consistent():
    # record lengths near a power of ten exercise the length-includes-its-own-digits rule
    for n in range(101, 140):
        name = "x" * n
        buf = io.BytesIO()
        w = TarWriter(buf, mtime=0)
        w.add(name, b"z")
        w.close()
        with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tf:
            assert tf.getnames() == [name]
        assert _read_all(buf.getvalue())[0][0] == name


@pytest.mark.parametrize("chunk", [1, 7, 100, 511, 512, 513, 1024, 4096])
def test_chunk_boundaries(chunk):
    files = [(f"k{i}.msgpack", bytes([i]) * (i * 97)) for i in range(12)]
    files.append((LONG, b"tail"))
    data = _py_tar(files, tarfile.PAX_FORMAT)
    assert [(n, d) for n, _o, d in _read_all(data, chunk=chunk)] == files


class _Trickle:
    """A stream whose read(n) returns at most `step` bytes, like a socket."""

    def __init__(self, data: bytes, step: int) -> None:
        self._b, self._step = io.BytesIO(data), step

    def read(self, n: int) -> bytes:
        return self._b.read(min(n, self._step))


@pytest.mark.parametrize("step", [1, 3, 500, 4097])
def test_short_reads(step):
    files = [(f"s{i}.msgpack", b"%d" % i * 300) for i in range(5)]
    data = _py_tar(files, tarfile.USTAR_FORMAT)
    got = [(m.name, bytes(m.data)) for m in iter_tar(_Trickle(data, step).read, chunk=64)]
    assert got == files


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.binary(max_size=1500), min_size=1, max_size=6),
    st.integers(min_value=1, max_value=2000),
)
def test_roundtrip_property(payloads, chunk):
    buf = io.BytesIO()
    w = TarWriter(buf, mtime=0)
    offs = [w.add(f"{i:04d}.msgpack", p) for i, p in enumerate(payloads)]
    w.close()
    got = _read_all(buf.getvalue(), chunk=chunk)
    assert [d for _n, _o, d in got] == payloads
    assert [o for _n, o, _d in got] == offs


def test_eof_without_end_blocks_is_accepted():
    data = _py_tar([("a.msgpack", b"x")], tarfile.USTAR_FORMAT)
    assert _read_all(data[:1024]) == [("a.msgpack", 512, b"x")]


def test_empty_and_garbage_raise_shard_error():
    with pytest.raises(ShardError, match=r"empty file is not a tar archive in shard e.tar"):
        list(iter_tar(io.BytesIO(b"").read, " in shard e.tar"))
    with pytest.raises(ShardError, match=r"bad header checksum at byte 0"):
        list(iter_tar(io.BytesIO(b"garbage" * 100).read))
    with pytest.raises(ShardError, match=r"truncated tar header"):
        list(iter_tar(io.BytesIO(b"x" * 100).read))


def test_split_member_name():
    assert split_member_name("a/b.c/key.seg.msgpack") == ("a/b.c/key", "seg.msgpack")
    assert split_member_name("noext") == ("noext", "")
    assert split_member_name("k.msgpack") == ("k", "msgpack")


def test_writer_refuses_huge_member():
    class _Big:
        def __len__(self):
            return 8**11

    with pytest.raises(ShardError, match=r"too large"):
        TarWriter(io.BytesIO(), mtime=0).add("a.msgpack", _Big())  # type: ignore[arg-type]


def test_shard_errors_are_tar_errors_for_tarfile_based_code(tmp_path):
    """A shard that is not a tar archive raises ShardError, also a tarfile.TarError and an OSError."""
    import tarfile

    import atdata

    bad = tmp_path / "bad-000000.tar"
    bad.write_bytes(b"this is not a tar archive, just some bytes" * 20)
    with pytest.raises(tarfile.TarError) as info:
        list(atdata.Dataset(str(bad)).ordered())
    assert isinstance(info.value, atdata.ShardError)
    assert isinstance(info.value, OSError)
    assert "bad-000000.tar" in str(info.value)


def test_a_rows_file_read_as_a_shard_names_atdata_ingest(tmp_path):
    for name, body in [("rows.csv", b"a,b\n1,2\n"), ("big.jsonl.gz", b"{}" * 600)]:
        p = tmp_path / name
        p.write_bytes(body)
        with pytest.raises(ShardError, match=rf"{name}; {name} holds rows, not shards: .*"
                           rf"`atdata ingest {name} OUT`"):  # fmt: skip
            scan_tar_file(p, f" in shard {name}")
    (tmp_path / "x.bin").write_bytes(b"a,b\n1,2\n")
    with pytest.raises(ShardError, match=r"file too short\) in shard x.bin$"):
        scan_tar_file(tmp_path / "x.bin", " in shard x.bin")
