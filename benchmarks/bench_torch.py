"""PyTorch loading: ``Dataset.to_torch`` over local, loopback-HTTP and local-S3 (moto) shards.

Rows (each measured in its own process, so its peak RSS is its own; servers run in their own
processes too):

- ``local.seq``: ``ds.ordered(batch_size=64)`` of local shards (what decoding alone costs);
- ``{http,s3}.raw``: a plain GET of every shard's bytes over that transport (the transfer ceiling);
- ``{http,s3}.seq``: ``ds.ordered(batch_size=64)`` over that transport;
- ``{local,http,s3}.torch.N``: ``ds.to_torch(batch_size=64, shuffle=True, output="torch")``
  (``transform=`` to tensors where ``output`` is unknown) through ``tds.loader(num_workers=N)``,
  a whole epoch (or ``--limit`` seconds), start-up included;
- ``{http,s3}.known.N``: the same with shard counts known from a catalogue (``shard_infos``,
  which also records each shard's sha256: the download is checked against it);
  ``{http,s3}.unchecked.0`` the same with ``verify=False`` (what the check costs);
  ``{http,s3}.small.0`` also with ``shuffle_buffer=1000`` (what is held follows the window);
- ``{local,http,s3}.inorder.0``: ``shuffle=False`` (streaming in shard order, like ``local.seq``),
  counts known for remote shards;
- ``ceiling.N``: the DataLoader moving ready-made tensors of the same batch shape (its own cost).

Each row (but the raw ones) also runs a second epoch in the same process ("epoch 2": servers
warm, download buffers and cache kept, as for the rest of a training run), and a last table
sets each remote ``to_torch`` row against the slower of ``local.seq`` and its transport's raw
row, for the first run and for epoch 2.

The HTTP server (its own process) is Python's ``ThreadingHTTPServer`` copying file bytes in
Python; ``ATDATA_BENCH_HTTP=sendfile`` sends them with ``sendfile`` instead (the kernel copies,
as a static file server such as nginx does).

Run: ``uv run python benchmarks/bench_torch.py [--limit S] [--rounds R] [row-prefix ...]`` (or
``benchmarks/run.py torch``). Rates are samples/s (the best of ``R`` rounds); RSS is the peak of
the measuring process and, separately, of its largest worker; "private" is the peak of the
private (anonymous) pages of the process and its workers together (``VmRSS`` also counts the
mapped shard-cache files and shared-memory batches); CPU is the measuring process's own (its
threads included, its workers not), from the loader's creation on. S3 rows make their boto3
client before the clock starts, as the raw row does.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import _workload as W  # noqa: E402

BATCH = 64
SMALL_WINDOW = 1000  # the ``small`` rows: memory held follows the window, not the dataset
WORKERS = (0, 1, 2)


def _to_tensors(b):
    import torch

    return {
        "image": torch.from_numpy(b.image),
        "embedding": torch.from_numpy(b.embedding),
        "label": b.label,
        "idx": torch.tensor(b.idx),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- servers (own processes) -----------------------------------------------------------------
_HTTP_SERVER = r"""
import http.server, os, sys
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
    def copyfile(self, source, outputfile):
        if SENDFILE:  # the kernel copies, as a static file server (nginx) does
            outputfile.flush()
            self.connection.sendfile(source)
        else:
            super().copyfile(source, outputfile)
    def do_GET(self):
        rng = self.headers.get("Range")
        if not rng:
            return super().do_GET()
        path = self.translate_path(self.path)
        size = os.path.getsize(path)
        lo, hi = (int(x) for x in rng.split("=")[1].split("-"))
        hi = min(hi, size - 1)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {lo}-{hi}/{size}")
        self.send_header("Content-Length", str(hi + 1 - lo))
        self.end_headers()
        with open(path, "rb") as f:
            if SENDFILE:
                self.connection.sendfile(f, lo, hi + 1 - lo)
            else:
                f.seek(lo)
                self.wfile.write(f.read(hi + 1 - lo))
SENDFILE = sys.argv[3] == "sendfile"
http.server.ThreadingHTTPServer.daemon_threads = True
srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])),
    lambda *a, **k: H(*a, directory=sys.argv[2], **k))
srv.serve_forever()
"""


def _wait_port(port: int, proc: subprocess.Popen) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not start")


def start_http(d: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    mode = os.environ.get("ATDATA_BENCH_HTTP", "copy")
    proc = subprocess.Popen([sys.executable, "-c", _HTTP_SERVER, str(port), d, mode])
    _wait_port(port, proc)
    return proc, f"http://127.0.0.1:{port}"


def start_s3(paths: list[str]) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    exe = os.path.join(os.path.dirname(sys.executable), "moto_server")
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_port(port, proc)
    url = f"http://127.0.0.1:{port}"
    c = _s3_client(url)
    c.create_bucket(Bucket="bench")
    for p in paths:
        c.upload_file(p, "bench", os.path.basename(p))
    return proc, url


def _s3_client(url: str):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


# -- one row (run in a fresh process) -------------------------------------------------------
def _infos(ids: list[str], paths: list[str]) -> list:
    """What a catalogue records for each shard (count, size, sha256), under its remote id."""
    import hashlib

    from atdata._shards.writer import ShardInfo

    out = []
    for i, p in zip(ids, paths, strict=True):
        with open(p, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        out.append(ShardInfo(i, W.PER_SHARD, os.path.getsize(p), sha))
    return out


def _dataset(kind: str, base: str, paths: list[str], known: bool = False):
    import atdata

    st = W.sample_type()
    names = [os.path.basename(p) for p in paths]
    if kind == "local":
        return atdata.Dataset[st](paths)
    if kind == "http":
        urls = [f"{base}/{n}" for n in names]
        return atdata.Dataset[st](urls, shard_infos=_infos(urls, paths) if known else None)
    from atdata.stores._s3 import S3Source

    src = S3Source(
        [f"s3://bench/{n}" for n in names],
        endpoint_url=base,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    ids = [f"s3://bench/{n}" for n in names]
    return atdata.Dataset[st](src, shard_infos=_infos(ids, paths) if known else None)


def _loader(ds, nw: int, window: int | None = None, shuffle: bool = True, verify: bool = True):
    import inspect

    from atdata.dataset._torch import TorchDataset

    kw = dict(batch_size=BATCH, shuffle=shuffle, seed=0)
    if not verify:
        kw["verify"] = False
    if window is not None:
        kw["shuffle_buffer"] = window
    if "output" in inspect.signature(TorchDataset.__init__).parameters:
        kw["output"] = "torch"
    else:  # before issue 12: batches are SampleBatch objects
        kw["transform"] = _to_tensors
    tds = ds.to_torch(**kw)
    return tds.loader(num_workers=nw)


def _ceiling(nw: int):
    import numpy as np
    import torch
    from torch.utils.data import DataLoader, IterableDataset, get_worker_info

    class Ceiling(IterableDataset):
        def __iter__(self):
            info = get_worker_info()
            k, w = (info.num_workers, info.id) if info else (1, 0)
            img = np.zeros((BATCH, 3, 64, 64), np.uint8)
            emb = np.zeros((BATCH, 256), np.float32)
            for _ in range(w, W.N_SAMPLES // BATCH, k):
                yield {
                    "image": torch.from_numpy(img.copy()),
                    "embedding": torch.from_numpy(emb.copy()),
                    "label": ["x"] * BATCH,
                    "idx": torch.arange(BATCH),
                }

    return DataLoader(Ceiling(), batch_size=None, num_workers=nw)


def _drain(it, limit_s: float) -> tuple[int, float, float]:
    """Samples, seconds, and the steady rate (after the first item: worker start-up excluded)."""
    t0 = time.perf_counter()
    n = 0
    n1 = t1 = None
    for b in it:
        n += len(b["idx"]) if isinstance(b, dict) else len(b)
        if t1 is None:
            n1, t1 = n, time.perf_counter()
        if time.perf_counter() - t0 > limit_s:
            break
    t = time.perf_counter()
    steady = (n - n1) / (t - t1) if t1 is not None and t > t1 and n > n1 else 0.0
    return n, t - t0, steady


class _TreeRSS:
    """Peak resident memory of this process and, separately, of its largest child (DataLoader
    workers), sampled every 20 ms from /proc (``ru_maxrss`` would include the launcher's)."""

    def __init__(self) -> None:
        import threading

        self.self_kb = 0
        self.child_kb = 0
        self.anon_kb = 0  # private pages, this process and its children together
        self._done = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    @staticmethod
    def _rss(pid: int) -> tuple[int, int]:
        """``(VmRSS, RssAnon)`` in kB: all resident pages, and the private ones (without the
        mapped shard-cache files and shared-memory batches, which ``VmRSS`` also counts)."""
        total = anon = 0
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total = int(line.split()[1])
                    elif line.startswith("RssAnon:"):
                        anon = int(line.split()[1])
        except OSError:
            pass
        return total, anon

    def _children(self) -> list[int]:
        out = []
        try:
            for tid in os.listdir("/proc/self/task"):
                with open(f"/proc/self/task/{tid}/children") as f:
                    out += [int(x) for x in f.read().split()]
        except OSError:
            pass
        return out

    def _run(self) -> None:
        while not self._done.wait(0.02):
            total, anon = self._rss(os.getpid())
            self.self_kb = max(self.self_kb, total)
            for c in self._children():
                ct, ca = self._rss(c)
                self.child_kb = max(self.child_kb, ct)
                anon += ca
            self.anon_kb = max(self.anon_kb, anon)

    def stop(self) -> tuple[float, float, float]:
        self._done.set()
        self._t.join()
        return self.self_kb / 1024, self.child_kb / 1024, self.anon_kb / 1024


def row(name: str, base: str, limit_s: float) -> dict:
    import resource

    paths = W.shard_paths(W.data_dir())
    kind, what, *rest = name.split(".")
    if kind == "ceiling" or what not in ("raw", "seq"):
        import torch  # noqa: F401  (fixed costs, not the loader's: outside the CPU count)

        import atdata.dataset._torch  # noqa: F401
    rss = _TreeRSS()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    if kind == "ceiling":
        n, dt, steady = _drain(_ceiling(int(what)), limit_s)
    elif what == "raw":
        n, dt = _raw(kind, base, paths)
        steady = n / dt
    else:
        if kind == "local":
            W.warm(paths)
        ds = _dataset(kind, base, paths, known=what in ("known", "unchecked", "small", "inorder"))
        if kind == "s3":  # as for the raw row: importing boto3 and making a client is not transfer
            ds.source._get_client()
        ru0 = resource.getrusage(
            resource.RUSAGE_SELF
        )  # (the catalogue's sha256s are not read cost)
        if what == "seq":
            n, dt, steady = _drain(ds.ordered(batch_size=BATCH), limit_s)
        else:
            t0 = time.perf_counter()
            window = SMALL_WINDOW if what == "small" else None
            loader = _loader(
                ds, int(rest[0]), window, shuffle=what != "inorder", verify=what != "unchecked"
            )
            init = time.perf_counter() - t0
            n, dt, steady = _drain(loader, limit_s)
            dt = time.perf_counter() - t0
    own, worker, anon = rss.stop()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime
    # a second epoch in the same process (what the rest of a training run sees: servers
    # warm, buffers and cache kept); not for the raw transfer, which holds nothing
    epoch2 = 0.0
    if what != "raw":
        again = _ceiling(int(what)) if kind == "ceiling" else None
        if again is None:
            again = ds.ordered(batch_size=BATCH) if what == "seq" else loader
        t2 = time.perf_counter()
        n2, _dt2, _steady2 = _drain(again, limit_s)
        epoch2 = n2 / (time.perf_counter() - t2)
    return {
        "cpu_s": cpu,
        "row": name,
        "n": n,
        "seconds": dt,
        "steady": steady,
        "init_s": locals().get("init", 0.0),
        "rss_mb": own,
        "anon_mb": anon,
        "worker_rss_mb": worker,
        "epoch2": epoch2,
    }


def _raw(kind: str, base: str, paths: list[str]) -> tuple[int, float]:
    c = _s3_client(base) if kind == "s3" else None  # the client's set-up is not transfer time
    if c is not None:
        c.head_bucket(Bucket="bench")
    t0 = time.perf_counter()
    if kind == "http":
        import urllib.request

        for p in paths:
            with urllib.request.urlopen(f"{base}/{os.path.basename(p)}") as r:
                while r.read(1 << 20):
                    pass
    else:
        assert c is not None
        for p in paths:
            body = c.get_object(Bucket="bench", Key=os.path.basename(p))["Body"]
            while body.read(1 << 20):
                pass
    return W.N_SAMPLES, time.perf_counter() - t0


def _ratios(results: list[dict]) -> None:
    """Each remote to_torch row without workers against the slower of local.seq and its
    transport's raw row (the issue's bar: >= 0.8x), each row with workers against the DataLoader
    ceiling with as many workers, for the whole first run and for the second epoch."""
    by = {r["row"]: r for r in results}
    seq = by.get("local.seq")
    lines = []
    for r in results:
        kind, what, *nw = r["row"].split(".")
        raw = by.get(f"{kind}.raw")
        ceiling = by.get(f"ceiling.{nw[0]}") if nw and nw[0] != "0" else None
        if ceiling is not None:  # with workers, the DataLoader's own cost is the bar
            lines.append(
                f"  {r['row']:16s} {r['rate'] / ceiling['rate']:5.2f}x whole run, "
                f"{r['epoch2'] / ceiling['epoch2']:5.2f}x epoch 2   (of ceiling.{nw[0]})"
            )
            continue
        if kind not in ("http", "s3") or what in ("raw", "seq") or seq is None or raw is None:
            continue
        bar = min(seq["rate"], raw["rate"])
        bar2 = min(seq["epoch2"] or seq["rate"], raw["rate"])
        lines.append(
            f"  {r['row']:16s} {r['rate'] / bar:5.2f}x whole run, "
            f"{r['epoch2'] / bar2:5.2f}x epoch 2   (of min(local.seq, {kind}.raw))"
        )
    if lines:
        print("ratios:", *lines, sep="\n")


def _run_row(name: str, servers: dict, limit: float) -> dict | None:
    kind = name.split(".")[0]
    base = servers[kind][1] if kind in servers else "-"
    env = {**os.environ, "ATDATA_CACHE_DIR": os.path.join(W.DATA, "_cache_" + name)}
    out = subprocess.run(
        [sys.executable, __file__, "--row", name, base, str(limit)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode != 0:
        print(f"  {name:16s} FAILED: {out.stderr.strip().splitlines()[-3:]}")
        return None
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["rate"] = r["n"] / r["seconds"]
    return r


def main(argv: list[str]) -> None:
    if argv[:1] == ["--row"]:
        print(json.dumps(row(argv[1], argv[2], float(argv[3]))))
        return
    try:
        import torch  # noqa: F401
    except ImportError:
        print('torch benchmark skipped: torch is not installed (pip install "atdata[torch]")')
        return
    limit, rounds = 60.0, 1
    while argv[:1] in (["--limit"], ["--rounds"]):
        if argv[0] == "--limit":
            limit = float(argv[1])
        else:
            rounds = int(argv[1])
        argv = argv[2:]
    names = ["local.seq"]
    for kind in ("http", "s3"):
        names += [f"{kind}.raw", f"{kind}.seq"]
    for kind in ("local", "http", "s3"):
        names += [f"{kind}.torch.{nw}" for nw in WORKERS]
        if kind != "local":  # shard counts known from a catalogue: no counting pass
            names += [f"{kind}.known.{nw}" for nw in WORKERS]
            names += [f"{kind}.unchecked.0"]
            names += [f"{kind}.small.0"]
        names += [f"{kind}.inorder.0"]
    names += [f"ceiling.{nw}" for nw in WORKERS]
    if argv:
        names = [n for n in names if any(n.startswith(a) for a in argv)]
    d = W.data_dir()
    paths = W.shard_paths(d)
    size = sum(os.path.getsize(p) for p in paths)
    print(
        f"workload: {W.N_SAMPLES} samples, {len(paths)} shards, {size / 1e6:.0f} MB; batch {BATCH}"
    )
    servers = {}
    try:
        if any(n.startswith("http") for n in names):
            servers["http"] = start_http(d)
        if any(n.startswith("s3") for n in names):
            servers["s3"] = start_s3(paths)
        results = []
        for name in names:
            best = None
            for _ in range(rounds):
                r = _run_row(name, servers, limit)
                if r is not None and (best is None or r["rate"] > best["rate"]):
                    best = r
            if best is None:
                continue
            results.append(best)
            print(
                f"  {name:16s} {best['rate']:9,.0f} samples/s whole run, "
                f"{best['steady']:9,.0f} after the first item  "
                f"({best['n']:,} in {best['seconds']:.1f} s, to_torch() {best['init_s']:.1f} s)  "
                f"peak RSS {best['rss_mb']:.0f} MB (private, all processes: "
                f"{best['anon_mb']:.0f} MB), largest worker {best['worker_rss_mb']:.0f} MB, "
                f"main-process CPU {best['cpu_s']:.2f} s"
                + (f"; epoch 2 {best['epoch2']:,.0f} samples/s" if best["epoch2"] else ""),
                flush=True,
            )
        _ratios(results)
        out_path = os.environ.get("BENCH_TORCH_JSON")
        if out_path:
            with open(out_path, "w") as f:
                json.dump(results, f, indent=1)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main(sys.argv[1:])
