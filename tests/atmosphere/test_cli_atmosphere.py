"""``atdata login / whoami / ls @handle / logout`` against the real PDS."""

from __future__ import annotations

import numpy as np
import pytest

import atdata
from atdata.cli import main

pytestmark = pytest.mark.services


@atdata.packable
class Tiny:
    n: int
    v: atdata.NDArray


def test_login_whoami_ls_logout(pds, alice, alice_atmo, tmp_path, monkeypatch, capsys):
    from atdata.atmosphere import publish_dataset, publish_schema

    schema = publish_schema(alice_atmo, Tiny, "2.0.0")
    ds = atdata.write_samples([Tiny(n=i, v=np.zeros(2)) for i in range(3)], str(tmp_path / "t.tar"))
    publish_dataset(alice_atmo, "tiny", schema.uri, shards=[ds.list_shards()[0]], num_samples=3)

    monkeypatch.setenv("ATDATA_SESSION_FILE", str(tmp_path / "s.json"))
    monkeypatch.setenv("ATDATA_APP_PASSWORD", alice["password"])
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["login", alice["handle"]]) == 0
    assert f"logged in as @{alice['handle']} ({alice['did']})" in capsys.readouterr().out
    assert main(["whoami"]) == 0
    assert capsys.readouterr().out.split() == [
        f"@{alice['handle']}",
        alice["did"],
        alice_atmo.pds.replace("127.0.0.1", "localhost"),
    ]
    assert main(["ls", f"@{alice['handle']}"]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "storageBlobs" in out and schema.uri in out
    assert main(["logout"]) == 0
    assert capsys.readouterr().out.strip() == f"logged out @{alice['handle']}"
    assert main(["whoami"]) == 1
    assert "not logged in" in capsys.readouterr().err
    assert alice["password"] not in (tmp_path / "s.json").as_posix()


def test_local_down_without_servers(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("ATDATA_PDS_HOME", str(tmp_path))
    assert main(["local", "down", "--pds"]) == 0
    assert capsys.readouterr().out.strip() == "no PDS is running"
    assert main(["local", "up"]) == 1


def test_local_up_creates_a_test_account_on_the_running_pds(pds, monkeypatch, capsys):
    from atdata.atmosphere import Atmosphere, _pdsrun

    if not any(s.port == pds.port for s in _pdsrun.running()):
        pytest.skip("the test PDS was not started by this process (ATDATA_TEST_PDS_URL)")
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["local", "up", "--pds", "--port", str(pds.port), "--account", "carol"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("account @carol.test"))
    password = line.split(" password ")[1].strip()
    assert f"atdata login carol.test --pds {pds.url}" in out
    atmo = Atmosphere.login("carol.test", password, pds.url)
    assert atmo.handle == "carol.test" and atmo.did.startswith("did:plc:")


@atdata.packable
class Counted:
    n: int


def test_inspect_preview_and_load_dataset_take_an_entry_at_uri(pds, publisher, tmp_path, capsys):
    from atdata._errors import SplitNotFoundError
    from atdata.atmosphere import publish_dataset, publish_schema

    acct, atmo = publisher
    schema = publish_schema(atmo, Counted, "1.0.0")
    ds = atdata.write_samples([Counted(n=i) for i in (4, 5, 6)], str(tmp_path / "c.tar"))
    pub = publish_dataset(atmo, "counted", schema.uri, shards=ds.list_shards(), num_samples=3)
    rkey = pub.uri.rsplit("/", 1)[1]
    by_handle = f"at://{acct['handle']}/science.alt.dataset.entry/{rkey}"
    for uri in (pub.uri, by_handle):
        assert main(["inspect", uri]) == 0
        out = capsys.readouterr().out
        assert f"{uri} [train]" in out and "samples:     3" in out and "Counted" in out
        assert main(["preview", uri, "-n", "2"]) == 0
        rows = [ln.split("\t") for ln in capsys.readouterr().out.splitlines()]
        assert [r[1] for r in rows[2:]] == ["4", "5"]
    loaded = atdata.load_dataset(pub.uri)
    assert list(loaded) == ["train"] and [s.n for s in loaded["train"]] == [4, 5, 6]
    assert [s.n for s in atdata.load_dataset(pub.uri, Counted, split="train")] == [4, 5, 6]
    with pytest.raises(SplitNotFoundError, match="is the 'train' split of 'counted', not 'test'"):
        atdata.load_dataset(pub.uri, split="test")
    assert main(["inspect", schema.uri]) == 1
    err = capsys.readouterr().err
    assert f"{schema.uri} is a science.alt.dataset.schema record, not a dataset entry" in err
