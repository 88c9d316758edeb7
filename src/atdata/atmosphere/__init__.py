"""The atmosphere: publish and load atdata datasets as ATProto records.

Schemas, dataset entries and lenses are records (``science.alt.dataset.*``) in the publisher's
own ATProto repository; shards live at HTTP URLs, in S3, or as blobs on the publisher's PDS.
Anyone loads them by handle or DID: ``load_remote("@alice.example/mnist")``.

Names load lazily; nothing here imports ``atproto`` or ``libipld`` until it is used.
"""

from __future__ import annotations

from atdata._lazy import lazy_module

_LAZY: dict[str, str] = {
    "Atmosphere": "._client",
    "BlobRef": "._blobs",
    "BlobSource": "._blobs",
    "blob_cid": "._cid",
    "CodeRef": "._records",
    "Identity": "._resolve",
    "LensRecord": "._remote",
    "PDSBlobStore": "._blobs",
    "Published": "._publish",
    "RemoteEntry": "._remote",
    "VerifiedHTTPSource": "._blobs",
    "entry_record": "._records",
    "generate_cid": "._cid",
    "lens_record": "._records",
    "list_datasets": "._remote",
    "list_lenses": "._remote",
    "list_schemas": "._remote",
    "load_remote": "._remote",
    "promote_entry": "._promote",
    "record_cid": "._cid",
    "publish_dataset": "._publish",
    "publish_lens": "._publish",
    "publish_schema": "._publish",
    "resolve_identity": "._resolve",
    "storage_blobs": "._records",
    "storage_http": "._records",
    "storage_s3": "._records",
    "verify_cid": "._cid",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_module(globals(), _LAZY)
