"""Records that upstream atdata 0.7.0b1 publishes to a real PDS load in ours.

Needs ``ATDATA_UPSTREAM_PYTHON``: a Python with ``atdata==0.7.0b1`` (and webdataset) installed,
e.g. ``uv venv -p 3.12 /tmp/up && VIRTUAL_ENV=/tmp/up uv pip install atdata==0.7.0b1 webdataset``.
"""

from __future__ import annotations

import os
import pathlib
import subprocess

import numpy as np
import pytest

from atdata.atmosphere import list_datasets, load_remote

pytestmark = pytest.mark.services


def test_upstream_published_blobs_dataset_loads(pds, publisher):
    py = os.environ.get("ATDATA_UPSTREAM_PYTHON")
    if not py:
        pytest.skip("set ATDATA_UPSTREAM_PYTHON to a python with atdata==0.7.0b1 to run this check")
    acct, _atmo = publisher
    script = pathlib.Path(__file__).with_name("_upstream_publish.py")
    out = subprocess.run(
        [py, str(script), pds.url, acct["handle"], acct["password"]],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    uri = out.stdout.strip().splitlines()[-1]
    (entry,) = list_datasets(acct["handle"])
    assert entry.uri == uri
    assert isinstance(entry.value["schemaRef"], dict)  # upstream's quirk: an object, not an at-uri
    got = list(load_remote(f"@{acct['handle']}/up-blobs"))
    assert [(s.idx, s.name) for s in got] == [(i, f"n{i}") for i in range(6)]
    for s in got:
        np.testing.assert_array_equal(s.vec, np.arange(4, dtype="f4") * s.idx)
    assert type(got[0]).__name__ == "UpRow"
