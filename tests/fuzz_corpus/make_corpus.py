"""Write the hand-made regression inputs of the fuzz corpus (run from the repository root).

    uv run python tests/fuzz_corpus/make_corpus.py

Each input is named after what it breaks; ``tests/test_fuzz.py`` replays every file of
``tests/fuzz_corpus/<target>/`` through ``atdata.testing._fuzz.run_target``. Inputs the fuzzer
(``benchmarks/fuzz.py``) found are copied in beside these, named by their hash.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import tempfile

HERE = pathlib.Path(__file__).parent


def _fix(h: bytearray) -> bytearray:
    h[148:156] = b"        "
    h[148:156] = b"%06o\0 " % sum(h)
    return h


def _tar(members: list[tuple[str, bytes]], end: bool = True) -> bytes:
    from atdata._shards.tar import TarWriter

    buf = io.BytesIO()
    w = TarWriter(buf, mtime=0)
    for name, data in members:
        w.add(name, data)
    if end:
        w.close()
    return buf.getvalue()


def _with_size(shard: bytes, at: int, field: bytes) -> bytes:
    b = bytearray(shard)
    h = bytearray(b[at : at + 512])
    h[124:136] = field
    b[at : at + 512] = _fix(h)
    return bytes(b)


def _pax(size_value: bytes, payload: bytes = b"\x81\xa1x\x01") -> bytes:
    from atdata._shards.tar import TarWriter

    rec = b" size=" + size_value + b"\n"
    n = len(rec) + 2
    rec = str(n + len(str(n)) - 2).encode() + rec
    buf = io.BytesIO()
    w = TarWriter(buf, mtime=0)
    buf.write(w._header(b"././@PaxHeader", len(rec), b"x") + rec + bytes(-len(rec) % 512))
    w.offset = buf.tell()
    w.add("k0.msgpack", payload)
    w.close()
    return buf.getvalue()


def tar_inputs() -> dict[str, bytes]:
    good = _tar([("k0.msgpack", b"\x81\xa1x\x01"), ("k1.msgpack", b"\x81\xa1x\x02")])
    neg = (((1 << 88) - 512) | (1 << 95)).to_bytes(12, "big")
    neg = bytes([neg[0] | 0xC0]) + neg[1:]
    long_name = bytearray(good[:512])
    long_name[156] = ord("L")
    long_name[124:136] = b"77777777777\0"
    return {
        "negative_base256_size": _with_size(good, 512 + 512, neg),
        "negative_base256_size_first": _with_size(good, 0, neg),
        "huge_base256_size": _with_size(good, 0, b"\x80" + (1 << 80).to_bytes(11, "big")),
        "huge_octal_size": _with_size(good, 0, b"77777777777\0"),
        "gnu_long_name_8gib": bytes(_fix(long_name)) + good[512:],
        "pax_negative_size": _pax(b"-512"),
        "pax_size_minus_one": _pax(b"-1"),
        "pax_size_underscore": _pax(b"1_0"),
        "pax_size_plus": _pax(b"+4"),
        "pax_size_huge": _pax(b"99999999999999999999"),
        "pax_size_text": _pax(b"abc"),
    }


def idx_inputs() -> dict[str, bytes]:
    head = b"atdata-idx 1 {SIZE} {MTIME} "
    ok = [b"00000000\t512\t10", b"00000001\t1536\t10", b"00000002\t2560\t10"]
    return {
        "offset_past_end": head
        + b"3\n"
        + b"\n".join([ok[0], b"00000001\t1099511627776\t10", ok[2]])
        + b"\n",
        "size_2_40": head
        + b"3\n"
        + b"\n".join([ok[0], b"00000001\t1536\t1099511627776", ok[2]])
        + b"\n",
        "negative_size": head + b"3\n" + b"\n".join([ok[0], b"00000001\t1536\t-5", ok[2]]) + b"\n",
        "negative_offset": head
        + b"3\n"
        + b"\n".join([ok[0], b"00000001\t-512\t10", ok[2]])
        + b"\n",
        "count_not_a_number": head + b"x\n" + b"\n".join(ok) + b"\n",
    }


def _npy(header: str, data: bytes = b"") -> bytes:
    h = header.encode("latin1")
    h += b" " * (-(10 + len(h) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h + data


def npy_inputs() -> dict[str, bytes]:
    return {
        "shape_of_strings": _npy("{'descr': '<f8', 'fortran_order': False, 'shape': ('a',)}"),
        "shape_of_floats": _npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2.5,)}"),
        "shape_nested": _npy("{'descr': '<f8', 'fortran_order': False, 'shape': ((1,),)}"),
        "shape_an_int": _npy("{'descr': '<f8', 'fortran_order': False, 'shape': 3}", bytes(24)),
        "shape_huge": _npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,)}"),
        "header_deep": _npy("(" * 3000 + ")" * 3000),
        "header_a_list": _npy("[1, 2]"),
        "descr_a_dict": _npy(
            "{'descr': {'a': 1}, 'fortran_order': False, 'shape': (1,)}", bytes(8)
        ),
    }


def manifest_json_inputs(header: dict) -> dict[str, bytes]:
    def with_(**kw) -> bytes:
        return json.dumps({**header, **kw}).encode()

    return {
        "num_samples_string": with_(num_samples="5"),
        "num_samples_negative": with_(num_samples=-1),
        "num_samples_bool": with_(num_samples=True),
        "num_samples_float": with_(num_samples=1e300),
        "size_bytes_negative": with_(size_bytes=-5),
        "aggregates_a_list": with_(aggregates=[1, 2]),
        "aggregate_a_string": with_(aggregates={"x": "numeric"}),
        "numeric_aggregate_strings": with_(
            aggregates={"x": {"type": "numeric", "min": "a", "max": [], "count": "z"}}
        ),
        "fields_not_strings": with_(fields={"x": 1}),
        "token_a_number": with_(manifest_token=5),
        "header_a_list": b"[1, 2, 3]",
        "deep": b"[" * 5000 + b"]" * 5000,
    }


def manifest_parquet_inputs(parquet: bytes) -> dict[str, bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(parquet))
    n = table.num_rows
    out = {}
    for label, name, col in (
        ("size_2_40", "__size__", pa.array([1 << 40] * n, pa.int64())),
        ("size_negative", "__size__", pa.array([-1] * n, pa.int64())),
        ("offset_negative", "__offset__", pa.array([-512] * n, pa.int64())),
        ("offset_past_end", "__offset__", pa.array([1 << 40] * n, pa.int64())),
        ("offset_strings", "__offset__", pa.array(["x"] * n)),
        ("size_nulls", "__size__", pa.array([None] * n, pa.int64())),
        ("key_ints", "__key__", pa.array(list(range(n)), pa.int64())),
        ("set_column_ints", "tags", pa.array([[1]] * n)),
    ):
        t = table.set_column(table.column_names.index(name), name, col)
        buf = io.BytesIO()
        pq.write_table(t, buf)
        out[label] = buf.getvalue()
    return out


def schema_inputs() -> dict[str, bytes]:
    ok = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}

    def j(x) -> bytes:
        return json.dumps(x).encode()

    deep = '{"type": "array", "items": ' * 990 + '{"type": "integer"}' + "}" * 990
    return {
        "a_list": j([ok]),
        "a_string": j("schema"),
        "properties_a_list": j({"type": "object", "properties": [1]}),
        "required_a_string": j({**ok, "required": "x"}),
        "required_of_objects": j({**ok, "required": [{}]}),
        "required_a_number": j({**ok, "required": 1.5}),
        "items_990_deep": j({"type": "object", "properties": {"a": "@@"}}).replace(
            b'"@@"', deep.encode()
        ),
        "field_newline": j({"type": "object", "properties": {"a\n": {"type": "integer"}}}),
        "field_from_bytes": j(
            {"type": "object", "properties": {"from_bytes": {"type": "integer"}}}
        ),
        "field_packed": j({"type": "object", "properties": {"packed": {"type": "string"}}}),
        "field_dunder": j({"type": "object", "properties": {"__class__": {"type": "string"}}}),
        "field_keyword": j({"type": "object", "properties": {"class": {"type": "string"}}}),
        "type_a_number": j({"type": "object", "properties": {"x": {"type": 5}}}),
        "type_union_of_objects": j({"type": "object", "properties": {"x": {"type": [{}, "null"]}}}),
        "ref_a_number": j({"type": "object", "properties": {"x": {"$ref": 5}}}),
        "title_an_object": j(
            {
                "type": "object",
                "properties": {"n": {"type": "object", "title": {}, "properties": {}}},
            }
        ),
        "many_fields": j({"type": "object", "properties": {f"f{i}": {} for i in range(4200)}}),
    }


def atproto_inputs(seed: dict) -> dict[str, bytes]:
    import copy

    def variant(fn) -> bytes:
        x = copy.deepcopy(seed)
        fn(x)
        return json.dumps(x).encode()

    def entry(x) -> dict:
        return x["list"]["records"][0]["value"]

    def blob(x) -> dict:
        return entry(x)["storage"]["blobs"][0]["blob"]

    return {
        "records_not_a_list": variant(lambda x: x["list"].update(records="nope")),
        "record_a_string": variant(lambda x: x["list"].update(records=["rec"])),
        "record_without_value": variant(lambda x: x["list"]["records"][0].pop("value")),
        "value_a_string": variant(lambda x: x["list"]["records"][0].update(value="v")),
        "cursor_repeats": variant(lambda x: x["list"].update(cursor="again")),
        "list_answer_null": variant(lambda x: x.update(list=None)),
        "metadata_bytes_not_base64": variant(lambda x: entry(x).update(metadata={"$bytes": "!!"})),
        "metadata_bytes_a_number": variant(lambda x: entry(x).update(metadata={"$bytes": 5})),
        "metadata_a_string": variant(lambda x: entry(x).update(metadata="m")),
        "link_a_number": variant(lambda x: blob(x)["ref"].update({"$link": 5})),
        "link_missing": variant(lambda x: blob(x).pop("ref")),
        "blob_size_negative": variant(lambda x: blob(x).update(size=-1)),
        "blobs_a_string": variant(lambda x: entry(x)["storage"].update(blobs="b")),
        "checksum_a_string": variant(
            lambda x: entry(x)["storage"]["blobs"][0].update(checksum="sha")
        ),
        "storage_a_list": variant(lambda x: entry(x).update(storage=[])),
        "size_a_string": variant(lambda x: entry(x).update(size="5")),
        "schema_ref_a_number": variant(lambda x: entry(x).update(schemaRef=5)),
        "schema_record_a_string": variant(lambda x: x["record"].update(value="s")),
        "schema_record_null": variant(lambda x: x.update(record=None)),
        "schema_body_a_list": variant(lambda x: x["record"]["value"].update(schema=[1])),
        "service_a_string": variant(lambda x: x["did"].update(service="svc")),
        "services_of_strings": variant(lambda x: x["did"].update(service=["svc"])),
        "endpoint_a_number": variant(lambda x: x["did"]["service"][0].update(serviceEndpoint=5)),
        "also_known_as_a_number": variant(lambda x: x["did"].update(alsoKnownAs=5)),
        "did_doc_a_list": variant(lambda x: x.update(did=[1])),
    }


def _s3_seed(raw: list[bytes]) -> dict:
    for r in raw:
        x = json.loads(r)
        if "storageS3" in json.dumps(x):
            return x
    raise AssertionError("no S3 seed")


def _s3_variant(s3: dict, key: str) -> bytes:
    import copy

    x = copy.deepcopy(s3)
    x["list"]["records"][0]["value"]["storage"]["shards"][0]["key"] = key
    return json.dumps(x).encode()


def main() -> None:
    from atdata.manifest._builder import manifest_paths
    from atdata.testing._fuzz import _base, seeds

    work = tempfile.mkdtemp()
    s = seeds(work)
    base = _base(work)
    j, _ = manifest_paths(base)
    header = json.loads(pathlib.Path(j).read_bytes())
    atp = json.loads(s["atproto"][0])
    s3 = _s3_seed(s["atproto"])
    groups = {
        "tar_scan": tar_inputs(),
        "tar_stream": tar_inputs(),
        "idx": idx_inputs(),
        "npy": npy_inputs(),
        "manifest_json": manifest_json_inputs(header),
        "manifest_parquet": manifest_parquet_inputs(s["manifest_parquet"][0]),
        "schema": schema_inputs(),
        "atproto": {
            **atproto_inputs(atp),
            **{
                name: _s3_variant(s3, key=key)
                for name, key in (
                    ("s3_key_braces_1e9", "a-{0..999999999}.tar"),
                    ("s3_key_a_prefix", "runs/"),
                    ("s3_key_empty", ""),
                    ("s3_key_glob", "*.tar"),
                )
            },
            "s3_http_endpoint": json.dumps(
                {**s3, "list": {**s3["list"], "records": [
                    {**s3["list"]["records"][0], "value": {
                        **s3["list"]["records"][0]["value"],
                        "storage": {**s3["list"]["records"][0]["value"]["storage"],
                                    "endpoint": "http://127.0.0.1:1"}}}]}}
            ).encode(),
        },
    }  # fmt: skip
    for target, inputs in groups.items():
        d = HERE / target
        d.mkdir(exist_ok=True)
        for name, data in inputs.items():
            (d / name).write_bytes(data)
    print(sum(len(v) for v in groups.values()), "inputs written under", HERE)


if __name__ == "__main__":
    os.environ.setdefault("ATDATA_CACHE_DIR", tempfile.mkdtemp())
    main()
