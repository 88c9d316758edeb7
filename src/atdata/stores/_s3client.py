"""S3 clients, credentials and endpoint trust, shared by :class:`S3Source` and :class:`S3DataStore`.

An endpoint named by a *published record* gets your credentials only when you trust it (see
``atdata.stores._s3``'s module docstring); :func:`record_client_kwargs` makes that decision.
"""

from __future__ import annotations

import os
from typing import Any

from atdata._errors import ConfigError, StorageError
from atdata._extras import require
from atdata._shards.bodyread import DirectBody

__all__ = [
    "BodyStream",
    "make_client",
    "parse_s3_url",
    "record_client_kwargs",
    "s3_fix",
    "trusted_endpoints",
]


def parse_s3_url(url: str) -> tuple[str, str]:
    """``"s3://bucket/a/b.tar"`` -> ``("bucket", "a/b.tar")``.

    Examples:
        >>> parse_s3_url("s3://b/x/y-000.tar")
        ('b', 'x/y-000.tar')
    """
    if not url.startswith("s3://"):
        raise ConfigError(f"{url!r} is not an s3:// URL")
    bucket, _, key = url[5:].partition("/")
    if not bucket:
        raise ConfigError(f"{url!r} has no bucket")
    return bucket, key


def make_client(
    *,
    endpoint_url: str | None = None,
    region_name: str | None = None,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    aws_session_token: str | None = None,
    max_attempts: int = 5,
    connect_timeout: float = 5.0,
    read_timeout: float = 60.0,
    unsigned: bool = False,
) -> Any:
    """A boto3 S3 client with retries and timeouts set (``unsigned``: anonymous requests, no
    credentials looked up or sent)."""
    boto3 = require("boto3", "s3", "S3 storage")
    from botocore import UNSIGNED
    from botocore.config import Config

    extra: dict[str, Any] = {"signature_version": UNSIGNED} if unsigned else {}
    cfg = Config(
        retries={"max_attempts": max_attempts, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        s3={"addressing_style": "path"} if endpoint_url else None,
        **extra,
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region_name,
        aws_access_key_id=aws_access_key_id,
        aws_secret_access_key=aws_secret_access_key,
        aws_session_token=aws_session_token,
        config=cfg,
    )


def _read_credentials(creds: str | os.PathLike[str] | dict[str, str]) -> dict[str, str]:
    """A credentials dict as given, or read from a ``KEY=VALUE`` ``.env`` file."""
    if isinstance(creds, dict):
        return {str(k): str(v) for k, v in creds.items() if v is not None}
    out: dict[str, str] = {}
    try:
        with open(os.fspath(creds), encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#") or "=" not in line:
                    continue
                k, _, v = line.removeprefix("export ").partition("=")
                out[k.strip()] = v.strip().strip("'\"")
    except OSError as exc:
        raise ConfigError(
            f"cannot read S3 credentials file {os.fspath(creds)!r}: {exc.strerror}"
        ) from None
    return out


def _endpoint_id(url: str) -> tuple[str, str, int | None]:
    from urllib.parse import urlsplit

    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        port = -1
    default = {"https": 443, "http": 80}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), port or default


def trusted_endpoints() -> set[tuple[str, str, int | None]]:
    """Endpoints you allowed to receive your S3 credentials: ``$ATDATA_S3_TRUSTED_ENDPOINTS``
    (comma-separated) and the endpoint you configured for boto3 (``$AWS_ENDPOINT_URL_S3``,
    ``$AWS_ENDPOINT_URL``).

    Examples:
        >>> import os
        >>> os.environ["ATDATA_S3_TRUSTED_ENDPOINTS"] = "https://S3.example.org/, http://127.0.0.1:9000"
        >>> sorted(trusted_endpoints())
        [('http', '127.0.0.1', 9000), ('https', 's3.example.org', 443)]
        >>> del os.environ["ATDATA_S3_TRUSTED_ENDPOINTS"]
    """
    raw = [os.environ.get("ATDATA_S3_TRUSTED_ENDPOINTS", "")]
    raw += [os.environ.get(v, "") for v in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")]
    return {_endpoint_id(u) for r in raw for u in r.split(",") if u.strip()}


def record_client_kwargs(endpoint: Any, region: Any, what: str) -> dict[str, Any]:
    """Client arguments for an S3 location a published record chose (see the module notes).

    Without an endpoint the record points at AWS itself: your usual credentials are used. A
    record's endpoint gets them only when you trust it; otherwise requests are unsigned, and an
    ``http`` endpoint is refused unless trusted or ``$ATDATA_S3_ALLOW_HTTP=1``.

    Raises:
        StorageError: For an endpoint that is not an http(s) URL, or plain http not allowed.
    """
    kw: dict[str, Any] = {}
    if region is not None:
        if not isinstance(region, str) or not region.replace("-", "").isalnum():
            raise StorageError(f"{what}: storageS3.region {str(region)[:60]!r} is not a region")
        kw["region_name"] = region
    if endpoint is None:
        return kw
    if not isinstance(endpoint, str) or _endpoint_id(endpoint)[0] not in ("http", "https"):
        raise StorageError(
            f"{what}: storageS3.endpoint {str(endpoint)[:80]!r} is not an http(s) URL"
        )
    ident = _endpoint_id(endpoint)
    if not ident[1] or ident[2] == -1:
        raise StorageError(f"{what}: storageS3.endpoint {endpoint[:80]!r} is not a valid URL")
    trusted = ident in trusted_endpoints()
    if ident[0] == "http" and not trusted and os.environ.get("ATDATA_S3_ALLOW_HTTP") != "1":
        raise StorageError(
            f"{what}: the record's S3 endpoint {endpoint} is plain http; refusing it. If you "
            "trust it, add it to ATDATA_S3_TRUSTED_ENDPOINTS (your credentials will be sent), "
            "or set ATDATA_S3_ALLOW_HTTP=1 to read it anonymously"
        )
    kw["endpoint_url"] = endpoint
    if not trusted:
        kw["unsigned"] = True  # never send the reader's credentials where a record points
    return kw


def s3_fix(code: str) -> str:
    """What to do about an S3 error code (or botocore exception name).

    Examples:
        >>> s3_fix("NoSuchBucket")
        'check the bucket name'
    """
    if code in ("NoSuchKey", "404", "NotFound"):
        return "check the key"
    if code == "NoSuchBucket":
        return "check the bucket name"
    if code in ("NoCredentialsError", "PartialCredentialsError"):
        return "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
    if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return "check the credentials and that they may read this bucket"
    if code in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError"):
        return "check the endpoint (--endpoint-url / AWS_ENDPOINT_URL) is reachable"
    return "check the URL, the credentials and the endpoint"


def _err(exc: Exception, what: str) -> StorageError:
    code = (
        getattr(exc, "response", {}).get("Error", {}).get("Code")
        if hasattr(exc, "response")
        else None
    )
    detail = code or type(exc).__name__
    return StorageError(f"{what} failed: {detail}; {s3_fix(detail)}")


class BodyStream:
    """The body of one ``get_object`` response, for reading a shard from start to end.

    ``readinto`` and ``read`` take the bytes straight from the HTTP response (``http.client``)
    into the caller's buffer: botocore's ``StreamingBody`` reads through urllib3, which reads
    into a new buffer and copies it, holding the GIL for the copy and for faulting in the new
    buffer's pages (a thread decoding batches then waits). A plain-HTTP body is read straight
    from the socket, many megabytes per call (:class:`~atdata._shards.bodyread.DirectBody`).
    What botocore checks is kept: ending
    before the Content-Length is an error (:class:`~atdata.ShardError` here), and a body whose
    checksum botocore validates (a ``StreamingChecksumBody``), or any body this class does not
    recognise, is read through botocore unchanged. The connection goes back to the pool after a
    complete read, as urllib3 does. Anything else is the ``StreamingBody``'s (attribute access
    is passed on).

    Args:
        body: ``response["Body"]``.
        length: ``response["ContentLength"]``.
        shard: Named in errors.
    """

    def __init__(self, body: Any, length: int | None, shard: str) -> None:
        self.body = body
        self._shard = shard
        self.length = length  # (read ahead of the body, to size a buffer)
        self._fp = _plain_fp(body) if isinstance(length, int) else None
        self._direct = DirectBody(self._fp, f"shard {shard}") if self._fp is not None else None

    def readinto(self, b: Any) -> int:
        """Read up to ``len(b)`` bytes into ``b``; 0 at the end."""
        if self._direct is None:
            return int(self.body.readinto(b))
        n = self._direct.readinto(b)
        self._count(n, len(b))
        return n

    def read(self, n: int | None = -1) -> bytes:
        """Up to ``n`` bytes (all the rest for ``-1``/``None``); ``b""`` at the end."""
        if self._direct is None:
            return bytes(self.body.read(None if n is None or n < 0 else n))
        data = self._direct.read(n)
        self._count(len(data), -1 if n is None or n < 0 else n)
        return data

    def _count(self, got: int, asked: int) -> None:
        """After a read of ``got`` bytes of ``asked`` (-1: to the end): at the end of the body,
        hand the connection back to the pool (a body that ended early raised in ``DirectBody``,
        as botocore's IncompleteReadError would)."""
        if asked >= 0 and (got or not asked):
            return
        raw, fp = self.body._raw_stream, self._fp
        if fp is not None and fp.isclosed() and hasattr(raw, "release_conn"):
            raw.release_conn()  # keep-alive: the pool may reuse the connection

    def close(self) -> None:
        """Close the response (returns its connection to the pool when read to the end)."""
        self.body.close()

    def __enter__(self) -> BodyStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        if name == "body":  # (not set yet)
            raise AttributeError(name)
        return getattr(self.body, name)


def _plain_fp(body: Any) -> Any:
    """The ``http.client`` response under a plain, unread botocore ``StreamingBody`` (no
    checksum of botocore's to feed), else ``None``."""
    import http.client

    try:
        from botocore.response import StreamingBody
    except ImportError:  # pragma: no cover - boto3 is there whenever a body is
        return None
    if type(body) is not StreamingBody:
        return None
    raw = getattr(body, "_raw_stream", None)
    fp = getattr(raw, "_fp", None)
    tell = getattr(raw, "tell", None)
    if not isinstance(fp, http.client.HTTPResponse) or tell is None or tell() != 0:
        return None
    return fp
