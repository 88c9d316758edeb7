"""S3 and S3-compatible storage (AWS, R2, MinIO): :class:`S3DataStore` and :class:`S3Source`.

``boto3`` (extra ``s3``) is imported on first use. Credentials come from explicit arguments or
the usual boto3 chain (environment, profile, instance role) and never appear in messages.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from typing import Any

from atdata._errors import ConfigError, IntegrityError, ShardError, StorageError
from atdata._extras import require
from atdata.stores._local import check_key

__all__ = ["S3DataStore", "S3Source", "parse_s3_url"]


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
) -> Any:
    """A boto3 S3 client with retries and timeouts set."""
    boto3 = require("boto3", "s3", "S3 storage")
    from botocore.config import Config

    cfg = Config(
        retries={"max_attempts": max_attempts, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        s3={"addressing_style": "path"} if endpoint_url else None,
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


def _err(exc: Exception, what: str) -> StorageError:
    code = (
        getattr(exc, "response", {}).get("Error", {}).get("Code")
        if hasattr(exc, "response")
        else None
    )
    detail = code or type(exc).__name__
    return StorageError(f"{what} failed: {detail}")


class S3Source:
    """A :class:`~atdata.DataSource` streaming shards from S3.

    Args:
        urls: ``s3://`` URL(s), with brace notation (``s3://b/data-{000..009}.tar``) or a prefix
            ending in ``/`` (every ``.tar`` under it).
        client: A boto3 S3 client (default: one built from the other arguments).
        **client_kwargs: ``endpoint_url``, ``region_name``, credentials (see :func:`make_client`).

    Examples:
        >>> S3Source("s3://bucket/d-{0..2}.tar", client=object()).list_shards()
        ['s3://bucket/d-0.tar', 's3://bucket/d-1.tar', 's3://bucket/d-2.tar']
    """

    def __init__(
        self, urls: str | Sequence[str], *, client: Any = None, **client_kwargs: Any
    ) -> None:
        from atdata._shards.sources import expand_braces

        specs = [urls] if isinstance(urls, str) else list(urls)
        self._patterns = [u for s in specs for u in expand_braces(s)]
        for u in self._patterns:
            parse_s3_url(u)
        self._client = client
        self._client_kwargs = client_kwargs
        self._listed: list[str] | None = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_client(**self._client_kwargs)
        return self._client

    def list_shards(self) -> list[str]:
        if self._listed is not None:
            return self._listed
        out: list[str] = []
        for u in self._patterns:
            if not u.endswith("/"):
                out.append(u)
                continue
            bucket, prefix = parse_s3_url(u)
            try:
                pages = self.client.get_paginator("list_objects_v2").paginate(
                    Bucket=bucket, Prefix=prefix
                )
                keys = sorted(
                    o["Key"]
                    for p in pages
                    for o in p.get("Contents", ())
                    if o["Key"].endswith(".tar")
                )
            except Exception as exc:
                raise _err(exc, f"listing {u}") from None
            out.extend(f"s3://{bucket}/{k}" for k in keys)
        self._listed = out
        return out

    def open_shard(self, shard: str) -> Any:
        bucket, key = parse_s3_url(shard)
        try:
            return self.client.get_object(Bucket=bucket, Key=key)["Body"]
        except Exception as exc:
            if getattr(exc, "response", {}).get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise ShardError(f"shard not found: {shard}") from None
            raise ShardError(f"cannot open shard {shard}: {_err(exc, 'GET')}") from None

    def read_range(self, shard: str, offset: int, size: int) -> bytes:
        bucket, key = parse_s3_url(shard)
        try:
            body = self.client.get_object(
                Bucket=bucket, Key=key, Range=f"bytes={offset}-{offset + size - 1}"
            )["Body"]
            data = body.read()
        except Exception as exc:
            raise ShardError(
                f"cannot read {size} bytes at {offset} of shard {shard}: {_err(exc, 'GET')}"
            ) from None
        if len(data) != size:
            raise ShardError(f"short read in shard {shard}: wanted {size} bytes at {offset}")
        return data

    def shard_size(self, shard: str) -> int | None:
        bucket, key = parse_s3_url(shard)
        try:
            return int(self.client.head_object(Bucket=bucket, Key=key)["ContentLength"])
        except Exception:
            return None

    def __repr__(self) -> str:
        return f"S3Source({self._patterns!r})"


class S3DataStore:
    """Shards in an S3 bucket (or an S3-compatible endpoint).

    Args:
        bucket: Bucket name.
        prefix: Key prefix inside the bucket.
        endpoint_url: For R2, MinIO, a local S3 server (``None``: AWS).
        region_name, aws_access_key_id, aws_secret_access_key, aws_session_token: Explicit
            credentials (default: the boto3 chain).
        multipart_threshold: Shards at least this large upload in parts (bytes).
        multipart_chunksize: Part size (bytes, S3's minimum is 5 MiB).
        max_attempts: Retries of each request (boto3 standard retry mode).
        verify: ``"read"`` reads each uploaded object back and checks its sha256; ``"head"``
            checks size and the recorded sha256 only.
        client: A ready boto3 S3 client (the other connection arguments are then ignored).
    """

    kind = "s3"

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        multipart_threshold: int = 64 * 1024 * 1024,
        multipart_chunksize: int = 16 * 1024 * 1024,
        max_attempts: int = 5,
        verify: str = "read",
        client: Any = None,
    ) -> None:
        if verify not in ("read", "head"):
            raise ConfigError(f"verify must be 'read' or 'head', got {verify!r}")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url
        self.multipart_threshold, self.multipart_chunksize = (
            multipart_threshold,
            multipart_chunksize,
        )
        self.verify = verify
        self._client = client
        self._client_kwargs: dict[str, Any] = {
            "endpoint_url": endpoint_url,
            "region_name": region_name,
            "aws_access_key_id": aws_access_key_id,
            "aws_secret_access_key": aws_secret_access_key,
            "aws_session_token": aws_session_token,
            "max_attempts": max_attempts,
        }

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_client(**self._client_kwargs)
        return self._client

    @property
    def url(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"

    def key_for(self, key: str) -> str:
        return self.prefix + check_key(key)

    def staging_dir(self) -> str:
        return tempfile.mkdtemp(prefix="atdata-s3-staging-")

    def _head(self, key: str) -> dict | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self.key_for(key))
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code in ("404", "NoSuchKey", "NotFound"):
                return None
            raise _err(exc, f"HEAD s3://{self.bucket}/{self.key_for(key)}") from None

    def _read_sha(self, key: str) -> str:
        h = hashlib.sha256()
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key_for(key))["Body"]
            for chunk in iter(lambda: body.read(1 << 20), b""):
                h.update(chunk)
        except Exception as exc:
            raise _err(exc, f"GET s3://{self.bucket}/{self.key_for(key)}") from None
        return h.hexdigest()

    def exists(self, key: str, *, size: int | None = None, sha256: str | None = None) -> bool:
        head = self._head(key)
        if head is None:
            return False
        if size is not None and int(head["ContentLength"]) != size:
            return False
        if sha256 is None:
            return True
        if head.get("Metadata", {}).get("sha256") != sha256:
            return False
        return self.verify == "head" or self._read_sha(key) == sha256

    def put_shard(
        self, local_path: str, key: str, *, sha256: str, size: int, move: bool = False
    ) -> str:
        """Upload ``local_path`` as ``key`` (multipart above the threshold), then verify it.

        Raises:
            IntegrityError: When the object in the bucket does not match ``size``/``sha256``.
            StorageError: When the upload fails after retries.
        """
        import os

        from boto3.s3.transfer import TransferConfig

        full = self.key_for(key)
        url = f"s3://{self.bucket}/{full}"
        if not self.exists(key, size=size, sha256=sha256):
            cfg = TransferConfig(
                multipart_threshold=self.multipart_threshold,
                multipart_chunksize=self.multipart_chunksize,
            )
            try:
                self.client.upload_file(
                    local_path,
                    self.bucket,
                    full,
                    ExtraArgs={"Metadata": {"sha256": sha256}},
                    Config=cfg,
                )
            except Exception as exc:
                raise _err(exc, f"upload of shard {url}") from None
            head = self._head(key)
            got_size = None if head is None else int(head["ContentLength"])
            if got_size != size:
                raise IntegrityError(
                    f"shard {url}: stored {got_size} bytes, expected {size}; nothing recorded"
                )
            if self.verify == "read":
                got = self._read_sha(key)
                if got != sha256:
                    raise IntegrityError(
                        f"shard {url}: stored sha256 {got[:16]}... differs from {sha256[:16]}...; nothing recorded"
                    )
        if move:
            os.unlink(local_path)
        return url

    def source(self, urls: list[str]) -> S3Source:
        return S3Source(list(urls), client=self.client)

    def ping(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            raise _err(exc, f"reaching bucket {self.url}") from None

    def __repr__(self) -> str:
        return f"S3DataStore({self.url!r})"
