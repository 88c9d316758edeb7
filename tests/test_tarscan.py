"""The fast in-memory tar scan (``_shards/tarscan.py``) against the general scanner: the same
entries on every archive it accepts, and on anything else the general scanner's own answer
(the same entries, or the same ShardError with the same message)."""

from __future__ import annotations

import io
import pathlib
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atdata._errors import ShardError
from atdata._shards.members import _from_entries, index_tar_bytes
from atdata._shards.tar import TarWriter, _scan, scan_tar_bytes
from atdata._shards.tarscan import scan_ustar

_CORPUS = pathlib.Path(__file__).parent / "fuzz_corpus"


def _general(data: bytes, where: str = "") -> list[tuple[str, int, int]] | str:
    """The general scanner's entries, or its error message."""
    mv = memoryview(data)
    try:
        return _scan(lambda n, o: bytes(mv[o : o + n]), len(mv), where)
    except ShardError as exc:
        return f"ShardError: {exc}"


def _fast(data: bytes, where: str = "") -> list[tuple[str, int, int]] | str:
    try:
        return scan_tar_bytes(data, where)
    except ShardError as exc:
        return f"ShardError: {exc}"


def _index(data: bytes) -> tuple[list[str], list[int], list[int]] | str:
    try:
        idx = index_tar_bytes(data, " in shard x.tar")
    except ShardError as exc:
        return f"ShardError: {exc}"
    return list(idx.keys), list(idx.offsets), list(idx.sizes)


def _general_index(data: bytes) -> tuple[list[str], list[int], list[int]] | str:
    got = _general(data, " in shard x.tar")
    if isinstance(got, str):
        return got
    idx = _from_entries(got)
    return list(idx.keys), list(idx.offsets), list(idx.sizes)


def _ours(members: list[tuple[str, bytes]], end: bool = True) -> bytes:
    buf = io.BytesIO()
    w = TarWriter(buf, mtime=1_700_000_000)
    for name, data in members:
        w.add(name, data)
    if end:
        w.close()
    return buf.getvalue()


def _tarfile(members: list[tuple[str, bytes]], fmt: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_a_plain_shard_is_read_by_the_fast_scan():
    data = _ours(
        [(f"{i:08d}.msgpack", b"x" * (i * 300)) for i in range(5)] + [("a/b.c.json", b"{}")]
    )
    names, offsets, sizes = scan_ustar(data)  # accepted: not None
    assert names == [f"{i:08d}.msgpack" for i in range(5)] + ["a/b.c.json"]
    assert offsets.tolist() == [512, 1024, 2048, 3584, 5120, 7168]
    assert sizes.tolist() == [0, 300, 600, 900, 1200, 2]
    assert scan_tar_bytes(data) == _general(data)
    assert scan_ustar(memoryview(data)) is not None  # a memoryview works too
    assert _index(data) == (
        [f"{i:08d}" for i in range(5)],
        [512, 1024, 2048, 3584, 5120],
        [0, 300, 600, 900, 1200],
    )


@pytest.mark.parametrize(
    ("what", "change"),
    [
        ("pax long name", lambda d: _ours([("x" * 150 + ".msgpack", b"1")])),
        ("gnu long name", lambda d: _tarfile([("y" * 150 + ".msgpack", b"1")], tarfile.GNU_FORMAT)),
        ("directory entry", lambda d: d[:156] + b"5" + d[157:]),
        ("name prefix", lambda d: d[:345] + b"p" + d[346:]),
        ("later header checksum", lambda d: d[: 1024 + 148] + b"000001\0 " + d[1024 + 156 :]),
        ("spaces in size", lambda d: d[:124] + b" " + d[125:]),
        ("no end blocks", lambda d: d[:-1024]),
        ("garbage block after the members", lambda d: d[:-1024] + b"\1" * 512),
        ("truncated last member", lambda d: d[: -1024 - 512 + 10]),
        ("empty", lambda d: b""),
        ("short", lambda d: b"x" * 100),
    ],
)
def test_unusual_archives_get_the_general_scanners_answer(what, change):
    data = change(_ours([("a.msgpack", b"1" * 10), ("b.msgpack", b"2" * 600)]))
    assert _fast(data, " in shard s.tar") == _general(data, " in shard s.tar"), what
    assert _index(data) == _general_index(data), what


def test_a_later_bad_checksum_is_left_to_the_general_scanner():
    data = _ours([("a.msgpack", b"1"), ("b.msgpack", b"2")])
    bad = data[: 1024 + 148] + b"000001\0 " + data[1024 + 156 :]
    assert scan_ustar(bad) is None  # every header's checksum is checked
    assert scan_tar_bytes(bad) == [("a.msgpack", 512, 1), ("b.msgpack", 1536, 1)]  # as before
    first = b"\0" * 148 + data[148:]
    assert scan_ustar(first) is None
    with pytest.raises(
        ShardError, match=r"^not a tar archive \(bad header checksum at byte 0\) in shard s\.tar$"
    ):
        scan_tar_bytes(first, " in shard s.tar")


def test_duplicate_keys_and_other_members_index_like_the_general_path():
    data = _ours([("k.msgpack", b"1"), ("k.json", b"{}"), ("k.msgpack", b"22"), ("j.msgpack", b"")])
    assert _index(data) == (["k", "j"], [512, 3584], [1, 0]) == _general_index(data)


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_archives_of_pythons_tarfile(fmt):
    data = _tarfile([(f"d/{i}.msgpack", bytes(i * 100)) for i in range(4)], fmt)
    assert _fast(data) == _general(data)
    assert _index(data) == _general_index(data)


def test_fuzz_corpus_tar_inputs_get_the_same_answers():
    paths = sorted((_CORPUS / "tar_scan").iterdir()) + sorted((_CORPUS / "tar_stream").iterdir())
    assert paths
    for p in paths:
        data = p.read_bytes()
        assert _fast(data, " in shard c.tar") == _general(data, " in shard c.tar"), p.name
        assert _index(data) == _general_index(data), p.name


_names = st.text(alphabet=st.sampled_from("ab./é\0-"), min_size=1, max_size=12).map(
    lambda s: s + ".msgpack"
)
_members = st.lists(st.tuples(_names, st.binary(max_size=1100)), max_size=6)


@settings(max_examples=150, deadline=None)
@given(members=_members, end=st.booleans())
def test_fast_scan_equals_general_scan_on_written_shards(members, end):
    members = [(n.encode("utf-8")[:100].decode("utf-8", "ignore") or "x", d) for n, d in members]
    data = _ours(members, end)
    assert _fast(data) == _general(data)
    assert _index(data) == _general_index(data)


@settings(max_examples=300, deadline=None)
@given(
    members=_members,
    flips=st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.integers(0, 5000),
)
def test_fast_scan_equals_general_scan_on_damaged_shards(members, flips, cut):
    members = [(n.encode("utf-8")[:100].decode("utf-8", "ignore") or "x", d) for n, d in members]
    data = bytearray(_ours(members))
    for at, value in flips:
        if at < len(data):
            data[at] = value
    data = bytes(data[: max(cut, len(data) - cut)])
    assert _fast(data, " in shard d.tar") == _general(data, " in shard d.tar")
    assert _index(data) == _general_index(data)


def test_views_of_other_formats_are_read_as_bytes():
    data = _ours([("a.msgpack", b"1" * 700)])
    words = memoryview(bytearray(data)).cast("I")
    assert scan_tar_bytes(words) == [("a.msgpack", 512, 700)]
    assert scan_ustar(memoryview(data)[::2]) is None  # not contiguous: the general scanner
