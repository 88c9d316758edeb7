"""Fuzz targets: every decoder of untrusted bytes, driven from one input (atdata's own tests).

Each target takes the input bytes and a scratch directory and runs one decoder the way a reader
would (``len(ds)``, ``ds[i]``, iteration, queries, ``load_remote`` ...). Only
:class:`~atdata.AtdataError` may escape a target; anything else, a hang or an allocation the
input does not justify is a bug. ``tests/test_fuzz.py`` replays the checked-in corpus
``tests/fuzz_corpus/<target>/`` through them; ``benchmarks/fuzz.py`` mutates :func:`seeds` by
the hundred thousand.

Targets that need more than one file take a small container: ``idx`` is an index text with
``{SIZE}`` and ``{MTIME}`` placeholders (filled with the real shard's values, so a mutation
reaches the entries instead of failing the freshness check), ``manifest_parquet`` is parquet
bytes read with a fixed valid header whose token they carry, ``atproto`` is a JSON object of the
XRPC answers ``{"did": ..., "list": ..., "record": ...}`` a hostile PDS would give.

Examples:
    >>> import tempfile
    >>> work = tempfile.mkdtemp()
    >>> sorted(TARGETS)[:3]
    ['atproto', 'idx', 'manifest_json']
    >>> run_target("npy", seeds(work)["npy"][0], work)
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import shutil
from collections.abc import Callable
from typing import Any

from atdata._errors import AtdataError

__all__ = ["TARGETS", "run_target", "seeds"]

_SHARD = "s.tar"
_N = 5


def _p(work: str, name: str) -> str:
    return os.path.join(work, name)


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def _try(fn: Callable[[], Any]) -> Any:
    """Run one reader step; AtdataError is the expected refusal, the sequence protocol's
    IndexError (an index past a short shard) is fine too."""
    try:
        return fn()
    except AtdataError:
        return None
    except IndexError as exc:  # only the out-of-range refusal of ds[i]
        if "out of range" not in str(exc):
            raise
        return None


def _types() -> tuple[type[Any], type[Any]]:
    import atdata

    global _TYPES
    if _TYPES is None:

        @atdata.packable
        class FuzzRow:
            x: int
            label: str
            arr: atdata.NDArray
            tags: list[str]

        _TYPES = (FuzzRow, atdata.DictSample)
    return _TYPES


_TYPES: tuple[type, type] | None = None


def _rows() -> list[Any]:
    import numpy as np

    row = _types()[0]
    return [
        row(x=i, label=("a", "b")[i % 2], arr=np.arange(i + 1, dtype="<i2"), tags=["t"] * i)
        for i in range(_N)
    ]


def _fresh_dir(work: str, sub: str) -> str:
    d = _p(work, sub)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def _base(work: str) -> str:
    """A valid shard with manifests, written once per scratch directory (the fixed half of the
    multi-file targets)."""
    import atdata

    d = _p(work, "base")
    shard = _p(d, _SHARD)
    if not os.path.exists(shard + ".done"):
        _fresh_dir(work, "base")
        atdata.write_samples(_rows(), shard, key="index", manifest=True, fsync=False)
        _fixed_token(shard)
        _write(shard + ".done", b"")
    return shard


def _fixed_token(shard: str) -> None:
    """Give the manifest a fixed token, so a saved parquet input replays in any directory."""
    import pyarrow.parquet as pq

    from atdata.manifest._builder import TOKEN_META, manifest_paths

    j, p = manifest_paths(shard)
    with open(j, "rb") as f:
        header = json.loads(f.read())
    header["manifest_token"] = "fuzz-token"
    _write(j, json.dumps(header).encode())
    table = pq.read_table(p)
    meta = dict(table.schema.metadata or {})
    meta[TOKEN_META] = b"fuzz-token"
    pq.write_table(table.replace_schema_metadata(meta), p)


# -- targets ----------------------------------------------------------------------------------


def _read_dataset(path: str, typ: type[Any]) -> None:
    import atdata

    ds = atdata.Dataset(path, sample_type=typ)
    _try(lambda: list(ds))
    _try(lambda: [len(b) for b in ds.ordered(batch_size=2)])
    _try(lambda: len(ds))
    _try(lambda: ds[1])
    _try(lambda: ds[-1])
    _try(lambda: ds.get("k1"))
    _try(lambda: ds.get("00000001"))
    skipping = atdata.Dataset(path, sample_type=typ, on_error="skip")
    list(skipping)  # never raises


def t_tar_stream(data: bytes, work: str) -> None:
    """The streaming tar reader, over memory in odd chunk sizes and over a real file."""
    from atdata._shards.tar import iter_tar

    for chunk in (1, 512, 1 << 20):

        def walk(chunk: int = chunk) -> None:
            for m in iter_tar(io.BytesIO(data).read, chunk=chunk):
                bytes(m.data)

        _try(walk)
    path = _p(work, "stream.tar")
    _write(path, data)
    from atdata._shards.tar import iter_tar as it

    def from_file() -> None:
        with open(path, "rb", buffering=0) as f:
            for m in it(f.read):
                bytes(m.data)

    _try(from_file)
    for typ in _types():
        _read_dataset(path, typ)


def t_tar_scan(data: bytes, work: str) -> None:
    """The header-only scan behind ``len``, ``ds[i]`` and ``atdata inspect``, and the one of a
    shard held in memory (streaming ``to_torch``)."""
    import atdata
    from atdata._shards.members import index_tar_bytes, load_index
    from atdata._shards.sources import URLSource
    from atdata._shards.tar import scan_tar_bytes, scan_tar_file

    d = _fresh_dir(work, "scan")
    path = _p(d, "scan.tar")
    _write(path, data)
    _try(lambda: scan_tar_file(path))
    _try(lambda: scan_tar_bytes(data))
    _try(lambda: index_tar_bytes(data))
    _try(lambda: load_index(path, URLSource(path), persist=False))
    ds: atdata.Dataset[Any] = atdata.Dataset(path)
    _try(lambda: len(ds))
    _try(lambda: ds[0])
    _try(lambda: ds[-1])
    _try(lambda: ds.subset([0, 1]).__iter__().__next__())


def t_idx(data: bytes, work: str) -> None:
    """A member index shipped beside a valid shard (``<shard>.idx``)."""
    import atdata

    base = _base(work)
    d = _fresh_dir(work, "idx")
    shard = _p(d, _SHARD)
    shutil.copyfile(base, shard)
    st = os.stat(shard)
    text = data.replace(b"{SIZE}", str(st.st_size).encode()).replace(
        b"{MTIME}", str(st.st_mtime_ns).encode()
    )
    _write(shard + ".idx", text)
    for typ in _types():
        _random_reads(atdata.Dataset(shard, sample_type=typ))


def t_npy(data: bytes, work: str) -> None:
    """Array bytes: the compact header and legacy ``.npy`` files."""
    import numpy as np

    from atdata._wire.arrays import decode_array, decode_array_into, is_array_bytes

    is_array_bytes(data)
    _try(lambda: decode_array(data))
    _try(lambda: decode_array(data, copy=False))
    _try(lambda: decode_array(memoryview(data)))
    _try(lambda: decode_array_into(data, np.empty((2, 3), "<f8")))


def _manifest_dir(work: str, header: bytes | None, parquet: bytes | None) -> str:
    from atdata.manifest._builder import manifest_paths

    base = _base(work)
    d = _fresh_dir(work, "man")
    shard = _p(d, _SHARD)
    shutil.copyfile(base, shard)
    bj, bp = manifest_paths(base)
    j, p = manifest_paths(shard)
    if header is None:
        shutil.copyfile(bj, j)
    else:
        _write(j, header)
    if parquet is None:
        shutil.copyfile(bp, p)
    else:
        _write(p, parquet)
    return shard


def _use_manifest(shard: str) -> None:
    import atdata
    from atdata.manifest._query import QueryExecutor
    from atdata.manifest._read import load_manifest, manifest_count, verify_manifest

    def header() -> None:
        m = load_manifest(shard)
        if m is None:
            return
        _ = (m.num_samples, m.kinds, m.aggregates)
        m.check_fresh()
        m.frame(None)

    _try(header)
    _try(lambda: manifest_count(shard))
    _try(lambda: verify_manifest(shard))
    for typ in _types():
        _query_reads(atdata.Dataset(shard, sample_type=typ))
    _try(lambda: list(QueryExecutor.from_directory(os.path.dirname(shard)).query(None).samples))


def t_manifest_json(data: bytes, work: str) -> None:
    """A manifest header (``.manifest.json``) beside a valid shard and parquet."""
    _use_manifest(_manifest_dir(work, data, None))


def t_manifest_parquet(data: bytes, work: str) -> None:
    """Manifest rows (``.manifest.parquet``) beside a valid shard and header."""
    _use_manifest(_manifest_dir(work, None, data))


def t_schema(data: bytes, work: str) -> None:
    """A schema body (JSON) rebuilt into a sample type, which then decodes a payload."""
    import msgpack

    from atdata._wire.schema_json import diff_schemas, schema_body, schema_fingerprint
    from atdata._wire.schema_json import type_from_schema as build

    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        return  # not JSON: the JSON parser's business, not ours
    _try(lambda: schema_fingerprint(body))
    _try(lambda: diff_schemas(body, {"properties": {}}))
    cls = _try(lambda: build("Fuzzed", body))
    if cls is None:
        return
    _try(lambda: schema_body(cls))
    _try(lambda: cls.from_bytes(msgpack.packb({"x": 1, "label": "a", "a": [1], "n": {"x": 1}})))


def t_atproto(data: bytes, work: str) -> None:
    """Records and XRPC envelopes from a hostile PDS, through ``load_remote`` and listings."""
    from atdata.atmosphere import _remote, _resolve

    try:
        answers = json.loads(data)
    except (ValueError, RecursionError):
        return
    if not isinstance(answers, dict):
        answers = {"did": answers}

    def fake_get_json(url: str, params: Any = None, what: str = "") -> Any:
        if "listRecords" in url:
            return answers.get("list")
        if "getRecord" in url:
            return answers.get("record")
        return answers.get("did")

    real = _resolve._get_json
    _resolve._get_json = fake_get_json
    try:
        ds = _try(lambda: _remote.load_remote("@did:plc:fuzz/mnist"))
        if ds is not None:
            _try(lambda: ds.list_shards())
        _try(lambda: _remote.load_remote("@did:plc:fuzz/mnist@1.0.0", _types()[1]))
        _try(lambda: [(e.name, e.version, e.split) for e in _remote.list_datasets("did:plc:fuzz")])
        _try(lambda: _remote.list_lenses("did:plc:fuzz"))
        _try(lambda: _remote.list_schemas("did:plc:fuzz"))
    finally:
        _resolve._get_json = real


TARGETS: dict[str, Callable[[bytes, str], None]] = {
    "atproto": t_atproto,
    "idx": t_idx,
    "manifest_json": t_manifest_json,
    "manifest_parquet": t_manifest_parquet,
    "npy": t_npy,
    "schema": t_schema,
    "tar_scan": t_tar_scan,
    "tar_stream": t_tar_stream,
}


def run_target(name: str, data: bytes, work: str) -> None:
    """Run one target over one input in scratch directory ``work`` (member indexes are cached
    under ``work`` too). Anything but :class:`~atdata.AtdataError` propagates."""
    old = os.environ.get("ATDATA_CACHE_DIR")
    os.environ["ATDATA_CACHE_DIR"] = _p(work, "cache")
    try:
        with contextlib.suppress(AtdataError):
            TARGETS[name](data, work)
    finally:
        if old is None:
            del os.environ["ATDATA_CACHE_DIR"]
        else:
            os.environ["ATDATA_CACHE_DIR"] = old
        shutil.rmtree(_p(work, "cache"), ignore_errors=True)


# -- seeds ------------------------------------------------------------------------------------


def _tar_seeds() -> list[bytes]:
    import msgpack

    from atdata._shards.tar import TarWriter

    out = []
    for long in (False, True):
        buf = io.BytesIO()
        w = TarWriter(buf, mtime=0)
        for r in _rows()[:3]:
            name = ("d/" * 60 if long else "") + f"k{r.x}.msgpack"
            w.add(name, r.packed)
        w.close()
        out.append(buf.getvalue())
    buf = io.BytesIO()
    w = TarWriter(buf, mtime=0)
    w.add("k0.msgpack", msgpack.packb({"x": 1}))
    w.add("k0.json", b"{}")
    w.add("k1.msgpack", b"\x80")
    out.append(buf.getvalue())  # no end-of-archive blocks
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name in ("dir/", "k" * 120 + ".msgpack", "k1.msgpack"):
            info = tarfile.TarInfo(name.rstrip("/"))
            if name.endswith("/"):
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                payload = msgpack.packb({"x": 2})
                info.size = len(payload)
                tf.addfile(info, io.BytesIO(payload))
    out.append(buf.getvalue())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        payload = msgpack.packb({"x": 3})
        info = tarfile.TarInfo("p" * 150 + ".msgpack")
        info.size = len(payload)
        info.pax_headers = {"size": str(len(payload)), "comment": "x"}
        tf.addfile(info, io.BytesIO(payload))
    out.append(buf.getvalue())
    return out


def _npy_seeds() -> list[bytes]:
    import numpy as np

    from atdata._wire.arrays import encode_array

    out = [
        encode_array(np.arange(6, dtype="<f8").reshape(2, 3)),
        encode_array(np.array(1.5)),
        encode_array(np.zeros((0, 2), "|u1")),
    ]
    for arr in (np.arange(6, dtype="<f8").reshape(2, 3), np.asfortranarray(np.eye(2, dtype="<i2"))):
        buf = io.BytesIO()
        np.lib.format.write_array(buf, arr, allow_pickle=False)
        out.append(buf.getvalue())
    return out


def seeds(work: str) -> dict[str, list[bytes]]:
    """Valid inputs of every target (the fuzzer mutates them)."""
    from atdata._shards.members import load_index
    from atdata._shards.sources import URLSource
    from atdata._wire.schema_json import schema_body, schema_record
    from atdata.manifest._builder import manifest_paths

    base = _base(work)
    idx = load_index(base, URLSource(base), persist=False)
    lines = "".join(
        f"{k}\t{o}\t{s}\n" for k, o, s in zip(idx.keys, idx.offsets, idx.sizes, strict=True)
    )
    idx_text = f"atdata-idx 1 {{SIZE}} {{MTIME}} {len(idx)}\n{lines}".encode()
    j, p = manifest_paths(base)
    with open(j, "rb") as f:
        header = f.read()
    with open(p, "rb") as f:
        parquet = f.read()
    row = _types()[0]
    body = schema_body(row)
    nested = {
        "type": "object",
        "properties": {
            "a": {"type": "array", "items": {"type": "integer"}},
            "n": {"type": "object", "title": "N", "properties": {"x": {"type": "integer"}}},
            "m": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
            "b": {"type": "string", "format": "byte", "contentEncoding": "base64"},
        },
        "required": ["a"],
    }
    digest = "ab" * 32
    did_doc = {
        "id": "did:plc:fuzz",
        "alsoKnownAs": ["at://fuzz.example"],
        "service": [{"id": "#atproto_pds", "serviceEndpoint": "https://pds.example"}],
    }
    schema_rec = schema_record(row, "1.0.0", created_at="2025-01-01T00:00:00+00:00")
    entries = [
        {
            "$type": "science.alt.dataset.entry",
            "name": "mnist",
            "schemaRef": "at://did:plc:fuzz/science.alt.dataset.schema/fuzzrow:1.0.0",
            "storage": storage,
            "createdAt": "2025-01-01T00:00:00Z",
            "metadata": {"$bytes": "gadzZXJzaW9upTEuMC4w"},
            "size": {"samples": 5},
        }
        for storage in (
            {
                "$type": "science.alt.dataset.storageBlobs",
                "blobs": [
                    {
                        "blob": {
                            "$type": "blob",
                            "ref": {"$link": "bafkreigh2akiscaildc"},
                            "mimeType": "application/x-tar",
                            "size": 4096,
                        },
                        "checksum": {"algorithm": "sha256", "digest": digest},
                    }
                ],
            },
            {
                "$type": "science.alt.dataset.storageHttp",
                "shards": [{"url": "https://example.org/a.tar", "checksum": None}],
            },
            {
                "$type": "science.alt.dataset.storageS3",
                "bucket": "b",
                "endpoint": "https://s3.example",
                "shards": [{"key": "a.tar", "checksum": {"algorithm": "sha256", "digest": digest}}],
            },
        )
    ]
    lens = {
        "$type": "science.alt.dataset.lens",
        "name": "l",
        "sourceSchema": "at://did:plc:fuzz/science.alt.dataset.schema/a:1.0.0",
        "targetSchema": "at://did:plc:fuzz/science.alt.dataset.schema/b:1.0.0",
        "getterCode": {"repository": "https://x", "commit": "abcdef1", "path": "a.py:f"},
        "putterCode": {"repository": "https://x", "commit": "abcdef1", "path": "a.py:g"},
    }
    atproto = []
    for e in entries:
        envs = [{"uri": "at://did:plc:fuzz/science.alt.dataset.entry/1", "cid": "c", "value": e}]
        envs.append({"uri": "at://did:plc:fuzz/science.alt.dataset.lens/1", "value": lens})
        answer = {
            "did": did_doc,
            "list": {"records": envs, "cursor": None},
            "record": {"value": schema_rec, "cid": "c"},
        }
        atproto.append(json.dumps(answer).encode())
    return {
        "atproto": atproto,
        "idx": [idx_text],
        "manifest_json": [header],
        "manifest_parquet": [parquet],
        "npy": _npy_seeds(),
        "schema": [json.dumps(body).encode(), json.dumps(nested).encode()],
        "tar_scan": _tar_seeds(),
        "tar_stream": _tar_seeds(),
    }


def _random_reads(ds: Any) -> None:
    _try(lambda: len(ds))
    for i in (0, 2, -1):
        _try(functools.partial(ds.__getitem__, i))
    _try(lambda: ds.get("00000003"))
    _try(lambda: ds.select([1, 0]))


def _query_reads(ds: Any) -> None:
    _try(lambda: len(ds))
    _try(lambda: ds[3])
    _try(lambda: list(ds.query(lambda df: df["x"] > 1).samples))
    _try(lambda: [ds.get_sample(loc) for loc in ds.query("label = 'a'")])
    _try(lambda: list(ds.query(ds.fields.x >= 2).samples))  # prunes on aggregates
