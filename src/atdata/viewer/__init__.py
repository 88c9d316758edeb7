"""``atdata.viewer``: look at datasets in a browser (``atdata serve``), or embed the app.

:func:`create_app` returns a read-only ASGI app: a page of plain HTML/JS/CSS (no build step)
over a JSON API: the datasets, one dataset's schema, shards, manifest aggregates and
histograms, pages of samples read by random access, queries over the manifests (the engine of
``ds.query``) and PNG thumbnails of image-shaped arrays. Serving it needs an ASGI server
(``pip install "atdata[viewer]"`` installs uvicorn); importing this module imports none.

Examples:
    >>> import atdata.viewer as V
    >>> V.__all__
    ['CellPolicy', 'ServerThread', 'ViewerApp', 'create_app', 'serve']
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from atdata._lazy import lazy_module

_LAZY: dict[str, str] = {
    "CellPolicy": "atdata.viewer._cells",
    "ServerThread": "atdata.viewer._serve",
    "ViewerApp": "atdata.viewer._app",
    "create_app": "atdata.viewer._app",
    "serve": "atdata.viewer._serve",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_module(globals(), _LAZY)

if TYPE_CHECKING:  # pragma: no cover
    from atdata.viewer._app import ViewerApp, create_app
    from atdata.viewer._cells import CellPolicy
    from atdata.viewer._serve import ServerThread, serve
