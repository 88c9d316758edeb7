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
