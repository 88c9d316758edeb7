"""Loading published datasets (``"@handle/name[@version]"``) and discovering a repository's records.

Loading resolves handle -> DID -> PDS, finds the entry record, fetches its schema record, rebuilds
the sample type (unless one is given) and streams the shards (blobs, HTTP or S3) with their
sha256 checked. Lens records are returned as data: their code is never fetched or run.

Examples:
    >>> parse_remote_path("@alice.example/mnist@1.0.0")
    ('alice.example', 'mnist', '1.0.0')
    >>> parse_remote_path("@did:plc:abc123/cifar/train")
    ('did:plc:abc123', 'cifar/train', None)
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from atdata._errors import (
    AtdataError,
    ConfigError,
    RecordNotFoundError,
    SplitNotFoundError,
    StorageError,
)
from atdata.atmosphere._blobs import BlobSource, VerifiedHTTPSource, VerifiedSource
from atdata.atmosphere._labels import LABEL, pick_label
from atdata.atmosphere._records import (
    ENTRY,
    LENS,
    SCHEMA,
    STORAGE_BLOBS,
    STORAGE_HTTP,
    STORAGE_S3,
    CodeRef,
    unpack_metadata,
)
from atdata.atmosphere._resolve import (
    Identity,
    get_record,
    iter_records,
    parse_at_uri,
    resolve_identity,
)

__all__ = [
    "LensRecord",
    "RemoteEntry",
    "list_datasets",
    "list_lenses",
    "list_schemas",
    "load_entry_uri",
    "load_remote",
    "load_remote_splits",
    "parse_remote_path",
]


def parse_remote_path(path: str) -> tuple[str, str, str | None]:
    """``"@<handle or DID>/<name>[@<version>]"`` -> ``(handle or DID, name, version)``.

    Raises:
        ConfigError: When the path has no ``/name`` part.
    """
    if not path.startswith("@"):
        raise ConfigError(
            f"{path!r} is not an atmosphere path: use '@handle.example/name[@version]'"
        )
    ident, sep, rest = path[1:].partition("/")
    if not sep or not rest or not ident:
        raise ConfigError(
            f"{path!r} names no dataset: use '@{ident or 'handle.example'}/name[@version]'"
        )
    name, _, version = rest.partition("@")
    return ident, name, version or None


def schema_uri(value: Any) -> str:
    """An entry's ``schemaRef`` as an AT-URI string.

    Upstream 0.7.0b1's ``publish_with_blobs`` writes it as an object
    (``{"authority", "collection", "rkey"}``) instead of the lexicon's at-uri string; both load.

    Examples:
        >>> schema_uri({"authority": "did:plc:a", "collection": "science.alt.dataset.schema", "rkey": "x"})
        'at://did:plc:a/science.alt.dataset.schema/x'
    """
    if isinstance(value, dict) and {"authority", "collection", "rkey"} <= set(value):
        parts = [value["authority"], value["collection"], value["rkey"]]
        if all(isinstance(p, str) and p and "/" not in p for p in parts):
            return "at://" + "/".join(parts)
    if isinstance(value, str):
        return value
    raise StorageError(
        f"entry schemaRef {str(value)[:120]!r} is neither an AT-URI nor a record reference"
    )


@dataclasses.dataclass
class RemoteEntry:
    """A dataset entry record with its URI, CID, decoded metadata and the label versions naming it."""

    uri: str
    cid: str
    value: dict[str, Any]
    label_versions: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """Dataset name."""
        return str(self.value.get("name", ""))

    @property
    def metadata(self) -> dict[str, Any]:
        """The entry's metadata as a flat dict (msgpack bytes or upstream's structured object)."""
        return unpack_metadata(self.value.get("metadata"))

    @property
    def version(self) -> str | None:
        """Dataset version: from metadata, else from a label naming this entry, else the schema
        key's version."""
        v = self._meta().get("version")
        if v:
            return str(v)
        if self.label_versions:
            return self.label_versions[-1]
        try:
            rkey = schema_uri(self.value.get("schemaRef", "")).rsplit("/", 1)[-1]
        except StorageError:
            return None
        for sep in (":", "@"):
            if sep in rkey:
                return rkey.rsplit(sep, 1)[1]
        return None

    @property
    def split(self) -> str | None:
        """Split name from metadata, if any."""
        s = self._meta().get("split")
        return str(s) if s else None

    def _meta(self) -> dict[str, Any]:
        """Metadata for listings: a malformed one reads as none (one bad record must not hide
        the others)."""
        try:
            return self.metadata
        except AtdataError:
            return {}


@dataclasses.dataclass(frozen=True)
class LensRecord:
    """A published lens: schemas it connects and where its code is. Nothing is executed.

    Use :meth:`bind` with functions you obtained and reviewed yourself to get a usable
    :class:`~atdata.Lens`.
    """

    uri: str
    name: str
    source_schema: str
    target_schema: str
    getter: CodeRef
    putter: CodeRef
    description: str | None = None

    def bind(self, source: type, view: type, getter: Any, putter: Any = None) -> Any:
        """A :class:`~atdata.Lens` from local functions you trust (e.g. from a reviewed checkout)."""
        from atdata.lens._lens import Lens

        return Lens(getter, putter, source=source, view=view, name=self.name)


def _entries(ident: Identity) -> list[RemoteEntry]:
    out = [RemoteEntry(u, c, v) for u, c, v in iter_records(ident.pds, ident.did, ENTRY)]
    out.sort(key=lambda e: str(e.value.get("createdAt", "")))
    return out


def list_datasets(handle_or_did: str, hint: str | None = None) -> list[RemoteEntry]:
    """Every dataset entry of a repository (all pages), oldest first."""
    return _entries(resolve_identity(handle_or_did, hint))


def list_schemas(
    handle_or_did: str, hint: str | None = None
) -> list[tuple[str, str, dict[str, Any]]]:
    """Every schema record of a repository: ``(uri, cid, value)``."""
    ident = resolve_identity(handle_or_did, hint)
    return list(iter_records(ident.pds, ident.did, SCHEMA))


def _lens(uri: str, v: dict[str, Any]) -> LensRecord:
    """The lens record ``v`` at ``uri``.

    Raises:
        ConfigError: When it does not follow the lens lexicon (a field missing or not a string).
    """
    codes = [v.get("getterCode"), v.get("putterCode")]
    fields = [v.get("name"), v.get("sourceSchema"), v.get("targetSchema")]
    for c in codes:
        fields += (
            [c.get(k) for k in ("repository", "commit", "path")] if isinstance(c, dict) else [c]
        )
    if not all(isinstance(f, str) and f for f in fields):
        raise ConfigError(
            f"the lens record {uri} lacks a name, schema or code reference string; it does not "
            "follow the science.alt.dataset.lens lexicon"
        )
    desc = v.get("description")
    return LensRecord(
        uri,
        v["name"],
        v["sourceSchema"],
        v["targetSchema"],
        CodeRef.from_record(codes[0]),  # type: ignore[arg-type]
        CodeRef.from_record(codes[1]),  # type: ignore[arg-type]
        desc if isinstance(desc, str) else None,
    )


def list_lenses(handle_or_did: str, hint: str | None = None) -> list[LensRecord]:
    """Every lens record of a repository (code references only; nothing is fetched or run).

    A record that does not follow the lens lexicon is left out with a warning naming it.
    """
    import warnings

    ident = resolve_identity(handle_or_did, hint)
    out = []
    for uri, _cid, v in iter_records(ident.pds, ident.did, LENS):
        try:
            out.append(_lens(uri, v))
        except ConfigError as exc:
            warnings.warn(f"skipped: {exc}", UserWarning, stacklevel=2)
    return out


def _labelled(ident: Identity) -> tuple[list[RemoteEntry], list[dict[str, Any]]]:
    """The repository's entries (label versions attached) and label records."""
    entries = _entries(ident)
    labels = [v for _u, _c, v in iter_records(ident.pds, ident.did, LABEL)]
    by_uri = {e.uri: e for e in entries}
    for lab in sorted(labels, key=lambda r: str(r.get("createdAt", ""))):
        e = by_uri.get(str(lab.get("datasetUri")))
        if e is not None and lab.get("version"):
            e.label_versions += (str(lab["version"]),)
    return entries, labels


def find_entries(ident: Identity, name: str, version: str | None = None) -> list[RemoteEntry]:
    """Entries named ``name`` (by entry name or by label), matching ``version``; oldest first.

    Raises:
        RecordNotFoundError: No such dataset or version.
    """
    entries, labels = _labelled(ident)
    by_uri = {e.uri: e for e in entries}
    cands = [e for e in entries if e.name == name]
    target = pick_label(labels, name, version)
    if version is not None:
        cands = [e for e in cands if e.version == version]
    if target is not None and target in by_uri and by_uri[target] not in cands:
        cands.append(by_uri[target])
    who = f"@{ident.handle or ident.did}"
    if not cands:
        if version is not None and any(e.name == name for e in entries):
            have = sorted({str(e.version) for e in entries if e.name == name and e.version})
            raise RecordNotFoundError(
                f"{who}/{name} has no version {version!r} (versions: {', '.join(have) or 'none'})"
            )
        raise RecordNotFoundError(
            f"{who} has published no dataset named {name!r}; see `atdata ls {who}`"
        )
    cands.sort(key=lambda e: (e.uri == target, str(e.value.get("createdAt", ""))))
    return cands


def splits_of(cands: list[RemoteEntry]) -> dict[str, RemoteEntry]:
    """``{split: newest entry}``; entries published without a split are the ``train`` split."""
    out: dict[str, RemoteEntry] = {}
    for e in cands:  # oldest first: later ones win
        out[e.split or "train"] = e
    return out


def find_entry(
    ident: Identity, name: str, version: str | None = None, split: str | None = None
) -> RemoteEntry:
    """The newest entry named ``name`` (matching ``version`` and ``split`` when given).

    Unsplit data is the ``train`` split, as in :func:`~atdata.load_dataset`.

    Raises:
        RecordNotFoundError: No such dataset or version (a ``StorageError`` and ``KeyError``).
        SplitNotFoundError: The dataset exists but not that split.
    """
    cands = find_entries(ident, name, version)
    if split is None:
        return cands[-1]
    splits = splits_of(cands)
    if split not in splits:
        raise SplitNotFoundError(
            f"@{ident.handle or ident.did}/{name} has no split {split!r} "
            f"(splits: {', '.join(sorted(splits))})"
        )
    return splits[split]


def _malformed(entry: dict[str, Any], what: str) -> StorageError:
    name = str(entry.get("name"))[:80]
    return StorageError(
        f"dataset entry {name!r} has a malformed storage record ({what}); it does not follow "
        "the science.alt.dataset lexicon"
    )


def _items(entry: dict[str, Any], st: dict[str, Any], field: str) -> list[dict[str, Any]]:
    items = st.get(field)
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise _malformed(entry, f"{field!r} must be a non-empty list of objects")
    return items


def _sha(entry: dict[str, Any], item: dict[str, Any]) -> str | None:
    c = item.get("checksum")
    if c is None:
        return None
    if not isinstance(c, dict):
        raise _malformed(entry, "a checksum is not an object")
    if c.get("algorithm") != "sha256":
        return None
    digest = c.get("digest")
    if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
        raise _malformed(entry, f"sha256 digest {str(digest)[:80]!r} is not 64 hex digits")
    return digest.lower()


def _str_field(entry: dict[str, Any], item: dict[str, Any], field: str) -> str:
    v = item.get(field)
    if not isinstance(v, str) or not v:
        raise _malformed(entry, f"{field!r} {str(v)[:80]!r} is not a string")
    return v


def _blob(entry: dict[str, Any], item: dict[str, Any]) -> tuple[str, str | None, int | None]:
    blob = item.get("blob")
    ref = blob.get("ref") if isinstance(blob, dict) else None
    link = ref.get("$link") if isinstance(ref, dict) else None
    if not isinstance(link, str) or not re.fullmatch(r"[A-Za-z0-9]{8,200}", link):
        raise _malformed(entry, f"blob ref $link {str(link)[:80]!r} is not a CID")
    size = blob.get("size")  # type: ignore[union-attr]
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise _malformed(entry, f"blob size {str(size)[:40]!r} is not a byte count")
    return link, _sha(entry, item), size


def source_for(ident: Identity, entry: dict[str, Any]) -> Any:
    """The :class:`~atdata.DataSource` reading an entry's storage (blobs, HTTP or S3); when the
    entry carries its shards' manifests (blobs), they are served beside the shards, so
    ``ds.query`` prunes and reads by range as it does locally.

    Raises:
        StorageError: For storage the record does not describe validly, an unknown storage kind,
            or an S3 endpoint you do not allow (see :func:`atdata.stores._s3.record_client_kwargs`).
    """
    source = _shard_source(ident, entry)
    manifests = entry.get("manifests")
    shards = source.list_shards()
    if not isinstance(manifests, list) or len(manifests) != len(shards):
        return source
    from atdata.atmosphere._blobs import SidecarSource
    from atdata.manifest._paths import manifest_paths

    sidecars: dict[str, dict[str, Any]] = {}
    for shard, m in zip(shards, manifests, strict=True):
        jpath, ppath = manifest_paths(shard)
        if isinstance(m, dict) and isinstance(m.get("header"), dict):
            sidecars[jpath] = m["header"]
            if isinstance(m.get("samples"), dict):
                sidecars[ppath] = m["samples"]
    return SidecarSource(source, ident.pds, ident.did, sidecars) if sidecars else source


def _shard_source(ident: Identity, entry: dict[str, Any]) -> Any:
    st = entry.get("storage")
    if not isinstance(st, dict):
        raise _malformed(entry, "'storage' is not an object")
    kind = st.get("$type")
    if kind == STORAGE_BLOBS:
        blobs = [_blob(entry, b) for b in _items(entry, st, "blobs")]
        return BlobSource(ident.did, ident.pds, blobs)
    if kind == STORAGE_HTTP:
        shards = _items(entry, st, "shards")
        urls = [_str_field(entry, s, "url") for s in shards]
        if not all(u.startswith(("http://", "https://")) for u in urls):
            raise _malformed(entry, "a shard URL is not http(s)")
        return VerifiedHTTPSource([(u, _sha(entry, s)) for u, s in zip(urls, shards, strict=True)])
    if kind == STORAGE_S3:  # boto3 (credentials from its usual chain), checksums on top
        from atdata.stores._s3 import S3Source, record_client_kwargs

        items = _items(entry, st, "shards")
        bucket = _str_field(entry, st, "bucket")
        keys = [_str_field(entry, s, "key") for s in items]
        # exact names: a record never makes us list a bucket or expand {0..999999999}
        for k in [bucket + "/", *keys]:
            if (k.endswith("/") and k != bucket + "/") or any(c in k for c in "{}*?[]\n"):
                raise _malformed(entry, f"S3 name {k[:80]!r} is not an exact bucket/key")
        if "/" in bucket:
            raise _malformed(entry, f"S3 bucket {bucket[:80]!r} contains '/'")
        urls = [f"s3://{bucket}/{k}" for k in keys]
        what = f"dataset entry {str(entry.get('name'))[:80]!r}"
        kw = record_client_kwargs(st.get("endpoint"), st.get("region"), what)
        digests = {u: _sha(entry, s) for u, s in zip(urls, items, strict=True)}
        return VerifiedSource(S3Source(urls, **kw), digests)
    raise StorageError(
        f"entry {str(entry.get('name'))[:80]!r} uses storage {str(kind)[:80]!r}, which atdata "
        "cannot read"
    )


def _identity(who: str, hint: str | None, atmosphere: Any) -> Identity:
    if atmosphere is not None and hasattr(atmosphere, "resolve"):
        return atmosphere.resolve(who)
    return resolve_identity(who, hint or getattr(atmosphere, "pds", None))


def sample_type_of(ident: Identity, entry: RemoteEntry, hint: str | None = None) -> type:
    """The sample type rebuilt from an entry's schema record (fetched from its repository)."""
    from atdata._wire.schema_json import type_from_schema

    ref = schema_uri(entry.value.get("schemaRef", ""))
    srepo, scoll, srkey = parse_at_uri(ref)
    spds = ident.pds if srepo == ident.did else resolve_identity(srepo, hint or ident.pds).pds
    try:
        schema, _ = get_record(spds, srepo, scoll, srkey)
    except StorageError as exc:
        raise StorageError(
            f"the schema {ref} of dataset {entry.uri} cannot be fetched: {exc}"
        ) from None
    return type_from_schema(str(schema.get("name") or srkey), schema)


def dataset_of(ident: Identity, entry: RemoteEntry, sample_type: type | None = None) -> Any:
    """A :class:`~atdata.Dataset` over one entry (its manifests attached when it has them)."""
    from atdata.dataset._dataset import Dataset

    if sample_type is None:
        sample_type = sample_type_of(ident, entry)
    size = entry.value.get("size")
    total = size.get("samples") if isinstance(size, dict) else None
    return Dataset(
        source_for(ident, entry.value),
        sample_type=sample_type,
        num_samples=total if type(total) is int and total >= 0 else None,
    )


def load_remote(
    path: str,
    sample_type: type | None = None,
    split: str | None = None,
    *,
    hint: str | None = None,
    atmosphere: Any = None,
) -> Any:
    """Load ``"@handle/name[@version]"`` or ``"@did:plc:.../name"`` as one :class:`~atdata.Dataset`.

    Names resolve through label records first (as upstream atdata does), then entry names.
    Without ``split``: the newest entry of that name; unsplit data is the ``train`` split.

    Args:
        path: The atmosphere path.
        sample_type: Decode as this type (default: rebuilt from the schema record).
        split: Pick the entry published with this split.
        hint: An XRPC service that can resolve the handle (e.g. your PDS).
        atmosphere: A logged-in :class:`~atdata.atmosphere.Atmosphere`: its PDS resolves
            names and DIDs first (no DID directory is needed for repositories it hosts).

    Raises:
        StorageError: Resolution, record or storage failures (the message names the record).
    """
    who, name, version = parse_remote_path(path)
    ident = _identity(who, hint, atmosphere)
    return dataset_of(ident, find_entry(ident, name, version, split), sample_type)


def load_remote_splits(
    path: str,
    sample_type: type | None = None,
    split: str | None = None,
    *,
    hint: str | None = None,
    atmosphere: Any = None,
) -> Any:
    """An atmosphere name's splits ``{split: Dataset}`` (unsplit data is ``train``), or one
    split's :class:`~atdata.Dataset` with ``split`` (``load_dataset`` wraps the dict in a
    :class:`~atdata.DatasetDict`).

    Raises:
        SplitNotFoundError: ``split`` is not among the published splits.
    """
    who, name, version = parse_remote_path(path)
    ident = _identity(who, hint, atmosphere)
    if split is not None:
        return dataset_of(ident, find_entry(ident, name, version, split), sample_type)
    splits = splits_of(find_entries(ident, name, version))
    return {k: dataset_of(ident, e, sample_type) for k, e in splits.items()}


def load_entry_uri(
    uri: str,
    sample_type: type | None = None,
    split: str | None = None,
    *,
    atmosphere: Any = None,
) -> dict[str, Any]:
    """The dataset entry record at ``uri`` (``at://<handle or DID>/science.alt.dataset.entry/<rkey>``)
    as ``{split: Dataset}``: one entry is one split (its metadata's, else ``train``).

    The record is checked against its CID; ``atmosphere`` (a client) resolves the repository
    through its own PDS first.

    Raises:
        ConfigError: When ``uri`` is not the AT-URI of a dataset entry record.
        SplitNotFoundError: ``split`` is not the entry's split.
        RecordNotFoundError: No record there.
    """
    repo, coll, rkey = parse_at_uri(uri)
    if coll != ENTRY:
        raise ConfigError(
            f"{uri} is a {coll} record, not a dataset entry; give the AT-URI of a {ENTRY} record "
            "(at://<did>/science.alt.dataset.entry/<rkey>) or the name @handle/dataset"
        )
    ident = _identity(repo, None, atmosphere)
    value, cid = get_record(ident.pds, ident.did, coll, rkey)
    if value.get("$type") not in (None, ENTRY):
        raise ConfigError(f"{uri} holds a {str(value.get('$type'))[:80]!r} record, not a {ENTRY}")
    entry = RemoteEntry(f"at://{ident.did}/{coll}/{rkey}", cid, value)
    have = entry.split or "train"
    if split is not None and split != have:
        raise SplitNotFoundError(f"{uri} is the {have!r} split of {entry.name!r}, not {split!r}")
    return {have: dataset_of(ident, entry, sample_type)}
