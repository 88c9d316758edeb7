"""``Index.promote_entry`` calls down-to-up through a protocol: the index layer never imports the
atmosphere layer; the atmosphere object the user passes does the publishing.

The end-to-end promotion against a real PDS is in tests/atmosphere/test_e2e.py.
"""

from __future__ import annotations

import pytest

import atdata
from atdata import ConfigError


class _Recorder:
    """An atmosphere stand-in: records what the index hands it."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, str, dict]] = []

    def promote_entry(self, index, name, **kwargs):
        self.calls.append((index, name, kwargs))
        return f"promoted {name}"


def test_promote_entry_hands_itself_and_options_to_the_atmosphere(tmp_path):
    idx = atdata.Index(path=tmp_path / "index.db")
    atm = _Recorder()
    assert idx.promote_entry("mnist", atm, version="1.0.0", storage="http") == "promoted mnist"
    assert atm.calls == [(idx, "mnist", {"version": "1.0.0", "storage": "http"})]


@pytest.mark.parametrize("atm", [None, object(), "did:plc:abc"])
def test_promote_entry_without_an_atmosphere_is_a_config_error(tmp_path, atm):
    idx = atdata.Index(path=tmp_path / "index.db")
    with pytest.raises(ConfigError, match=r"Atmosphere\.login"):
        idx.promote_entry("mnist", atm)


def test_the_atmosphere_client_provides_the_protocol():
    from atdata.atmosphere import Atmosphere

    assert callable(Atmosphere.promote_entry)
