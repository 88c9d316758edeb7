"""Search datasets: locally (an :class:`~atdata.Index`) and through an ATProto AppView.

Examples:
    >>> import os, tempfile, atdata
    >>> idx = atdata.Index(path=os.path.join(tempfile.mkdtemp(), "i.db"))
    >>> @atdata.packable
    ... class Row:
    ...     x: int
    >>> _ = idx.write([Row(x=1)], name="mnist-train", tags=["vision"])
    >>> _ = idx.write([Row(x=2)], name="cifar", tags=["vision"])
    >>> [r.name for r in LocalSearchBackend(idx).search(text="MNIST").items]
    ['mnist-train']
    >>> [r.name for r in idx.search(tags=["vision"]).items]
    ['cifar', 'mnist-train']
"""

from __future__ import annotations

from typing import Any

from atdata._errors import AppViewRequiredError, AppViewUnavailableError
from atdata.index._search import (
    LocalSearchBackend,
    SearchAggregator,
    SearchBackend,
    SearchResult,
    SearchResults,
)

__all__ = [
    "AppViewSearchBackend",
    "LocalSearchBackend",
    "SearchAggregator",
    "SearchBackend",
    "SearchResult",
    "SearchResults",
]

SEARCH_NSID = "science.alt.dataset.searchDatasets"


class AppViewSearchBackend:
    """Search through an AppView's ``science.alt.dataset.searchDatasets`` query.

    Args:
        atmosphere: An atmosphere client with an AppView configured (it must offer
            ``xrpc_query(nsid, params=...)``).
    """

    def __init__(self, atmosphere: Any) -> None:
        self._atmo = atmosphere

    @property
    def name(self) -> str:
        return "atmosphere"

    def _query(self, nsid: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        query = getattr(self._atmo, "xrpc_query", None)
        if query is None or getattr(self._atmo, "has_appview", True) is False:
            raise AppViewRequiredError("search")
        try:
            return query(nsid, params=params or {})
        except (AppViewRequiredError, AppViewUnavailableError):
            raise
        except OSError as exc:
            raise AppViewUnavailableError(
                str(getattr(self._atmo, "appview", "the AppView")), type(exc).__name__
            ) from None

    def search(
        self,
        text: str | None = None,
        tags: list[str] | None = None,
        schema_ref: str | None = None,
        repo: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> SearchResults:
        """One page of AppView results (at most 100 per page).

        Raises:
            AppViewRequiredError: When the client has no AppView.
            AppViewUnavailableError: When the AppView cannot be reached.
        """
        params: dict[str, Any] = {"limit": min(limit, 100)}
        for k, v in (("q", text), ("tags", tags), ("schemaRef", schema_ref), ("repo", repo),
                     ("cursor", cursor)):  # fmt: skip
            if v is not None:
                params[k] = v
        out = self._query(SEARCH_NSID, params)
        items = [
            SearchResult(
                e.get("uri", ""),
                e.get("name", ""),
                e.get("description"),
                list(e.get("tags") or []),
                e.get("schemaRef"),
                "atmosphere",
                None,
                e,
            )
            for e in out.get("entries", [])
        ]
        return SearchResults(items, out.get("cursor"), None, "atmosphere")

    def health_check(self) -> bool:
        try:
            self._query("science.alt.dataset.describeService")
        except Exception:
            return False
        return True
