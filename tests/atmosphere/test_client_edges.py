"""What users run into on the reference PDS: handles where DIDs are expected, a PDS that is down,
promoting the same index entry again with other fields."""

from __future__ import annotations

import httpx
import pytest

import atdata
from atdata.atmosphere import Atmosphere, DatasetLoader, publish_dataset, publish_schema
from atdata.atmosphere._index_api import AtmosphereIndexEntry
from atdata.atmosphere._pdsrun import free_port

pytestmark = pytest.mark.services


@atdata.packable
class Row:
    idx: int
    tag: str


def _rows(n: int) -> list[Row]:
    return [Row(idx=i, tag=f"r{i}") for i in range(n)]


def test_blob_urls_of_a_uri_with_a_handle_name_the_did(pds, publisher, tmp_path):
    acct, atmo = publisher
    ds = atdata.write_samples(_rows(3), str(tmp_path / "r-%02d.tar"), maxcount=2)
    schema = publish_schema(atmo, Row, "1.0.0")
    pub = publish_dataset(atmo, "rows", schema.uri, shards=ds.list_shards())
    by_handle = pub.uri.replace(acct["did"], acct["handle"])
    anon = Atmosphere(pds.url)
    want = [
        f"{pds.url}/xrpc/com.atproto.sync.getBlob?did={acct['did'].replace(':', '%3A')}&cid={c}"
        for c in pub.blobs
    ]
    for client in (atmo, anon):
        urls = DatasetLoader(client).get_blob_urls(by_handle)
        assert [u.replace("localhost", "127.0.0.1") for u in urls] == want
        assert client.get_blob_url(acct["handle"], pub.blobs[0]) == urls[0]
        blobs = [httpx.get(u) for u in urls]  # the PDS serves them: getBlob takes a DID only
        assert [r.status_code for r in blobs] == [200, 200]
    record = anon.get_record(pub.uri)
    entry = AtmosphereIndexEntry(by_handle, record, None)  # no client: resolved by itself
    assert [u.replace("localhost", "127.0.0.1") for u in entry.data_urls] == [
        u.replace("%3A", ":") for u in want
    ]
    assert [httpx.get(u).status_code for u in entry.data_urls] == [200, 200]


def test_a_pds_that_is_down_says_so_and_how_to_fix_it(pds, publisher):
    acct, atmo = publisher
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(atdata.StorageError) as login:
        Atmosphere.login(acct["handle"], acct["password"], down, save=False)
    msg = str(login.value)
    assert msg.startswith(f"cannot reach the PDS at {down} to log in as {acct['handle']} (")
    assert "Connection refused" in msg and "check that the PDS is running" in msg
    # a session made on a PDS that went away since (the session string ends with its URL)
    head, _sep, _old_pds = atmo.export_session().rpartition(":::")
    offline = Atmosphere.from_session(f"{head}:::{down}")
    assert offline.pds == down
    with pytest.raises(atdata.StorageError) as listing:
        offline.list_datasets()
    msg = str(listing.value)
    assert msg.startswith(
        f"cannot reach the PDS at {down} while listing science.alt.dataset.entry for "
        f"@{acct['handle']} ("
    )
    assert "check that the PDS is running" in msg
    for text in (str(login.value), str(listing.value), repr(listing.value)):
        assert acct["password"] not in text
        assert atmo._client._session.access_jwt not in text
        assert atmo._client._session.refresh_jwt not in text


def test_promoting_again_with_other_fields_updates_the_entry_in_place(pds, publisher, tmp_path):
    from atdata.index import Index

    _acct, atmo = publisher
    idx = Index(path=str(tmp_path / "index.db"))
    idx.write_samples(_rows(5), name="rows", maxcount=2, description="first")
    first = idx.promote_entry("rows", atmo)
    assert first.created and len(first.blobs) == 3
    same = idx.promote_entry("rows", atmo)
    assert (same.created, same.entry_uri, same.entry_cid) == (
        False,
        first.entry_uri,
        first.entry_cid,
    )

    changed = idx.promote_entry("rows", atmo, description="second", tags=["t"], license="MIT")
    assert changed.created and changed.entry_uri == first.entry_uri  # the same record, rewritten
    assert changed.blobs == first.blobs  # nothing uploaded again
    value = atmo.get_record(changed.entry_uri)
    assert (value["description"], value["tags"], value["license"]) == ("second", ["t"], "MIT")
    assert value["storage"] == atmo.get_record(first.entry_uri)["storage"]
    assert changed.entry_cid != first.entry_cid
    entries = [u for u, _c, _v in atmo.records("science.alt.dataset.entry")]
    assert entries == [first.entry_uri]
    again = idx.promote_entry("rows", atmo, description="second", tags=["t"], license="MIT")
    assert (again.created, again.entry_cid) == (False, changed.entry_cid)


def test_schema_and_lens_lookups_read_every_page(pds, publisher):
    from atdata.atmosphere import LensLoader, SchemaLoader

    acct, atmo = publisher
    src = f"at://{acct['did']}/science.alt.dataset.schema/src"
    for i in range(101):  # more than one page of listRecords (100)
        atmo.put_record(
            "science.alt.dataset.schema",
            f"s{i:03d}",
            {
                "$type": "science.alt.dataset.schema",
                "name": "Many",
                "version": f"0.0.{i}",
                "schemaType": "jsonSchema",
                "schema": {"type": "object"},
                "createdAt": f"2025-01-01T00:{i // 60:02d}:{i % 60:02d}Z",
            },
        )
        atmo.put_record(
            "science.alt.dataset.lens",
            f"l{i:03d}",
            {
                "$type": "science.alt.dataset.lens",
                "name": f"lens{i}",
                "sourceSchema": src if i in (0, 100) else f"{src}-{i}",
                "targetSchema": f"{src}-target",
                "createdAt": "2025-01-01T00:00:00Z",
            },
        )
    for who in (acct["handle"], acct["did"]):  # first and last record: on different pages
        schemas = SchemaLoader(atmo)
        assert schemas.resolve(who, "Many", "0.0.0")["version"] == "0.0.0"
        assert schemas.resolve(who, "Many", "0.0.100")["version"] == "0.0.100"
        assert schemas.resolve(who, "Many")["version"] == "0.0.100"  # the newest
        assert SchemaLoader(Atmosphere(pds.url)).resolve(who, "Many", "0.0.0")["version"] == "0.0.0"
    found = LensLoader(atmo).find_by_schemas(src)
    assert sorted(r["name"] for r in found) == ["lens0", "lens100"]
    found = LensLoader(Atmosphere(pds.url)).find_by_schemas(src, repo=acct["did"])
    assert sorted(r["name"] for r in found) == ["lens0", "lens100"]
