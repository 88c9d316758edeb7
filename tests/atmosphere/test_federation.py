"""Federation by name, both ways, on the reference PDS: upstream atdata 0.7.0b1 and ours.

Upstream runs in its own Python 3.12 venv (tests/_upstream.py) as a separate process.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess

import numpy as np
import pytest
from tests._upstream import upstream_python

import atdata
from atdata.atmosphere import list_datasets, publish_dataset, publish_schema, record_cid
from atdata.atmosphere._labels import LABEL

pytestmark = pytest.mark.services
HERE = pathlib.Path(__file__).parent


@atdata.packable
class UpRow:
    idx: int
    name: str
    vec: atdata.NDArray


def _run_upstream(script: str, *args: str, home: pathlib.Path) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATDATA_", "VIRTUAL_ENV"))}
    env["HOME"] = str(home)
    out = subprocess.run(
        [upstream_python(), str(HERE / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()


def _rows(start: int, n: int) -> list[UpRow]:
    return [
        UpRow(idx=i, name=f"r{i}", vec=np.arange(3, dtype="f4") + i)
        for i in range(start, start + n)
    ]


def _as_json(rows: list[UpRow]) -> list[dict]:
    return [{"idx": r.idx, "name": r.name, "vec": r.vec.tolist()} for r in rows]


def test_upstream_loads_ours_by_name_and_by_version(pds, publisher, tmp_path):
    acct, atmo = publisher
    schema = publish_schema(atmo, UpRow, "1.0.0")
    v1, v2 = _rows(0, 7), _rows(50, 4)
    ds1 = atdata.write_samples(v1, str(tmp_path / "v1-%02d.tar"), maxcount=3)
    ds2 = atdata.write_samples(v2, str(tmp_path / "v2-%02d.tar"), maxcount=3)
    p1 = publish_dataset(atmo, "fed", schema.uri, shards=ds1.list_shards(), version="1.0.0")
    p2 = publish_dataset(atmo, "fed", schema.uri, shards=ds2.list_shards(), version="2.0.0")
    assert p1.label and p2.label and p1.uri != p2.uri
    labels = {v["version"]: v["datasetUri"] for _u, _c, v in atmo.records(LABEL)}
    assert labels == {"1.0.0": p1.uri, "2.0.0": p2.uri}
    # every record the PDS holds has the CID we compute for it (labels, entries, schema)
    for coll in (LABEL, "science.alt.dataset.entry", "science.alt.dataset.schema"):
        for _u, cid, value in atmo.records(coll):
            assert record_cid(value) == cid
    # publishing again writes no second label
    again = publish_dataset(atmo, "fed", schema.uri, shards=ds2.list_shards(), version="2.0.0")
    assert (again.created, again.label) == (False, p2.label)
    assert len(list(atmo.records(LABEL))) == 2

    home = tmp_path / "home"
    home.mkdir()
    handle, did = acct["handle"], acct["did"]
    latest = _run_upstream("_upstream_by_name.py", pds.url, did, f"@{handle}/fed", home=home)
    assert [json.loads(x) for x in latest] == _as_json(v2)  # the newest label: 2.0.0
    old = _run_upstream("_upstream_by_name.py", pds.url, did, f"@{handle}/fed@1.0.0", home=home)
    assert [json.loads(x) for x in old] == _as_json(v1)


def test_we_load_upstreams_by_name_with_metadata_version_and_splits(pds, publisher, tmp_path):
    acct, atmo = publisher
    home = tmp_path / "home"
    home.mkdir()
    train_uri, test_uri = _run_upstream(
        "_upstream_publish_named.py", pds.url, acct["handle"], acct["password"], "upfed", home=home
    )
    entries = {e.uri: e for e in list_datasets(acct["handle"])}
    assert set(entries) == {train_uri, test_uri}
    assert isinstance(entries[train_uri].value["metadata"], dict)  # structured, not $bytes
    assert entries[train_uri].metadata == {
        "version": "2.0.0",
        "source_uri": "https://example.org/raw",
        "split": "train",
        "note": "from upstream",
    }
    assert entries[test_uri].version == "2.0.0"

    for path in (f"@{acct['handle']}/upfed", f"@{acct['handle']}/upfed@2.0.0"):
        dd = atdata.load_dataset(path, atmosphere=atmo)
        assert isinstance(dd, atdata.DatasetDict) and sorted(dd) == ["test", "train"]
        train, test = list(dd["train"]), list(dd["test"])
        assert [(s.idx, s.name) for s in train] == [(i, f"u{i}") for i in range(5)]
        assert [(s.idx, s.name) for s in test] == [(i, f"u{i}") for i in range(100, 103)]
        for s in train + test:
            np.testing.assert_array_equal(s.vec, np.arange(3, dtype="f4") * s.idx)
    with pytest.raises(atdata.StorageError, match=r"no version '9.9.9' \(versions: 2.0.0\)"):
        atdata.load_dataset(f"@{acct['handle']}/upfed@9.9.9")
    with pytest.raises(atdata.SplitNotFoundError, match=r"no split 'val' \(splits: test, train\)"):
        atdata.load_dataset(f"@{acct['handle']}/upfed", split="val")
