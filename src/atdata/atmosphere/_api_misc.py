"""The class API for lenses, labels and lens verifications: ``LensPublisher``/``LensLoader``,
``LabelPublisher``/``LabelLoader``, ``VerificationPublisher``/``VerificationLoader``.

Lens records point at code (repository, commit, path); nothing here fetches or runs code.
"""

from __future__ import annotations

from typing import Any

from atdata._errors import ConfigError, RecordNotFoundError
from atdata.atmosphere._api_records import ClientBound, RecordLoader, _at, every_record
from atdata.atmosphere._lexicon import (
    LexCodeHash,
    LexCodeReference,
    LexLabelRecord,
    LexLensRecord,
    LexLensVerification,
)
from atdata.atmosphere._types import LEXICON_NAMESPACE, AtUri

__all__ = [
    "LabelLoader",
    "LabelPublisher",
    "LensLoader",
    "LensPublisher",
    "VerificationLoader",
    "VerificationPublisher",
]


def _create(client: Any, suffix: str, record: dict[str, Any], rkey: str | None) -> AtUri:
    from atdata.atmosphere._cid import record_cid

    out = client.create_record(f"{LEXICON_NAMESPACE}.{suffix}", record, rkey=rkey)
    uri = AtUri.parse(str(out))
    uri.cid = getattr(out, "cid", None) or record_cid(record)
    return uri


class LensPublisher(ClientBound):
    """Publish ``science.alt.dataset.lens`` records (idempotent: the same lens is written once)."""

    def publish(
        self,
        name: str,
        source_schema_uri: str | None = None,
        target_schema_uri: str | None = None,
        code_repository: str | None = None,
        code_commit: str | None = None,
        getter_path: str | None = None,
        putter_path: str | None = None,
        description: str | None = None,
        language: str | None = None,
        metadata: dict[str, Any] | None = None,
        rkey: str | None = None,
        *,
        source_schema_version: str | None = None,
        target_schema_version: str | None = None,
        source_schema: str | None = None,
        target_schema: str | None = None,
        getter_code: dict[str, str] | None = None,
        putter_code: dict[str, str] | None = None,
    ) -> AtUri:
        """Publish a lens between two schema records.

        The code is given either as ``code_repository`` + ``code_commit`` + ``getter_path`` /
        ``putter_path``, or as ``getter_code`` / ``putter_code`` dicts (``repository``,
        ``commit``, ``path``); ``source_schema``/``target_schema`` are accepted for the
        ``*_uri`` arguments. Without a putter the getter's reference is recorded for both.
        The arguments up to ``rkey`` may also be given by position, in upstream's documented
        order. ``language``, ``metadata`` and the schema versions are written into the record;
        ``rkey`` names the record's key (default: one chosen by the PDS).

        Raises:
            ConfigError: When a schema or the getter's code is not given.
        """
        from atdata.atmosphere._publish import publish_lens
        from atdata.atmosphere._records import CodeRef

        src, dst = source_schema_uri or source_schema, target_schema_uri or target_schema
        if not src or not dst:
            raise ConfigError(f"lens {name!r} needs source_schema_uri and target_schema_uri")

        def ref(code: dict[str, str] | None, path: str | None) -> CodeRef | None:
            if code:
                return CodeRef(
                    code["repository"],
                    code["commit"],
                    code["path"],
                    code.get("branch"),
                    code.get("language") or language or "python",
                )
            if path and code_repository and code_commit:
                return CodeRef(code_repository, code_commit, path, None, language or "python")
            return None

        getter = ref(getter_code, getter_path)
        if getter is None:
            raise ConfigError(
                f"lens {name!r} needs its getter's code: getter_code={{repository, commit, path}} "
                "or code_repository + code_commit + getter_path"
            )
        putter = ref(putter_code, putter_path) or getter
        pub = publish_lens(
            self.client,
            name,
            src,
            dst,
            getter,
            putter,
            description=description,
            rkey=rkey,
            language=language,
            metadata=metadata,
            source_schema_version=source_schema_version,
            target_schema_version=target_schema_version,
        )
        return _at(pub)

    def publish_from_lens(
        self,
        lens_obj: Any,
        *,
        name: str,
        source_schema_uri: str,
        target_schema_uri: str,
        code_repository: str,
        code_commit: str,
        description: str | None = None,
        language: str | None = None,
        metadata: dict[str, Any] | None = None,
        source_schema_version: str | None = None,
        target_schema_version: str | None = None,
        rkey: str | None = None,
    ) -> AtUri:
        """:meth:`publish` with the code paths taken from a :class:`~atdata.Lens`: its getter's
        and putter's ``module:qualname`` (the putter's is the getter's when it has none).

        Raises:
            ConfigError: When the getter is not an importable function (a lambda, a closure).
        """
        paths = []
        for fn in (getattr(lens_obj, "_get", None), getattr(lens_obj, "_put", None)):
            mod, qual = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
            paths.append(f"{mod}:{qual}" if mod and qual and "<" not in qual else None)
        if paths[0] is None:
            raise ConfigError(
                f"lens {name!r}: its getter is not an importable function (a lambda or a nested "
                "function); publish a module-level function, or use publish(getter_path=...)"
            )
        return self.publish(
            name=name, source_schema_uri=source_schema_uri, target_schema_uri=target_schema_uri,
            code_repository=code_repository, code_commit=code_commit, getter_path=paths[0],
            putter_path=paths[1], description=description, language=language,
            metadata=metadata, source_schema_version=source_schema_version,
            target_schema_version=target_schema_version, rkey=rkey,
        )  # fmt: skip


class LensLoader(RecordLoader[LexLensRecord]):
    """Read ``science.alt.dataset.lens`` records (``get_typed``: a :class:`LexLensRecord`; data
    only: no code is fetched or run)."""

    kind, record_class, lister = "lens", LexLensRecord, "list_lenses"

    def find_by_schemas(
        self, source_schema_uri: str, target_schema_uri: str | None = None, repo: str | None = None
    ) -> list[dict[str, Any]]:
        """Lenses from ``source_schema_uri`` (to ``target_schema_uri`` when given), from every
        page of ``repo``'s lens records (default: the logged-in account)."""
        return [
            r
            for r in every_record(self.client, "lens", repo)
            if r.get("sourceSchema") == source_schema_uri
            and (target_schema_uri is None or r.get("targetSchema") == target_schema_uri)
        ]


class LabelPublisher(ClientBound):
    """Publish ``science.alt.dataset.label`` records: names (and versions) for dataset entries."""

    def publish(
        self,
        name: str,
        dataset_uri: str,
        *,
        version: str | None = None,
        description: str | None = None,
        rkey: str | None = None,
    ) -> AtUri:
        """Point ``name`` (``version``) at ``dataset_uri``; the label's AT-URI.

        Idempotent: a label of that name and version already pointing there is kept; one
        pointing elsewhere is repointed. With ``rkey`` the label is written at that key.
        """
        from atdata.atmosphere._labels import label_record
        from atdata.atmosphere._publish import publish_label

        if rkey is not None:
            rec = label_record(name, str(dataset_uri), version=version, description=description)
            return _create(self.client, "label", rec, rkey)
        pub = publish_label(
            self.client, name, str(dataset_uri), version=version, description=description
        )
        return _at(pub)


class LabelLoader(RecordLoader[LexLabelRecord]):
    """Read labels (``get_typed``: a :class:`LexLabelRecord`) and resolve
    ``(handle, name, version)`` to a dataset entry's AT-URI."""

    kind, record_class, lister = "label", LexLabelRecord, "list_labels"

    def resolve(self, handle_or_did: str, name: str, version: str | None = None) -> str:
        """The entry URI the newest label ``name`` (of ``version``) points at; every page of the
        repository's labels is read.

        Raises:
            RecordNotFoundError: (a ``KeyError``) when no such label exists.
        """
        from atdata.atmosphere._labels import LABEL, pick_label

        who = handle_or_did.lstrip("@")
        if hasattr(self.client, "records"):
            repo = None if who in _own(self.client) else who
            labels = [v for _u, _c, v in self.client.records(LABEL, repo)]
        else:
            labels = self.client.list_labels(repo=who, limit=100)
        uri = pick_label(labels, name, version)
        if uri is None:
            raise RecordNotFoundError(
                f"@{who} has no label {name!r}" + (f" version {version!r}" if version else "")
            )
        return uri


def _own(client: Any) -> tuple[str, ...]:
    if not getattr(client, "is_authenticated", False):
        return ()
    return (str(client.did), str(client.handle))


class VerificationPublisher(ClientBound):
    """Publish ``science.alt.dataset.lensVerification`` records."""

    def publish(
        self,
        *,
        lens_uri: str,
        lens_commit: str,
        verification_method: str,
        code_hash: LexCodeHash | None = None,
        proof_ref: LexCodeReference | None = None,
        description: str | None = None,
        rkey: str | None = None,
    ) -> AtUri:
        """Record that the lens at ``lens_uri`` (code at ``lens_commit``) was verified."""
        rec = LexLensVerification(
            lens=str(lens_uri),
            lens_commit=lens_commit,
            verification_method=verification_method,
            code_hash=code_hash,
            proof_ref=proof_ref,
            description=description,
        ).to_record()
        return _create(self.client, "lensVerification", rec, rkey)


class VerificationLoader(RecordLoader[LexLensVerification]):
    """Read ``science.alt.dataset.lensVerification`` records (``get_typed``: a
    :class:`LexLensVerification`)."""

    kind, record_class = "lensVerification", LexLensVerification

    def list_all(self, repo: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Verification records of ``repo`` (default: the logged-in account), at most ``limit``."""
        recs, _cursor = self.client.list_records(
            f"{LEXICON_NAMESPACE}.{self.kind}", repo=repo, limit=limit
        )
        return list(recs)

    def _all(self, repo: str | None, limit: int) -> list[dict[str, Any]]:
        return self.list_all(repo, limit)

    def list_for_lens(
        self, lens_uri: str, repo: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Verifications of the lens at ``lens_uri``."""
        return [r for r in self._all(repo, limit) if r.get("lens") == str(lens_uri)]

    def find_by_method(
        self, method: str, repo: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Verifications made with ``method`` (e.g. ``science.alt.dataset.verificationMethod#...``)."""
        return [r for r in self._all(repo, limit) if r.get("verificationMethod") == method]
