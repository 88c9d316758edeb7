"""``atdata serve @handle/name`` against the real PDS: datasets published as blobs and as HTTP
shards (with manifests beside them) are listed, paged, thumbnailed and queried by the viewer."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import urllib.parse
import urllib.request
from typing import Any

import numpy as np
import pytest

import atdata
from atdata import NDArray
from atdata.atmosphere import publish_dataset, publish_schema

pytestmark = pytest.mark.services


@atdata.packable
class Tile:
    image: NDArray
    label: str
    score: float


def _tiles(n: int) -> list[Tile]:
    return [
        Tile(
            image=np.full((8, 6, 3), i * 20, dtype=np.uint8),
            label=("sea", "land")[i % 2],
            score=i / 2,
        )
        for i in range(n)
    ]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _json(url: str) -> Any:
    status, body = _get(url)
    assert status == 200, (url, body[:300])
    return json.loads(body)


def test_serve_handle_names(pds, publisher, http_dir, tmp_path):
    acct, atmo = publisher
    schema = publish_schema(atmo, Tile, "1.0.0")
    blobs = atdata.write_samples(_tiles(12), str(tmp_path / "b-%04d.tar"), maxcount=5, key="index")
    publish_dataset(atmo, "tiles", schema.uri, shards=blobs.list_shards(), num_samples=12)
    root, base = http_dir
    hosted = root / "tiles-http"
    hosted.mkdir()
    local = atdata.write_samples(
        _tiles(12), str(hosted / "h-%04d.tar"), maxcount=5, key="index", manifest=True
    )
    infos = local.list_shard_infos()
    urls = [f"{base}/tiles-http/{os.path.basename(i.path)}" for i in infos]
    publish_dataset(
        atmo,
        "tiles-http",
        schema.uri,
        shards=urls,
        sha256=[i.sha256 for i in infos],
        storage="http",
        num_samples=12,
    )
    handle = acct["handle"]

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "atdata",
            "serve",
            f"@{handle}/tiles",
            f"@{handle}/tiles-http",
            "--port",
            "0",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ),  # the PDS fixture's ATDATA_PLC_URL / ATDATA_HANDLE_RESOLVER
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert " on http://127.0.0.1:" in line, line + proc.stderr.read()[-2000:]
        url = line.split(" on ")[1].split()[0]
        listing = _json(url + "api/datasets")["datasets"]
        by_name = {d["name"]: d for d in listing}
        assert sorted(by_name) == ["tiles", "tiles-http"]
        assert all(d["samples"] == 12 for d in listing)
        for d in listing:
            ident = urllib.parse.quote(d["id"], safe="")
            page = _json(url + f"api/datasets/{ident}/samples?offset=3&length=4")
            assert [r["key"] for r in page["rows"]] == ["00000003", "00000004", "00000005",
                                                        "00000006"]  # fmt: skip
            assert [r["cells"]["label"]["v"] for r in page["rows"]] == ["land", "sea"] * 2
            status, png = _get(url + f"api/datasets/{ident}/thumb?key=00000007&field=image")
            assert status == 200 and png[:8] == b"\x89PNG\r\n\x1a\n"
            assert struct.unpack(">II", png[16:24]) == (6, 8)  # width, height
            missing = _get(url + f"api/datasets/{ident}/thumb?key=nope&field=image")
            assert missing[0] == 404

        http_id = urllib.parse.quote(by_name["tiles-http"]["id"], safe="")
        detail = _json(url + f"api/datasets/{http_id}")
        assert detail["manifest"]["available"] is True
        assert detail["manifest"]["aggregates"]["score"]["max"] == 5.5
        assert sum(detail["manifest"]["histograms"]["score"]["counts"]) == 12
        where = urllib.parse.quote("label = 'sea' AND score >= 3")
        q = _json(url + f"api/datasets/{http_id}/query?where={where}&length=10")
        assert [r["key"] for r in q["rows"]] == ["00000006", "00000008", "00000010"]
        assert q["stats"]["shards_pruned"] == 1  # the first shard's scores stop at 2.0

        blob_id = urllib.parse.quote(by_name["tiles"]["id"], safe="")
        blob_detail = _json(url + f"api/datasets/{blob_id}")
        assert blob_detail["manifest"]["available"] is False  # blobs carry no manifests
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    shutil.rmtree(hosted, ignore_errors=True)
