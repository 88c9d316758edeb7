"""Files that appear whole or not at all: :func:`write_atomic`.

Examples:
    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "state.json")
    >>> write_atomic(p, b'{"n": 1}')
    >>> open(p, "rb").read(), sorted(os.listdir(os.path.dirname(p)))
    (b'{"n": 1}', ['state.json'])
"""

from __future__ import annotations

import os
import uuid

__all__ = ["write_atomic"]


def write_atomic(path: str | os.PathLike[str], data: bytes, *, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` through a unique temporary name beside it and ``os.replace``.

    A reader sees the old file or the new one, never part of one; the temporary is removed when
    the write fails (a killed process leaves a ``.<name>.tmp-*`` file that no reader opens).
    ``fsync`` flushes the bytes to disk before the rename (a crash then keeps the new file).
    """
    path = os.fspath(path)
    d, name = os.path.split(path)
    tmp = os.path.join(d or ".", f".{name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
