"""Dataset search over an index: results, the local backend and the aggregator.

:mod:`atdata.search` re-exports these with the AppView backend (the atmosphere's search).

Examples:
    >>> class Fixed:
    ...     name = "fixed"
    ...     def health_check(self): return True
    ...     def search(self, text=None, tags=None, schema_ref=None, repo=None, limit=50, cursor=None):
    ...         return SearchResults([SearchResult("u1", "mnist"), SearchResult("u1", "mnist")], source="fixed")
    >>> r = SearchAggregator([Fixed()]).search(text="mn")
    >>> [i.name for i in r.items], r.source
    (['mnist'], 'fixed')
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, runtime_checkable

from atdata._logging import get_logger

__all__ = [
    "LocalSearchBackend",
    "SearchAggregator",
    "SearchBackend",
    "SearchResult",
    "SearchResults",
]


@dataclasses.dataclass
class SearchResult:
    """One dataset found by a search.

    Attributes:
        uri: AT URI, or the entry's CID for local results.
        name: Dataset name.
        description: Its description, if any.
        tags: Its tags.
        schema_ref: Its schema reference, if any.
        source: The backend that found it (``"local"``, ``"atmosphere"``, ...).
        score: Relevance, when the backend ranks.
        record: The raw record, when the backend has one.
    """

    uri: str
    name: str
    description: str | None = None
    tags: list[str] = dataclasses.field(default_factory=list)
    schema_ref: str | None = None
    source: str = "unknown"
    score: float | None = None
    record: dict[str, Any] | None = None


@dataclasses.dataclass
class SearchResults:
    """A page of results.

    Attributes:
        items: The results of this page.
        cursor: Pass it back as ``cursor=`` for the next page (``None``: last page).
        total_hint: Total number of matches, when known.
        source: Which backend(s) answered (comma-separated).
    """

    items: list[SearchResult] = dataclasses.field(default_factory=list)
    cursor: str | None = None
    total_hint: int | None = None
    source: str = "unknown"

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Any:
        return iter(self.items)


@runtime_checkable
class SearchBackend(Protocol):
    """A search backend: a ``name``, ``search(...)`` and ``health_check()``."""

    @property
    def name(self) -> str: ...

    def search(
        self,
        text: str | None = None,
        tags: list[str] | None = None,
        schema_ref: str | None = None,
        repo: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> SearchResults: ...

    def health_check(self) -> bool: ...


def _entry_tags(entry: Any) -> list[str]:
    tags = list(getattr(entry, "tags", None) or [])
    meta = getattr(entry, "metadata", None) or {}
    if isinstance(meta.get("tags"), list):
        tags += [t for t in meta["tags"] if t not in tags]
    return tags


class LocalSearchBackend:
    """Search an :class:`~atdata.Index`'s entries (latest version of each name).

    ``text`` matches names and descriptions (case-insensitive substring), ``tags`` must all be
    present (entry tags or ``metadata["tags"]``), ``schema_ref`` must be equal. ``repo`` does
    not apply to local entries. ``cursor`` is an offset.
    """

    def __init__(self, index: Any) -> None:
        self._index = index

    @property
    def name(self) -> str:
        return "local"

    def search(
        self,
        text: str | None = None,
        tags: list[str] | None = None,
        schema_ref: str | None = None,
        repo: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> SearchResults:
        latest: dict[str, Any] = {}
        for e in self._index.datasets:  # sorted by name then version: the last one wins
            latest[e.name] = e
        needle = text.lower() if text else None
        found: list[SearchResult] = []
        for e in latest.values():
            meta = e.metadata or {}
            desc = e.description or (meta.get("description") if isinstance(meta, dict) else None)
            if (
                needle is not None
                and needle not in e.name.lower()
                and needle not in (desc or "").lower()
            ):
                continue
            if schema_ref is not None and e.schema_ref != schema_ref:
                continue
            etags = _entry_tags(e)
            if tags and not all(t in etags for t in tags):
                continue
            found.append(
                SearchResult(
                    e.cid,
                    e.name,
                    desc,
                    etags,
                    e.schema_ref,
                    "local",
                    None,
                    {"version": e.version, "data_urls": e.data_urls},
                )
            )
        start = int(cursor) if cursor else 0
        page = found[start : start + limit]
        nxt = str(start + limit) if start + limit < len(found) else None
        return SearchResults(page, nxt, len(found), "local")

    def health_check(self) -> bool:
        return True


class SearchAggregator:
    """Query several backends in order and merge their results (first occurrence wins).

    A backend whose health check fails, or whose search raises, is skipped with a warning,
    so a search degrades to the backends that answer.
    """

    def __init__(self, backends: list[Any]) -> None:
        self._backends = list(backends)

    def search(
        self,
        text: str | None = None,
        tags: list[str] | None = None,
        schema_ref: str | None = None,
        repo: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> SearchResults:
        log = get_logger()
        items: list[SearchResult] = []
        seen: set[tuple[str, str]] = set()
        sources: list[str] = []
        for b in self._backends:
            try:
                if not b.health_check():
                    log.warning("search backend %s is not healthy; skipped", b.name)
                    continue
                res = b.search(text=text, tags=tags, schema_ref=schema_ref, repo=repo, limit=limit)
            except Exception as exc:
                log.warning("search backend %s failed (%s); skipped", b.name, type(exc).__name__)
                continue
            sources.append(res.source)
            for it in res.items:
                key = (it.uri, it.name)
                if key not in seen:
                    seen.add(key)
                    items.append(it)
        return SearchResults(items[:limit], None, len(items), ",".join(sources) or "none")
