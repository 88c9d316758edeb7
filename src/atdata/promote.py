"""``atdata.promote``: publish a locally indexed dataset (and its schema) to the atmosphere.

:func:`promote_to_atmosphere` is upstream atdata's documented function; it runs
:func:`atdata.atmosphere.promote_entry` (idempotent, resumable after a crash, label written).
"""

from __future__ import annotations

from typing import Any

__all__ = ["promote_to_atmosphere"]


def promote_to_atmosphere(
    local_entry: Any,
    local_index: Any,
    atmosphere_client: Any,
    *,
    data_store: Any = None,
    name: str | None = None,
    description: str | None = None,
    tags: list[str] | None = None,
    license: str | None = None,
) -> str:
    """Publish ``local_entry`` of ``local_index`` to ``atmosphere_client``'s repository.

    Local shards go up as blobs, ``http(s)://`` shards are recorded as URLs and ``s3://`` shards
    as S3 keys; the schema is published first (once per version). Running it again writes
    nothing new.

    Args:
        local_entry: The index entry (its ``name`` and ``version`` select it).
        local_index: The :class:`~atdata.Index` holding it and its schema.
        atmosphere_client: A logged-in :class:`~atdata.atmosphere.Atmosphere`.
        data_store: A :class:`~atdata.atmosphere.PDSBlobStore` caps the blob size with its
            ``max_blob_size``; other stores are not needed (shards are read where they are).
        name: The atmosphere name (default: the entry's).
        description, tags, license: Override the entry's fields.

    Returns:
        The entry record's AT-URI (a :class:`~atdata.atmosphere.PromoteResult`, a ``str``
        carrying every record and blob written).

    Raises:
        ConfigError: (a ``ValueError``) when the entry has no schema or no shards.
    """
    from atdata.atmosphere._promote import promote_entry

    return promote_entry(
        local_index,
        str(local_entry.name),
        atmosphere_client,
        version=getattr(local_entry, "version", None),
        max_blob_size=getattr(data_store, "max_blob_size", None),
        as_name=name,
        description=description,
        tags=tags,
        license=license,
    )
