"""``AtUri`` (a parsed record address) and ``LEXICON_NAMESPACE``.

Examples:
    >>> uri = AtUri.parse("at://did:plc:abc123/science.alt.dataset.schema/xyz")
    >>> uri.authority, uri.collection, uri.rkey
    ('did:plc:abc123', 'science.alt.dataset.schema', 'xyz')
    >>> str(uri)
    'at://did:plc:abc123/science.alt.dataset.schema/xyz'
    >>> uri == AtUri("did:plc:abc123", "science.alt.dataset.schema", "xyz", cid="bafy...")
    True
"""

from __future__ import annotations

import dataclasses

__all__ = ["LEXICON_NAMESPACE", "AtUri"]

LEXICON_NAMESPACE = "science.alt.dataset"


@dataclasses.dataclass
class AtUri:
    """``at://<authority>/<collection>/<rkey>``, parsed.

    Attributes:
        authority: DID (or handle) of the repository.
        collection: The record's NSID, e.g. ``science.alt.dataset.entry``.
        rkey: The record key.
        cid: The record's CID when the PDS reported it (a write returns it); not part of
            equality.
    """

    authority: str
    collection: str
    rkey: str
    cid: str | None = dataclasses.field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, uri: str | AtUri) -> AtUri:
        """Parse ``at://authority/collection/rkey``.

        Raises:
            ValueError: (:class:`~atdata.ConfigError`) when ``uri`` is not a record AT-URI.
        """
        from atdata._errors import ConfigError

        if isinstance(uri, AtUri):
            return uri
        s = str(uri)
        if not s.startswith("at://"):
            raise ConfigError(f"{s!r} is not an AT-URI: it must start with 'at://'")
        parts = s[5:].split("/")
        if len(parts) < 3 or not all(parts[:3]):
            raise ConfigError(
                f"{s!r} is not a record AT-URI (expected authority/collection/rkey: "
                "at://<did or handle>/<collection>/<rkey>)"
            )
        return cls(parts[0], parts[1], "/".join(parts[2:]))

    def __str__(self) -> str:
        return f"at://{self.authority}/{self.collection}/{self.rkey}"
