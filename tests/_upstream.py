"""A Python interpreter with upstream atdata 0.7.0b1, for checks that run upstream's code.

Upstream is never a dependency of ours: it is installed from PyPI into a throwaway venv in a cache
directory (outside the repo), with a Python 3.12 found on this machine. ``ATDATA_UPSTREAM_PYTHON``
overrides the search. Locally a missing interpreter skips with the reason; with ``CI=true`` it
fails the run.
"""

from __future__ import annotations

import glob
import json
import os
import pathlib
import shutil
import subprocess

from tests._services import require_service

__all__ = ["run_upstream", "upstream_python"]

UPSTREAM = "atdata==0.7.0b1"
_cached: str | None = None


def _find_python312() -> str | None:
    cands = [os.environ.get("ATDATA_PY312", "")]
    cands += sorted(
        glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")), reverse=True
    )
    cands += [shutil.which("python3.12") or ""]
    for c in cands:
        if c and subprocess.run([c, "--version"], capture_output=True).returncode == 0:
            return c
    return None


def upstream_python() -> str:
    """Path of a Python with upstream atdata installed (built once per machine, then cached)."""
    global _cached
    if _cached:
        return _cached
    env = os.environ.get("ATDATA_UPSTREAM_PYTHON")
    if env:
        _cached = env
        return env
    root = (
        pathlib.Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser()
        / "atdata"
        / "upstream-0.7.0b1"
    )
    py = root / "bin" / "python"
    if (
        not py.exists()
        or subprocess.run(
            [str(py), "-c", "import atdata, webdataset"], capture_output=True
        ).returncode
    ):
        base = _find_python312()
        uv = shutil.which("uv")
        if base is None or uv is None:
            require_service(
                "upstream atdata", "no Python 3.12 (or uv) to install atdata==0.7.0b1 into"
            )
        r1 = subprocess.run(
            [uv, "venv", "-q", "--clear", "-p", base, str(root)], capture_output=True, text=True
        )
        r2 = (
            subprocess.run(
                [uv, "pip", "install", "-q", "--python", str(py), UPSTREAM, "webdataset"],
                capture_output=True,
                text=True,
            )
            if r1.returncode == 0
            else r1
        )
        if r2.returncode != 0:
            require_service(
                "upstream atdata", f"installing {UPSTREAM} failed: {(r2.stderr or '')[-300:]}"
            )
    _cached = str(py)
    return _cached


def run_upstream(script: str, *args: str) -> dict:
    """Run the Python source ``script`` (with ``args``) under upstream atdata; the JSON object it
    printed last. Fails the test with upstream's stderr when the script fails."""
    py = upstream_python()
    res = subprocess.run(
        [py, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=pathlib.Path(py).resolve().anchor,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])
