"""Where ingested shards go: a local directory, or an ``s3://`` prefix staged on local disk.

For a local output the shards, their manifests and the ``.ingest/`` state are written in the
output directory itself. For ``s3://bucket/prefix`` they are sealed in a local staging
directory (``work_dir``, by default ``$ATDATA_CACHE_DIR/ingest/<hash of the URL>``) that holds
the state, then uploaded and verified (size and sha256) one by one; a shard stays listed as
pending in the state until its upload is verified, so a rerun uploads whatever a crash or a
failed upload left behind. Once a seal's shards are up, the log bytes sealed since the last
publication go up as segments (``.ingest/dedup-<start>-<end>``, ``.ingest/rejects-...``) and
then ``<prefix>/.ingest/state.json`` naming them: a run on another machine (or after the
staging directory is lost) rebuilds its local state from that copy and resumes.

Examples:
    >>> import tempfile
    >>> o = Output(tempfile.mkdtemp())
    >>> o.remote, o.url("data-000000.tar") == o.local("data-000000.tar")
    (False, True)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from typing import Any

from atdata._files import write_atomic
from atdata._ingest._sources import S3Access

__all__ = ["Output", "default_work_dir"]


def default_work_dir(out: str) -> str:
    """The staging directory of an ``s3://`` output.

    Examples:
        >>> import os
        >>> os.environ["ATDATA_CACHE_DIR"] = "/tmp/c"
        >>> default_work_dir("s3://b/x")
        '/tmp/c/ingest/b-x-28b1755ca62c'
        >>> del os.environ["ATDATA_CACHE_DIR"]
    """
    root = os.path.expanduser(os.environ.get("ATDATA_CACHE_DIR") or "~/.cache/atdata")
    tag = hashlib.sha256(out.rstrip("/").encode()).hexdigest()[:12]
    safe = "".join(c if c.isalnum() else "-" for c in out[5:].strip("/"))[:60]
    return os.path.join(root, "ingest", f"{safe}-{tag}")


class Output:
    """The output of one ingestion (see the module notes).

    Args:
        out: A local directory or an ``s3://bucket/prefix``.
        work_dir: Staging directory of an ``s3://`` output.
        s3: S3 access (client or options) for an ``s3://`` output.
    """

    def __init__(self, out: str, work_dir: str | None = None, s3: S3Access | None = None) -> None:
        self.out = out
        self.remote = out.startswith("s3://")
        self.store: Any = None
        if self.remote:
            from atdata.stores._s3 import S3DataStore
            from atdata.stores._s3client import parse_s3_url

            bucket, prefix = parse_s3_url(out)
            self.bucket, self.prefix = bucket, prefix.strip("/")
            self.work = os.path.abspath(work_dir or default_work_dir(out))
            self.store = S3DataStore(bucket, self.prefix, client=(s3 or S3Access()).get())
        else:
            self.work = os.path.abspath(os.path.expanduser(out))
        try:
            os.makedirs(self.work, exist_ok=True)
        except OSError as exc:
            from atdata._errors import ConfigError

            raise ConfigError(
                f"cannot use {self.work} as the ingestion output: {exc.strerror or exc}; "
                "give a directory (new or one a previous ingestion wrote)"
            ) from None

    def local(self, name: str) -> str:
        """Where shard ``name`` is written on local disk."""
        return os.path.join(self.work, name)

    def url(self, name: str) -> str:
        """Where shard ``name`` ends up (its path, or its ``s3://`` URL)."""
        if self.remote:
            key = f"{self.prefix}/{name}" if self.prefix else name
            return f"s3://{self.bucket}/{key}"
        return self.local(name)

    def upload(self, name: str, sha256: str, size: int) -> None:
        """Upload sealed shard ``name`` and its manifest (header last), verified; then drop
        the local copies.

        Raises:
            StorageError: When an upload fails (the shard stays pending).
            IntegrityError: When the stored object does not match.
        """
        from atdata.manifest._paths import manifest_paths

        path = self.local(name)
        if os.path.exists(path):
            self.store.put_shard(path, name, sha256=sha256, size=size)
        elif not self.store.exists(name, size=size, sha256=sha256):
            from atdata._errors import StorageError

            raise StorageError(
                f"shard {name} is pending upload to {self.url(name)} but its staged copy "
                f"{path} is gone; delete {os.path.join(self.work, '.ingest')} and ingest again"
            )
        jpath, ppath = manifest_paths(path)
        for side in (ppath, jpath):
            if os.path.exists(side):
                self.put_file(side, os.path.basename(side))

    def put_file(self, path: str, name: str) -> None:
        """Upload one local file as ``<prefix>/<name>`` (verified)."""
        with open(path, "rb") as f:
            data = f.read()
        self.store.put_shard(path, name, sha256=hashlib.sha256(data).hexdigest(), size=len(data))

    def drop_local(self, name: str) -> None:
        """Remove the staged copy of an uploaded shard and its manifest."""
        from atdata.manifest._paths import manifest_paths

        path = self.local(name)
        for p in (path, *manifest_paths(path)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)

    # -- the remote copy of the state (an s3:// output resumed on another machine) ----------
    def _key(self, name: str) -> str:
        return f"{self.prefix}/.ingest/{name}" if self.prefix else f".ingest/{name}"

    def put_meta(self, name: str, data: bytes) -> None:
        """Upload ``data`` as ``<prefix>/.ingest/<name>``."""
        from atdata.stores._s3client import _err

        try:
            self.store.client.put_object(Bucket=self.bucket, Key=self._key(name), Body=data)
        except Exception as exc:
            raise _err(exc, f"upload of s3://{self.bucket}/{self._key(name)}") from None

    def put_segment(self, log: str, path: str, start: int, end: int) -> None:
        """Upload bytes ``[start, end)`` of a local log as ``.ingest/<log>-<start>-<end>``."""
        if end <= start:
            return
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read(end - start)
        self.put_meta(f"{log}-{start:012d}-{end:012d}", data)

    def publish_state(self, data: bytes) -> None:
        """Write ``<prefix>/.ingest/state.json`` (after the shards and log segments it names)."""
        if self.remote:
            self.put_meta("state.json", data)

    def fetch_state(self, state_path: str, logs: dict[str, str]) -> bool:
        """Rebuild a local state from the remote copy; ``False`` when there is none.

        Args:
            state_path: Where to write ``state.json``.
            logs: Log name (``dedup``, ``rejects``) -> its local path; each is rebuilt from
                the segments covering the length the remote state published.

        Raises:
            StorageError: When the remote state cannot be read or its logs are incomplete.
        """
        import json

        from atdata._errors import StorageError
        from atdata.stores._s3client import _err

        client = self.store.client
        where = f"s3://{self.bucket}/{self._key('state.json')}"
        try:
            data = client.get_object(Bucket=self.bucket, Key=self._key("state.json"))["Body"].read()
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code in ("404", "NoSuchKey", "NotFound"):
                return False
            raise _err(exc, f"GET {where}") from None
        try:
            remote = json.loads(data)
            lengths = {k: int(remote[f"published_{k}_len"]) for k in logs}
        except (ValueError, KeyError, TypeError):
            raise StorageError(
                f"{where} is not a resumable ingestion state; delete it (and the shards beside "
                "it) to start over"
            ) from None
        for log, path in logs.items():
            length = lengths[log]
            pre = self._key(log + "-")
            segs = []
            for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=pre
            ):
                for obj in page.get("Contents", []):
                    a, _, b = obj["Key"][len(pre) :].partition("-")
                    if a.isdigit() and b.isdigit():
                        segs.append((int(a), int(b), obj["Key"]))
            path_keys = _chain(segs, length)
            if path_keys is None:
                raise StorageError(
                    f"{where} needs the first {length} bytes of its {log} log, which its "
                    f"segments under s3://{self.bucket}/{pre}* do not cover; delete "
                    f"s3://{self.bucket}/{self._key('')} and the shards to start over"
                )
            with open(path, "wb") as f:
                for key in path_keys:
                    f.write(client.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        write_atomic(state_path, data)
        return True

    def clean_temporaries(self) -> int:
        """Remove what killed runs left under temporary names; returns how many."""
        n = 0
        for d in (self.work, os.path.join(self.work, ".ingest")):
            if not os.path.isdir(d):
                continue
            for entry in os.listdir(d):
                if entry.startswith(".") and ".tmp-" in entry:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(d, entry))
                        n += 1
        return n


def _chain(segs: list[tuple[int, int, str]], length: int) -> list[str] | None:
    """Keys of segments ``[a, b)`` that tile ``[0, length)`` exactly (``None``: impossible).

    Runs on several machines may leave overlapping segments (the same bytes, cut at other
    seals); any chain of them is correct.

    Examples:
        >>> _chain([(0, 4, "a"), (4, 9, "b"), (4, 6, "c"), (6, 12, "d")], 12)
        ['a', 'c', 'd']
        >>> _chain([(0, 4, "a")], 5) is None, _chain([], 0)
        (True, [])
    """
    reach: dict[int, list[str]] = {0: []}
    for a, b, key in sorted(segs):
        if a in reach and b <= length and b not in reach:
            reach[b] = [*reach[a], key]
    return reach.get(length)
