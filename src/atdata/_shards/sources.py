"""Where shards come from: URL patterns, local files, HTTP(S), and the :class:`DataSource` protocol.

Storage and federation plug in here: anything with ``list_shards()`` and ``open_shard()`` (and
optionally ``read_range()`` for random access) can back a :class:`~atdata.Dataset`.

Examples:
    >>> expand_braces("data-{000..002}.tar")
    ['data-000.tar', 'data-001.tar', 'data-002.tar']
    >>> expand_braces("{train,test}-{0..1}.tar")
    ['train-0.tar', 'train-1.tar', 'test-0.tar', 'test-1.tar']
"""

from __future__ import annotations

import functools
import glob as _glob
import http.client
import os
import re
import warnings
from collections.abc import Callable, Container, Iterator, Sequence
from typing import Any, BinaryIO, Protocol, TypeVar, cast, runtime_checkable

from atdata._errors import (
    ArgumentTypeError,
    ConfigError,
    DataNotFoundError,
    NotFoundError,
    ShardError,
    shard_open_error,
)
from atdata._shards import httpget
from atdata._shards.bodyread import DirectBody

__all__ = [
    "DataSource",
    "URLSource",
    "brace_url",
    "expand_braces",
    "expand_urls",
    "is_remote",
    "pread_exact",
    "shard_id_kw",
]

_F = TypeVar("_F", bound=Callable[..., Any])

_RANGE = re.compile(r"(-?\d+)\.\.(-?\d+)")
_HTTP_TIMEOUT = 60.0


def shard_id_kw(method: _F) -> _F:
    """Let an ``open_shard(self, shard_id)`` method also take the former keyword ``shard=``.

    ``shard_id`` is the documented name; ``shard=`` still works and warns (DeprecationWarning).

    Examples:
        >>> class Src:
        ...     @shard_id_kw
        ...     def open_shard(self, shard_id: str) -> str:
        ...         return shard_id
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as w:
        ...     warnings.simplefilter("always")
        ...     got = Src().open_shard(shard="a.tar")
        >>> got, w[0].category.__name__
        ('a.tar', 'DeprecationWarning')
    """

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if "shard" in kwargs:
            if args or "shard_id" in kwargs:
                raise ArgumentTypeError("open_shard() got the shard twice: pass shard_id only")
            warnings.warn(
                "open_shard(shard=...) is deprecated: the parameter is shard_id "
                "(open_shard(shard_id=...) or positionally)",
                DeprecationWarning,
                stacklevel=2,
            )
            kwargs["shard_id"] = kwargs.pop("shard")
        return method(self, *args, **kwargs)

    return cast(_F, wrapper)


@runtime_checkable
class DataSource(Protocol):
    """A set of shards a :class:`~atdata.Dataset` can stream.

    ``open_shard`` returns a binary stream with ``read(n)`` and ``close()``. Sources that can
    also serve byte ranges implement ``read_range(shard, offset, size)`` for random access.
    """

    def list_shards(self) -> list[str]:
        """Shard identifiers, in order."""
        ...

    def open_shard(self, shard_id: str) -> BinaryIO:
        """Open one shard for sequential reading."""
        ...


def is_sidecar_of(url: str, shards: Container[str]) -> bool:
    """Whether ``url`` is the manifest or member index beside one of ``shards``.

    Examples:
        >>> is_sidecar_of("d/a.manifest.json", {"d/a.tar"}), is_sidecar_of("d/b.idx", {"d/a.tar"})
        (True, False)
    """
    for suffix in (".manifest.json", ".manifest.parquet", ".idx"):
        if url.endswith(suffix):
            stem = url[: -len(suffix)]
            return stem + ".tar" in shards or stem in shards
    return False


def expand_braces(pattern: str) -> list[str]:
    """Expand WebDataset brace notation: numeric ranges ``{000..009}`` and lists ``{a,b}``.

    Raises:
        ConfigError: For an unbalanced brace or an empty range.
    """
    start = pattern.find("{")
    if start < 0:
        if "}" in pattern:
            raise ConfigError(f"unbalanced '}}' in shard pattern {pattern!r}")
        return [pattern]
    end = pattern.find("}", start)
    if end < 0:
        raise ConfigError(f"unbalanced '{{' in shard pattern {pattern!r}")
    body, head, tail = pattern[start + 1 : end], pattern[:start], pattern[end + 1 :]
    m = _RANGE.fullmatch(body)
    if m:
        lo, hi = int(m.group(1)), int(m.group(2))
        if hi < lo:
            raise ConfigError(f"empty range {{{body}}} in shard pattern {pattern!r}")
        width = len(m.group(1)) if m.group(1).startswith("0") else 0
        options = [str(i).zfill(width) for i in range(lo, hi + 1)]
    else:
        options = body.split(",")
    return [head + opt + rest for opt in options for rest in expand_braces(tail)]


def _common_prefix(names: Sequence[str]) -> str:
    lo, hi = min(names), max(names)  # the lexicographic extremes share the common prefix
    n = 0
    while n < min(len(lo), len(hi)) and lo[n] == hi[n]:
        n += 1
    return lo[:n]


def brace_url(shards: Sequence[str]) -> str:
    """One shard spec naming exactly ``shards``, in order, that :func:`expand_urls` accepts:
    a numeric range or a brace list where the names differ in one place, else ``::``-joined.

    Examples:
        >>> brace_url(["d/a-000008.tar", "d/a-000009.tar", "d/a-000010.tar"])
        'd/a-{000008..000010}.tar'
        >>> brace_url(["d/train.tar", "d/test.tar"])
        'd/{train,test}.tar'
        >>> brace_url(["x/one.tar", "y/b,c.tar"])
        'x/one.tar::y/b,c.tar'
        >>> all(expand_braces(brace_url(s)) == s for s in (["a1.tar", "a3.tar"], ["a.tar"]))
        True
    """
    shards = list(shards)
    if len(shards) <= 1:
        return shards[0] if shards else ""
    pre = _common_prefix(shards)
    suf = _common_prefix([x[len(pre) :][::-1] for x in shards])[::-1]
    while pre and pre[-1].isalnum():  # keep whole words and numbers in the varying part
        pre = pre[:-1]
    while suf and suf[0].isalnum():
        suf = suf[1:]
    mids = [x[len(pre) : len(x) - len(suf)] for x in shards]
    if all(m.isdigit() for m in mids) and len({len(m) for m in mids}) == 1:
        nums = [int(m) for m in mids]
        if nums == list(range(nums[0], nums[0] + len(nums))):
            return f"{pre}{{{mids[0]}..{mids[-1]}}}{suf}"
    special = ("{", "}", ",", "::")
    pattern = f"{pre}{{{','.join(mids)}}}{suf}"
    if (
        not any(c in x for x in (pre, suf, *mids) for c in special)
        and len(set(mids)) == len(mids)
        and expand_braces(pattern) == shards
    ):
        return pattern
    return "::".join(shards)


def is_remote(url: str) -> bool:
    """Whether ``url`` names a remote object (``scheme://`` other than ``file://``)."""
    return "://" in url and not url.startswith("file://")


def _local_path(url: str) -> str:
    return url[7:] if url.startswith("file://") else url


def expand_urls(urls: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    """Expand shard specs into a concrete shard list.

    Accepts a string or a sequence of strings; each may use brace notation, ``::`` to join
    several patterns, and (for local paths) glob wildcards. A local directory expands to the
    ``.tar`` files in it.

    Raises:
        DataNotFoundError: (a ``FileNotFoundError`` and a ``ShardError``) When a local pattern
            or directory matches nothing.
    """
    if isinstance(urls, (str, os.PathLike)):
        specs = [os.fspath(urls)]
    else:
        specs = [os.fspath(u) for u in urls]
    out: list[str] = []
    for spec in specs:
        for part in spec.split("::"):
            for url in expand_braces(part):
                if is_remote(url):
                    out.append(url)
                    continue
                path = os.path.expanduser(_local_path(url))
                if os.path.isdir(path):
                    found = sorted(_glob.glob(os.path.join(_glob.escape(path), "*.tar")))
                    if not found:
                        raise DataNotFoundError(f"directory {path!r} holds no .tar shards")
                    out.extend(found)
                elif _glob.has_magic(path):
                    found = sorted(_glob.glob(path))
                    if not found:
                        raise DataNotFoundError(f"no shard matches {path!r}")
                    out.extend(found)
                else:
                    out.append(path)
    return out


class _HTTPStream:
    """A streamed HTTP response with ``read``/``close`` and errors that name the URL."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        import urllib.error

        self.url = url
        self._conn = None
        try:
            self._resp, self._conn = httpget.get(
                url, {"Accept-Encoding": "identity", **(headers or {})}, _HTTP_TIMEOUT
            )
        except urllib.error.HTTPError as exc:
            raise ShardError(f"cannot fetch shard {url}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise ShardError(f"cannot fetch shard {url}: {reason}") from None
        if self._resp.status >= 400:  # (urllib raises these; a pooled GET returns them)
            code, why = self._resp.status, self._resp.reason
            httpget.release(self._conn, self._resp)
            raise ShardError(f"cannot fetch shard {url}: HTTP {code} {why}")
        self._body = DirectBody(self._resp, f"shard {url}")
        self.length: int | None = self._body.length  # the Content-Length, if announced

    def read(self, n: int = -1) -> bytes:
        try:
            return self._body.read(n)
        except OSError as exc:
            raise ShardError(f"connection lost while reading shard {self.url}: {exc}") from None

    def readinto(self, b: Any) -> int:
        try:
            return self._body.readinto(b)
        except OSError as exc:
            raise ShardError(f"connection lost while reading shard {self.url}: {exc}") from None

    def close(self) -> None:
        httpget.release(self._conn, self._resp)  # (read to its end: kept for the next GET)

    def __enter__(self) -> _HTTPStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def pread_exact(fd: int, size: int, offset: int, shard: str, total: int = -1) -> bytes:
    """``size`` bytes at ``offset`` of an open local shard, checked against the file's size
    (``total``, when the caller has just fstat'ed it) before anything is allocated (sizes and
    offsets come from indexes and manifests).

    Raises:
        ShardError: When the range does not lie inside the file.
    """
    if total < 0:
        total = os.fstat(fd).st_size
    if size < 0 or offset < 0 or offset + size > total:
        raise ShardError(
            f"short read in shard {shard}: wanted {size} bytes at {offset} of a "
            f"{total}-byte file (a stale or corrupt index or manifest)"
        )
    data = os.pread(fd, size, offset)
    if len(data) != size:
        raise ShardError(f"short read in shard {shard}: wanted {size} bytes at {offset}")
    return data


class URLSource:
    """Shards named by local paths or ``http(s)://`` URLs (brace notation and globs expanded).

    Args:
        url: The shard spec: a path or URL (braces, globs, ``::``-joined), or a list of them
            (``URLSource(url=...)`` as documented).
        urls: The same, under our earlier keyword.

    Examples:
        >>> URLSource("a-{0..2}.tar").list_shards()
        ['a-0.tar', 'a-1.tar', 'a-2.tar']
        >>> URLSource(url="b-{0..1}.tar").list_shards()
        ['b-0.tar', 'b-1.tar']
    """

    def __init__(
        self,
        url: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
        *,
        urls: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    ) -> None:
        spec = url if urls is None else urls
        if spec is None or (url is not None and urls is not None):
            raise ConfigError("URLSource needs the shards: URLSource(url) (one of url=, urls=)")
        urls = spec
        self.spec = urls
        self.origin = ""  # what the shards belong to, for a missing one's error (index entries)
        self._shards = expand_urls(urls)
        if not self._shards:
            raise ShardError(f"no shards in {urls!r}")
        self._listed = frozenset(self._shards)

    @property
    def url(self) -> str | os.PathLike[str] | Sequence[str | os.PathLike[str]]:
        """The shard spec as given (upstream's attribute; :meth:`list_shards` expands it)."""
        return self.spec

    @property
    def shards(self) -> Iterator[tuple[str, BinaryIO]]:
        """``(shard id, open stream)`` for each shard in order, opened one at a time (lazy)."""
        for shard in self._shards:
            yield shard, self.open_shard(shard)

    def list_shards(self) -> list[str]:
        """Shard identifiers, in order."""
        return list(self._shards)

    @property
    def shard_list(self) -> list[str]:
        """Shard identifiers, in order (same as :meth:`list_shards`)."""
        return list(self._shards)

    @shard_id_kw
    def open_shard(self, shard_id: str) -> BinaryIO:
        """Open a shard for streaming.

        Raises:
            NotFoundError: (a ``KeyError``) When ``shard_id`` is not one of :meth:`list_shards`
                (nor a listed shard's manifest or member index).
            ShardError: When the file is missing or the URL cannot be fetched.
        """
        shard = os.fspath(shard_id)
        if shard not in self._listed and not is_sidecar_of(shard, self._listed):
            raise NotFoundError(
                f"shard {shard!r} is not one of this source's {len(self._shards)} shards "
                f"({self.spec!r}); open one of list_shards()"
            )
        if is_remote(shard):
            if shard.startswith(("http://", "https://")):
                return _HTTPStream(shard)  # type: ignore[return-value]
            raise ShardError(
                f"no reader for {shard!r}: use a DataSource for this scheme (e.g. atdata.S3Source)"
            )
        try:
            return open(shard, "rb", buffering=0)  # the caller closes it
        except OSError as exc:
            raise shard_open_error(shard, exc, self.origin) from None

    def read_range(self, shard: str, offset: int, size: int) -> bytes:
        """Read ``size`` bytes at ``offset`` of a shard (HTTP uses a Range request).

        Raises:
            ShardError: When the range cannot be read in full.
        """
        if is_remote(shard):
            with _HTTPStream(shard, {"Range": f"bytes={offset}-{offset + size - 1}"}) as s:
                if (
                    offset and getattr(s._resp, "status", 206) != 206
                ):  # Range ignored: not our bytes
                    raise ShardError(
                        f"server of {shard} ignored the Range request (HTTP {s._resp.status}); "
                        "random access needs a server that supports byte ranges"
                    )
                from atdata._shards.tar import _read_at_least

                data = _read_at_least(s.read, size, 0) if size > 0 else b""
        else:
            try:
                fd = os.open(shard, os.O_RDONLY)
            except OSError as exc:
                raise shard_open_error(shard, exc, self.origin) from None
            try:
                data = pread_exact(fd, size, offset, shard)
            finally:
                os.close(fd)
        if len(data) != size:
            raise ShardError(f"short read in shard {shard}: wanted {size} bytes at {offset}")
        return data

    def shard_size(self, shard: str) -> int | None:
        """Byte size of a local shard (``None`` for remote ones)."""
        if is_remote(shard):
            return None
        try:
            return os.path.getsize(shard)
        except OSError:
            return None

    def __repr__(self) -> str:
        return f"URLSource({self.spec!r})"
