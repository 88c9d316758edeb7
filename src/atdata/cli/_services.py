"""Development services: ``atdata diagnose`` and ``atdata infra up|down|status``.

``diagnose`` checks the services atdata talks to: Redis (always; ``--host``/``--port``),
PostgreSQL (``--postgres DSN`` or ``$ATDATA_POSTGRES_DSN``) and a PDS (``--pds URL`` or
``$ATDATA_PDS_URL``), and exits 1 when one of them has a problem. ``infra`` runs Redis,
PostgreSQL and MinIO (S3) for development in Docker containers named ``atdata-<service>``.

Examples:
    >>> check_redis("127.0.0.1", 1).ok
    False
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    import socket

__all__ = [
    "SERVICES",
    "Check",
    "check_pds",
    "check_postgres",
    "check_redis",
    "check_tcp",
    "register",
]

_TIMEOUT = 3.0

#: service -> (image, ports host:container, environment, command)
SERVICES: dict[str, tuple[str, list[str], dict[str, str], list[str]]] = {
    "redis": ("redis:7-alpine", ["6379:6379"], {}, ["redis-server", "--appendonly", "yes"]),
    "postgres": ("postgres:16-alpine", ["5432:5432"], {"POSTGRES_HOST_AUTH_METHOD": "trust"}, []),
    "minio": (
        "minio/minio:latest",
        ["9000:9000", "9001:9001"],
        {"MINIO_ROOT_USER": "minioadmin", "MINIO_ROOT_PASSWORD": "minioadmin"},
        ["server", "/data", "--console-address", ":9001"],
    ),
}


@dataclasses.dataclass
class Check:
    """The result of checking one service."""

    service: str
    where: str
    ok: bool
    detail: str


def _redis_command(sock: socket.socket, *words: str) -> bytes:
    msg = f"*{len(words)}\r\n" + "".join(f"${len(w)}\r\n{w}\r\n" for w in words)
    sock.sendall(msg.encode())
    head = b""
    while not head.endswith(b"\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError("connection closed")
        head += chunk
    if head[:1] == b"$":  # bulk reply
        n = int(head[1:-2])
        body = b""
        while len(body) < n + 2:
            chunk = sock.recv(n + 2 - len(body))
            if not chunk:
                raise ConnectionError("connection closed")
            body += chunk
        return body[:-2]
    if head[:1] == b"-":
        raise ConnectionError(head[1:-2].decode("utf-8", "replace"))
    return head[1:-2]


def check_redis(host: str = "127.0.0.1", port: int = 6379) -> Check:
    """PING Redis and read its version and persistence settings (speaks RESP; no client needed)."""
    import socket  # only the checks that connect pay for it, not every `atdata` start

    where = f"{host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=_TIMEOUT) as sock:
            if _redis_command(sock, "PING") != b"PONG":
                return Check("redis", where, False, "no PONG to PING")
            info = _redis_command(sock, "INFO", "server").decode("utf-8", "replace")
            persistence = _redis_command(sock, "INFO", "persistence").decode("utf-8", "replace")
    except (OSError, ConnectionError, ValueError) as exc:
        return Check("redis", where, False, f"unreachable ({exc}); start it: atdata infra up")
    fields = dict(line.split(":", 1) for line in (info + persistence).splitlines() if ":" in line)
    version = fields.get("redis_version", "?")
    aof = fields.get("aof_enabled", "0").strip() == "1"
    detail = f"Redis {version}, " + ("AOF persistence on" if aof else "AOF persistence off")
    return Check("redis", where, True, detail)


def check_postgres(dsn: str) -> Check:
    """Connect to PostgreSQL and run ``SELECT version()`` (a TCP check without psycopg)."""
    where = _redact(dsn)
    try:
        import psycopg
    except ImportError:
        host, port = _pg_host_port(dsn)
        tcp = check_tcp("postgres", host, port)
        if not tcp.ok:
            return Check("postgres", where, False, tcp.detail)
        return Check(
            "postgres", where, True, 'port open (pip install "atdata[postgres]" to log in)'
        )
    try:
        with psycopg.connect(dsn, connect_timeout=int(_TIMEOUT)) as conn:
            row = conn.execute("SELECT version()").fetchone()
    except Exception as exc:  # psycopg's errors have no common base besides Exception here
        return Check("postgres", where, False, str(exc).strip().splitlines()[0])
    return Check("postgres", where, True, str(row[0] if row else "?").split(" on ")[0])


def check_pds(url: str) -> Check:
    """GET ``<url>/xrpc/_health`` of a PDS."""
    import urllib.error
    import urllib.request

    where = url.rstrip("/")
    try:
        with urllib.request.urlopen(where + "/xrpc/_health", timeout=_TIMEOUT) as resp:
            body = json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return Check("pds", where, False, f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return Check("pds", where, False, f"unreachable ({getattr(exc, 'reason', exc)})")
    return Check("pds", where, True, f"PDS {body.get('version', '?')}")


def _pg_host_port(dsn: str) -> tuple[str, int]:
    from urllib.parse import urlsplit

    parts = urlsplit(dsn)
    return parts.hostname or "127.0.0.1", parts.port or 5432


def _redact(dsn: str) -> str:
    """``dsn`` without its password."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(dsn)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return dsn


def _print_checks(checks: list[Check]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from atdata.cli._out import print_table

    t = Table()
    for col in ("service", "where", "status", "detail"):
        t.add_column(col, overflow="fold")
    for c in checks:
        t.add_row(
            c.service,
            escape(c.where),
            "[green]ok[/]" if c.ok else "[red]PROBLEM[/]",
            escape(c.detail),
        )
    print_table(t)


def _docker() -> str:
    exe = shutil.which("docker")
    if exe is None:
        from atdata._errors import ConfigError

        raise ConfigError(
            "docker is not on PATH; install Docker, or run Redis, PostgreSQL and an S3 store "
            "yourself and check them with: atdata diagnose"
        )
    return exe


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False)


def _container_state(docker: str, name: str) -> str:
    r = _run([docker, "inspect", "--format", "{{.State.Status}}", name])
    return r.stdout.strip() if r.returncode == 0 else "absent"


def register(app: typer.Typer) -> None:
    """Add ``diagnose`` and the ``infra`` group to ``app``."""
    infra = typer.Typer(help="Development services in Docker: Redis, PostgreSQL, MinIO (S3).")
    app.add_typer(infra, name="infra", no_args_is_help=True)

    @app.command()
    def diagnose(
        host: str = typer.Option("localhost", help="Redis host."),
        port: int = typer.Option(6379, help="Redis port."),
        postgres: str | None = typer.Option(
            None, help="PostgreSQL DSN to check (default: $ATDATA_POSTGRES_DSN, if set)."
        ),
        pds: str | None = typer.Option(
            None, help="PDS URL to check (default: $ATDATA_PDS_URL, if set)."
        ),
    ) -> None:
        """Check Redis, PostgreSQL and a PDS; exit 1 when one has a problem."""
        checks = [check_redis(host, port)]
        dsn = postgres or os.environ.get("ATDATA_POSTGRES_DSN")
        if dsn:
            checks.append(check_postgres(dsn))
        url = pds or os.environ.get("ATDATA_PDS_URL")
        if url:
            checks.append(check_pds(url))
        _print_checks(checks)
        bad = [c.service for c in checks if not c.ok]
        if bad:
            typer.echo(f"problem with: {', '.join(bad)}", err=True)
            raise typer.Exit(1)

    @infra.command("up")
    def up(
        service: list[str] = typer.Option(
            list(SERVICES), "--service", "-s", help="Which services (default: all)."
        ),
        redis_port: int = typer.Option(6379, min=1, max=65535, help="Redis port."),
        postgres_port: int = typer.Option(5432, min=1, max=65535, help="PostgreSQL port."),
        minio_port: int = typer.Option(9000, min=1, max=65535, help="MinIO API port."),
        minio_console_port: int = typer.Option(9001, min=1, max=65535, help="MinIO console port."),
        detach: bool = typer.Option(
            True, "--detach", "-d", help="Run the containers in the background (always)."
        ),
    ) -> None:
        """Start the development containers (atdata-redis, atdata-postgres, atdata-minio)."""
        del detach  # upstream's option: the containers always run detached
        host_ports = {
            "6379": redis_port, "5432": postgres_port, "9000": minio_port,
            "9001": minio_console_port,
        }  # fmt: skip
        docker = _docker()
        failed = []
        for name in service:
            if name not in SERVICES:
                from atdata._errors import ConfigError

                raise ConfigError(f"unknown service {name!r}; one of {', '.join(SERVICES)}")
            cname = f"atdata-{name}"
            state = _container_state(docker, cname)
            if state == "running":
                typer.echo(f"{cname}: already running")
                continue
            if state != "absent":
                r = _run([docker, "start", cname])
            else:
                image, ports, env, cmd = SERVICES[name]
                args = [docker, "run", "-d", "--name", cname]
                for p in ports:
                    container = p.split(":")[1]
                    args += ["-p", f"{host_ports.get(container, container)}:{container}"]
                for k, v in env.items():
                    args += ["-e", f"{k}={v}"]
                r = _run([*args, image, *cmd])
            if r.returncode != 0:
                failed.append(name)
                typer.echo(f"{cname}: failed: {r.stderr.strip().splitlines()[-1:]}", err=True)
            else:
                typer.echo(f"{cname}: started")
        if failed:
            raise typer.Exit(1)

    @infra.command("down")
    def down(
        volumes: bool = typer.Option(False, "--volumes", "-v", help="Also delete their data."),
    ) -> None:
        """Stop and remove the development containers."""
        docker = _docker()
        for name in SERVICES:
            cname = f"atdata-{name}"
            if _container_state(docker, cname) == "absent":
                continue
            r = _run([docker, "rm", "-f", *(["-v"] if volumes else []), cname])
            typer.echo(
                f"{cname}: {'removed' if r.returncode == 0 else 'failed: ' + r.stderr.strip()}"
            )

    @infra.command("status")
    def status() -> None:
        """The development containers' states, and whether Redis, PostgreSQL and MinIO answer."""
        docker = shutil.which("docker")
        for name in SERVICES:
            state = _container_state(docker, f"atdata-{name}") if docker else "no docker"
            typer.echo(f"atdata-{name}: {state}")
        dsn = os.environ.get("ATDATA_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
        _print_checks(
            [
                check_redis("127.0.0.1", 6379),
                check_postgres(dsn),
                check_tcp("minio", "127.0.0.1", 9000),
            ]
        )


def check_tcp(service: str, host: str, port: int) -> Check:
    """Whether something accepts connections at ``host:port``."""
    import socket

    try:
        socket.create_connection((host, port), timeout=_TIMEOUT).close()
    except OSError as exc:
        return Check(service, f"{host}:{port}", False, f"unreachable ({exc})")
    return Check(service, f"{host}:{port}", True, "accepting connections")
