"""S3 and S3-compatible storage (AWS, R2, MinIO): :class:`S3DataStore` and :class:`S3Source`.

``boto3`` (extra ``s3``) is imported on first use. Credentials come from explicit arguments or
the usual boto3 chain (environment, profile, instance role) and never appear in messages.

An endpoint named by a *published record* (``storageS3.endpoint``) is chosen by whoever wrote
the record, so your credentials go there only when you trust it: list it in
``$ATDATA_S3_TRUSTED_ENDPOINTS`` (comma-separated), or configure it for boto3 yourself
(``$AWS_ENDPOINT_URL_S3`` / ``$AWS_ENDPOINT_URL``). Other endpoints are read anonymously
(unsigned requests: public buckets work, nothing of yours is sent), and only over ``https``
unless ``$ATDATA_S3_ALLOW_HTTP=1`` (or the endpoint is trusted). Note that botocore's own DEBUG
logging prints request headers, the session token included: atdata never turns it on; do not
enable it where logs are shared.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

from atdata._errors import (
    ConfigError,
    IntegrityError,
    NotFoundError,
    ShardError,
    as_both,
)
from atdata._shards.sources import shard_id_kw
from atdata.stores._base import ShardWriteResult, write_shards_to
from atdata.stores._local import check_key
from atdata.stores._s3client import (
    BodyStream,
    _err,
    _read_credentials,
    make_client,
    parse_s3_url,
    record_client_kwargs,
    trusted_endpoints,
)

__all__ = [
    "S3DataStore",
    "S3Source",
    "parse_s3_url",
    "record_client_kwargs",
    "trusted_endpoints",
]


class S3Source:
    """A :class:`~atdata.DataSource` streaming shards from S3 or an S3-compatible endpoint.

    Args:
        bucket: Bucket name. (Our shorthand: an ``s3://`` URL or a list of them instead, with
            brace notation ``s3://b/data-{000..009}.tar`` or a prefix ending in ``/`` meaning
            every ``.tar`` under it; :meth:`from_urls` is the documented spelling.)
        keys: Object keys inside ``bucket``, in order.
        endpoint: Endpoint URL for R2, MinIO or a local S3 server (``None``: AWS).
        access_key: Access key id (``None``: boto3's usual credential chain).
        secret_key: Secret access key (never shown in ``repr`` or messages).
        region: Region name.
        client: A ready boto3 S3 client (the connection arguments are then ignored).
        **client_kwargs: More :func:`make_client` options (``endpoint_url``, ``region_name``,
            ``aws_session_token``, ...).

    Examples:
        >>> src = S3Source("my-datasets", ["train/a.tar", "train/b.tar"], client=object())
        >>> src.shard_list
        ['s3://my-datasets/train/a.tar', 's3://my-datasets/train/b.tar']
        >>> S3Source("s3://bucket/d-{0..2}.tar", client=object()).list_shards()
        ['s3://bucket/d-0.tar', 's3://bucket/d-1.tar', 's3://bucket/d-2.tar']
        >>> S3Source.from_urls(["s3://b/x.tar", "s3://b/y.tar"], client=object()).keys
        ['x.tar', 'y.tar']
    """

    def __init__(
        self,
        bucket: str | Sequence[str],
        keys: Sequence[str] | None = None,
        endpoint: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str | None = None,
        *,
        client: Any = None,
        **client_kwargs: Any,
    ) -> None:
        from atdata._shards.sources import expand_braces

        if isinstance(bucket, str) and not bucket.startswith("s3://"):
            if "/" in bucket or not bucket:
                raise ConfigError(
                    f"S3Source bucket {bucket!r} must be a bare bucket name; pass object keys "
                    "as keys=[...] or use S3Source.from_urls(['s3://bucket/key.tar'])"
                )
            self._patterns = [f"s3://{bucket}/{k.lstrip('/')}" for k in (keys or ())]
        else:
            if keys is not None:
                raise ConfigError("S3Source: give either a bucket with keys=, or s3:// URLs")
            specs = [bucket] if isinstance(bucket, str) else list(bucket)
            self._patterns = [u for spec in specs for u in expand_braces(spec)]
        buckets = {parse_s3_url(u)[0] for u in self._patterns}
        self.bucket: str | None = buckets.pop() if len(buckets) == 1 else None
        self.endpoint = endpoint or client_kwargs.get("endpoint_url")
        self.access_key = access_key or client_kwargs.get("aws_access_key_id")
        self.secret_key = secret_key or client_kwargs.get("aws_secret_access_key")
        self.region = region or client_kwargs.get("region_name")
        kw = dict(client_kwargs)
        for ours, given in (
            ("endpoint_url", endpoint), ("aws_access_key_id", access_key),
            ("aws_secret_access_key", secret_key), ("region_name", region),
        ):  # fmt: skip
            if given is not None:
                kw[ours] = given
        self._client = client
        self._own_client = client is None
        self._client_kwargs = kw
        self._listed: list[str] | None = None
        self.origin = ""  # what the shards belong to, for a missing one's error (index entries)

    @classmethod
    def from_urls(
        cls,
        urls: Sequence[str],
        *,
        endpoint: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str | None = None,
        **kwargs: Any,
    ) -> S3Source:
        """A source over ``s3://bucket/key`` URLs, all in one bucket.

        Raises:
            ConfigError: (a ``ValueError``) When ``urls`` is empty, a URL is not ``s3://``, has
                no key, or the URLs span several buckets.
        """
        urls = [urls] if isinstance(urls, str) else list(urls)
        if not urls:
            raise ConfigError("S3Source.from_urls needs at least one s3:// URL")
        parsed = [parse_s3_url(u) for u in urls]
        for u, (_, key) in zip(urls, parsed, strict=True):
            if not key:
                raise ConfigError(f"{u!r} names no object key; use s3://bucket/path/shard.tar")
        buckets = sorted({b for b, _ in parsed})
        if len(buckets) > 1:
            raise ConfigError(
                f"S3Source.from_urls: the URLs span buckets {buckets}; make one source per bucket"
            )
        return cls(
            buckets[0], [k for _, k in parsed], endpoint, access_key, secret_key, region, **kwargs
        )

    @classmethod
    def from_credentials(
        cls, credentials: dict[str, str], bucket: str, keys: Sequence[str], **kwargs: Any
    ) -> S3Source:
        """A source configured from a credentials dict (the format :class:`S3DataStore` reads).

        Args:
            credentials: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and optionally
                ``AWS_ENDPOINT`` and ``AWS_REGION``.
            bucket: Bucket name.
            keys: Object keys.
        """
        return cls(
            bucket, list(keys), credentials.get("AWS_ENDPOINT"),
            credentials.get("AWS_ACCESS_KEY_ID"), credentials.get("AWS_SECRET_ACCESS_KEY"),
            credentials.get("AWS_REGION") or credentials.get("AWS_DEFAULT_REGION"), **kwargs,
        )  # fmt: skip

    @property
    def _hint(self) -> str:
        if not self._client_kwargs.get("unsigned"):
            return ""
        return (
            f" (read anonymously: no credentials are sent to {self._client_kwargs.get('endpoint_url')}"
            " unless you list it in ATDATA_S3_TRUSTED_ENDPOINTS)"
        )

    @property
    def keys(self) -> list[str]:
        """Object keys of the shards (after expanding braces and prefixes)."""
        return [parse_s3_url(u)[1] for u in self.list_shards()]

    def _get_client(self) -> Any:
        if self._client is None:
            self._client = make_client(**self._client_kwargs)
        return self._client

    @property
    def client(self) -> Any:
        """The boto3 S3 client (built on first use)."""
        return self._get_client()

    def list_shards(self) -> list[str]:
        """The shards' ``s3://`` URLs, in order (a prefix is listed once)."""
        if self._listed is not None:
            return self._listed
        out: list[str] = []
        for u in self._patterns:
            if not u.endswith("/"):
                out.append(u)
                continue
            bucket, prefix = parse_s3_url(u)
            try:
                pages = (
                    self._get_client()
                    .get_paginator("list_objects_v2")
                    .paginate(Bucket=bucket, Prefix=prefix)
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

    @property
    def shard_list(self) -> list[str]:
        """The shards' ``s3://`` URLs, in order (same as :meth:`list_shards`)."""
        return self.list_shards()

    @property
    def shards(self) -> Iterator[tuple[str, Any]]:
        """``(shard URL, open stream)`` for each shard in order, opened one at a time."""
        for shard in self.list_shards():
            yield shard, self.open_shard(shard)

    def __getstate__(self) -> dict[str, Any]:  # spawned DataLoader workers build their own client
        state = dict(self.__dict__)
        if self._own_client:
            state["_client"] = None
        return state

    def after_fork(self) -> None:
        """Drop a client this source built (a forked process must not share its connections)."""
        if self._own_client:
            self._client = None

    @shard_id_kw
    def open_shard(self, shard_id: str) -> Any:
        """A stream of one shard's bytes.

        Raises:
            NotFoundError: (a ``KeyError``) When ``shard_id`` is not one of :meth:`list_shards`.
            ShardError: When S3 refuses or fails; it is also the botocore error raised (a
                ``ClientError`` stays catchable as one).
        """
        shard = shard_id
        if shard not in self.list_shards() and not self._is_sidecar(shard):
            raise NotFoundError(
                f"shard {shard!r} is not one of this source's {len(self.list_shards())} shards"
            )
        bucket, key = parse_s3_url(shard)
        try:
            resp = self._get_client().get_object(Bucket=bucket, Key=key)
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            missing = code in ("NoSuchKey", "404")
            what = "not found" if missing else f"unreadable ({_err(exc, 'GET')})"
            where = f" ({self.origin})" if missing and self.origin else ""
            raise as_both(ShardError, exc, f"shard {shard} is {what}{self._hint}{where}") from None
        return BodyStream(resp["Body"], resp.get("ContentLength"), shard)

    def _is_sidecar(self, url: str) -> bool:
        """Whether ``url`` is a listed shard's manifest or member index (read beside it)."""
        for suffix in (".manifest.json", ".manifest.parquet", ".idx"):
            if url.endswith(suffix):
                stem = url[: -len(suffix)]
                return stem + ".tar" in self.list_shards() or stem in self.list_shards()
        return False

    def read_range(self, shard: str, offset: int, size: int) -> bytes:
        bucket, key = parse_s3_url(shard)
        try:
            body = self._get_client().get_object(
                Bucket=bucket, Key=key, Range=f"bytes={offset}-{offset + size - 1}"
            )["Body"]
            data = body.read()
        except Exception as exc:
            raise ShardError(
                f"cannot read {size} bytes at {offset} of shard {shard}: {_err(exc, 'GET')}"
                f"{self._hint}"
            ) from None
        if len(data) != size:
            raise ShardError(f"short read in shard {shard}: wanted {size} bytes at {offset}")
        return data

    def shard_size(self, shard: str) -> int | None:
        bucket, key = parse_s3_url(shard)
        try:
            return int(self._get_client().head_object(Bucket=bucket, Key=key)["ContentLength"])
        except Exception:
            return None

    def __repr__(self) -> str:
        return f"S3Source({self._patterns!r})"


class S3DataStore:
    """Shards in an S3 bucket (or an S3-compatible endpoint).

    Two spellings: the documented ``S3DataStore(credentials, bucket="b")`` (credentials a dict
    or a ``.env`` file with ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and optionally
    ``AWS_ENDPOINT``/``AWS_REGION``), and ours, ``S3DataStore("b", "prefix", endpoint_url=...)``.

    Args:
        credentials: The credentials dict or ``.env`` path; or, when ``bucket`` is not given,
            the bucket name.
        prefix: Key prefix inside the bucket.
        bucket: Bucket name (documented keyword).
        endpoint_url: For R2, MinIO, a local S3 server (``None``: AWS).
        region_name, aws_access_key_id, aws_secret_access_key, aws_session_token: Explicit
            credentials (default: the boto3 chain).
        multipart_threshold: Shards at least this large upload in parts (bytes).
        multipart_chunksize: Part size (bytes, S3's minimum is 5 MiB).
        max_attempts: Retries of each request (boto3 standard retry mode).
        verify: ``"read"`` reads each uploaded object back and checks its sha256; ``"head"``
            checks size and the recorded sha256 only.
        client: A ready boto3 S3 client (the other connection arguments are then ignored).

    Examples:
        >>> s = S3DataStore({"AWS_ENDPOINT": "http://127.0.0.1:9000", "AWS_ACCESS_KEY_ID": "k",
        ...                  "AWS_SECRET_ACCESS_KEY": "s"}, bucket="lab")
        >>> s.bucket, s.read_url("s3://lab/a/b.tar"), s.supports_streaming()
        ('lab', 'http://127.0.0.1:9000/lab/a/b.tar', True)
    """

    kind = "s3"

    def __init__(
        self,
        credentials: str | os.PathLike[str] | dict[str, str] | None = None,
        prefix: str = "",
        *,
        bucket: str | None = None,
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
        if bucket is None:
            if not isinstance(credentials, str) or not credentials:
                raise ConfigError(
                    "S3DataStore needs a bucket: S3DataStore(credentials, bucket='b')"
                )
            bucket, credentials = credentials, None
        creds = _read_credentials(credentials) if credentials is not None else {}
        endpoint_url = endpoint_url or creds.get("AWS_ENDPOINT") or None
        region_name = region_name or creds.get("AWS_REGION") or creds.get("AWS_DEFAULT_REGION")
        aws_access_key_id = aws_access_key_id or creds.get("AWS_ACCESS_KEY_ID")
        aws_secret_access_key = aws_secret_access_key or creds.get("AWS_SECRET_ACCESS_KEY")
        aws_session_token = aws_session_token or creds.get("AWS_SESSION_TOKEN")
        self.credentials: dict[str, str] = creds
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

    def write_shards(
        self,
        ds: Any,
        *,
        prefix: str,
        maxcount: int | None = None,
        maxsize: int | None = None,
        manifest: bool = False,
        schema_version: str | None = None,
        source_job_id: str | None = None,
        parent_shards: list[str] | None = None,
        pipeline_version: str | None = None,
        **kwargs: Any,
    ) -> ShardWriteResult:
        """Copy ``ds``'s samples into new shards under ``prefix`` in the bucket, verified.

        Shards are always staged on local disk first (``cache_local`` is accepted and has no
        effect), then uploaded and checked (size and sha256) before their URLs are returned.

        Args:
            ds: A :class:`~atdata.Dataset` (or any iterable of samples).
            prefix: Key prefix in the bucket, e.g. ``"datasets/mnist/v1"``.
            maxcount: Samples per shard (default: one shard).
            maxsize: Bytes per shard.
            manifest: Also write a manifest beside each shard.
            schema_version: The ``schema_version`` each manifest header records (default:
                the sample type's ``__schema_version__``, else ``"1.0.0"``).
            source_job_id: Provenance: the job that wrote the shards (in each manifest header).
            parent_shards: Provenance: the input shards they were made from.
            pipeline_version: Provenance: the version of the pipeline that made them.
            **kwargs: ``cache_local`` and other stores' options are accepted and ignored.

        Returns:
            The ``s3://`` URLs in order, with :attr:`ShardWriteResult.checksums`.

        Raises:
            NothingWrittenError: (a ``RuntimeError``, as documented upstream, and a
                ``ConfigError``) When ``ds`` has no samples.
        """
        from atdata.manifest._builder import provenance_header

        header = provenance_header(schema_version, source_job_id, parent_shards, pipeline_version)
        return write_shards_to(
            self, ds, prefix, maxcount=maxcount, maxsize=maxsize, manifest=manifest,
            manifest_header=header,
        )  # fmt: skip

    def read_url(self, url: str) -> str:
        """The URL to stream ``url`` from: ``<endpoint>/<bucket>/<key>`` with a custom endpoint.

        Plain AWS ``s3://`` URLs are returned unchanged. The key is percent-encoded in the
        HTTP URL, so a key with spaces, ``#``, ``?``, ``%`` or non-ASCII letters names its own
        object (plain keys come out as they are).
        """
        from urllib.parse import quote

        if self.endpoint_url and url.startswith("s3://"):
            return self.endpoint_url.rstrip("/") + "/" + quote(url[len("s3://") :], safe="/")
        return url

    def supports_streaming(self) -> bool:
        """``True``: objects are read as streams."""
        return True

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
