"""``atdata.cli.app`` on import (typer's CliRunner), ``atdata diagnose`` and ``atdata infra``."""

from __future__ import annotations

import http.server
import json
import os
import socket
import stat

import pytest
from typer.testing import CliRunner

from atdata.cli import app
from atdata.cli._services import check_pds, check_postgres, check_redis
from tests._helpers import serve_http
from tests._services import require_service

PG_DSN = os.environ.get("ATDATA_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **(env or {})})


def test_app_has_every_command_without_main():
    r = _invoke("--help")
    assert r.exit_code == 0
    for cmd in ("diagnose", "infra", "schema", "verify", "inspect", "preview", "query"):
        assert f" {cmd} " in r.output
    assert _invoke("version").output.strip()


def test_diagnose_reports_a_dead_redis_and_exits_1():
    port = _closed_port()
    r = _invoke("diagnose", "--host", "127.0.0.1", "--port", str(port))
    assert r.exit_code == 1
    assert f"127.0.0.1:{port}" in r.output and "PROBLEM" in r.output
    assert "problem with: redis" in r.output
    assert check_redis("127.0.0.1", port).ok is False


def test_diagnose_live_services():
    live = check_redis("127.0.0.1", 6379)
    if not live.ok:
        require_service("redis", live.detail)
    assert live.detail.startswith("Redis ")
    pg = check_postgres(PG_DSN)
    if not pg.ok:
        require_service("postgresql", pg.detail)
    assert pg.detail.startswith("PostgreSQL ")
    r = _invoke("diagnose", "--host", "127.0.0.1", "--postgres", PG_DSN)
    assert r.exit_code == 0, r.output
    assert r.output.count("\tok\t") == 2
    bad = _invoke(
        "diagnose",
        "--host",
        "127.0.0.1",
        "--postgres",
        f"postgresql://u:pw@127.0.0.1:{_closed_port()}/x",
    )
    assert bad.exit_code == 1 and "problem with: postgres" in bad.output
    assert "pw" not in bad.output  # the password is never printed


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/xrpc/_health":
            body = json.dumps({"version": "0.4.99"}).encode()
            self.send_response(200)
        else:
            body = b"{}"
            self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_pds_check():
    with serve_http(_Health) as srv:
        url = srv.url
        c = check_pds(url)
        assert (c.ok, c.detail) == (True, "PDS 0.4.99")
        r = _invoke("diagnose", "--port", str(_closed_port()), "--pds", url)
        assert r.exit_code == 1 and "PDS 0.4.99" in r.output  # redis is the problem here
    assert check_pds(f"http://127.0.0.1:{_closed_port()}").ok is False


@pytest.fixture
def fake_docker(tmp_path, monkeypatch):
    """A ``docker`` on PATH that records its arguments and knows no containers."""
    log = tmp_path / "docker.log"
    exe = tmp_path / "bin" / "docker"
    exe.parent.mkdir()
    exe.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {log}\n'
        'if [ "$1" = inspect ]; then echo "No such object" >&2; exit 1; fi\n'
        "echo deadbeef\n"
    )
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{exe.parent}{os.pathsep}{os.environ['PATH']}")
    return log


def test_infra_up_runs_the_containers(fake_docker):
    r = _invoke("infra", "up", "-s", "redis", "-s", "minio")
    assert r.exit_code == 0, r.output
    assert r.output.splitlines() == ["atdata-redis: started", "atdata-minio: started"]
    runs = [line for line in fake_docker.read_text().splitlines() if line.startswith("run")]
    assert runs[0] == (
        "run -d --name atdata-redis -p 6379:6379 redis:7-alpine redis-server --appendonly yes"
    )
    assert runs[1].startswith("run -d --name atdata-minio -p 9000:9000 -p 9001:9001 -e ")
    assert _invoke("infra", "up", "-s", "nosuch").exit_code != 0


def test_infra_down_and_status(fake_docker):
    r = _invoke("infra", "down")
    assert r.exit_code == 0 and r.output == ""  # nothing to remove
    st = _invoke("infra", "status")
    assert st.exit_code == 0
    assert "atdata-redis: absent" in st.output and "minio" in st.output


def test_infra_without_docker_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    r = _invoke("infra", "up")
    assert r.exit_code != 0
    assert "docker is not on PATH" in str(r.exception)


def test_infra_up_takes_upstreams_port_and_detach_options(fake_docker):
    r = _invoke(
        "infra", "up", "-s", "redis", "-s", "minio", "--redis-port", "6380",
        "--minio-port", "9100", "--minio-console-port", "9101", "--detach", "-d",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    runs = [line for line in fake_docker.read_text().splitlines() if line.startswith("run")]
    assert runs[0].startswith("run -d --name atdata-redis -p 6380:6379 redis:7-alpine ")
    assert runs[1].startswith("run -d --name atdata-minio -p 9100:9000 -p 9101:9001 -e ")
    assert _invoke("infra", "up", "--redis-port", "x").exit_code == 2
