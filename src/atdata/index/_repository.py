"""``atdata.Repository``: route dataset-name prefixes to (provider, store) pairs.

Examples:
    >>> import os, tempfile, atdata
    >>> d = tempfile.mkdtemp()
    >>> repo = atdata.Repository({
    ...     "@local/": atdata.Index(path=os.path.join(d, "local", "index.db")),
    ...     "@lab/": atdata.Index(path=os.path.join(d, "lab", "index.db")),
    ... })
    >>> repo.route("@lab/mnist")[1], repo.route("@local/x@1.0.0")[1]
    ('mnist', 'x@1.0.0')
"""

from __future__ import annotations

from typing import Any

from atdata._errors import ConfigError
from atdata.index._index import Index

__all__ = ["Repository"]


class Repository:
    """A router from name prefixes (``"@lab/"``, ``"@local/"``) to :class:`Index` objects.

    Args:
        routes: ``{prefix: Index}``; the longest matching prefix wins.
    """

    def __init__(self, routes: dict[str, Index] | None = None) -> None:
        self._routes: dict[str, Index] = {}
        for prefix, index in (routes or {}).items():
            self.add(prefix, index)

    def add(self, prefix: str, index: Index) -> None:
        """Route names starting with ``prefix`` (e.g. ``"@lab/"``) to ``index``."""
        if not isinstance(index, Index):
            raise ConfigError(f"route {prefix!r} needs an atdata.Index, got {type(index).__name__}")
        if not prefix.startswith("@"):
            raise ConfigError(f"route prefix {prefix!r} must start with '@', e.g. '@lab/'")
        self._routes[prefix if prefix.endswith("/") else prefix + "/"] = index

    @property
    def prefixes(self) -> list[str]:
        """Configured prefixes."""
        return sorted(self._routes)

    def route(self, name: str) -> tuple[Index, str]:
        """``(index, name inside it)`` for a full name such as ``"@lab/mnist@1.0.0"``.

        Raises:
            ConfigError: When no prefix matches.
        """
        for prefix in sorted(self._routes, key=len, reverse=True):
            if name.startswith(prefix):
                return self._routes[prefix], name[len(prefix) :]
        raise ConfigError(f"no repository route matches {name!r}; configured: {self.prefixes}")

    def write_samples(self, samples: Any, *, name: str, **kwargs: Any) -> Any:
        """:meth:`Index.write_samples` on the routed index."""
        index, local = self.route(name)
        return index.write_samples(samples, name=local, **kwargs)

    def get_dataset(self, name: str, version: str | None = None, **kwargs: Any) -> Any:
        """:meth:`Index.get_dataset` on the routed index (``name@1.2.0`` selects a version)."""
        index, local = self.route(name)
        if version is None and "@" in local:
            local, version = local.split("@", 1)
        return index.get_dataset(local, version, **kwargs)

    def list_datasets(self) -> list[tuple[str, Any]]:
        """``(prefix, entry)`` for every entry of every routed index."""
        return [(p, e) for p in self.prefixes for e in self._routes[p].list_datasets()]

    def status(self) -> dict[str, Any]:
        """:meth:`Index.status` of every route."""
        return {p: self._routes[p].status() for p in self.prefixes}
