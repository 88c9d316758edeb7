"""The atmosphere: publish and load atdata datasets as ATProto records.

Schemas, dataset entries, labels and lenses are records (``science.alt.dataset.*``) in the
publisher's own ATProto repository; shards live at HTTP URLs, in S3, or as blobs on the
publisher's PDS. Anyone loads them by handle or DID:
``atdata.load_dataset("@alice.example/mnist@1.0.0")``.

Two spellings, one implementation: the class API documented by upstream atdata
(:class:`Atmosphere`, ``SchemaPublisher``/``SchemaLoader``, ``DatasetPublisher``/
``DatasetLoader``, ``LensPublisher``/``LensLoader``, ``LabelPublisher``/``LabelLoader``,
``VerificationPublisher``/``VerificationLoader``, ``AtmosphereIndex``, the ``Lex*`` record
types; submodules ``client``, ``records``, ``schema``, ``lens``, ``labels``, ``store``,
``verification``) and the shorter functions (:func:`publish_schema`, :func:`publish_dataset`,
:func:`load_remote`, :func:`promote_entry`, ...).

Names load lazily; nothing here imports ``atproto`` or ``libipld`` until it is used.
"""

from __future__ import annotations

from atdata._lazy import lazy_module

_LAZY: dict[str, str] = {
    "AtUri": "._types",
    "Atmosphere": "._client",
    "AtmosphereClient": "._client",
    "AtmosphereIndex": "._index_api",
    "AtmosphereIndexEntry": "._index_api",
    "BlobEntry": "._lexicon",
    "BlobRef": "._blobs",
    "BlobSource": "._blobs",
    "CodeRef": "._records",
    "DevAccount": "._pdsrun",
    "DatasetLoader": "._api_records",
    "DatasetMetadata": "._lexicon",
    "DatasetPublisher": "._api_records",
    "DatasetSize": "._lexicon",
    "HttpShardEntry": "._lexicon",
    "Identity": "._resolve",
    "JsonSchemaFormat": "._lexicon",
    "LEXICON_NAMESPACE": "._types",
    "LabelLoader": "._api_misc",
    "LabelPublisher": "._api_misc",
    "LensLoader": "._api_misc",
    "LensPublisher": "._api_misc",
    "LensRecord": "._remote",
    "LexCodeHash": "._lexicon",
    "LexCodeReference": "._lexicon",
    "LexDatasetEntry": "._lexicon",
    "LexLabelRecord": "._lexicon",
    "LexLensRecord": "._lexicon",
    "LexLensVerification": "._lexicon",
    "LexSchemaRecord": "._lexicon",
    "PDSBlobStore": "._upload",
    "PromoteResult": "._promote",
    "Published": "._publish",
    "RemoteEntry": "._remote",
    "S3ShardEntry": "._lexicon",
    "SchemaLoader": "._api_records",
    "SchemaPublisher": "._api_records",
    "ShardChecksum": "._lexicon",
    "ShardManifestRef": "._lexicon",
    "ShardUploadResult": "._upload",
    "StorageBlobs": "._lexicon",
    "StorageHttp": "._lexicon",
    "StorageS3": "._lexicon",
    "StorageUnion": "._lexicon",
    "VerificationLoader": "._api_misc",
    "VerificationPublisher": "._api_misc",
    "VerifiedHTTPSource": "._blobs",
    "blob_cid": "._cid",
    "create_dev_account": "._pdsrun",
    "entry_record": "._records",
    "generate_cid": "._cid",
    "label_record": "._labels",
    "lens_record": "._records",
    "list_datasets": "._remote",
    "list_lenses": "._remote",
    "list_schemas": "._remote",
    "load_remote": "._remote",
    "promote_entry": "._promote",
    "publish_dataset": "._publish",
    "publish_label": "._publish",
    "publish_lens": "._publish",
    "publish_schema": "._publish",
    "record_cid": "._cid",
    "resolve_identity": "._resolve",
    "storage_blobs": "._records",
    "storage_from_record": "._lexicon",
    "storage_http": "._records",
    "storage_s3": "._records",
    "verify_cid": "._cid",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_module(globals(), _LAZY)
