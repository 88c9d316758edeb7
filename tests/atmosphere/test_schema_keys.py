"""SchemaPublisher.publish through the SDK client: createRecord without a key (a TID is
generated), an existing identical version found by listing, SDK errors propagated.

The SDK client here is a stand-in object (no PDS): these tests pin which SDK calls are made;
tests/atmosphere/test_e2e.py runs the same rules against a real PDS.
"""

from __future__ import annotations

import types
from typing import Any

import pytest

import atdata
from atdata.atmosphere import Atmosphere, SchemaPublisher

pytest.importorskip("atproto")


@atdata.packable
class Probe:
    idx: int
    tag: str


class _Repo:
    """``client.com.atproto.repo``: records listed from ``pages``; writes logged."""

    def __init__(self, pages: list[Any], fail: Exception | None = None) -> None:
        self.pages, self.fail, self.calls = pages, fail, []

    def list_records(self, params: dict[str, Any]) -> Any:
        self.calls.append(("list_records", params))
        return self.pages.pop(0) if self.pages else types.SimpleNamespace(records=[], cursor=None)

    def create_record(self, data: dict[str, Any]) -> Any:
        self.calls.append(("create_record", data))
        if self.fail is not None:
            raise self.fail
        uri = f"at://{data['repo']}/{data['collection']}/{data.get('rkey', '3lbtidtidtid2')}"
        return types.SimpleNamespace(uri=uri, cid="bafyreiexample")


def _atmo(repo: _Repo) -> Atmosphere:
    sdk = types.SimpleNamespace(com=types.SimpleNamespace(atproto=types.SimpleNamespace(repo=repo)))
    atmo = Atmosphere(_client=sdk)
    atmo._session = {"did": "did:plc:keys1"}
    return atmo


def _rec(uri: str, value: dict[str, Any]) -> Any:
    """A listed record as the SDK gives it, with the CID a PDS reports for ``value`` (listed
    records are checked against their CIDs)."""
    from atdata.atmosphere._cid import record_cid

    return types.SimpleNamespace(uri=uri, cid=record_cid(value), value=value)


def test_no_rkey_creates_a_record_with_a_generated_key():
    repo = _Repo([])
    uri = SchemaPublisher(_atmo(repo)).publish(Probe, version="1.0.0")
    assert str(uri) == "at://did:plc:keys1/science.alt.dataset.schema/3lbtidtidtid2"
    kind, data = repo.calls[-1]
    assert kind == "create_record" and "rkey" not in data
    assert (data["record"]["name"], data["record"]["version"]) == ("Probe", "1.0.0")


def test_an_identical_version_is_found_across_pages_and_not_written_again():
    from atdata._wire.schema_json import schema_record

    same = schema_record(Probe, "1.0.0", None, name="Probe")
    other = dict(same, version="0.9.0")
    pages = [
        types.SimpleNamespace(records=[_rec("at://did:plc:keys1/c/a", other)], cursor="p2"),
        types.SimpleNamespace(
            records=[_rec("at://did:plc:keys1/c/probe:1.0.0", same)], cursor=None
        ),
    ]
    repo = _Repo(pages)
    uri = SchemaPublisher(_atmo(repo)).publish(Probe, version="1.0.0")
    assert str(uri) == "at://did:plc:keys1/c/probe:1.0.0"
    assert [c[0] for c in repo.calls] == ["list_records", "list_records"]
    assert repo.calls[1][1]["cursor"] == "p2"


def test_sdk_error_from_create_record_propagates():
    from atproto_client.exceptions import AtProtocolError

    repo = _Repo([], fail=AtProtocolError("API error occurred"))
    with pytest.raises(AtProtocolError):
        SchemaPublisher(_atmo(repo)).publish(Probe, version="1.0.0")
    assert repo.calls[-1][0] == "create_record"


def test_a_listing_without_records_reads_as_empty():
    repo = _Repo([types.SimpleNamespace(records=None, cursor="x")])
    uri = SchemaPublisher(_atmo(repo)).publish(Probe, version="1.0.0", rkey="fixed")
    assert str(uri) == "at://did:plc:keys1/science.alt.dataset.schema/fixed"
    atmo = _atmo(_Repo([types.SimpleNamespace(records=None, cursor="x")]))
    assert list(atmo.records("science.alt.dataset.schema")) == []
