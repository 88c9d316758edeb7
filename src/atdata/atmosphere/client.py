"""``atdata.atmosphere.client``: the :class:`Atmosphere` client (and its deprecated alias ``AtmosphereClient``)."""

from __future__ import annotations

from atdata.atmosphere._client import Atmosphere, AtmosphereClient

__all__ = [
    "Atmosphere",
    "AtmosphereClient",
]
