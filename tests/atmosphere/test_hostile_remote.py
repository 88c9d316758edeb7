"""A hostile record or PDS decides neither where our credentials go nor how much memory we use.

Loopback fake servers record what reaches them: S3 requests (the Authorization header carries the
access key id) and blob downloads (how many bytes the server got to send).
"""

from __future__ import annotations

import http.server
import io
import re
import tracemalloc

import pytest
from tests._helpers import serve_http

import atdata
from atdata._shards.tar import TarWriter
from atdata.atmosphere._remote import source_for
from atdata.atmosphere._resolve import Identity

pytest.importorskip("httpx")

IDENT = Identity(did="did:plc:hostile", handle="", pds="https://pds.invalid")


def _tar() -> bytes:
    buf = io.BytesIO()
    w = TarWriter(buf, mtime=0)
    w.add("k0.msgpack", atdata.DictSample(x=1).packed)
    w.close()
    return buf.getvalue()


class _Server:
    """A threaded loopback HTTP server answering GETs with ``body(path) -> (status, chunks,
    length)``; ``requests`` holds each GET's headers, ``sent`` the bytes written."""

    def __init__(self, body) -> None:
        self.requests: list[dict[str, str]] = []
        self.sent = 0
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                outer.requests.append({k.lower(): v for k, v in self.headers.items()})
                status, chunks, length = body(self.path)
                self.send_response(status)
                if length is not None:
                    self.send_header("Content-Length", str(length))
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    for c in chunks:
                        self.wfile.write(c)
                        outer.sent += len(c)
                except OSError:  # the client hung up: what we wanted
                    pass

            def log_message(self, *a):
                pass

        self._serving = serve_http(H)

    def __enter__(self):
        self.url = self._serving.__enter__().url
        return self

    def __exit__(self, *exc):
        self._serving.__exit__(*exc)


# -- storageS3.endpoint never receives ambient credentials unless trusted ------------------------


def _s3_entry(endpoint: str) -> dict:
    return {
        "name": "hostile",
        "storage": {
            "$type": "science.alt.dataset.storageS3",
            "bucket": "b",
            "endpoint": endpoint,
            "region": "us-east-1",
            "shards": [{"key": "a.tar"}],
        },
    }


@pytest.fixture
def ambient_creds(monkeypatch):
    pytest.importorskip("boto3")
    for var in ("ATDATA_S3_TRUSTED_ENDPOINTS", "ATDATA_S3_ALLOW_HTTP", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDAMBIENTSECRET")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "ambient-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "ambient-session-token")
    return monkeypatch


def _read_all(src) -> list:
    return [s["x"] for s in atdata.Dataset(src)]


def test_record_http_endpoint_refused_without_opt_in(ambient_creds):
    shard = _tar()
    with _Server(lambda path: (200, [shard], len(shard))) as srv:
        with pytest.raises(atdata.StorageError, match=r"plain http; refusing it"):
            source_for(IDENT, _s3_entry(srv.url))
        assert srv.requests == []


def test_untrusted_record_endpoint_gets_no_credentials(ambient_creds):
    ambient_creds.setenv("ATDATA_S3_ALLOW_HTTP", "1")  # http allowed, the endpoint not trusted
    shard = _tar()
    with _Server(lambda path: (200, [shard], len(shard))) as srv:
        assert _read_all(source_for(IDENT, _s3_entry(srv.url))) == [1]
    assert len(srv.requests) >= 1
    for headers in srv.requests:
        assert "authorization" not in headers
        assert "x-amz-security-token" not in headers
        assert not any("AKIDAMBIENTSECRET" in v for v in headers.values())


def test_untrusted_endpoint_errors_say_how_to_trust_it(ambient_creds):
    ambient_creds.setenv("ATDATA_S3_ALLOW_HTTP", "1")
    with _Server(lambda path: (403, [b"<Error><Code>AccessDenied</Code></Error>"], 41)) as srv:
        src = source_for(IDENT, _s3_entry(srv.url))
        with pytest.raises(atdata.ShardError, match=r"ATDATA_S3_TRUSTED_ENDPOINTS"):
            list(atdata.Dataset(src))


def test_trusted_record_endpoint_gets_credentials(ambient_creds):
    shard = _tar()
    with _Server(lambda path: (200, [shard], len(shard))) as srv:
        ambient_creds.setenv("ATDATA_S3_TRUSTED_ENDPOINTS", f"https://other.example, {srv.url}/")
        assert _read_all(source_for(IDENT, _s3_entry(srv.url))) == [1]
    auth = [h.get("authorization", "") for h in srv.requests]
    assert auth and all("Credential=AKIDAMBIENTSECRET/" in a for a in auth)
    assert srv.requests[0]["x-amz-security-token"] == "ambient-session-token"


@pytest.mark.parametrize(
    ("endpoint", "fragment"),
    [
        ("file:///etc/passwd", "is not an http(s) URL"),
        (5, "is not an http(s) URL"),
        ("https://", "is not a valid URL"),
        ("https://h:99999", "is not a valid URL"),
    ],
)
def test_bad_record_endpoints(ambient_creds, endpoint, fragment):
    with pytest.raises(atdata.StorageError, match=re.escape(fragment)):
        source_for(IDENT, _s3_entry(endpoint))


# -- a blob's declared size is enforced while reading --------------------------------------------


def _huge_member_tar_head(size: int) -> bytes:
    """The first block of a tar whose only member claims ``size`` bytes (a valid header)."""
    buf = io.BytesIO()
    w = TarWriter(buf, mtime=0)
    return w._header(b"k0.msgpack", size, b"0")


def _oversized_blob(path: str):
    total = 64 << 20
    head = _huge_member_tar_head(total)

    def chunks():
        yield head
        zero = bytes(1 << 16)
        for _ in range((total - len(head)) // len(zero)):
            yield zero

    return 200, chunks(), None  # no Content-Length: the size shows only while reading


def _blob_source(url: str, size: int | None):
    from atdata.atmosphere._blobs import BlobSource

    return BlobSource("did:plc:hostile", url, [("bafkreihostileblob", None, size)])


@pytest.mark.parametrize("mode", ["stream", "random"])
def test_blob_larger_than_declared_is_cut_off(mode):
    with _Server(_oversized_blob) as srv:
        src = _blob_source(srv.url, 4096)
        shard = src.list_shards()[0]
        tracemalloc.start()
        try:
            with pytest.raises(atdata.IntegrityError, match=r"larger than the 4096 bytes"):
                if mode == "stream":
                    list(atdata.Dataset(src))
                else:
                    src.read_range(shard, 512, 16)
            _cur, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 4 << 20, f"{peak} bytes buffered for a 4096-byte blob"
    assert srv.sent < 32 << 20  # the server was cut off long before its 64 MiB


def test_blob_content_length_over_declared_is_refused_before_reading():
    body = bytes(1 << 20)
    with _Server(lambda path: (200, [body], len(body))) as srv:
        src = _blob_source(srv.url, 4096)
        with pytest.raises(atdata.IntegrityError, match=r"served as 1048576 bytes"):
            src.open_shard(src.list_shards()[0])


def test_blob_without_recorded_size_is_bounded_by_the_lexicon(monkeypatch):
    from atdata.atmosphere import _blobs

    monkeypatch.setattr(_blobs, "LEXICON_MAX_BLOB", 8192)
    with _Server(_oversized_blob) as srv:
        src = _blob_source(srv.url, None)
        with pytest.raises(atdata.IntegrityError, match=r"the most a blob may have is"):
            list(atdata.Dataset(src))


def test_error_pages_are_not_read_whole():
    def page(path):
        return 500, (bytes(1 << 16) for _ in range(1024)), None

    with _Server(page) as srv:
        src = _blob_source(srv.url, 4096)
        tracemalloc.start()
        try:
            with pytest.raises(atdata.ShardError, match=r"HTTP 500"):
                src.open_shard(src.list_shards()[0])
            _cur, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 4 << 20


# -- content identifiers: a blob or record that is not what its CID names is refused ------------


def test_blob_without_checksum_is_checked_against_its_cid():
    from atdata.atmosphere._cid import blob_cid

    good = _tar()
    other = bytearray(good)
    other[600] ^= 1  # the same length, one bit changed: only a hash tells them apart
    entry = {
        "name": "cid-only",
        "storage": {  # upstream's shape: the blob entry's optional checksum left out
            "$type": "science.alt.dataset.storageBlobs",
            "blobs": [{"blob": {"$type": "blob", "ref": {"$link": blob_cid(good)}, "size": 0}}],
        },
    }
    entry["storage"]["blobs"][0]["blob"]["size"] = len(good)
    with _Server(lambda path: (200, [good], len(good))) as srv:
        ident = Identity(did="did:plc:hostile", handle="", pds=srv.url)
        assert _read_all(source_for(ident, entry)) == [1]
    with _Server(lambda path: (200, [bytes(other)], len(other))) as srv:
        ident = Identity(did="did:plc:hostile", handle="", pds=srv.url)
        with pytest.raises(
            atdata.IntegrityError,
            match=r"sha256 mismatch for shard at://did:plc:hostile/blob/bafkrei.*its CID says",
        ):
            _read_all(source_for(ident, entry))


def _pds_answering(value: dict, cid: str, others: tuple = ()):
    """A fake PDS serving one entry record (``value``, reported under ``cid``); its listing
    also holds ``others`` (``{"uri", "cid", "value"}`` dicts, listed first)."""
    import json

    uri = "at://did:plc:hostile/science.alt.dataset.entry/3kaaaaaaaaaaa"

    def body(path):
        if "getRecord" in path:
            out = {"uri": uri, "cid": cid, "value": value}
        else:
            out = {"records": [*others, {"uri": uri, "cid": cid, "value": value}]}
        data = json.dumps(out).encode()
        return 200, [data], len(data)

    return _Server(body)


def test_records_whose_cid_does_not_match_are_refused():
    from atdata._errors import RecordNotFoundError
    from atdata.atmosphere._cid import record_cid
    from atdata.atmosphere._remote import find_entry
    from atdata.atmosphere._resolve import get_record, iter_records

    value = {
        "$type": "science.alt.dataset.entry",
        "name": "mnist",
        "schemaRef": "at://did:plc:hostile/science.alt.dataset.schema/3kaaaaaaaaaab",
        "storage": {
            "$type": "science.alt.dataset.storageHttp",
            "shards": [{"url": "https://example.org/a.tar"}],
        },
        "createdAt": "2025-01-01T00:00:00Z",
    }
    cid = record_cid(value)
    coll = "science.alt.dataset.entry"
    with _pds_answering(value, cid) as srv:  # consistent: read as it is
        assert get_record(srv.url, "did:plc:hostile", coll, "3kaaaaaaaaaaa") == (value, cid)
        assert [c for _u, c, _v in iter_records(srv.url, "did:plc:hostile", coll)] == [cid]
    tampered = {
        **value,
        "storage": {**value["storage"], "shards": [{"url": "https://evil.example/a.tar"}]},
    }
    good = {**value, "name": "cifar"}
    other = {"uri": f"at://did:plc:hostile/{coll}/3kaaaaaaaaaab", "cid": record_cid(good)}
    malformed = [{"uri": f"at://did:plc:hostile/{coll}/3kaaaaaaaaaac", "value": "text"}, 5]
    with _pds_answering(tampered, cid, ({**other, "value": good}, *malformed)) as srv:
        ident = Identity(did="did:plc:hostile", handle="", pds=srv.url)
        uri = f"at://did:plc:hostile/{coll}/3kaaaaaaaaaaa"
        with pytest.raises(atdata.IntegrityError, match=f"{uri} does not match its CID {cid}"):
            get_record(srv.url, "did:plc:hostile", coll, "3kaaaaaaaaaaa")
        # a listing leaves the bad records out, each named in a warning, and lists the rest
        with pytest.warns(UserWarning) as got:
            listed = list(iter_records(srv.url, "did:plc:hostile", coll))
        assert [(u, v["name"]) for u, _c, v in listed] == [(other["uri"], "cifar")]
        head = f"listing {coll} of did:plc:hostile: skipped "
        assert sorted(str(w.message).removeprefix(head).split(": it")[0] for w in got) == [
            "a record",
            f"at://did:plc:hostile/{coll}/3kaaaaaaaaaac",
            f"the record {uri}",
        ]
        with pytest.warns(UserWarning, match=f"skipped the record {uri}"):
            assert find_entry(ident, "cifar").uri == other["uri"]
        with (
            pytest.warns(UserWarning, match=f"skipped the record {uri}"),
            pytest.raises(RecordNotFoundError, match="no dataset named 'mnist'"),
        ):
            find_entry(ident, "mnist")


# -- ranged reads: what can be checked is checked ---------------------------------------------


def _range_server(data: bytes, shift: int = 0):
    """Honours ``Range`` over ``data`` (answering from ``shift`` bytes later when set)."""

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            a, b = (int(x) for x in self.headers["Range"].split("=")[1].split("-"))
            part = data[a + shift : b + 1 + shift]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {a + shift}-{b + shift}/{len(data)}")
            self.send_header("Content-Length", str(len(part)))
            self.end_headers()
            self.wfile.write(part)

        def log_message(self, *a):
            pass

    return serve_http(H)


def test_blob_range_reads_check_what_a_range_can_be_checked_against():
    import hashlib

    from atdata.atmosphere import BlobSource, blob_cid
    from atdata.atmosphere._blobs import VerifiedHTTPSource

    good, bad = b"0123456789", b"0123456780"
    cid = blob_cid(good)
    with _range_server(bad) as srv:
        by_cid = BlobSource("did:plc:hostile", srv.url, [(cid, None, 10)])
        by_sha = BlobSource(
            "did:plc:hostile", srv.url, [(cid, hashlib.sha256(good).hexdigest(), 10)]
        )
        shard = f"at://did:plc:hostile/blob/{cid}"
        # a part cannot be checked against the whole blob's digest: served as it is
        assert by_cid.read_range(shard, 2, 3) == b"234"
        # the whole blob can: by its CID, or by the recorded sha256
        with pytest.raises(atdata.IntegrityError, match=f"shard {shard}: got .* its CID says"):
            by_cid.read_range(shard, 0, 10)
        with pytest.raises(atdata.IntegrityError, match="the dataset record says"):
            by_sha.read_range(shard, 0, 10)
        # a blob served with another total size than the record's
        sized = BlobSource("did:plc:hostile", srv.url, [(cid, None, 12)])
        with pytest.raises(
            atdata.IntegrityError, match="served as 10 bytes but its record says 12"
        ):
            sized.read_range(shard, 2, 3)
        # an http shard: the whole-shard range is known from Content-Range's total
        url = srv.url + "/a.tar"
        http_src = VerifiedHTTPSource([(url, hashlib.sha256(good).hexdigest())])
        assert http_src.read_range(url, 0, 4) == b"0123"
        with pytest.raises(atdata.IntegrityError, match=f"sha256 mismatch for shard {url}"):
            http_src.read_range(url, 0, 10)
    with _range_server(good) as srv:
        ok = BlobSource("did:plc:hostile", srv.url, [(cid, None, 10)])
        assert ok.read_range(f"at://did:plc:hostile/blob/{cid}", 0, 10) == good
    with _range_server(good + b"xx", shift=2) as srv:  # answers another range than asked
        src = BlobSource("did:plc:hostile", srv.url, [(cid, None, None)])
        with pytest.raises(
            atdata.IntegrityError, match=r"asked for bytes 2-4, the server answered 'bytes 4-6/12'"
        ):
            src.read_range(f"at://did:plc:hostile/blob/{cid}", 2, 3)
