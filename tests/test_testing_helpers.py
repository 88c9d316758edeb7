"""atdata.testing: make_samples, make_dataset, mock_index, MockAtmosphere."""

from __future__ import annotations

import numpy as np
import pytest

import atdata
from atdata.testing import MockAtmosphere, make_dataset, make_samples, mock_index


@atdata.packable
class Mixed:
    name: str
    count: int
    score: float
    flag: bool
    blob: bytes
    arr: atdata.NDArray
    tags: list[str]
    note: str | None = None


def test_make_samples_is_deterministic_per_field_type():
    a, b = make_samples(Mixed, n=3, seed=7), make_samples(Mixed, n=3, seed=7)
    assert [(s.name, s.count, s.flag) for s in a] == [
        ("name_0", 0, True),
        ("name_1", 1, False),
        ("name_2", 2, True),
    ]
    assert [s.score for s in a] == [s.score for s in b] and all(0 <= s.score < 1 for s in a)
    assert [s.blob for s in a] == [s.blob for s in b] and len(a[0].blob) == 16
    assert a[0].arr.shape == (4, 4) and a[0].arr.dtype == np.float32
    np.testing.assert_array_equal(a[1].arr, b[1].arr)
    assert a[0].tags == ["tags0_0", "tags1_1", "tags2_2"] and a[0].note == "note_0"
    assert make_samples(Mixed, n=1, seed=8)[0].score != a[0].score


def test_make_dataset_and_mock_index(tmp_path):
    rows = make_samples(Mixed, n=4)
    ds = make_dataset(tmp_path / "d", rows)
    got = list(ds.ordered())
    assert [r.name for r in got] == ["name_0", "name_1", "name_2", "name_3"]
    assert make_dataset(tmp_path / "e", rows, sample_type=Mixed).sample_type is Mixed
    with pytest.raises(ValueError, match="non-empty"):
        make_dataset(tmp_path / "f", [])
    idx = mock_index(tmp_path / "idx")
    assert idx.list_datasets() == [] and (tmp_path / "idx" / "index.db").exists()


def test_mock_atmosphere_contract():
    m = MockAtmosphere()
    assert not m.is_authenticated
    assert m.login("a.test", "pw") == {"did": "did:plc:mock000000000000", "handle": "a.test"}
    uri = m.create_record("c.x", {"v": 1})
    assert uri.startswith("at://did:plc:mock000000000000/c.x/") and m.get_record(uri) == {"v": 1}
    with pytest.raises(KeyError, match="Record not found"):
        m.get_record("at://did:plc:x/c.x/none")
    ref = m.upload_blob(b"bytes")
    assert ref["ref"]["$link"] == atdata.atmosphere.blob_cid(b"bytes")
    assert m.get_blob(m.did, ref["ref"]["$link"]) == b"bytes"
    with pytest.raises(atdata.SchemaError, match="no floats"):
        m.create_record("c.x", {"v": 0.5})
    assert [c for c, _ in m._call_log] == ["login", "create_record", "upload_blob"]
    m.reset()
    assert (m.is_authenticated, m._records, m._blobs, m._call_log) == (False, {}, {}, [])
