"""``atdata.atmosphere.lens``: publish and load lens records (:class:`LensPublisher`, :class:`LensLoader`); no code is fetched or run."""

from __future__ import annotations

from atdata.atmosphere._api_misc import LensLoader, LensPublisher

__all__ = [
    "LensLoader",
    "LensPublisher",
]
