"""S3Source.open_shard's BodyStream: the same bytes as botocore's StreamingBody, read straight
from the HTTP response when botocore has no checksum to validate; botocore's checks kept (a body
ending before its Content-Length is a ShardError; a checksum-validated body is read by botocore)."""

from __future__ import annotations

import http.server

import pytest

import atdata
from atdata.stores._s3client import BodyStream
from tests._helpers import serve_http

pytest.importorskip("boto3")

KW = {
    "region_name": "us-east-1",
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing-secret",
}
DATA = bytes(range(256)) * 4000 + b"tail"  # 1,024,004 bytes


@pytest.fixture(scope="module")
def bucket(s3_endpoint):
    import boto3
    from botocore.config import Config

    # one object with a full-object CRC32 (botocore validates it on reading), one without
    with_crc = boto3.client("s3", endpoint_url=s3_endpoint, **KW)
    with_crc.create_bucket(Bucket="bodies")
    with_crc.put_object(Bucket="bodies", Key="crc.tar", Body=DATA)
    plain = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        config=Config(request_checksum_calculation="when_required"),
        **KW,
    )
    plain.put_object(Bucket="bodies", Key="plain.tar", Body=DATA)
    return s3_endpoint


def _source(endpoint):
    return atdata.S3Source("s3://bodies/{plain,crc}.tar", endpoint_url=endpoint, **KW)


@pytest.mark.parametrize(("key", "direct"), [("plain", True), ("crc", False)])
def test_body_reads_the_same_bytes_by_readinto_and_read(bucket, key, direct):
    src = _source(bucket)
    with src.open_shard(f"s3://bodies/{key}.tar") as f:
        assert isinstance(f, BodyStream)
        assert (f._fp is not None) is direct  # a checksum botocore validates: botocore reads
        buf = bytearray(300_000)
        got = bytearray()
        while n := f.readinto(buf):
            got += buf[:n]
        assert f.readinto(buf) == 0
    assert bytes(got) == DATA
    with src.open_shard(f"s3://bodies/{key}.tar") as f:
        parts = [f.read(5)]
        while part := f.read(1 << 18):
            parts.append(part)
    assert b"".join(parts) == DATA
    with src.open_shard(f"s3://bodies/{key}.tar") as f:
        assert f.read() == DATA
        assert callable(f.iter_chunks)  # (other attributes pass to the body)
        assert f.read(10) == b""


def test_a_streamed_epoch_over_both_kinds_of_body(bucket, tmp_path):
    ds = atdata.write_samples([{"i": i} for i in range(9)], str(tmp_path / "s.tar"), fsync=False)
    import boto3
    from botocore.config import Config

    for key, cfg in (("plain", "when_required"), ("crc", "when_supported")):
        c = boto3.client(
            "s3", endpoint_url=bucket, config=Config(request_checksum_calculation=cfg), **KW
        )
        c.upload_file(ds.list_shards()[0], "bodies", f"{key}.tar")
    got = [int(s["i"]) for s in atdata.Dataset(_source(bucket)).ordered()]
    assert got == list(range(9)) * 2


class _Short(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"x" * 600)  # and the connection closes


@pytest.fixture
def short_url():
    with serve_http(_Short) as srv:
        yield f"{srv.url}/x"


def test_a_body_that_ends_early_is_a_shard_error(short_url):
    import urllib3
    from botocore.response import StreamingBody

    raw = urllib3.PoolManager().request(
        "GET", short_url, preload_content=False, decode_content=False
    )
    f = BodyStream(StreamingBody(raw, 1000), 1000, "s3://b/x.tar")
    assert f._fp is not None
    buf = bytearray(4096)
    assert f.readinto(buf) == 600
    with pytest.raises(
        atdata.ShardError, match=r"^shard s3://b/x\.tar ended after 600 of its 1000 bytes"
    ):
        f.readinto(buf)
    f.close()
