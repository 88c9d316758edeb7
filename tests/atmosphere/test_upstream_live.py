"""Records that upstream atdata 0.7.0b1 publishes to a real PDS load in ours.

Needs ``ATDATA_UPSTREAM_PYTHON``: a Python with ``atdata==0.7.0b1`` (and webdataset) installed,
e.g. ``uv venv -p 3.12 /tmp/up && VIRTUAL_ENV=/tmp/up uv pip install atdata==0.7.0b1 webdataset``.
"""

from __future__ import annotations

import pathlib
import subprocess

import numpy as np
import pytest
from tests._upstream import upstream_python

from atdata.atmosphere import list_datasets, load_remote

pytestmark = pytest.mark.services


def test_upstream_published_blobs_dataset_loads(pds, publisher):
    py = upstream_python()
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


def test_upstream_reads_what_we_publish(pds, publisher, tmp_path):
    py = upstream_python()
    import json

    import atdata
    from atdata.atmosphere import publish_dataset, publish_schema

    @atdata.packable
    class UpRow:
        idx: int
        name: str
        vec: atdata.NDArray

    _acct, atmo = publisher
    rows = [UpRow(idx=i, name=f"r{i}", vec=np.arange(3, dtype="f4") + i) for i in range(5)]
    ds = atdata.write_samples(rows, str(tmp_path / "up-%02d.tar"), maxcount=2)
    schema = publish_schema(atmo, UpRow, "1.0.0")
    pub = publish_dataset(atmo, "ours", schema.uri, shards=ds.list_shards(), metadata={"lr": 0.5})
    script = pathlib.Path(__file__).with_name("_upstream_load.py")
    out = subprocess.run(
        [py, str(script), pds.url, pub.uri],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    head, *lines = [json.loads(x) for x in out.stdout.strip().splitlines()]
    assert head == {"storage": "blobs", "metadata": {"lr": 0.5}}
    assert lines == [{"idx": i, "name": f"r{i}", "vec": [i, i + 1.0, i + 2.0]} for i in range(5)]
