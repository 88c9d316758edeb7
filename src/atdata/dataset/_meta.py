"""Dataset-level metadata (``metadata_url``, ``content_metadata``) and raw WebDataset dicts.

``metadata_url`` names a msgpack map (a local path, ``file://`` or HTTP(S) URL, or any URL the
dataset's source can open); it is fetched once, on first use of ``ds.metadata`` (HTTP through
``requests`` when it is installed, else ``urllib``).
``wrap``/``wrap_batch`` turn the dicts a WebDataset pipeline yields (``{"__key__", "msgpack"}``)
into this dataset's samples.

Examples:
    >>> import os, tempfile, msgpack, atdata
    >>> d = tempfile.mkdtemp()
    >>> meta = os.path.join(d, "meta.msgpack")
    >>> with open(meta, "wb") as f:
    ...     _ = f.write(msgpack.packb({"license": "CC0", "rows": 3}))
    >>> fetch_metadata(meta, None)
    {'license': 'CC0', 'rows': 3}
    >>> ds = atdata.write_samples([{"x": i} for i in range(3)], os.path.join(d, "a.tar"))
    >>> ds.wrap({"__key__": "k", "msgpack": msgpack.packb({"x": 7})}).x
    7
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

import msgpack

from atdata._errors import DecodeError, SchemaError, StorageError
from atdata._shards.sources import is_remote
from atdata._wire.sample import set_key

__all__ = [
    "check_content_metadata",
    "decode_raw",
    "fetch_metadata",
    "payload_of",
    "wrap_raw",
    "wrap_raw_batch",
]

_TIMEOUT = 30.0


def _http_get(url: str) -> bytes:
    """The body at an HTTP(S) ``url``: through ``requests`` when it is installed (its CA bundle,
    ``.netrc`` and proxy settings apply, as with upstream atdata), else ``urllib``.

    Raises:
        StorageError: An HTTP error status or a failed connection.
    """
    try:
        import requests
    except ImportError:
        with urllib.request.urlopen(url, timeout=_TIMEOUT) as resp:
            return bytes(resp.read())
    try:
        with requests.get(url, stream=True, timeout=_TIMEOUT) as resp:
            resp.raise_for_status()
            return bytes(resp.content)
    except requests.HTTPError as exc:
        code = getattr(exc.response, "status_code", "error")
        raise StorageError(f"cannot fetch dataset metadata {url}: HTTP {code}") from None
    except requests.RequestException as exc:
        raise StorageError(
            f"cannot fetch dataset metadata {url}: {type(exc).__name__}"
            " (check the URL and that the server is reachable)"
        ) from None


def fetch_metadata(url: str, source: Any) -> dict[str, Any]:
    """The msgpack map at ``url``.

    Raises:
        StorageError: When it cannot be read.
        DecodeError: When it is not a msgpack map.
    """
    try:
        if url.startswith(("http://", "https://")):
            data = _http_get(url)
        elif not is_remote(url):
            with open(url[7:] if url.startswith("file://") else url, "rb") as f:
                data = f.read()
        else:  # s3:// and other schemes the dataset's source reads
            if source is None or not hasattr(source, "open_shard"):
                raise StorageError(f"cannot fetch dataset metadata {url}: no source reads it")
            stream = source.open_shard(url)
            try:
                data = stream.read()
            finally:
                stream.close()
    except urllib.error.HTTPError as exc:
        raise StorageError(f"cannot fetch dataset metadata {url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        if isinstance(exc, StorageError):
            raise
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        raise StorageError(f"cannot fetch dataset metadata {url}: {reason}") from None
    try:
        out = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise DecodeError(f"dataset metadata {url} is not msgpack ({exc})") from None
    if not isinstance(out, dict):
        raise DecodeError(f"dataset metadata {url} is a {type(out).__name__}, not a map")
    return out


def check_content_metadata(value: Any) -> Any:
    """``value`` if it can be dataset content metadata (a ``@packable`` sample, a dict or None).

    Raises:
        SchemaError: (a ``TypeError``) For anything else.
    """
    if value is None or isinstance(value, dict) or hasattr(type(value), "atdata_fields"):
        return value
    raise SchemaError(
        f"content_metadata must be a @packable sample or a dict, got {type(value).__name__}"
    )


def payload_of(sample: Mapping[str, Any], what: str = "sample") -> Any:
    """The ``msgpack`` entry of a raw WebDataset dict.

    Raises:
        DecodeError: (a ``ValueError``) When it is missing.
    """
    if "msgpack" not in sample:
        raise DecodeError(
            f"raw {what} has no 'msgpack' entry (keys: {sorted(map(str, sample))}); "
            "pass the dicts a WebDataset pipeline yields for atdata shards"
        )
    return sample["msgpack"]


def decode_raw(decode_type: Any, payload: Any, key: str | None) -> Any:
    """Decode one msgpack payload as ``decode_type``, keeping its key."""
    from atdata._wire.sample import unpack_payload

    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise DecodeError(
            f"expected the sample's 'msgpack' entry to be bytes, got {type(payload).__name__}"
        )
    where = f" in sample {key!r}" if key is not None else ""
    obj = decode_type._from_wire(unpack_payload(bytes(payload), where), where)
    if key is not None:
        set_key(obj, key)
    return obj


def wrap_raw(decode_type: type, ops: tuple[tuple[str, Any], ...], sample: Mapping[str, Any]) -> Any:
    """Decode a raw WebDataset dict and apply a dataset's maps and lenses (filters do not apply to
    one sample).

    Raises:
        DecodeError: (a ``ValueError``) When the dict has no msgpack payload or it is bad.
    """
    from atdata.dataset._stream import lens_map

    obj = decode_raw(decode_type, payload_of(sample), sample.get("__key__"))
    for op, fn in ops:
        if op == "map":
            obj = fn(obj)
        elif op == "lens":
            obj = next(lens_map(fn, iter([obj])))
    return obj


def wrap_raw_batch(
    decode_type: type, ops: tuple[tuple[str, Any], ...], sample_type: type, batch: Mapping[str, Any]
) -> Any:
    """A ``SampleBatch`` from a raw WebDataset batch dict (``{"msgpack": [payload, ...]}``)."""
    from atdata.dataset._batch import SampleBatch

    payloads = list(payload_of(batch, "batch"))
    keys = list(batch.get("__key__") or [None] * len(payloads))
    if len(keys) != len(payloads):
        raise DecodeError(f"raw batch has {len(keys)} keys for {len(payloads)} payloads")
    items = [
        wrap_raw(decode_type, ops, {"__key__": k, "msgpack": p})
        for k, p in zip(keys, payloads, strict=True)
    ]
    return SampleBatch(items, sample_type=sample_type)
