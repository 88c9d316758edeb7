"""The durable progress of an ingestion: ``<work>/.ingest/state.json`` and its two logs.

``state.json`` (written atomically: temporary name, fsync, ``os.replace``; first when a new
ingestion starts, before its first shard) records, as of the last sealed shard, the inputs
and options, which inputs are done and the position in the current one, the shards
sealed (name, samples, size, sha256) and those still to upload, the counters, and how many
bytes of the two append-only logs are valid: ``dedup.bin`` (the 16-byte digests of the rows
kept) and ``rejects.jsonl``. A resumed run truncates both logs to those lengths, so anything a
killed run wrote after its last seal is redone exactly once.

Examples:
    >>> import tempfile
    >>> st = IngestState(tempfile.mkdtemp())
    >>> st.progress.shard_no, st.exists()
    (0, False)
    >>> st.progress.position = 7
    >>> st.save()
    >>> IngestState(st.work_dir).load().progress.position
    7
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from atdata._errors import ConfigError
from atdata._files import write_atomic

__all__ = ["STATE_FORMAT", "IngestState", "Progress"]

STATE_FORMAT = "atdata.ingest/1"


@dataclasses.dataclass
class Progress:
    """Where an ingestion stands as of its last sealed shard (see the module notes)."""

    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    input_index: int = 0
    position: int = 0
    offset: int | None = None
    shard_no: int = 0
    read: int = 0
    written: int = 0
    duplicates: int = 0
    filtered: int = 0
    rejected: dict[str, int] = dataclasses.field(default_factory=dict)
    bytes: int = 0
    shards: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    pending: list[str] = dataclasses.field(default_factory=list)
    dedup_len: int = 0
    rejects_len: int = 0
    published_dedup_len: int = 0
    published_rejects_len: int = 0
    seconds: float = 0.0
    complete: bool = False


class IngestState:
    """The state files of one ingestion under ``<work_dir>/.ingest/``.

    Args:
        work_dir: The output directory (or, for an ``s3://`` output, the local staging one).
        fsync: Flush the logs and the state to disk at each seal (survives power loss).
    """

    def __init__(self, work_dir: str, fsync: bool = True) -> None:
        self.work_dir = work_dir
        self.dir = os.path.join(work_dir, ".ingest")
        self.path = os.path.join(self.dir, "state.json")
        self.dedup_path = os.path.join(self.dir, "dedup.bin")
        self.rejects_path = os.path.join(self.dir, "rejects.jsonl")
        self.fsync = fsync
        self.progress = Progress()
        self._dedup: Any = None
        self._rejects: Any = None
        self._lock_fd: int | None = None

    def lock(self) -> None:
        """Take ``.ingest/lock`` so that two runs never write the same output at once.

        Raises:
            ConfigError: When another process holds it.
        """
        os.makedirs(self.dir, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            return
        fd = os.open(os.path.join(self.dir, "lock"), os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ConfigError(
                f"another ingestion is writing {self.work_dir} right now; wait for it to finish "
                "(or stop it) and rerun to resume"
            ) from None
        self._lock_fd = fd

    def unlock(self) -> None:
        """Release the lock taken by :meth:`lock`."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def exists(self) -> bool:
        """Whether a previous run left a state."""
        return os.path.exists(self.path)

    def load(self) -> IngestState:
        """Read ``state.json``.

        Raises:
            ConfigError: When it is unreadable or of another format.
        """
        try:
            with open(self.path, encoding="utf-8") as f:
                raw = json.load(f)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot read the ingestion state {self.path}: {exc}; delete {self.dir} to start "
                "over (the shards beside it will be rewritten)"
            ) from None
        if not isinstance(raw, dict) or raw.get("format") != STATE_FORMAT:
            raise ConfigError(f"{self.path} is not an atdata ingestion state ({STATE_FORMAT})")
        names = {f.name for f in dataclasses.fields(Progress)}
        self.progress = Progress(**{k: v for k, v in raw.items() if k in names})
        return self

    def to_json(self) -> bytes:
        """The bytes of ``state.json``."""
        body = {"format": STATE_FORMAT, **dataclasses.asdict(self.progress)}
        return json.dumps(body, indent=1, sort_keys=True).encode("utf-8")

    def save(self) -> None:
        """Write ``state.json`` atomically."""
        os.makedirs(self.dir, exist_ok=True)
        write_atomic(self.path, self.to_json(), fsync=self.fsync)

    # -- logs ----------------------------------------------------------------------------------
    def open_logs(self) -> bytes:
        """Truncate both logs to their recorded lengths, open them for appending, and return
        the valid dedup digests."""
        os.makedirs(self.dir, exist_ok=True)
        p = self.progress
        digests = b""
        for path, n in ((self.dedup_path, p.dedup_len), (self.rejects_path, p.rejects_len)):
            with open(path, "ab") as f:
                f.truncate(n)
        with open(self.dedup_path, "rb") as f:
            digests = f.read(p.dedup_len)
        self._dedup = open(self.dedup_path, "ab")  # noqa: SIM115 - closed in close_logs
        self._rejects = open(self.rejects_path, "ab")  # noqa: SIM115 - closed in close_logs
        return digests

    def reject(self, record: dict[str, Any]) -> None:
        """Append one rejected row to ``rejects.jsonl``."""
        line = json.dumps(record, ensure_ascii=False, default=_jsonable) + "\n"
        self._rejects.write(line.encode("utf-8"))

    def add_digests(self, data: bytes) -> None:
        """Append digests of kept rows to ``dedup.bin``."""
        if data:
            self._dedup.write(data)

    def sync_logs(self) -> None:
        """Flush both logs and record their lengths in the progress (before a save)."""
        for f in (self._dedup, self._rejects):
            f.flush()
            if self.fsync:
                os.fsync(f.fileno())
        self.progress.dedup_len = self._dedup.tell()
        self.progress.rejects_len = self._rejects.tell()

    def close_logs(self) -> None:
        for f in (self._dedup, self._rejects):
            if f is not None:
                f.close()
        self._dedup = self._rejects = None


def _jsonable(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray, memoryview)):
        import base64

        return {"base64": base64.b64encode(bytes(v)).decode("ascii")}
    if hasattr(v, "tolist"):
        return v.tolist()
    return repr(v)
