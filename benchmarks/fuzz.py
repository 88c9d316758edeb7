"""Fuzz every decoder of untrusted input: escapes, hangs and input-sized allocations.

Mutates the seeds of ``atdata.testing._fuzz`` (tar scan and stream, member ``.idx``, ``.npy`` and
compact arrays, manifest JSON and parquet, schema bodies, ATProto records and XRPC envelopes)
with byte-level and structure-aware mutations (tar header fields with valid checksums, JSON
nodes replaced by hostile values, index lines, parquet columns of the wrong type) and runs each
input through its target with

* a per-input timeout (``--timeout``, default 2 s; SIGALRM): a **hang**;
* ``tracemalloc``: a peak above ``--alloc-mib`` MiB + 16 x the input size is a **big allocation**;
* an address-space cap (``--mem-gib``), so a runaway allocation fails instead of swapping;
* anything but ``AtdataError`` escaping: an **escape**.

Offending inputs are saved under ``--save`` (default ``benchmarks/fuzz-findings/``); keep the
interesting ones as regressions in ``tests/fuzz_corpus/<target>/``. Not part of the unit suite.

Usage::

    uv run python benchmarks/fuzz.py --inputs 100000 --jobs 2 --seed 1
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import json
import os
import random
import resource
import signal
import sys
import tempfile
import time
import traceback
import tracemalloc

from atdata.testing._fuzz import TARGETS, run_target, seeds

# relative cost: a manifest query is ~30x a tar scan, so those targets get fewer inputs
WEIGHTS = {
    "atproto": 10,
    "idx": 14,
    "manifest_json": 3,
    "manifest_parquet": 3,
    "npy": 25,
    "schema": 15,
    "tar_scan": 15,
    "tar_stream": 15,
}

INTERESTING = [0, 1, 7, 8, 127, 128, 255, 256, 511, 512, 513, 1023, 1 << 16, 1 << 31, 1 << 32]
HOSTILE_NUMS = [
    b"-1",
    b"-512",
    b"0",
    b"99999999999",
    b"77777777777",
    b"1e9",
    b"18446744073709551616",
    b"1" * 30,
    b"0x10",
    b" 12",
    b"+5",
    b"1_000",
    b"nan",
]


class Hang(BaseException):
    """Raised by the alarm: the input ran past the timeout."""


def _alarm(_sig, _frame):
    raise Hang


# -- byte-level mutation -------------------------------------------------------------------------


def mutate_bytes(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 6))):
        op = rng.randrange(9)
        if not b:
            b += rng.randbytes(rng.randrange(1, 64))
            continue
        pos = rng.randrange(len(b))
        if op == 0:
            b[pos] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[pos] = rng.choice((0, 0xFF, 0x7F, 0x80, 0x30, 0x20, 0x2D, 0x0A))
        elif op == 2:
            b[pos:pos] = rng.randbytes(rng.randrange(1, 32))
        elif op == 3:
            del b[pos : pos + rng.randrange(1, 600)]
        elif op == 4:
            del b[pos:]
        elif op == 5:
            n = rng.randrange(1, 9)
            v = rng.choice(INTERESTING) + rng.choice((-1, 0, 1))
            b[pos : pos + n] = (v % (1 << (8 * n))).to_bytes(n, rng.choice(("big", "little")))
        elif op == 6:
            num = rng.choice(HOSTILE_NUMS)
            b[pos : pos + len(num)] = num
        elif op == 7:
            other = rng.choice(pool)
            if other:
                s = rng.randrange(len(other))
                b[pos:] = other[s : s + rng.randrange(1, 2048)]
        else:
            s = rng.randrange(len(b))
            b[pos:pos] = b[s : s + rng.randrange(1, 1024)]
    return bytes(b)


# -- tar headers (checksums fixed so the mutation reaches the field) ---------------------------


def _fix_checksum(h: bytearray) -> None:
    h[148:156] = b"        "
    h[148:156] = b"%06o\0 " % sum(h)


def mutate_tar(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    heads = [o for o in range(0, len(b) - 511, 512) if b[o + 257 : o + 262] == b"ustar"]
    if not heads:
        return bytes(b)
    o = rng.choice(heads)
    h = b[o : o + 512]
    op = rng.randrange(8)
    if op == 0:  # negative base-256 size
        n = rng.choice((1, 512, 1 << 20, 1 << 40))
        h[124:136] = (((1 << 88) - n) | (1 << 95)).to_bytes(12, "big")
        h[124] |= 0xC0
    elif op == 1:  # huge base-256 size
        h[124:136] = b"\x80" + rng.choice((1 << 40, 1 << 62, 1 << 80)).to_bytes(11, "big")
    elif op == 2:  # big octal size
        h[124:136] = rng.choice((b"77777777777\0", b"00000100000\0", b"00000001000\0"))
    elif op == 3:  # a PAX header whose size record is hostile
        val = rng.choice((b"-512", b"-1", b"1e9", b"abc", b"99999999999999999999", b"", b" 3"))
        rec = b" size=" + val + b"\n"
        ln = len(rec) + 2
        rec = str(ln + (len(str(ln)) - 2)).encode() + rec
        ph = bytearray(h)
        ph[0:100] = b"././@PaxHeader".ljust(100, b"\0")
        ph[124:136] = b"%011o\0" % len(rec)
        ph[156] = ord("x")
        _fix_checksum(ph)
        pad = bytes(-len(rec) % 512)
        _fix_checksum(h)
        return bytes(b[:o] + ph + rec + pad + b[o:])
    elif op == 4:  # member type
        h[156] = rng.choice(b"0125L7xgK\0")
    elif op == 5:  # GNU long name of hostile size
        h[156] = ord("L")
        h[124:136] = rng.choice((b"77777777777\0", b"00000001000\0"))
    elif op == 6:
        h[345:350] = rng.choice((b"a/b/c", b"\xff\xfe\0\0\0", b"\0\0\0\0\0"))
    else:
        n = rng.randrange(100)
        h[n] = rng.randrange(256)
    _fix_checksum(h)
    b[o : o + 512] = h
    return bytes(b)


# -- JSON structure ----------------------------------------------------------------------------


def _deep_text(n: int, leaf: object, wrap: str) -> str:
    """JSON text nested ``n`` deep (built as text: json.dumps itself would recurse)."""
    head, tail = ('{"type": "array", "items": ', "}") if wrap == "items" else ("[", "]")
    return head * n + json.dumps(leaf) + tail * n


HOSTILE_VALUES: list[object] = [
    None,
    True,
    False,
    0,
    -1,
    -(2**63),
    2**64,
    2**200,
    1.5,
    -0.0,
    "",
    "a\n",
    "from_bytes",
    "__class__",
    "packed",
    "class",
    "x" * 5000,
    "\ud7ff\x00",
    [],
    [None],
    {},
    {"$bytes": "!!!"},
    {"$bytes": 5},
    {"$bytes": "AAA"},
    {"$link": 5},
    {"$link": None},
    {"$type": "blob"},
    {"ref": {"$link": []}},
    "at://",
    "at://did:plc:x/a/b",
    "http://127.0.0.1:1/x",
    "science.alt.dataset.storageS3",
    "science.alt.dataset.storageBlobs",
    {"type": "array"},
    {"type": ["null"]},
    {"type": ["string", "integer"]},
    {"$ref": "x"},
    {"type": "object", "properties": []},
    {"type": "object", "properties": {"from_bytes": {"type": "integer"}}},
    {"type": "object", "properties": {"a\n": {"type": "integer"}}},
]


def _nodes(x: object, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(x, dict):
        for k, v in x.items():
            out += _nodes(v, (*path, k))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            out += _nodes(v, (*path, i))
    return out


def _set(x: object, path: tuple, value: object) -> object:
    if not path:
        return value
    parent = x
    for p in path[:-1]:
        parent = parent[p]  # type: ignore[index]
    parent[path[-1]] = value  # type: ignore[index]
    return x


def mutate_json(rng: random.Random, data: bytes, keys: list[str]) -> bytes:
    try:
        x = json.loads(data)
    except ValueError:
        return data
    deep: dict[str, str] = {}
    for _ in range(rng.choice((1, 1, 2, 3))):
        nodes = _nodes(x)
        path = rng.choice(nodes)
        op = rng.randrange(6)
        if op <= 2:
            v = json.loads(json.dumps(rng.choice(HOSTILE_VALUES)))
            if rng.random() < 0.05:
                mark = f"@@deep{len(deep)}@@"
                deep[mark] = _deep_text(rng.choice((50, 500, 900)), v, rng.choice(("items", "l")))
                v = mark
            x = _set(x, path, v)
        elif op == 3 and path:  # delete a key / item
            parent = x
            for p in path[:-1]:
                parent = parent[p]
            with contextlib.suppress(KeyError, IndexError, TypeError):
                del parent[path[-1]]
        elif op == 4:  # add a known key with a hostile value
            target = x
            for p in path:
                target = target[p]
            if isinstance(target, dict):
                target[rng.choice(keys)] = json.loads(json.dumps(rng.choice(HOSTILE_VALUES)))
        else:  # swap in another node of the same document
            other = rng.choice(nodes)
            val = x
            for p in other:
                val = val[p]
            x = _set(x, path, json.loads(json.dumps(val)))
    text = json.dumps(x)
    for mark, sub in deep.items():
        text = text.replace(json.dumps(mark), sub)
    return text.encode()


def _json_keys(docs: list[bytes]) -> list[str]:
    keys: set[str] = set()

    def walk(x: object) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                keys.add(k)
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    for d in docs:
        walk(json.loads(d))
    return sorted(keys)


# -- member index lines and parquet columns ----------------------------------------------------


def mutate_idx(rng: random.Random, data: bytes) -> bytes:
    lines = data.split(b"\n")
    i = rng.randrange(len(lines))
    parts = lines[i].split(b"\t") if i else lines[i].split(b" ")
    j = rng.randrange(len(parts))
    parts[j] = rng.choice([*HOSTILE_NUMS, b"1099511627776", b"512", b"", b"k\t1"])
    lines[i] = (b"\t" if i else b" ").join(parts)
    if rng.random() < 0.2:
        lines = [lines[0], b""]  # an empty index
    return b"\n".join(lines)


def mutate_parquet(rng: random.Random, data: bytes) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except Exception:
        return data
    if not table.num_columns:
        return data
    i = rng.randrange(table.num_columns)
    n = table.num_rows
    choices = [
        pa.array([-1] * n, pa.int64()),
        pa.array([1 << 40] * n, pa.int64()),
        pa.array([(1 << 63) - 1] * n, pa.int64()),
        pa.array(["x"] * n),
        pa.array([None] * n, pa.int64()),
        pa.array([1.5] * n),
        pa.array([[1]] * n),
        pa.array([b"\xff"] * n),
        pa.array([rng.randrange(-600, 5000) for _ in range(n)], pa.int64()),
    ]
    col = rng.choice(choices)
    table = table.set_column(i, table.column_names[i], col)
    if rng.random() < 0.2:
        table = table.slice(0, rng.randrange(n + 1))
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def make_input(rng: random.Random, target: str, seed_list: list[bytes], keys: list[str]) -> bytes:
    base = rng.choice(seed_list)
    r = rng.random()
    if target in ("tar_scan", "tar_stream") and r < 0.5:
        out = mutate_tar(rng, base)
        return mutate_bytes(rng, out, seed_list) if rng.random() < 0.2 else out
    if target in ("schema", "atproto", "manifest_json") and r < 0.7:
        return mutate_json(rng, base, keys)
    if target == "idx" and r < 0.6:
        return mutate_idx(rng, base)
    if target == "manifest_parquet" and r < 0.6:
        return mutate_parquet(rng, base)
    if r > 0.97:
        return rng.randbytes(rng.randrange(0, 2048))
    return mutate_bytes(rng, base, seed_list)


# -- the loop ----------------------------------------------------------------------------------


def _where(tb) -> str:
    frames = traceback.extract_tb(tb)
    ours = [f for f in frames if "atdata" in f.filename and "testing/_fuzz" not in f.filename]
    f = (ours or frames)[-1]
    return f"{os.path.relpath(f.filename)}:{f.lineno}"


def worker(args: argparse.Namespace, wid: int, count: int) -> dict:
    import logging

    logging.getLogger("atdata").disabled = True  # skip reports and warnings: not findings
    rng = random.Random(args.seed * 1000 + wid)
    work = tempfile.mkdtemp(prefix=f"atdata-fuzz-{wid}-")
    pool = seeds(work)
    keys = {
        t: _json_keys(v) for t, v in pool.items() if t in ("schema", "atproto", "manifest_json")
    }
    names = sorted(t for t in args.targets)
    weights = [WEIGHTS[t] for t in names]
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = int(args.mem_gib * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    signal.signal(signal.SIGALRM, _alarm)
    for t in names:  # warm up: imports (boto3, pyarrow) are not charged to the first input
        for data in pool[t]:
            run_target(t, data, work)
    for mod in ("duckdb", "pandas", "pyarrow.parquet", "boto3", "httpx"):  # lazily used ones
        with contextlib.suppress(ImportError):
            __import__(mod)
    tracemalloc.start()
    counts: collections.Counter = collections.Counter()
    findings: dict[str, list] = {"escapes": [], "hangs": [], "allocs": []}
    kinds: collections.Counter = collections.Counter()
    t0 = time.time()
    for n in range(count):
        target = rng.choices(names, weights)[0]
        data = make_input(rng, target, pool[target], keys.get(target, []))
        counts[target] += 1
        base_mem = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        start = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, args.timeout)
        kind = None
        detail = ""
        try:
            run_target(target, data, work)
        except Hang:
            kind, detail = "hangs", "timeout"
        except BaseException as exc:  # an escape (MemoryError and RecursionError included)
            if isinstance(exc, KeyboardInterrupt):
                raise
            kind = "escapes"
            detail = f"{type(exc).__name__} at {_where(exc.__traceback__)}: {str(exc)[:160]}"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] - base_mem
        if kind is None and elapsed > args.timeout:
            kind, detail = "hangs", f"{elapsed:.1f} s"
        if kind is None and peak > args.alloc_mib * (1 << 20) + 16 * len(data):
            kind, detail = "allocs", f"peak {peak / 2**20:.1f} MiB for {len(data)} input bytes"
        if kind:
            sig = f"{target}: {detail.split(': ')[0] if kind == 'escapes' else kind}"
            kinds[sig] += 1
            findings[kind].append((target, detail))
            if kinds[sig] <= 3:
                name = hashlib.sha256(data).hexdigest()[:16]
                d = os.path.join(args.save, kind, target)
                os.makedirs(d, exist_ok=True)
                with open(os.path.join(d, name), "wb") as f:
                    f.write(data)
                with open(os.path.join(d, name + ".txt"), "w") as f:
                    f.write(detail + "\n")
        if args.progress and wid == 0 and n % 1000 == 999:
            print(f"  worker 0: {n + 1}/{count} in {time.time() - t0:.0f} s", file=sys.stderr)
    tracemalloc.stop()
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    return {
        "counts": dict(counts),
        "escapes": len(findings["escapes"]),
        "hangs": len(findings["hangs"]),
        "allocs": len(findings["allocs"]),
        "kinds": dict(kinds),
        "seconds": time.time() - t0,
    }


def _run(payload: tuple) -> dict:
    args, wid, count = payload
    return worker(args, wid, count)


def replay(paths: list[str], timeout: float) -> int:
    """Run saved inputs one by one, printing each traceback."""
    import logging

    logging.getLogger("atdata").disabled = True
    work = tempfile.mkdtemp(prefix="atdata-fuzz-replay-")
    seeds(work)
    signal.signal(signal.SIGALRM, _alarm)
    bad = 0
    for path in paths:
        if path.endswith(".txt"):
            continue
        target = os.path.basename(os.path.dirname(os.path.abspath(path)))
        with open(path, "rb") as f:
            data = f.read()
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            run_target(target, data, work)
            print(f"ok      {target} {path}")
        except BaseException as exc:
            bad += 1
            print(f"FAILED  {target} {path}: {type(exc).__name__}")
            traceback.print_exc(limit=-4)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--inputs", type=int, default=100_000)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("--alloc-mib", type=float, default=16.0)
    ap.add_argument("--mem-gib", type=float, default=8.0)
    ap.add_argument("--targets", nargs="*", default=sorted(TARGETS), choices=sorted(TARGETS))
    ap.add_argument("--save", default=os.path.join(os.path.dirname(__file__), "fuzz-findings"))
    ap.add_argument("--progress", action="store_true")
    ap.add_argument(
        "--replay", nargs="*", default=[], help="run saved inputs (target = parent folder name)"
    )
    args = ap.parse_args(argv)
    if args.replay:
        return replay(args.replay, args.timeout)
    per = [args.inputs // args.jobs + (i < args.inputs % args.jobs) for i in range(args.jobs)]
    t0 = time.time()
    if args.jobs == 1:
        results = [worker(args, 0, per[0])]
    else:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(args.jobs) as p:
            results = p.map(_run, [(args, i, n) for i, n in enumerate(per)])
    counts: collections.Counter = collections.Counter()
    kinds: collections.Counter = collections.Counter()
    for r in results:
        counts.update(r["counts"])
        kinds.update(r["kinds"])
    total = {k: sum(r[k] for r in results) for k in ("escapes", "hangs", "allocs")}
    print(f"inputs: {sum(counts.values())} in {time.time() - t0:.0f} s ({args.jobs} job(s))")
    for t in sorted(counts):
        print(f"  {t:18} {counts[t]}")
    print(
        f"escapes (non-AtdataError): {total['escapes']}   hangs (> {args.timeout:g} s): "
        f"{total['hangs']}   big allocations (> {args.alloc_mib:g} MiB + 16 x input): "
        f"{total['allocs']}"
    )
    for sig, n in kinds.most_common():
        print(f"  {n:6}  {sig}")
    if any(total.values()):
        print(f"offending inputs saved under {args.save}")
    return 1 if any(total.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
