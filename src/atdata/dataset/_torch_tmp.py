"""Where stream mode's shard cache lives, and the private temporary caches of dead processes.

Without a ``cache_dir``, :class:`~atdata.dataset._torch.TorchDataset` caches shards in a
temporary directory of its own (``atdata-shards-*``, on ``/dev/shm`` where there is one),
removed when the dataset goes away. A process killed outright (the OOM killer, ``SIGKILL``)
removes nothing, so its shards would stay in shared memory until a reboot. The process that
makes such a directory therefore holds an exclusive ``flock`` on its ``.owner`` file for as long
as it lives (the kernel lets go of it when the process ends, however it ends), and making a new
one removes those whose ``.owner`` nobody holds. The lock, unlike a process id, means the same
in every PID namespace (containers sharing the host's ``/dev/shm`` with ``--ipc=host``).

Examples:
    >>> d, limit, fd = cache_place(None, 1 << 20)
    >>> os.path.basename(d).startswith("atdata-shards-"), limit, os.listdir(d)
    (True, 1048576, ['.owner'])
    >>> release_owner(fd); shutil.rmtree(d)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

from atdata._errors import ConfigError

__all__ = ["DEFAULT_LIMIT", "cache_place", "release_owner", "remove_orphans"]

DEFAULT_LIMIT = 8 << 30
_PREFIX = "atdata-shards-"
_OWNER = ".owner"
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def cache_place(
    cache_dir: str | os.PathLike[str] | None, limit: int | None
) -> tuple[str, int, int | None]:
    """The cache directory, its byte limit and, for a private temporary one (``cache_dir``
    ``None``: made here), the descriptor holding its owner lock (see :func:`release_owner`).

    Raises:
        ConfigError: When ``cache_dir`` cannot be created.
    """
    if cache_dir is not None:
        directory = os.fspath(cache_dir)
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the shard cache {directory}: {exc.strerror}; pass a writable cache_dir"
            ) from None
        return directory, limit if limit is not None else DEFAULT_LIMIT, None
    shm = "/dev/shm"
    base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    remove_orphans(base if base is not None else tempfile.gettempdir())
    directory = tempfile.mkdtemp(prefix=_PREFIX, dir=base)
    owner = _own(directory)
    if limit is None:
        try:
            st = os.statvfs(directory)
            limit = min(DEFAULT_LIMIT, st.f_bavail * st.f_frsize // 4)
        except (OSError, AttributeError):
            limit = DEFAULT_LIMIT
    return directory, max(1, limit), owner


def _own(directory: str) -> int | None:
    """Lock ``directory``'s owner file for this process (made locked under a temporary name,
    then renamed: a visible ``.owner`` is never free while its maker lives)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: such caches are never swept
        return None
    tmp = os.path.join(directory, f"{_OWNER}.{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | _CLOEXEC, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(tmp, os.path.join(directory, _OWNER))
    except OSError:
        os.close(fd)
        return None
    return fd


def release_owner(fd: int | None) -> None:
    """Close the owner lock's descriptor (the directory is removed by its owner, or swept)."""
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


def remove_orphans(base: str) -> list[str]:
    """Remove the private temporary caches in ``base`` whose owner lock nobody holds (their
    process is gone); returns their paths. A directory without an ``.owner`` (one being made,
    or an older atdata's) is left alone."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return []
    gone = []
    try:
        names = [n for n in os.listdir(base) if n.startswith(_PREFIX)]
    except OSError:
        return []
    for name in names:
        path = os.path.join(base, name)
        try:
            fd = os.open(os.path.join(path, _OWNER), os.O_RDWR | _CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: its process lives
            os.close(fd)
            continue
        try:
            shutil.rmtree(path, ignore_errors=True)
            gone.append(path)
        finally:
            os.close(fd)
    return gone
