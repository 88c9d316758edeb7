"""The viewer's ASGI application: a small read-only router over :class:`ViewerAPI`.

Routes (``GET``/``HEAD`` only; anything else is ``405``):

- ``/``: the page (``static/index.html``); ``/static/app.js``, ``/static/app.css``;
- ``/api/datasets``: the listing; ``/api/datasets/{id}``: one dataset;
- ``/api/datasets/{id}/samples?offset=&length=``: a page of samples (at most 100);
- ``/api/datasets/{id}/query?where=&offset=&length=``: a page of a manifest query;
- ``/api/datasets/{id}/thumb?key=&field=``: a PNG thumbnail.

Path segments are split on the raw (still percent-encoded) path, then decoded, so an id may hold
``/`` as ``%2F``; an id is only ever a key of the registry. Static files are a fixed set read at
start. Handlers run in worker threads, so one slow read does not stall the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, unquote

from atdata._errors import AtdataError, ConfigError, MissingExtraError, NotFoundError
from atdata._version import __version__
from atdata.viewer._api import MAX_PAGE, ViewerAPI

__all__ = ["ViewerApp", "create_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_STATIC = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)
_MAX_QUERY_STRING = 8192


class _HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _status_of(exc: BaseException) -> int:
    if isinstance(exc, _HTTPError):
        return exc.status
    if isinstance(exc, (NotFoundError, KeyError, IndexError)):
        return 404
    if isinstance(exc, MissingExtraError):
        return 501
    if isinstance(exc, (ConfigError, ValueError)):
        return 400
    return 500


class ViewerApp:
    """A read-only ASGI app showing datasets (make one with :func:`atdata.viewer.create_app`).

    Args:
        api: What the routes answer.
        allowed_hosts: ``Host`` header values accepted (``host`` or ``host:port``); ``None``
            accepts any. A server on a loopback address should accept only loopback names, so
            a web page cannot reach it through DNS rebinding.
        workers: Threads that run the handlers.

    Attributes:
        api: The :class:`~atdata.viewer._api.ViewerAPI` (its registry, limits and caches).
    """

    api: ViewerAPI

    def __init__(
        self, api: ViewerAPI, *, allowed_hosts: Sequence[str] | None = None, workers: int = 4
    ) -> None:
        self.api = api
        self._allowed = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="viewer")
        pkg = resources.files("atdata.viewer").joinpath("static")
        self._static = {n: pkg.joinpath(n).read_bytes() for n in _STATIC}

    # -- ASGI ---------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":  # websockets: not served
            return
        method = scope.get("method", "GET")
        head = method == "HEAD"
        try:
            if method not in ("GET", "HEAD"):
                raise _HTTPError(405, f"the viewer is read-only: {method} is not allowed")
            self._check_host(scope)
            status, ctype, body, extra = await self._route(scope)
        except Exception as exc:  # every failure answers as JSON with one message
            status = _status_of(exc)
            msg = exc.message if isinstance(exc, _HTTPError) else str(exc)
            if status == 500 and not isinstance(exc, AtdataError):
                msg = f"internal error ({type(exc).__name__}: {str(exc)[:300]})"
            ctype, extra = "application/json", []
            body = json.dumps({"error": msg[:2000], "status": status}).encode()
            if status == 405:
                extra = [(b"allow", b"GET, HEAD")]
        headers = [
            (b"content-type", ctype.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            *extra,
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                self._pool.shutdown(wait=False, cancel_futures=True)
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _check_host(self, scope: Scope) -> None:
        if self._allowed is None:
            return
        host = ""
        for k, v in scope.get("headers") or ():
            if k == b"host":
                host = v.decode("latin-1").lower()
        bare = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if host not in self._allowed and bare not in self._allowed:
            raise _HTTPError(421, f"host {host[:100]!r} is not served here")

    # -- routing ------------------------------------------------------------------------------
    @staticmethod
    def _segments(scope: Scope) -> list[str]:
        raw = scope.get("raw_path")
        text = raw.decode("latin-1") if raw else scope.get("path", "/")
        text = text.split("?", 1)[0]
        if not text.startswith("/"):
            raise _HTTPError(404, "not found")
        root = scope.get("root_path") or ""
        if root and text.startswith(root):
            text = text[len(root) :] or "/"
        return [unquote(s, errors="strict") for s in text.split("/")[1:]]

    @staticmethod
    def _params(scope: Scope) -> dict[str, str]:
        qs = scope.get("query_string") or b""
        if len(qs) > _MAX_QUERY_STRING:
            raise _HTTPError(414, f"query string longer than {_MAX_QUERY_STRING} bytes")
        pairs = parse_qsl(qs.decode("latin-1"), keep_blank_values=True, max_num_fields=16)
        out: dict[str, str] = {}
        for k, v in pairs:  # decode as UTF-8 (parse_qsl decoded the escapes as latin-1)
            out.setdefault(k, v.encode("latin-1").decode("utf-8", "replace"))
        return out

    async def _route(self, scope: Scope) -> tuple[int, str, bytes, list[tuple[bytes, bytes]]]:
        try:
            seg = self._segments(scope)
        except UnicodeDecodeError:
            raise _HTTPError(404, "not found") from None
        if seg in ([], [""], ["index.html"]):
            return 200, _STATIC["index.html"], self._static["index.html"], [
                (b"content-security-policy", _CSP.encode()),
                (b"cache-control", b"no-cache"),
            ]  # fmt: skip
        if len(seg) == 2 and seg[0] == "static" and seg[1] in _STATIC and seg[1] != "index.html":
            return 200, _STATIC[seg[1]], self._static[seg[1]], [(b"cache-control", b"no-cache")]
        if not seg or seg[0] != "api":
            raise _HTTPError(404, "not found")
        params = self._params(scope)
        api = self.api
        call: Callable[[], Any]
        rest = seg[1:]
        if rest == ["info"]:
            call = lambda: {"version": __version__, "max_page": MAX_PAGE}  # noqa: E731
        elif rest == ["datasets"]:
            call = api.datasets
        elif len(rest) == 2 and rest[0] == "datasets":
            call = lambda: api.detail(rest[1])  # noqa: E731
        elif len(rest) == 3 and rest[0] == "datasets" and rest[2] == "samples":
            call = lambda: api.samples(rest[1], params)  # noqa: E731
        elif len(rest) == 3 and rest[0] == "datasets" and rest[2] == "query":
            call = lambda: api.query(rest[1], params)  # noqa: E731
        elif len(rest) == 3 and rest[0] == "datasets" and rest[2] == "thumb":
            png = await self._run(lambda: api.thumbnail(rest[1], params))
            return 200, "image/png", png, [(b"cache-control", b"private, max-age=3600")]
        else:
            raise _HTTPError(404, "no such API route")
        result = await self._run(call)
        body = json.dumps(result, separators=(",", ":"), allow_nan=False).encode()
        if len(body) > api.max_response_bytes:
            raise _HTTPError(
                413,
                f"the response would be {len(body)} bytes, over the viewer's cap of "
                f"{api.max_response_bytes}; ask for fewer rows (length=)",
            )
        return 200, "application/json", body, [(b"cache-control", b"no-store")]

    async def _run(self, fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)


def create_app(
    *datasets: Any,
    index: Any = None,
    include_index: bool = False,
    allowed_hosts: Sequence[str] | None = None,
    max_response_bytes: int = 1 << 20,
    string_limit: int = 200,
    thumb_cache_bytes: int = 32 << 20,
    thumb_side: int = 128,
) -> ViewerApp:
    """A read-only dataset viewer as an ASGI app, to serve with any ASGI server or embed.

    The datasets shown are fixed here: requests name them by id, never by path.

    Args:
        *datasets: Shard paths, patterns or directories (splits inferred), ``@local/name``
            (every version; ``@local/name@1.0.0`` one), ``@handle/name``, :class:`~atdata.Dataset`
            s or :class:`~atdata.DatasetDict` s.
        index: The :class:`~atdata.Index` for ``@local/`` names (default: the default index).
        include_index: Also list every entry of the index (re-read on each listing).
        allowed_hosts: ``Host`` values accepted (``None``: any); ``atdata serve`` on a loopback
            address accepts only loopback names.
        max_response_bytes: Cap on any JSON response; pages stop adding rows before it.
        string_limit: Characters of a text value shown before it is cut (and marked ``cut``).
        thumb_cache_bytes: Bytes of PNG thumbnails cached (by shard checksum, key and field).
        thumb_side: Largest thumbnail side in pixels.

    Returns:
        The :class:`ViewerApp` (an ASGI callable).

    Raises:
        ConfigError: With nothing to show, or a target of an unknown kind.
        DataNotFoundError: When a path matches no shards.
        NotFoundError: When a ``@local/`` name is not in the index.

    Examples:
        >>> import asyncio, json, os, tempfile, atdata, httpx
        >>> from atdata.viewer import create_app
        >>> d = tempfile.mkdtemp()
        >>> _ = atdata.write_samples([{"text": "hi", "n": i} for i in range(3)],
        ...                          os.path.join(d, "notes.tar"))
        >>> app = create_app(os.path.join(d, "notes.tar"))
        >>> async def get(url):
        ...     transport = httpx.ASGITransport(app=app)
        ...     async with httpx.AsyncClient(transport=transport, base_url="http://v") as c:
        ...         return (await c.get(url)).json()
        >>> [x["id"] for x in asyncio.run(get("/api/datasets"))["datasets"]]
        ['notes']
        >>> page = asyncio.run(get("/api/datasets/notes/samples?offset=1&length=1"))
        >>> page["total"], page["rows"][0]["cells"]["n"]
        (3, {'t': 'num', 'v': 1})
    """
    from atdata.viewer._cells import CellPolicy
    from atdata.viewer._registry import Registry

    registry = Registry(datasets, index=index, include_index=include_index)
    api = ViewerAPI(
        registry,
        policy=CellPolicy(string_limit=string_limit),
        max_response_bytes=max_response_bytes,
        thumb_cache_bytes=thumb_cache_bytes,
        thumb_side=thumb_side,
    )
    return ViewerApp(api, allowed_hosts=allowed_hosts)
