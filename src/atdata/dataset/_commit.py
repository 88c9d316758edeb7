"""Commit records: the checkpoint of ``Dataset.map(out=...)`` is its output.

Each finished output shard ``<out>/<name>.tar`` gets ``<out>/<name>.commit.json``, written
atomically (temporary name, then ``os.replace``) after the shard and its manifest are in place.
It records the input shard and its sha256, the user's ``version``, the output's sha256, size and
sample count. A rerun skips exactly the shards whose record matches the current input and
version and whose output still verifies; everything else is redone.

Examples:
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> out = os.path.join(d, "a.tar")
    >>> _ = open(out, "wb").write(b"x" * 1024)
    >>> rec = CommitRecord("in/a.tar", "00" * 32, "v1", "a.tar", file_sha256(out), 1024, 0, "")
    >>> write_commit(out, rec)
    >>> os.path.basename(commit_path(out))
    'a.commit.json'
    >>> check_commit(out, "00" * 32, "v1", "sha256")
    ''
    >>> check_commit(out, "00" * 32, "v2", "sha256")
    'version changed (v1 -> v2)'
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any

from atdata._files import write_atomic

__all__ = [
    "COMMIT_FORMAT",
    "CommitRecord",
    "check_commit",
    "commit_path",
    "file_sha256",
    "read_commit",
    "write_commit",
]

COMMIT_FORMAT = "atdata.commit/1"
VERIFY_MODES = ("sha256", "size", "none")


@dataclasses.dataclass(frozen=True)
class CommitRecord:
    """What a finished output shard was made from.

    Attributes:
        input: The input shard identifier.
        input_sha256: sha256 of the input shard's bytes when it was processed.
        version: The user's version string (``Dataset.map(version=...)``; ``""`` when unset).
        output: The output shard's file name (relative to the commit record).
        output_sha256: sha256 of the output shard.
        output_size: Size of the output shard in bytes.
        num_samples: Samples in the output shard (0 when the function dropped them all).
        sample_type: ``module:qualname`` of the output samples' type (``""`` if none).
    """

    input: str
    input_sha256: str
    version: str
    output: str
    output_sha256: str
    output_size: int
    num_samples: int
    sample_type: str

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored on disk."""
        return {"format": COMMIT_FORMAT, **dataclasses.asdict(self)}


def commit_path(out_shard: str) -> str:
    """Where the commit record of an output shard lives (beside it, ``.tar`` -> ``.commit.json``)."""
    base = out_shard[:-4] if out_shard.endswith(".tar") else out_shard
    return base + ".commit.json"


def file_sha256(path: str) -> str:
    """sha256 of a local file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def write_commit(out_shard: str, record: CommitRecord, *, fsync: bool = False) -> None:
    """Write the commit record of ``out_shard`` atomically (temp file, then ``os.replace``).

    No fsync by default: a record lost or torn by a power cut only means the shard is redone
    (an unreadable record counts as none), while the shard it vouches for was flushed first.
    """
    text = json.dumps(record.to_json(), indent=1, sort_keys=True)
    write_atomic(commit_path(out_shard), text.encode("utf-8"), fsync=fsync)


def read_commit(out_shard: str) -> CommitRecord | None:
    """The commit record of ``out_shard``, or ``None`` when there is none or it is unreadable."""
    try:
        with open(commit_path(out_shard), encoding="utf-8") as f:
            raw = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict) or raw.get("format") != COMMIT_FORMAT:
        return None
    names = [f.name for f in dataclasses.fields(CommitRecord)]
    try:
        return CommitRecord(**{n: raw[n] for n in names})
    except (KeyError, TypeError):
        return None


def check_commit(out_shard: str, input_sha256: str, version: str, verify: str) -> str:
    """Why ``out_shard`` must be redone, or ``""`` when its commit holds.

    Args:
        out_shard: The output shard path.
        input_sha256: sha256 of the input shard now.
        version: The version asked for now.
        verify: ``"sha256"`` (rehash the output), ``"size"`` (compare its size) or ``"none"``.
    """
    rec = read_commit(out_shard)
    if rec is None:
        return "no commit record"
    if rec.input_sha256 != input_sha256:
        return "input shard changed"
    if rec.version != version:
        return f"version changed ({rec.version or '-'} -> {version or '-'})"
    try:
        size = os.path.getsize(out_shard)
    except OSError:
        return "output shard missing"
    if size != rec.output_size:
        return f"output size {size} != committed {rec.output_size}"
    if verify == "sha256" and file_sha256(out_shard) != rec.output_sha256:
        return "output sha256 differs from its commit record"
    return ""
