"""Publish and load throughput of a ~100 MB dataset stored as PDS blobs, against a loopback PDS.

Usage:
    uv run python benchmarks/bench_atmosphere.py [--mb 100] [--shard-mb 25]

Starts the test PDS (``atdata.atmosphere._pdsrun``; installs on first use) unless
``ATDATA_TEST_PDS_URL``/``ATDATA_TEST_PLC_URL`` name a running one, creates an account, writes
incompressible samples, then times ``publish_dataset(..., storage="blobs")`` (upload + entry
record) and a full typed read through ``load_remote`` (resolve, schema, getBlob with
``Accept-Encoding: identity``, sha256 check). Prints one line per figure.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
import time

import numpy as np

import atdata
from atdata.atmosphere import (
    Atmosphere,
    _pdsrun,
    create_dev_account,
    load_remote,
    publish_dataset,
    publish_schema,
)


@atdata.packable
class Chunk:
    idx: int
    data: atdata.NDArray


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=100, help="dataset size in MB")
    ap.add_argument("--shard-mb", type=int, default=25, help="shard size in MB")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="atdata-bench-atmo-")
    server = None
    try:
        url = os.environ.get("ATDATA_TEST_PDS_URL")
        if url:
            plc = os.environ["ATDATA_TEST_PLC_URL"]
        else:
            t0 = time.perf_counter()
            server = _pdsrun.start(data_dir=os.path.join(tmp, "pds"), timeout=300)
            url, plc = server.url, server.plc_url
            print(f"pds start: {time.perf_counter() - t0:.1f} s")
        os.environ["ATDATA_PLC_URL"] = plc
        os.environ["ATDATA_HANDLE_RESOLVER"] = url
        handle, pw = f"bench{secrets.token_hex(3)}.test", secrets.token_urlsafe(16)
        create_dev_account(url, handle, pw)
        atmo = Atmosphere.login(handle, pw, url, save=False)

        sample_bytes = 1 << 20  # 1 MiB of random bytes per sample
        n = args.mb * 1_000_000 // sample_bytes
        rng = np.random.default_rng(0)
        samples = (
            Chunk(idx=i, data=rng.integers(0, 256, sample_bytes, dtype=np.uint8)) for i in range(n)
        )
        ds = atdata.write_samples(
            samples,
            os.path.join(tmp, "chunk-%04d.tar"),
            maxsize=args.shard_mb * 1_000_000,
            progress=False,
        )
        infos = ds.list_shard_infos()
        total = sum(i.size for i in infos)
        print(f"dataset: {n} samples, {len(infos)} shards, {total / 1e6:.1f} MB")

        schema = publish_schema(atmo, Chunk, "1.0.0")
        t0 = time.perf_counter()
        pub = publish_dataset(
            atmo, "bench", schema.uri, shards=[i.path for i in infos], num_samples=n
        )
        dt_pub = time.perf_counter() - t0
        print(
            f"publish (blobs): {dt_pub:.2f} s, {total / 1e6 / dt_pub:.1f} MB/s ({len(pub.blobs)} blobs)"
        )

        t0 = time.perf_counter()
        count = 0
        nbytes = 0
        for s in load_remote(f"@{handle}/bench"):
            count += 1
            nbytes += s.data.nbytes
        dt_load = time.perf_counter() - t0
        assert count == n, (count, n)
        print(
            f"load (blobs, verified): {dt_load:.2f} s, {total / 1e6 / dt_load:.1f} MB/s ({count} samples)"
        )

        import httpx  # the raw getBlob cost, with and without letting the PDS gzip the bytes

        with httpx.Client(timeout=300) as client:
            for enc in ("identity", "gzip"):
                t0 = time.perf_counter()
                for cid in pub.blobs:
                    params = {"did": atmo.did, "cid": cid}
                    with client.stream(
                        "GET",
                        f"{url}/xrpc/com.atproto.sync.getBlob",
                        params=params,
                        headers={"Accept-Encoding": enc},
                    ) as r:
                        for _ in r.iter_bytes(1 << 20):
                            pass
                dt = time.perf_counter() - t0
                print(
                    f"raw getBlob, Accept-Encoding {enc}: {dt:.2f} s, {total / 1e6 / dt:.1f} MB/s"
                )
    finally:
        if server is not None:
            _pdsrun.stop(server)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
