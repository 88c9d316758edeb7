"""Where ingestion reads from: local files, HTTP(S) URLs, ``s3://`` objects, globs and HF datasets.

:func:`resolve_inputs` turns what the user passed into an ordered list of :class:`Input` (globs
expanded and sorted, so a rerun sees the same inputs in the same order), and
:func:`open_binary` opens one as a byte stream, decompressing ``.gz`` and ``.zst``.

Examples:
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> for n in ("b.jsonl", "a.jsonl.gz", "c.csv"):
    ...     _ = open(os.path.join(d, n), "wb").write(b"")
    >>> [(os.path.basename(i.uri), i.fmt, i.compression) for i in resolve_inputs(os.path.join(d, "*"))]
    [('a.jsonl.gz', 'jsonl', 'gz'), ('b.jsonl', 'jsonl', ''), ('c.csv', 'csv', '')]
"""

from __future__ import annotations

import dataclasses
import fnmatch
import glob
import io
import os
from collections.abc import Iterable
from typing import Any

from atdata._errors import ConfigError, DataNotFoundError, StorageError
from atdata._extras import require

__all__ = ["Input", "S3Access", "detect_format", "open_binary", "resolve_inputs"]

_FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_COMPRESSION = {".gz": "gz", ".gzip": "gz", ".zst": "zst", ".zstd": "zst"}
_GLOB_CHARS = frozenset("*?[")


@dataclasses.dataclass
class Input:
    """One input: ``uri``, its format (``jsonl``, ``csv``, ``parquet``, ``hf``), compression
    (``""``, ``gz``, ``zst``), where it lives (``local``, ``http``, ``s3``, ``hf``), its size in
    bytes when known (a resumed run checks it did not change) and, for ``hf``, the dataset."""

    uri: str
    fmt: str
    compression: str = ""
    location: str = "local"
    size: int | None = None
    obj: Any = None

    def identity(self) -> dict[str, Any]:
        """What a resumed run compares: the URI, format and size."""
        return {"uri": self.uri, "fmt": self.fmt, "size": self.size}


def detect_format(uri: str, fmt: str | None = None) -> tuple[str, str]:
    """``(format, compression)`` of ``uri`` from its name (``fmt`` overrides the format).

    Examples:
        >>> detect_format("s3://b/x/rows.jsonl.zst"), detect_format("data.csv.gz")
        (('jsonl', 'zst'), ('csv', 'gz'))
        >>> detect_format("https://h/x?download=1", "csv")
        ('csv', '')
    """
    name = uri.split("?", 1)[0].split("#", 1)[0].rstrip("/").lower()
    root, ext = os.path.splitext(name)
    comp = _COMPRESSION.get(ext, "")
    if comp:
        root, ext = os.path.splitext(root)
    if fmt is not None:
        if fmt not in ("jsonl", "csv", "parquet"):
            raise ConfigError(f"format must be 'jsonl', 'csv' or 'parquet', got {fmt!r}")
        return fmt, comp
    found = _FORMATS.get(ext)
    if found is None:
        raise ConfigError(
            f"cannot tell the format of {uri!r} from its name; name it .jsonl/.csv/.parquet "
            "(optionally .gz/.zst) or pass format='jsonl'|'csv'|'parquet' (--format on the command line)"
        )
    return found, comp


@dataclasses.dataclass
class S3Access:
    """How to reach S3: a ready client, or :func:`~atdata.stores._s3client.make_client` options."""

    client: Any = None
    options: dict[str, Any] = dataclasses.field(default_factory=dict)

    def get(self) -> Any:
        if self.client is None:
            from atdata.stores._s3client import make_client

            self.client = make_client(**self.options)
        return self.client


def _is_hf(obj: Any) -> bool:
    return type(obj).__module__.startswith("datasets") and hasattr(obj, "with_format")


def resolve_inputs(source: Any, fmt: str | None = None, s3: S3Access | None = None) -> list[Input]:
    """The inputs ``source`` names, in a fixed order.

    Args:
        source: A path, directory, glob, ``http(s)://`` URL, ``s3://`` URL or glob, a Hugging
            Face ``datasets.Dataset``, or a list of these.
        fmt: Force the format of every file input.
        s3: S3 access for ``s3://`` inputs.

    Raises:
        DataNotFoundError: When a path or glob matches nothing.
        ConfigError: For an input whose format cannot be told.
    """
    items: Iterable[Any] = source if isinstance(source, (list, tuple)) else [source]
    out: list[Input] = []
    for item in items:
        if _is_hf(item):
            name = getattr(item, "_fingerprint", None) or type(item).__name__
            size = len(item) if hasattr(item, "__len__") else None  # IterableDataset: none
            out.append(Input(f"hf:{name}", "hf", "", "hf", size, item))
            continue
        uri = os.fspath(item) if isinstance(item, os.PathLike) else item
        if not isinstance(uri, str):
            raise ConfigError(
                f"cannot ingest a {type(item).__name__}: pass a path, URL, glob, a list of them "
                "or a Hugging Face datasets.Dataset"
            )
        if uri.startswith(("http://", "https://")):
            f, c = detect_format(uri, fmt)
            out.append(Input(uri, f, c, "http"))
        elif uri.startswith("s3://"):
            out.extend(_s3_inputs(uri, fmt, s3 or S3Access()))
        elif "://" in uri and not os.path.exists(uri):
            scheme = uri.split("://", 1)[0]
            raise ConfigError(
                f"input {uri!r}: {scheme}:// is not a source ingest reads (paths, http(s):// and "
                "s3:// are); for a Hugging Face dataset pass the object from "
                "datasets.load_dataset(...) to atdata.ingest"
            )
        else:
            out.extend(_local_inputs(uri, fmt))
    return out


def _local_inputs(uri: str, fmt: str | None) -> list[Input]:
    path = os.path.expanduser(uri)
    if os.path.isdir(path):
        names = sorted(
            os.path.join(path, n)
            for n in os.listdir(path)
            if not n.startswith(".") and _known(n) and os.path.isfile(os.path.join(path, n))
        )
    elif _GLOB_CHARS & set(path):
        names = sorted(p for p in glob.glob(path, recursive=True) if os.path.isfile(p))
    else:
        if not os.path.isfile(path):
            raise DataNotFoundError(f"input {uri!r} does not exist; check the path")
        names = [path]
    if not names:
        raise DataNotFoundError(f"input {uri!r} matches no files; check the path or pattern")
    out = []
    for n in names:
        f, c = detect_format(n, fmt)
        out.append(Input(os.path.abspath(n), f, c, "local", os.path.getsize(n)))
    return out


def _known(name: str) -> bool:
    try:
        detect_format(name)
    except ConfigError:
        return False
    return True


def _s3_inputs(uri: str, fmt: str | None, s3: S3Access) -> list[Input]:
    from atdata.stores._s3client import parse_s3_url, s3_fix

    bucket, key = parse_s3_url(uri)
    if not (_GLOB_CHARS & set(key)) and not key.endswith("/") and key:
        f, c = detect_format(uri, fmt)
        return [Input(uri, f, c, "s3")]
    cut = min([key.index(ch) for ch in _GLOB_CHARS if ch in key] or [len(key)])
    prefix = key[:cut]
    client = s3.get()
    found: list[tuple[str, int]] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                k = obj["Key"]
                if (
                    fnmatch.fnmatchcase(k, key) if cut < len(key) else _known(k)
                ) and not k.endswith("/"):
                    found.append((k, int(obj["Size"])))
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        raise StorageError(
            f"cannot list s3://{bucket}/{prefix}: {type(exc).__name__}: {exc}; {s3_fix(code)}"
        ) from None
    if not found:
        raise DataNotFoundError(f"input {uri!r} matches no objects; check the bucket and prefix")
    out = []
    for k, size in sorted(found):
        f, c = detect_format(k, fmt)
        out.append(Input(f"s3://{bucket}/{k}", f, c, "s3", size))
    return out


class _RawAdapter(io.RawIOBase):
    """A ``read(n)`` object (an S3 body) as a raw stream, so it can be buffered and decompressed."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self._body.read(len(b))
        n = len(data)
        b[:n] = data
        return n

    def close(self) -> None:
        try:
            self._body.close()
        finally:
            super().close()


class _Owning(io.BufferedReader):
    """A buffered view of ``stream`` that also closes ``owned`` (a ``GzipFile`` given a file
    object leaves it open when closed)."""

    def __init__(self, stream: Any, owned: Any) -> None:
        super().__init__(_RawAdapter(stream), 1 << 20)
        self._owned = owned

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._owned.close()


def _skip(stream: Any, n: int, uri: str) -> None:
    """Read and drop the first ``n`` bytes of ``stream`` (no record is parsed).

    Raises:
        StorageError: When the stream ends before (the input changed since they were counted).
    """
    left = n
    while left:
        got = len(stream.read(min(left, 1 << 20)))
        if not got:
            raise StorageError(
                f"input {uri} ends {left} bytes before byte {n}, where the last run stopped "
                "reading it: it changed since; ingest it into a new output directory"
            )
        left -= got


def _open_raw(inp: Input, s3: S3Access | None, offset: int = 0) -> Any:
    if inp.location == "local":
        f = open(inp.uri, "rb")  # noqa: SIM115 - the caller closes it
        if offset:
            f.seek(offset)
        return f
    if inp.location == "http":
        import urllib.error
        import urllib.request

        req = urllib.request.Request(
            inp.uri, headers={"Range": f"bytes={offset}-"} if offset else {}
        )
        try:
            resp = urllib.request.urlopen(req, timeout=60)
        except urllib.error.HTTPError as exc:
            if offset and exc.code == 416:  # resuming at the very end
                return io.BytesIO(b"")
            raise StorageError(f"cannot read input {inp.uri}: {exc}; check the URL") from None
        except (urllib.error.URLError, OSError) as exc:
            raise StorageError(f"cannot read input {inp.uri}: {exc}; check the URL") from None
        ranged = resp.status == 206
        if ranged and not str(resp.headers.get("Content-Range", "")).startswith(f"bytes {offset}-"):
            resp.close()
            raise StorageError(
                f"input {inp.uri}: asked for bytes {offset}- the server answered "
                f"{resp.headers.get('Content-Range')!r}; check the server"
            )
        if offset and not ranged:  # (a server without ranges: read up to the offset)
            try:
                _skip(resp, offset, inp.uri)
            except BaseException:
                resp.close()
                raise
        return resp
    if inp.location == "s3":
        from atdata.stores._s3client import parse_s3_url, s3_fix

        bucket, key = parse_s3_url(inp.uri)
        extra = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            body = (s3 or S3Access()).get().get_object(Bucket=bucket, Key=key, **extra)["Body"]
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
            if offset and code == "InvalidRange":  # resuming at the very end
                return io.BytesIO(b"")
            raise StorageError(f"cannot read input {inp.uri}: {code}; {s3_fix(code)}") from None
        return io.BufferedReader(_RawAdapter(body), 1 << 20)
    raise ConfigError(f"input {inp.uri!r} is not a file")


def open_binary(inp: Input, s3: S3Access | None = None, offset: int = 0) -> Any:
    """A binary stream of ``inp``'s (decompressed) bytes; the caller closes it.

    ``offset``: start at that byte of the (decompressed) bytes: seeking a local file, asking S3
    or an HTTP server for a range; where that cannot be done (a compressed input, a server
    without ranges) the bytes before it are read and dropped, which is still much cheaper than
    parsing the records they hold.

    Raises:
        StorageError: When the input cannot be read, or ends before ``offset``.
    """
    raw = _open_raw(inp, s3, 0 if inp.compression else offset)
    if not inp.compression:
        return raw
    try:
        if inp.compression == "gz":
            import gzip

            out: Any = _Owning(gzip.GzipFile(fileobj=raw, mode="rb"), raw)
        else:
            zstd = require("zstandard", "ingest", f"reading {inp.uri}")
            reader = zstd.ZstdDecompressor().stream_reader(raw, closefd=True)
            out = io.BufferedReader(reader, 1 << 20)
        if offset:
            _skip(out, offset, inp.uri)
    except BaseException:
        raw.close()
        raise
    return out
