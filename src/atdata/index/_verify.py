"""``verify_checksums``: re-hash an entry's shards and compare with what the index recorded.

Examples:
    >>> import os, tempfile, hashlib
    >>> from atdata.index._entry import DatasetEntry, ShardRef
    >>> p = os.path.join(tempfile.mkdtemp(), "a.tar")
    >>> _ = open(p, "wb").write(b"abc")
    >>> good = DatasetEntry("d", shards=[ShardRef(p, hashlib.sha256(b"abc").hexdigest())])
    >>> verify_checksums(good) == {p: "ok"}
    True
    >>> verify_checksums(DatasetEntry("d", None, [p], {"checksums": {p: "0" * 64}}))[p]
    'mismatch'
    >>> verify_checksums(DatasetEntry("d", None, [p]))[p]
    'skipped'
"""

from __future__ import annotations

from typing import Any

__all__ = ["verify_checksums"]

_REMOTE = ("s3://", "at://", "http://", "https://")


def verify_checksums(entry: Any) -> dict[str, str]:
    """Check each local shard of ``entry`` against its recorded sha256.

    The recorded digest is the shard's own (``entry.shards[i].sha256``) or, for entries made
    elsewhere, ``entry.metadata["checksums"][url]``.

    Returns:
        Shard URL -> ``"ok"``, ``"mismatch"``, ``"skipped"`` (no digest recorded, or a remote
        URL: ``Dataset`` reading checks those as it streams) or ``"error:<message>"``.
    """
    from atdata.stores._local import file_sha256

    meta = getattr(entry, "metadata", None) or {}
    stored: dict[str, str] = dict(meta.get("checksums") or {}) if isinstance(meta, dict) else {}
    for s in getattr(entry, "shards", None) or ():
        if getattr(s, "sha256", None):
            stored[s.url] = s.sha256
    out: dict[str, str] = {}
    for url in entry.data_urls:
        want = stored.get(url)
        if want is None or url.startswith(_REMOTE):
            out[url] = "skipped"
            continue
        try:
            out[url] = "ok" if file_sha256(url.removeprefix("file://"))[0] == want else "mismatch"
        except OSError as exc:
            out[url] = f"error:{exc.strerror or type(exc).__name__}: {url}"
    return out
