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
from collections.abc import Callable
from typing import Any

import pytest
from tests._helpers import serve_http

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
