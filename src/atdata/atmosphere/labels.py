"""``atdata.atmosphere.labels``: label records naming dataset entries (:class:`LabelPublisher`, :class:`LabelLoader`)."""

from __future__ import annotations

from atdata.atmosphere._api_misc import LabelLoader, LabelPublisher

__all__ = [
    "LabelLoader",
    "LabelPublisher",
]
