"""``atdata.atmosphere.verification``: lens verification records (:class:`VerificationPublisher`, :class:`VerificationLoader`)."""

from __future__ import annotations

from atdata.atmosphere._api_misc import VerificationLoader, VerificationPublisher

__all__ = [
    "VerificationLoader",
    "VerificationPublisher",
]
