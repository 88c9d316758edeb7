"""Record integrity against the real PDS: every read path checks a record against its CID, and
one bad record in a listing is skipped with a warning naming it (the others are listed), while
asking for that record itself raises.

A tampering proxy sits in front of the PDS: it forwards every request and, for the records a
test names, rewrites the value the PDS answers (keeping the CID the PDS reported).
"""

from __future__ import annotations

import http.server
import json
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from tests._helpers import serve_http

import atdata

pytestmark = pytest.mark.services

NS = "science.alt.dataset"


class TamperingProxy:
    """Forwards to ``upstream``; ``tamper[rkey]`` rewrites that record's value in getRecord and
    listRecords answers. ``paths`` records each request's path."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.tamper: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}
        self.paths: list[str] = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self, method: str) -> None:
                outer.paths.append(self.path.split("?")[0])
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                hop = {"host", "content-length", "connection", "accept-encoding"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in hop}
                req = urllib.request.Request(
                    outer.upstream + self.path, data=body, method=method, headers=headers
                )
                try:
                    with urllib.request.urlopen(req, timeout=60) as r:
                        status, data, ctype = r.status, r.read(), r.headers.get("Content-Type")
                except urllib.error.HTTPError as e:
                    status, data, ctype = e.code, e.read(), e.headers.get("Content-Type")
                if status == 200 and "json" in str(ctype):
                    data = outer._rewrite(self.path, data)
                self.send_response(status)
                self.send_header("Content-Type", ctype or "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._forward("GET")

            def do_POST(self) -> None:
                self._forward("POST")

            def log_message(self, *a: Any) -> None:
                pass

        self._serving = serve_http(H)

    def _rewrite(self, path: str, data: bytes) -> bytes:
        if not self.tamper or not path.startswith(
            ("/xrpc/com.atproto.repo.getRecord", "/xrpc/com.atproto.repo.listRecords")
        ):
            return data
        out = json.loads(data)
        recs = out.get("records") if "records" in out else [out]
        for r in recs:
            fn = self.tamper.get(str(r.get("uri", "")).rsplit("/", 1)[-1])
            if fn is not None:
                r["value"] = fn(dict(r["value"]))
        return json.dumps(out).encode()

    def __enter__(self) -> TamperingProxy:
        self.url = self._serving.__enter__().url
        return self

    def __exit__(self, *exc: Any) -> None:
        self._serving.__exit__(*exc)


def _renamed(value: dict[str, Any]) -> dict[str, Any]:
    return {**value, "name": value.get("name", "") + "-evil"}


def _schema_record(name: str, version: str = "1.0.0") -> dict[str, Any]:
    return {
        "$type": f"{NS}.schema",
        "name": name,
        "version": version,
        "schemaType": "jsonSchema",
        "schema": {
            "$type": f"{NS}.schema#jsonSchemaFormat",
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {"n": {"type": "integer"}},
            "required": ["n"],
        },
        "createdAt": "2025-01-01T00:00:00Z",
    }


def _session_through(proxy: TamperingProxy, publisher: Any) -> Any:
    """The publisher's session, continued with every SDK call going through ``proxy``."""
    from atdata.atmosphere import Atmosphere

    return Atmosphere.from_session(publisher.export_session(), base_url=proxy.url)


def test_from_session_talks_to_the_base_url_it_is_given(pds, publisher):
    _acct, atmo = publisher
    with TamperingProxy(pds.url) as proxy:
        again = _session_through(proxy, atmo)
        assert again.pds == proxy.url
        uri = again.create_record(f"{NS}.label", {"$type": f"{NS}.label", "name": "x",
                                                   "datasetUri": "at://did:plc:x/a.b.c/d",
                                                   "createdAt": "2025-01-01T00:00:00Z"})  # fmt: skip
        assert "/xrpc/com.atproto.repo.createRecord" in proxy.paths
        assert again.get_record(uri)["name"] == "x"
        assert proxy.paths.count("/xrpc/com.atproto.repo.getRecord") == 1
        n = len(proxy.paths)
        again.refresh()  # a refreshed session stays on the URL given
        again.list_records(f"{NS}.label")
        assert proxy.paths[n:] == [
            "/xrpc/com.atproto.server.refreshSession",
            "/xrpc/com.atproto.repo.listRecords",
        ]


def _publish_three(atmo: Any) -> dict[str, Any]:
    """Three schema records (rkeys a, b, c) and one of each other kind; their URIs."""
    out = {}
    for k in "abc":
        out[k] = atmo.put_record(f"{NS}.schema", k, _schema_record(f"S{k}"))
    return out


def test_own_reads_through_the_sdk_are_cid_checked(pds, publisher):
    _acct, atmo = publisher
    uris = _publish_three(atmo)
    with TamperingProxy(pds.url) as proxy:
        me = _session_through(proxy, atmo)
        assert me.get_record(uris["b"])["name"] == "Sb"
        proxy.tamper["b"] = _renamed
        with pytest.raises(atdata.IntegrityError, match=f"{uris['b']} does not match its CID"):
            me.get_record(uris["b"])
        with pytest.raises(atdata.IntegrityError, match=f"{uris['b']} does not match its CID"):
            atdata.atmosphere.SchemaLoader(me).get(str(uris["b"]))


def _names(values: list[dict[str, Any]]) -> list[str]:
    return sorted(str(v.get("name")) for v in values)


def test_a_tampered_record_is_left_out_of_every_listing_with_a_warning(pds, publisher):
    from atdata.atmosphere import AtmosphereIndex, SchemaLoader

    _acct, atmo = publisher
    uris = _publish_three(atmo)
    with TamperingProxy(pds.url) as proxy:
        me = _session_through(proxy, atmo)
        proxy.tamper["b"] = _renamed
        want = f"skipped the record {uris['b']}: it does not match its CID"
        listings: list[tuple[str, Callable[[], list[dict[str, Any]]]]] = [
            ("list_schemas", lambda: me.list_schemas()),
            ("list_records", lambda: me.list_records(f"{NS}.schema")[0]),
            ("records", lambda: [v for _u, _c, v in me.records(f"{NS}.schema")]),
            ("records(did)", lambda: [v for _u, _c, v in me.records(f"{NS}.schema", me.did)]),
            ("SchemaLoader.list_all", lambda: SchemaLoader(me).list_all()),
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            index = AtmosphereIndex(me)
        listings.append(("AtmosphereIndex.list_schemas", index.list_schemas))
        for what, listing in listings:
            with pytest.warns(UserWarning, match=want) as got:
                assert _names(listing()) == ["Sa", "Sc"], what
            assert [w for w in got if "skipped the record" in str(w.message)], what
        with pytest.raises(atdata.IntegrityError, match=f"{uris['b']} does not match its CID"):
            SchemaLoader(me).get(str(uris["b"]))


@atdata.packable
class Small:
    n: int


_MALFORMED = {
    f"{NS}.entry": {"$type": f"{NS}.entry", "name": 7, "storage": "nowhere", "size": 5,
                    "createdAt": {"x": 1}, "schemaRef": 3, "metadata": [1]},
    f"{NS}.lens": {"$type": f"{NS}.lens", "name": 9, "sourceSchema": 1, "targetSchema": None,
                   "getterCode": {"repository": 1, "commit": 2, "path": 3},
                   "putterCode": {"repository": 1, "commit": 2, "path": 3}},
    f"{NS}.label": {"$type": f"{NS}.label", "name": ["tiny"], "datasetUri": 5, "createdAt": 1},
    f"{NS}.schema": {"$type": f"{NS}.schema", "name": 5, "version": None, "createdAt": []},
}  # fmt: skip


def test_malformed_records_in_the_repository_leave_every_listing_whole(
    pds, publisher, tmp_path, capsys, monkeypatch
):
    from atdata.atmosphere import (
        AtmosphereIndex,
        LensLoader,
        list_datasets,
        list_lenses,
        publish_dataset,
        publish_schema,
    )
    from atdata.cli import main

    _acct, atmo = publisher
    schema = publish_schema(atmo, Small, "1.0.0")
    ds = atdata.write_samples([Small(n=i) for i in range(3)], str(tmp_path / "s.tar"))
    publish_dataset(atmo, "tiny", schema.uri, shards=ds.list_shards(), num_samples=3)
    for coll, rec in _MALFORMED.items():  # the PDS stores what it is given (no lexicon check)
        atmo.put_record(coll, "malformed", rec)
    lens = f"at://{atmo.did}/{NS}.lens/malformed"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a well-formed record is never warned about
        names = sorted(str(e.name) for e in list_datasets(atmo.did, pds.url))
        assert names == ["7", "tiny"]
        with pytest.warns(UserWarning, match=f"skipped: the lens record {lens} lacks a name"):
            assert list_lenses(atmo.did, pds.url) == []
        assert LensLoader(atmo).find_by_schemas(schema.uri) == []
        assert [x.n for x in atdata.load_dataset(f"@{atmo.did}/tiny", Small, split="train")] == [
            0, 1, 2,
        ]  # fmt: skip
        warnings.simplefilter("ignore", DeprecationWarning)
        index = AtmosphereIndex(atmo)
        assert sorted(e.name for e in index.list_datasets()) == ["7", "tiny"]
        assert sorted(str(s.get("name")) for s in index.list_schemas()) == ["5", "Small"]
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["ls", f"@{atmo.did}"]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and schema.uri in out
