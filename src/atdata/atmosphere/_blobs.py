"""Checksum-verifying sources for remote shards: PDS blobs (:class:`BlobSource`), HTTP, sidecars.

Downloads send ``Accept-Encoding: identity`` (the PDS would gzip blobs otherwise), never read past
a blob's declared size, and check each shard's sha256 when the stream ends. Uploads live in
``_upload`` (:class:`PDSBlobStore`).

Examples:
    >>> blob_shard_id("did:plc:abc", "bafkreiabc")
    'at://did:plc:abc/blob/bafkreiabc'
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from typing import Any

from atdata._errors import (
    ConfigError,
    DataNotFoundError,
    IntegrityError,
    NotFoundError,
    ShardError,
)
from atdata._extras import require
from atdata._shards.sources import is_sidecar_of, shard_id_kw
from atdata.atmosphere._ranges import RangeCache, RangeCheck, http_range

__all__ = [
    "BlobRef",
    "BlobSource",
    "SidecarSource",
    "VerifiedHTTPSource",
    "VerifiedSource",
    "blob_shard_id",
]

LEXICON_MAX_BLOB = 52428800  # storageBlobs.blobEntry.blob.maxSize
_VERIFY_TAIL = 1 << 16  # on close, drain at most this much to finish a checksum


def blob_shard_id(did: str, cid: str) -> str:
    """The shard identifier a :class:`BlobSource` uses for one blob."""
    return f"at://{did}/blob/{cid}"


def _parse_blob_uri(url: str) -> tuple[str, str]:
    parts = url[5:].split("/") if url.startswith("at://") else []
    if len(parts) != 3 or parts[1] != "blob" or not parts[0] or not parts[2]:
        raise ConfigError(f"{url!r} is not a blob AT-URI (at://<did>/blob/<cid>)")
    return parts[0], parts[2]


@dataclasses.dataclass(frozen=True)
class BlobRef:
    """An uploaded shard: its blob reference (atproto JSON), sha256 and size."""

    ref: dict[str, Any]
    sha256: str
    size: int

    @property
    def cid(self) -> str:
        """The blob CID."""
        return str(self.ref["ref"]["$link"])


class _VerifyingStream:
    """``read``/``close`` over an HTTP body; checks size and sha256 once the body is consumed."""

    def __init__(
        self,
        resp: Any,
        shard: str,
        sha256: str | None,
        size: int | None,
        limit: int | None = None,
        claim: str = "the dataset record says",
    ) -> None:
        self._resp = resp
        self._claim = claim
        # the declared size (else ``limit``) is enforced while reading: the server never decides
        # how much we buffer; chunks never exceed it by more than one byte
        self._limit = size if size is not None else limit
        chunk = 1 << 20 if self._limit is None else max(1, min(1 << 20, self._limit + 1))
        self._it = resp.iter_bytes(chunk)
        self._buf = b""
        self._h = hashlib.sha256() if sha256 else None
        self._want = sha256
        self._size = size
        self._n = 0
        self._eof = False
        self.shard = shard

    def _pull(self) -> bool:
        try:
            chunk = next(self._it)
        except StopIteration:
            self._eof = True
            self._finish()
            return False
        except Exception as exc:  # httpx transport errors
            raise ShardError(
                f"connection lost while reading shard {self.shard}: {type(exc).__name__}"
            ) from None
        self._n += len(chunk)
        if self._limit is not None and self._n > self._limit:
            self._eof = True
            self._resp.close()
            what = "its record says" if self._size is not None else "the most a blob may have is"
            raise IntegrityError(
                f"shard {self.shard} is larger than the {self._limit} bytes {what}; stopped "
                f"reading after {self._n} bytes (the stored shard was replaced or the server "
                "is misbehaving)"
            )
        if self._h is not None:
            self._h.update(chunk)
        self._buf += chunk
        return True

    def _finish(self) -> None:
        if self._size is not None and self._n != self._size:
            raise IntegrityError(
                f"shard {self.shard} has {self._n} bytes but its record says {self._size}; "
                "the stored shard is truncated or was replaced"
            )
        if self._h is not None and self._h.hexdigest() != self._want:
            raise IntegrityError(
                f"sha256 mismatch for shard {self.shard}: got {self._h.hexdigest()}, "
                f"{self._claim} {self._want}; the shard was altered or corrupted"
            )

    def read(self, n: int = -1) -> bytes:
        if n >= 0 and not self._buf and not self._eof and self._pull() and len(self._buf) <= n:
            out, self._buf = self._buf, b""  # the common case: hand over the chunk, no copy
            return out  # (a short read, as from a socket: callers loop)
        parts = [self._buf]
        have = len(self._buf)
        self._buf = b""
        while not self._eof and (n < 0 or have < n):
            if not self._pull():
                break
            parts.append(self._buf)
            have += len(self._buf)
            self._buf = b""
        data = b"".join(parts) if len(parts) > 1 else parts[0]
        if n < 0 or len(data) <= n:
            return data
        self._buf = data[n:]
        return data[:n]

    def close(self) -> None:
        try:
            if not self._eof and (self._size is None or self._size - self._n <= _VERIFY_TAIL):
                # the tar reader stops at the end-of-archive marker: finish the last few blocks
                while self._pull():
                    if self._size is None and self._n > _VERIFY_TAIL + len(self._buf):
                        break
        finally:
            self._resp.close()


def _open_http(
    url: str,
    shard: str,
    sha256: str | None,
    size: int | None,
    params: dict | None = None,
    limit: int | None = None,
    claim: str = "the dataset record says",
) -> Any:
    from atdata.atmosphere._resolve import http_client

    httpx = require("httpx", "atmosphere", "reading remote shards")
    client = http_client()
    try:
        req = client.build_request(
            "GET", url, params=params, headers={"Accept-Encoding": "identity"}
        )
        resp = client.send(req, stream=True)
    except httpx.HTTPError as exc:
        raise ShardError(f"cannot fetch shard {shard}: {type(exc).__name__}: {exc}") from None
    if resp.status_code != 200:
        head = b""
        try:
            for part in resp.iter_bytes(256):  # an error page: its first bytes only
                head += part
                if len(head) >= 200:
                    break
        except httpx.HTTPError:
            pass
        resp.close()
        body = head[:200].decode(errors="replace")
        raise ShardError(f"cannot fetch shard {shard}: HTTP {resp.status_code} {body}".rstrip())
    cap = size if size is not None else limit
    declared = resp.headers.get("content-length", "")
    if cap is not None and declared.isdigit() and int(declared) > cap:
        resp.close()
        raise IntegrityError(
            f"shard {shard} is served as {declared} bytes, more than the {cap} it may have; "
            "not reading it (the stored shard was replaced or the server is misbehaving)"
        )
    return _VerifyingStream(resp, shard, sha256, size, limit, claim)


class BlobSource:
    """A :class:`~atdata.DataSource` streaming shards stored as blobs on a PDS.

    Made as ``BlobSource(did, pds, blobs)`` or, as upstream documents,
    ``BlobSource(blob_refs, pds_endpoint=None)`` with ``[{"did": ..., "cid": ...}, ...]`` (the
    PDS found from the DID when not given).

    Args:
        did: The repository holding the blobs (or the ``blob_refs`` list).
        pds: Its PDS base URL.
        blobs: ``[(cid, sha256 or None, size or None), ...]`` in shard order; a blob without a
            sha256 is checked against the digest its CID holds.
        blob_refs: ``[{"did", "cid"[, "sha256", "size"]}, ...]``, all of one repository.
        pds_endpoint: The PDS of ``blob_refs`` (default: resolved from the DID).

    Raises:
        ConfigError: (a ``ValueError``) No blobs, or ``blob_refs`` of several repositories.
    """

    def __init__(
        self,
        did: str | list[dict[str, Any]] | None = None,
        pds: str | None = None,
        blobs: list[tuple[str, str | None, int | None]] | None = None,
        *,
        blob_refs: list[dict[str, Any]] | None = None,
        pds_endpoint: str | None = None,
    ) -> None:
        if isinstance(did, list):
            blob_refs, did = did, None
        if blob_refs is not None:
            dids = {str(r.get("did", "")) for r in blob_refs}
            if len(dids) != 1 or "" in dids:
                raise ConfigError(
                    f"blob_refs must all name one repository's DID, got {sorted(dids)[:3]}; "
                    "make one BlobSource per repository"
                )
            did = dids.pop()
            pds = pds_endpoint or pds  # None: resolved from the DID when first needed
            blobs = [(str(r["cid"]), r.get("sha256"), r.get("size")) for r in blob_refs]
        elif pds is None:
            raise ConfigError("BlobSource needs (did, pds, blobs) or blob_refs=[{'did', 'cid'}]")
        if did is None:
            raise ConfigError("BlobSource needs (did, pds, blobs) or blob_refs=[{'did', 'cid'}]")
        if not blobs:
            raise ConfigError(f"no blobs to read from {did}")
        self.did = did
        self._pds = pds.rstrip("/") if pds else None
        self._blobs = {blob_shard_id(did, c): (c, sha, size) for c, sha, size in blobs}
        self._order = [blob_shard_id(did, c) for c, _s, _z in blobs]
        self._ranges = RangeCache(self.open_shard)
        self.spec = ",".join(self._order)

    @classmethod
    def from_refs(
        cls, refs: list[dict[str, Any]], *, pds_endpoint: str | None = None
    ) -> BlobSource:
        """A source over ``[{"did", "cid"}, ...]`` (a ``cid`` may be given as an upload's
        ``{"ref": {"$link": cid}}``; each ref still needs the ``did`` that holds it).

        Raises:
            ConfigError: (a ``ValueError``) No refs, a ref without DID or CID, or several DIDs.
        """
        norm = []
        for r in refs:
            link = r.get("ref")
            cid = r.get("cid") or (link.get("$link") if isinstance(link, dict) else None)
            if not r.get("did") or not cid:
                raise ConfigError(
                    f"blob ref {str(r)[:120]} needs 'did' and 'cid' (or 'ref': {{'$link': cid}})"
                )
            norm.append({**r, "did": r["did"], "cid": cid})
        return cls(blob_refs=norm, pds_endpoint=pds_endpoint)

    @property
    def blob_refs(self) -> list[dict[str, str]]:
        """``[{"did", "cid"}, ...]`` in shard order (upstream's attribute)."""
        return [{"did": self.did, "cid": self._blobs[s][0]} for s in self._order]

    @property
    def pds(self) -> str:
        """The PDS base URL the blobs are read from (given, or resolved from :attr:`did` on
        first use, so a source is made and listed without the network)."""
        if self._pds is None:
            from atdata.atmosphere._resolve import resolve_identity

            self._pds = resolve_identity(self.did).pds.rstrip("/")
        return self._pds

    @property
    def pds_endpoint(self) -> str:
        """The PDS the blobs are read from (upstream's name of :attr:`pds`)."""
        return self.pds

    @property
    def shards(self) -> Iterator[str]:
        """Shard identifiers (lazy)."""
        return iter(self._order)

    def list_shards(self) -> list[str]:
        """Shard identifiers ``at://<did>/blob/<cid>``, in order."""
        return list(self._order)

    @shard_id_kw
    def open_shard(self, shard_id: str) -> Any:
        """Stream one blob (``Accept-Encoding: identity``); the sha256 is checked at the end.

        Raises:
            NotFoundError: (a ``KeyError``) When ``shard_id`` is not one of :meth:`list_shards`.
            ShardError: The PDS does not serve it.
        """
        shard = shard_id
        try:
            cid, sha, size = self._blobs[shard]
        except KeyError:
            if is_sidecar_of(shard, self._blobs):  # a manifest beside a blob: there is none
                raise DataNotFoundError(
                    f"{shard} not found: a blob has no files beside it (the entry record "
                    "names a blob dataset's manifests)"
                ) from None
            raise NotFoundError(
                f"shard {shard!r} is not a blob of this source ({len(self._order)} shards of "
                f"{self.did}); open one of list_shards()"
            ) from None
        from_cid = sha256_of_cid(cid) if sha is None else None
        return _open_http(
            f"{self.pds}/xrpc/com.atproto.sync.getBlob",
            shard,
            sha or from_cid,  # no checksum recorded: the CID is the blob's sha256
            size,
            {"did": self.did, "cid": cid},
            limit=LEXICON_MAX_BLOB,  # a blob without a recorded size is still bounded
            claim="its CID says" if from_cid else "the dataset record says",
        )

    def read_range(self, shard: str, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset`` of a shard: a Range request, or (when the PDS ignores
        Range) the whole blob, fetched once and kept.

        What is checked: the whole blob (fetched when Range is ignored, or a range that spans
        it) against its recorded sha256, else its CID; every range's position and length (the
        answer's ``Content-Range``) and the blob's total size against the recorded size. A part
        of a blob cannot be checked against a whole-blob digest: its bytes are not verified
        (a manifest's offsets came from verified bytes, but the blob may since have changed).

        Raises:
            IntegrityError: The answer is not the range asked for, or the blob's size or digest
                is not the recorded one.
        """
        if shard not in self._blobs:
            raise ShardError(f"{shard} not found: it is not a blob of this dataset")
        cid, sha, total = self._blobs[shard]
        url = f"{self.pds}/xrpc/com.atproto.sync.getBlob"
        claim = "the dataset record says" if sha else "its CID says"
        check = RangeCheck(shard, total, sha or sha256_of_cid(cid), claim)
        got = http_range(url, {"did": self.did, "cid": cid}, offset, size, check)
        return got if got is not None else self._ranges.read(shard, offset, size)

    def __repr__(self) -> str:
        return f"BlobSource({self.did!r}, {len(self._order)} blobs)"


def sha256_of_cid(cid: str) -> str | None:
    """The sha256 (hex) of the bytes a blob CID names: its digest, when the CID is a raw-codec
    (blob) sha256 CID; ``None`` for any other CID or text that is not one.

    Examples:
        >>> sha256_of_cid("bafkreif2pall7dybz7vecqka3zo24irdwabwdi4wc55jznaq75q7eaavvu")
        'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
    """
    try:
        decoded = require("libipld", "atmosphere", "CIDs").decode_cid(cid)
        h = decoded["hash"]
    except Exception:
        return None
    if decoded.get("codec") != 0x55 or h.get("code") != 0x12:  # raw bytes, sha2-256
        return None
    return bytes(h["digest"]).hex()


class _WrappedSource:
    """A source that serves the inner source's shard list (the wrappers below change only how a
    shard is opened)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.spec: str | None = getattr(inner, "spec", None)

    def list_shards(self) -> list[str]:
        """The inner source's shards."""
        return list(self.inner.list_shards())

    @property
    def shards(self) -> Iterator[str]:
        """The inner source's shards (lazy)."""
        return iter(self.list_shards())


class SidecarSource(_WrappedSource):
    """A source whose manifests (``<shard>.manifest.json``/``.parquet``) are PDS blobs named by
    the entry record; everything else goes to the inner source.

    Args:
        inner: The shards' source.
        pds: The PDS serving the manifest blobs.
        did: Their repository.
        sidecars: ``{sidecar path of a shard: blob reference}``.
    """

    def __init__(self, inner: Any, pds: str, did: str, sidecars: dict[str, dict[str, Any]]) -> None:
        super().__init__(inner)
        self.pds, self.did = pds.rstrip("/"), did
        self._sidecars = dict(sidecars)

    @shard_id_kw
    def open_shard(self, shard_id: str) -> Any:
        """A manifest blob (checked against its CID) or a shard of the inner source."""
        shard = shard_id
        ref = self._sidecars.get(shard)
        if ref is None:
            return self.inner.open_shard(shard)
        cid = str(ref["ref"]["$link"])
        size = ref.get("size")
        return _open_http(
            f"{self.pds}/xrpc/com.atproto.sync.getBlob",
            shard,
            sha256_of_cid(cid),
            int(size) if isinstance(size, int) else None,
            {"did": self.did, "cid": cid},
            claim="its CID says",
        )

    def read_range(self, shard: str, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset`` of a shard of the inner source."""
        return bytes(self.inner.read_range(shard, offset, size))

    def __repr__(self) -> str:
        return f"SidecarSource({self.inner!r}, {len(self._sidecars)} manifest blobs)"


class VerifiedHTTPSource:
    """A :class:`~atdata.DataSource` over HTTP(S) shard URLs whose sha256 is checked while streaming.

    Examples:
        >>> VerifiedHTTPSource([("https://example.org/a.tar", None)]).list_shards()
        ['https://example.org/a.tar']
    """

    def __init__(self, shards: list[tuple[str, str | None]]) -> None:
        if not shards:
            raise ConfigError("no shard URLs given")
        self._sha = dict(shards)
        self._order = [u for u, _ in shards]
        self._ranges = RangeCache(self.open_shard)
        self.spec = ",".join(self._order)

    def list_shards(self) -> list[str]:
        """Shard URLs, in order."""
        return list(self._order)

    @property
    def shards(self) -> Iterator[str]:
        """Shard URLs (lazy)."""
        return iter(self._order)

    @shard_id_kw
    def open_shard(self, shard_id: str) -> Any:
        """Stream one shard; its sha256 (when recorded) is checked at the end."""
        shard = shard_id
        return _open_http(shard, shard, self._sha.get(shard), None)

    def read_range(self, shard: str, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset`` of a shard: a Range request, or (when the server ignores
        Range) the whole shard, fetched once and kept.

        What is checked: the whole shard (fetched when Range is ignored, or a range that spans
        it, as the answer's ``Content-Range`` total tells) against its recorded sha256, and
        every range's position and length. A part of a shard cannot be checked against a
        whole-shard digest: its bytes are not verified.

        Raises:
            IntegrityError: The answer is not the range asked for, or the digest does not match.
        """
        got = http_range(shard, None, offset, size, RangeCheck(shard, None, self._sha.get(shard)))
        return got if got is not None else self._ranges.read(shard, offset, size)

    def __repr__(self) -> str:
        return f"VerifiedHTTPSource({len(self._order)} shards)"


class _HashingReader:
    """``read``/``close`` over any shard stream; checks the sha256 when the stream is drained."""

    def __init__(self, f: Any, shard: str, sha256: str) -> None:
        self._f, self.shard, self._want = f, shard, sha256
        self._h = hashlib.sha256()
        self._n = 0
        self._done = False

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n) if n >= 0 else self._f.read()
        if data:
            self._h.update(data)
            self._n += len(data)
        elif n != 0:
            self._check()
        return data

    def _check(self) -> None:
        if self._done:
            return
        self._done = True
        if self._h.hexdigest() != self._want:
            raise IntegrityError(
                f"sha256 mismatch for shard {self.shard}: got {self._h.hexdigest()}, "
                f"the dataset record says {self._want}; the shard was altered or corrupted"
            )

    def close(self) -> None:
        try:
            if not self._done:  # the tar reader stops at the end marker: finish a short tail
                tail = self._f.read(_VERIFY_TAIL)
                self._h.update(tail)
                if len(tail) < _VERIFY_TAIL and not self._f.read(1):
                    self._check()
        finally:
            self._f.close()


class VerifiedSource(_WrappedSource):
    """Wrap any :class:`~atdata.DataSource` so each shard's sha256 is checked while streaming.

    Args:
        inner: The source.
        sha256: ``{shard: digest}``; shards without one are passed through.
    """

    def __init__(self, inner: Any, sha256: dict[str, str | None]) -> None:
        super().__init__(inner)
        self._sha = {k: v for k, v in sha256.items() if v}
        if hasattr(inner, "read_range"):
            self.read_range = inner.read_range

    @shard_id_kw
    def open_shard(self, shard_id: str) -> Any:
        """Open through the inner source, hashing as it is read."""
        shard = shard_id
        f = self.inner.open_shard(shard)
        want = self._sha.get(shard)
        return _HashingReader(f, shard, want) if want else f

    def __repr__(self) -> str:
        return f"VerifiedSource({self.inner!r})"


# -- uploading ---------------------------------------------------------------------------------
