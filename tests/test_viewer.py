"""The viewer's JSON API through an HTTP client against the ASGI app (and one real server)."""

from __future__ import annotations

import asyncio
import json
import os
import struct
import subprocess
import sys
import time
import urllib.request
import zlib
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import atdata
from atdata._errors import ConfigError, NotFoundError
from atdata.viewer import ServerThread, create_app
from atdata.viewer._cells import CellPolicy, to_cell
from atdata.viewer._png import encode_png, image_view, png_size
from tests._viewer_data import LABELS, PER_SHARD, N, ViewRow, rows, write_pics


class Client:
    """A synchronous HTTP client over the ASGI app (httpx's ASGI transport)."""

    def __init__(self, app: Any, host: str = "127.0.0.1:8765") -> None:
        self.app = app
        self.host = host

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url=f"http://{self.host}") as c:
                return await c.request(method, url, **kw)

        return asyncio.run(go())

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)


def decode_png(png: bytes) -> np.ndarray:
    """Our PNGs back to ``uint8 (H, W, C)`` (filter 0 only)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, hdr = 8, b"", None
    while pos < len(png):
        (n,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + n]
        crc = struct.unpack(">I", png[pos + 8 + n : pos + 12 + n])[0]
        assert crc == zlib.crc32(kind + data) & 0xFFFFFFFF
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", data)
        elif kind == b"IDAT":
            idat += data
        pos += 12 + n
    assert hdr is not None
    w, h, depth, colour = hdr[0], hdr[1], hdr[2], hdr[3]
    c = {0: 1, 2: 3, 6: 4}[colour]
    assert depth == 8
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * c)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:].reshape(h, w, c)


@pytest.fixture(scope="module")
def pics(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_pics(tmp_path_factory.mktemp("viewer-pics"))


@pytest.fixture(scope="module")
def client(pics: str) -> Client:
    return Client(create_app(pics))


# -- listing, detail --------------------------------------------------------------------------
def test_listing_of_a_path(client: Client, pics: str) -> None:
    r = client.get("/api/datasets")
    assert r.status_code == 200
    (d,) = r.json()["datasets"]
    assert (d["id"], d["name"], d["origin"], d["samples"]) == ("pics", "pics", "path", N)
    shards = sorted(f for f in os.listdir(os.path.dirname(pics)) if f.endswith(".tar"))
    assert d["bytes"] == sum(
        os.path.getsize(os.path.join(os.path.dirname(pics), f)) for f in shards
    )


def test_detail_schema_shards_aggregates_histograms(client: Client) -> None:
    d = client.get("/api/datasets/pics").json()
    assert d["schema"] == {
        "image": "NDArray[uint8]", "depth": "NDArray[float32]", "embedding": "NDArray[float32]",
        "label": "str", "caption": "str", "score": "float", "blob": "bytes", "words": "list",
    }  # fmt: skip
    assert [s["name"] for s in d["shards"]] == [f"pics-{i:06d}.tar" for i in range(3)]
    assert d["shards_total"] == 3
    m = d["manifest"]
    assert m["available"] is True
    assert m["fields"]["score"] == "numeric" and m["fields"]["label"] == "categorical"
    assert m["aggregates"]["label"]["value_counts"] == {"bird": 20, "cat": 20, "dog": 20}
    score = m["aggregates"]["score"]
    assert (score["min"], score["max"], score["count"]) == (0.0, (N - 1) / 4, N)
    assert score["mean"] == pytest.approx(sum(i / 4 for i in range(N)) / N)
    h = m["histograms"]["score"]
    assert sum(h["counts"]) == N and len(h["counts"]) == 20
    assert (h["edges"][0], h["edges"][-1]) == (0.0, (N - 1) / 4)


def test_index_listing_versions_licence_tags(tmp_path) -> None:
    idx = atdata.Index(path=tmp_path / "index.db")
    for v, desc in (("1.0.0", "first"), ("1.1.0", "second")):
        idx.write_samples(
            rows(5), name="shots", version=v, description=desc, license="CC-BY-4.0",
            tags=["vision", "test"], manifest=True,
        )  # fmt: skip
    c = Client(create_app(index=idx, include_index=True))
    ds = c.get("/api/datasets").json()["datasets"]
    assert [(d["id"], d["version"], d["description"]) for d in ds] == [
        ("shots@1.0.0", "1.0.0", "first"),
        ("shots@1.1.0", "1.1.0", "second"),
    ]
    assert ds[0]["license"] == "CC-BY-4.0" and ds[0]["tags"] == ["vision", "test"]
    assert ds[0]["samples"] == 5 and ds[0]["bytes"] > 0
    d = c.get("/api/datasets/shots%401.1.0").json()
    assert d["sample_type"] == "ViewRow" and d["schema"]["words"] == "list[str]"
    assert [v["id"] for v in d["versions"]] == ["shots@1.0.0", "shots@1.1.0"]
    assert all(len(s["sha256"]) == 64 for s in d["shards"])
    page = c.get("/api/datasets/shots@1.0.0/samples?length=5").json()
    assert [r["cells"]["label"]["v"] for r in page["rows"]] == ["cat", "dog", "bird", "cat", "dog"]
    thumb = page["rows"][1]["cells"]["image"]["thumb"]
    png = c.get("/" + thumb)
    assert png.status_code == 200 and png_size(png.content) == (20, 16)
    # an entry committed while the viewer runs appears in the next listing
    idx.write_samples(rows(2), name="late", description="added later")
    assert "late@" in " ".join(d["id"] for d in c.get("/api/datasets").json()["datasets"])
    # a @local/ name shows that dataset's versions only
    only = Client(create_app("@local/shots@1.0.0", index=idx))
    assert [d["id"] for d in only.get("/api/datasets").json()["datasets"]] == ["shots@1.0.0"]
    with pytest.raises(NotFoundError, match="nope"):
        create_app("@local/nope", index=idx)


# -- samples and the cell policy --------------------------------------------------------------
def test_samples_page_and_cells(client: Client) -> None:
    page = client.get("/api/datasets/pics/samples?offset=10&length=3").json()
    assert (page["offset"], page["length"], page["total"], page["next_offset"]) == (10, 3, N, 13)
    assert [r["i"] for r in page["rows"]] == [10, 11, 12]
    assert [r["key"] for r in page["rows"]] == ["00000010", "00000011", "00000012"]
    c = page["rows"][0]["cells"]
    assert c["caption"] == {"t": "str", "v": ("long caption " * 40)[:200], "cut": True, "len": 520}
    assert page["rows"][1]["cells"]["caption"] == {
        "t": "str",
        "v": "row 11",
        "cut": False,
        "len": 6,
    }
    assert c["blob"] == {"t": "bytes", "len": 10}
    assert c["score"] == {"t": "num", "v": 2.5}
    img = c["image"]
    assert (img["t"], img["dtype"], img["shape"]) == ("array", "uint8", [3, 16, 20])
    assert img["thumb"] == "api/datasets/pics/thumb?key=00000010&field=image"
    assert (c["depth"]["min"], c["depth"]["max"]) == (pytest.approx(-2.0), pytest.approx(6.0))
    assert "thumb" in c["depth"]
    assert c["embedding"] == {
        "t": "array", "dtype": "float32", "shape": [8], "min": 10.0, "max": 10.0,
    }  # fmt: skip
    words = c["words"]
    assert (words["t"], words["len"], words["cut"], len(words["v"])) == ("list", 10, False, 10)
    many = page["rows"][2]["cells"]["words"]
    assert (many["len"], many["cut"], len(many["v"])) == (12, False, 12)


def test_page_length_is_capped_at_100_and_offsets_checked(tmp_path) -> None:
    ds = atdata.write_samples([{"x": i} for i in range(150)], tmp_path / "many.tar")
    c = Client(create_app(ds))
    page = c.get("/api/datasets/many/samples?offset=0&length=500").json()
    assert (page["length"], page["next_offset"]) == (100, 100)
    last = c.get("/api/datasets/many/samples?offset=100&length=100").json()
    assert (last["length"], last["next_offset"], last["rows"][-1]["cells"]["x"]["v"]) == (
        50, None, 149,
    )  # fmt: skip
    assert c.get("/api/datasets/many/samples?offset=999").json()["rows"] == []
    bad = c.get("/api/datasets/many/samples?offset=-1")
    assert bad.status_code == 400 and "below 0" in bad.json()["error"]
    assert c.get("/api/datasets/many/samples?length=ten").status_code == 400


def test_a_bad_sample_is_an_error_row_not_a_failed_page(tmp_path) -> None:
    atdata.write_samples([{"x": i} for i in range(3)], tmp_path / "plain.tar")
    wrong = atdata.Dataset(str(tmp_path / "plain.tar"), sample_type=ViewRow)
    page = Client(create_app(wrong)).get("/api/datasets/plain/samples").json()
    assert [r["i"] for r in page["rows"]] == [0, 1, 2]
    assert all(r["cells"] == {} and "plain.tar" in r["error"] for r in page["rows"])


def test_responses_are_capped_in_size(pics: str) -> None:
    c = Client(create_app(pics, max_response_bytes=6000))
    r = c.get("/api/datasets/pics/samples?offset=0&length=100")
    assert r.status_code == 200 and len(r.content) <= 6000
    page = r.json()
    assert page["truncated"] is True and 0 < page["length"] < 100
    assert page["next_offset"] == page["length"]
    # a detail bigger than the cap is refused whole, never sent
    big = Client(create_app(pics, max_response_bytes=1500)).get("/api/datasets/pics")
    assert big.status_code == 413 and "cap of 1500" in big.json()["error"]


def test_cell_policy_limits() -> None:
    p = CellPolicy(string_limit=4, item_limit=2, depth_limit=1)
    assert to_cell("abcdef", p) == {"t": "str", "v": "abcd", "cut": True, "len": 6}
    assert to_cell([1, 2, 3], p) == {
        "t": "list", "v": [{"t": "num", "v": 1}, {"t": "num", "v": 2}], "cut": True, "len": 3,
    }  # fmt: skip
    nested = to_cell({"a": [1]}, p)
    assert nested["v"]["a"] == {"t": "obj", "type": "list", "v": "[1]", "cut": False}
    assert to_cell(float("-inf"), p) == {"t": "num", "v": "-inf"}
    assert to_cell(np.float32(1.5), p) == {"t": "num", "v": 1.5}
    arr = to_cell(np.array([np.nan, 1.0, 3.0]), p)
    assert (arr["min"], arr["max"]) == (1.0, 3.0)
    assert to_cell(np.array([], np.int8), p) == {"t": "array", "dtype": "int8", "shape": [0]}
    assert to_cell(bytearray(5), p) == {"t": "bytes", "len": 5}
    assert to_cell(2**60, p) == {"t": "num", "v": str(2**60)}  # a browser would round it
    assert to_cell(-(2**53), p) == {"t": "num", "v": -(2**53)}


# -- thumbnails -------------------------------------------------------------------------------
def test_thumbnails_png_scaled_and_cached(pics: str) -> None:
    app = create_app(pics)
    c = Client(app)
    r = c.get("/api/datasets/pics/thumb?key=00000004&field=image")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    want = rows()[4].image
    assert np.array_equal(decode_png(r.content), np.moveaxis(want, 0, -1))
    depth = decode_png(c.get("/api/datasets/pics/thumb?key=00000004&field=depth").content)
    assert depth.shape == (12, 10, 1)
    assert (int(depth.min()), int(depth.max())) == (0, 255)  # min-max scaled float
    assert len(app.api.thumbs) == 2
    before = app.api.thumbs.nbytes
    assert c.get("/api/datasets/pics/thumb?key=00000004&field=image").content == r.content
    assert (len(app.api.thumbs), app.api.thumbs.nbytes) == (2, before)  # served from the cache
    from atdata.manifest._read import recorded_digest

    shard = os.path.join(os.path.dirname(pics), "pics-000000.tar")
    rec = recorded_digest(shard)
    want_ck = rec[0] if rec is not None else None
    assert sorted(k[1:] for k in app.api.thumbs._items) == [
        ("00000004", "depth"), ("00000004", "image"),
    ]  # fmt: skip
    for ck, _key, _field in app.api.thumbs._items:
        assert ck == want_ck  # the sha256 the shard's manifest records
    no = c.get("/api/datasets/pics/thumb?key=00000004&field=embedding")
    assert no.status_code == 404 and "not an image" in no.json()["error"]
    assert c.get("/api/datasets/pics/thumb?key=nope&field=image").status_code == 404
    assert c.get("/api/datasets/pics/thumb?key=00000004").status_code == 400


def test_thumbnail_cache_is_bounded(pics: str) -> None:
    app = create_app(pics, thumb_cache_bytes=3000)
    c = Client(app)
    for i in range(6):
        assert c.get(f"/api/datasets/pics/thumb?key={i:08d}&field=image").status_code == 200
    assert app.api.thumbs.nbytes <= 3000 and len(app.api.thumbs) < 6


@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(4, 40),
    w=st.integers(4, 40),
    c=st.sampled_from([1, 3, 4]),
    seed=st.integers(0, 2**31),
)
def test_png_round_trip(h: int, w: int, c: int, seed: int) -> None:
    img = np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)
    png = encode_png(img)
    assert png_size(png) == (w, h)
    assert np.array_equal(decode_png(png), img)
    view = image_view(img, max_side=16)
    assert max(view.shape[:2]) <= 16
    assert np.array_equal(view, img[:: -(-max(h, w) // 16), :: -(-max(h, w) // 16)])


# -- queries ----------------------------------------------------------------------------------
def test_query_narrows_rows(client: Client) -> None:
    where = "label = 'cat' AND score >= 5"
    r = client.get("/api/datasets/pics/query", params={"where": where, "length": 100})
    page = r.json()
    want = [f"{i:08d}" for i in range(N) if i % 3 == 0 and i / 4 >= 5]
    assert [row["key"] for row in page["rows"]] == want
    assert page["total"] == len(want) == 13
    assert all(row["cells"]["label"]["v"] == "cat" for row in page["rows"])
    assert page["stats"]["shards_pruned"] == 0 and page["stats"]["rows_matched"] == 13
    assert page["rows"][0]["shard"] == "pics-000000.tar"
    pruned = client.get("/api/datasets/pics/query", params={"where": "score > 13"}).json()
    assert pruned["stats"]["shards_pruned"] == 2 and pruned["total"] == N - 53
    second = client.get(
        "/api/datasets/pics/query", params={"where": where, "offset": 10, "length": 10}
    ).json()
    assert [row["key"] for row in second["rows"]] == want[10:]
    assert client.get("/api/datasets/pics/query").json()["total"] == N  # no where: everything


def test_remembered_queries_are_bounded(pics: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import atdata.viewer._api as api

    monkeypatch.setattr(api, "MAX_CACHED_ROWS", 30)
    app = create_app(pics)
    c = Client(app)
    for where in ("score >= 10", "score >= 12", "score >= 14"):  # N - 40, N - 48, N - 56 rows
        assert c.get("/api/datasets/pics/query", params={"where": where}).status_code == 200
    kept = {k[1]: len(r) for k, r in app.api._queries.items()}
    assert kept == {"score >= 12": N - 48, "score >= 14": N - 56} and sum(kept.values()) <= 30
    assert c.get("/api/datasets/pics/query").json()["total"] == N  # too big to keep, still served
    assert "" not in {k[1] for k in app.api._queries}


def test_bad_query_and_missing_manifests(client: Client, tmp_path) -> None:
    bad = client.get("/api/datasets/pics/query", params={"where": "label = = 'x'"})
    assert bad.status_code == 400 and "syntax error" in bad.json()["error"]
    unknown = client.get("/api/datasets/pics/query", params={"where": "nosuch > 1"})
    assert unknown.status_code == 400 and "nosuch" in unknown.json()["error"]
    plain = write_pics(tmp_path, manifest=False)
    c = Client(create_app(plain))
    r = c.get("/api/datasets/pics/query", params={"where": "score > 1"})
    assert r.status_code == 400 and "atdata manifest build" in r.json()["error"]
    d = c.get("/api/datasets/pics").json()
    assert d["manifest"]["available"] is False and "no manifest" in d["manifest"]["reason"]
    long = client.get("/api/datasets/pics/query", params={"where": "x" * 3000})
    assert long.status_code == 400 and "at most 2000" in long.json()["error"]


# -- safety: read-only, names, hosts ----------------------------------------------------------
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_read_only(client: Client, method: str) -> None:
    r = client.request(method, "/api/datasets")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    "url",
    [
        "/api/datasets/..%2F..%2F..%2Fetc%2Fpasswd",
        "/api/datasets/%2Fetc%2Fpasswd/samples",
        "/api/datasets/%252Fetc%252Fpasswd",
        "/api/datasets/..",
        "/static/..%2F_app.py",
        "/static/%2E%2E%2F%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "/static/../../../etc/passwd",
        "/etc/passwd",
        "/api/datasets/pics/../../../../etc/passwd",
        "/api/datasets/pics%2F..%2F..%2Fetc%2Fpasswd/thumb?key=x&field=image",
    ],
)
def test_no_path_from_a_request_is_opened(client: Client, url: str) -> None:
    r = client.get(url)
    assert r.status_code == 404
    assert b"root:" not in r.content and b"import" not in r.content


def test_a_shard_path_is_not_a_dataset_name(client: Client, pics: str) -> None:
    shard = os.path.join(os.path.dirname(pics), "pics-000000.tar")
    from urllib.parse import quote

    assert client.get("/api/datasets/" + quote(shard, safe="")).status_code == 404
    r = client.get("/api/datasets/pics/thumb", params={"key": "../../etc/passwd", "field": "image"})
    assert r.status_code == 404


def test_dns_rebinding_is_refused(pics: str) -> None:
    from atdata.viewer._serve import loopback_hosts

    app = create_app(pics, allowed_hosts=loopback_hosts(8765))
    assert Client(app, host="127.0.0.1:8765").get("/api/datasets").status_code == 200
    assert Client(app, host="localhost:8765").get("/api/datasets").status_code == 200
    assert Client(app, host="evil.example:8765").get("/api/datasets").status_code == 421


def test_page_and_static_files(client: Client) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert b'src="static/app.js"' in r.content
    js = client.get("/static/app.js")
    assert js.status_code == 200 and b"innerHTML" not in js.content
    assert client.get("/static/app.css").headers["content-type"].startswith("text/css")
    head = client.request("HEAD", "/api/datasets")
    assert head.status_code == 200 and head.content == b""
    assert client.get("/api/nothing").status_code == 404


def test_registry_errors_and_ids(tmp_path, pics: str) -> None:
    with pytest.raises(ConfigError, match="needs something to show"):
        create_app()
    with pytest.raises(ConfigError, match="cannot show a int"):
        create_app(3)
    with pytest.raises(atdata.DataNotFoundError):
        create_app(str(tmp_path / "none-*.tar"))
    (tmp_path / "train").mkdir()
    (tmp_path / "test").mkdir()
    atdata.write_samples([{"x": 1}], tmp_path / "train" / "data-000.tar")
    atdata.write_samples([{"x": 2}, {"x": 3}], tmp_path / "test" / "data-000.tar")
    c = Client(create_app(str(tmp_path), pics, pics))
    ids = [(d["id"], d["split"], d["samples"]) for d in c.get("/api/datasets").json()["datasets"]]
    assert ids[2:] == [("pics", None, N), ("pics-2", None, N)]
    assert sorted(ids[:2]) == sorted([(f"{tmp_path.name}:train", "train", 1),
                                      (f"{tmp_path.name}:test", "test", 2)])  # fmt: skip
    split = c.get(f"/api/datasets/{tmp_path.name}%3Atest/samples").json()
    assert [r["cells"]["x"]["v"] for r in split["rows"]] == [2, 3]


# -- a real server, the CLI and imports -------------------------------------------------------
def test_real_server_thread(pics: str) -> None:
    with ServerThread(create_app(pics)) as srv:
        assert srv.url.startswith("http://127.0.0.1:")
        body = json.loads(urllib.request.urlopen(srv.url + "api/datasets/pics/samples").read())
        png = urllib.request.urlopen(srv.url + body["rows"][0]["cells"]["image"]["thumb"]).read()
    assert body["length"] == 20 and png_size(png) == (20, 16)


def test_cli_serve(pics: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "atdata", "serve", pics, "--port", "0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "atdata viewer on http://127.0.0.1:" in line, line
        url = line.split(" on ")[1].split()[0]
        for _ in range(100):
            try:
                out = json.loads(urllib.request.urlopen(url + "api/datasets", timeout=5).read())
                break
            except OSError:
                time.sleep(0.1)
        assert [d["id"] for d in out["datasets"]] == ["pics"]
        req = urllib.request.Request(url + "api/datasets", headers={"Host": "attacker.test"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=5)
        assert err.value.code == 421
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_cli_serve_errors(pics: str) -> None:
    from typer.testing import CliRunner

    from atdata.cli import app

    res = CliRunner().invoke(app, ["serve", "--help"])
    assert res.exit_code == 0 and "--index" in res.output and "--host" in res.output
    from atdata.viewer._serve import bind

    sock = bind("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            bind("127.0.0.1", port)
    finally:
        sock.close()


def test_importing_the_viewer_is_light() -> None:
    code = (
        "import sys, json, atdata, atdata.viewer\n"
        "atdata.viewer.create_app\n"
        "print(json.dumps(sorted(m for m in ('uvicorn', 'numpy', 'pyarrow', 'httpx') "
        "if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_row_type_is_what_the_tests_think() -> None:
    assert [f.name for f in ViewRow.atdata_fields()][:3] == ["image", "depth", "embedding"]
    assert (len(LABELS), PER_SHARD) == (3, 25)


def test_only_what_was_given_is_reachable(tmp_path, pics: str) -> None:
    idx = atdata.Index(path=tmp_path / "index.db")
    idx.write_samples(rows(3), name="secret")
    idx.write_samples(rows(2), name="shown")
    c = Client(create_app(pics, "@local/shown", index=idx))
    assert [d["id"] for d in c.get("/api/datasets").json()["datasets"]] == [
        "pics", f"shown@{idx.get_dataset('shown').version}",
    ]  # fmt: skip
    for name in ("secret", "@local/secret", "secret@0.1.0", "%40local%2Fsecret"):
        assert c.get(f"/api/datasets/{name}").status_code == 404
        assert c.get(f"/api/datasets/{name}/samples").status_code == 404


def test_cli_serve_reports_a_missing_path_in_one_line(tmp_path, capsys) -> None:
    from atdata.cli import main

    assert main(["serve", str(tmp_path / "none-*.tar"), "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert "error:" in err and "none-*.tar" in err and len(err.strip().splitlines()) <= 2


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=300)
    | st.binary(max_size=50),
    lambda inner: st.lists(inner, max_size=30) | st.dictionaries(st.text(max_size=5), inner, max_size=30),
    max_leaves=200,
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(value=_json)
def test_cells_are_json_and_bounded(value: Any) -> None:
    p = CellPolicy(string_limit=50, item_limit=5, depth_limit=2)
    cell = to_cell(value, p)
    text = json.dumps(cell, allow_nan=False)  # never NaN/Infinity, always serialisable
    # each level keeps at most item_limit items of at most string_limit characters
    assert len(text) < 200 * (p.item_limit + 1) ** (p.depth_limit + 1)
    if isinstance(value, str):
        assert cell["v"] == value[:50] and cell["cut"] == (len(value) > 50)


def test_concurrent_requests_on_a_real_server(pics: str, tmp_path) -> None:
    import concurrent.futures

    other = atdata.write_samples([{"n": i} for i in range(300)], tmp_path / "nums.tar")
    with ServerThread(create_app(pics, other)) as srv:

        def fetch(j: int) -> tuple[int, Any]:
            kind = j % 4
            if kind == 0:
                url = f"api/datasets/pics/samples?offset={j % N}&length=5"
            elif kind == 1:
                url = f"api/datasets/pics/thumb?key={j % N:08d}&field=image"
            elif kind == 2:
                url = f"api/datasets/nums/samples?offset={j}&length=3"
            else:
                url = "api/datasets/pics/query?where=" + "score%20%3E%20" + str(j % 10)
            with urllib.request.urlopen(srv.url + url, timeout=30) as r:
                body = r.read()
                return j, body if kind == 1 else json.loads(body)

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(fetch, range(80)))
    for j, out in results:
        kind = j % 4
        if kind == 0:
            assert out["rows"][0]["key"] == f"{j % N:08d}"
        elif kind == 1:
            assert png_size(out) == (20, 16)
        elif kind == 2:
            assert [r["cells"]["n"]["v"] for r in out["rows"]] == [j, j + 1, j + 2]
        else:
            assert out["total"] == sum(1 for i in range(N) if i / 4 > j % 10)


def test_a_path_that_is_not_shards_fails_at_start(tmp_path):
    csv = tmp_path / "rows.csv"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError, match=r"cannot serve .*rows.csv: not a tar archive .*ingest"):
        create_app(str(csv))
    (tmp_path / "blob.dat").write_bytes(b"x" * 2000)
    with pytest.raises(ConfigError, match=r"blob.dat: not a tar archive .*atdata serve shows tar"):
        create_app(str(tmp_path / "blob.dat"))
    with pytest.raises(atdata.DataNotFoundError):
        create_app(str(tmp_path / "missing-*.tar"))


def test_bad_host_or_port_is_one_line_naming_the_fix():
    from atdata.viewer._serve import bind

    with pytest.raises(ConfigError, match=r"port 99999 is not a TCP port; pick one in 0-65535"):
        bind("127.0.0.1", 99999)
    with pytest.raises(ConfigError, match=r"the host is empty; give an address: 127.0.0.1"):
        bind("", 0)
