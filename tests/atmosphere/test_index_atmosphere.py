"""``atdata.Index(atmosphere=client)`` against the reference PDS: atmosphere names and AT URIs in
``get_dataset``, and ``PDSBlobStore`` as the index's data store (the atmosphere tutorial)."""

from __future__ import annotations

import pytest

import atdata
from atdata.atmosphere import DatasetPublisher
from atdata.index import Index


@atdata.packable
class Feat:
    idx: int
    name: str


def _feats(n: int) -> list[Feat]:
    return [Feat(idx=i, name=f"f{i}") for i in range(n)]


@pytest.mark.services
def test_get_dataset_takes_at_uris_and_handle_names(pds, publisher, tmp_path):
    acct, atmo = publisher
    ds = atdata.write_samples(_feats(5), str(tmp_path / "f.tar"))
    uri = str(DatasetPublisher(atmo).publish(ds, name="feats", description="five"))
    idx = Index(path=str(tmp_path / "i.db"), atmosphere=atmo)

    by_uri = idx.get_dataset(uri)
    assert (type(by_uri).__name__, by_uri.uri, by_uri.name) == (
        "AtmosphereIndexEntry", uri, "feats",
    )  # fmt: skip
    by_name = idx.get_dataset(f"@{acct['handle']}/feats")
    assert (by_name.uri, by_name.schema_ref) == (uri, by_uri.schema_ref)
    assert by_name.data_urls == by_uri.data_urls and len(by_uri.data_urls) == 1

    # without an atmosphere client the AT URI is refused with the fix
    with pytest.raises(atdata.ConfigError, match="Index\\(atmosphere=client\\)"):
        Index(path=str(tmp_path / "j.db")).get_dataset(uri)
