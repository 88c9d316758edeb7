"""Test helpers for atdata users and for atdata itself.

* :func:`check_lens_laws` checks GetPut, PutGet and PutPut on given sources and views.
* :func:`assert_lens_laws` checks them on samples drawn by hypothesis.
* :func:`run_provider_conformance` / ``provider_checks`` check an index provider (ours or yours).
* :class:`MockAtmosphere` stands in for :class:`atdata.atmosphere.Atmosphere` (records and blobs
  in memory) under the atmosphere's publishers and loaders.
* :func:`make_samples`, :func:`make_dataset` and :func:`mock_index` make samples, a dataset
  and a temporary index for tests.
* :func:`strategy_for` builds a hypothesis strategy for any ``@packable`` type.
* Pytest fixtures ``tmp_dataset``, ``tmp_index`` and ``mock_atmosphere`` (import them into a test
  module, or ``pytest_plugins = ["atdata.testing"]`` in the root ``conftest.py``).

Names load lazily: importing ``atdata.testing`` imports neither numpy nor hypothesis
(hypothesis is needed only by the hypothesis-driven helpers: ``pip install hypothesis``).

Examples:
    >>> import atdata.testing as t
    >>> 'MockAtmosphere' in t.__all__ and 'check_lens_laws' in t.__all__
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from atdata._lazy import lazy_module

# public name -> private module of this package
_LAZY: dict[str, str] = {
    "MockAtmosphere": "._atmosphere",
    "MockAtmosphereClient": "._atmosphere",
    "assert_lens_laws": "._lens_laws",
    "check_lens_laws": "._lens_laws",
    "make_dataset": "._factories",
    "make_samples": "._factories",
    "mock_atmosphere": "._fixtures",
    "mock_index": "._factories",
    "provider_checks": "._providers",
    "run_provider_conformance": "._providers",
    "strategy_for": "._strategies",
    "tmp_dataset": "._fixtures",
    "tmp_index": "._fixtures",
}

__all__ = [
    "MockAtmosphere",
    "MockAtmosphereClient",
    "assert_lens_laws",
    "check_lens_laws",
    "make_dataset",
    "make_samples",
    "mock_atmosphere",
    "mock_index",
    "provider_checks",
    "run_provider_conformance",
    "strategy_for",
    "tmp_dataset",
    "tmp_index",
]  # keep equal to sorted(_LAZY)


__getattr__, __dir__ = lazy_module(globals(), _LAZY)


if TYPE_CHECKING:  # pragma: no cover
    from atdata.testing._atmosphere import MockAtmosphere, MockAtmosphereClient
    from atdata.testing._factories import make_dataset, make_samples, mock_index
    from atdata.testing._fixtures import mock_atmosphere, tmp_dataset, tmp_index
    from atdata.testing._lens_laws import assert_lens_laws, check_lens_laws
    from atdata.testing._providers import provider_checks, run_provider_conformance
    from atdata.testing._strategies import strategy_for
