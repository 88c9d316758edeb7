"""Reading rows from one input with their positions, starting anywhere.

Every reader yields ``(position, row)`` pairs: the position is the record's index in its input
(the line of a JSONL file, the record of a CSV file after its header, the row of a parquet file
or HF dataset) and ``row`` is a ``dict``, or a :class:`BadRow` for a record that cannot be read
(invalid JSON, a CSV record with the wrong number of cells). ``start`` skips the records a
previous run already took, so a resumed ingestion continues exactly where its last sealed
shard ended.

Examples:
    >>> import io
    >>> rows = iter_jsonl(io.BytesIO(b'{"a": 1}\\n\\n{"a": \\n[1]\\n{"a": 4}\\n'), start=0)
    >>> [(p, r if isinstance(r, dict) else r.reason) for p, r in rows]
    [(0, {'a': 1}), (2, 'parse'), (3, 'parse'), (4, {'a': 4})]
    >>> list(iter_jsonl(io.BytesIO(b'{"a": 1}\\n{"a": 2}\\n'), start=1))
    [(1, {'a': 2})]
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
from collections.abc import Callable, Generator, Iterator
from typing import Any

from atdata._extras import require
from atdata._ingest._sources import Input, S3Access, open_binary

__all__ = ["BadRow", "iter_csv", "iter_input", "iter_jsonl", "iter_parquet", "iter_table"]

BATCH_ROWS = 4096


class BadRow:
    """A record that could not be read: why, and its raw text."""

    __slots__ = ("detail", "raw", "reason")

    def __init__(self, detail: str, raw: Any, reason: str = "parse") -> None:
        self.reason = reason
        self.detail = detail
        self.raw = raw


def iter_jsonl(
    stream: Any, start: int = 0, cell: list[Any] | None = None, offset: int | None = None
) -> Iterator[tuple[int, Any]]:
    """Rows of a JSON Lines stream (one object per line; blank lines are skipped).

    Args:
        stream: The bytes.
        start: The first line to yield (earlier ones are skipped).
        cell: When given, ``cell[0]`` holds the byte offset just after the last line yielded
            (where a resumed run can start reading).
        offset: The stream is already positioned at line ``start``, this many bytes in.
    """
    decode = json.JSONDecoder().decode
    lines: Any = stream
    if cell is None:
        lines = itertools.islice(stream, start, None) if offset is None else stream
    else:
        it = iter(stream)
        off = offset or 0
        if offset is None:
            for line in itertools.islice(it, start):
                off += len(line)
        lines = _counting(it, cell, off)
    for pos, line in enumerate(lines, start):
        try:
            row = decode(line.decode("utf-8") if type(line) is bytes else line)
        except ValueError as exc:  # UnicodeDecodeError too
            if not line.strip():
                continue
            text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
            yield pos, BadRow(f"invalid JSON: {exc}", text.rstrip("\r\n"))
            continue
        if type(row) is not dict:
            yield pos, BadRow(f"a JSON {type(row).__name__}, not an object", row)
            continue
        yield pos, row


def _counting(
    lines: Iterator[Any], cell: list[Any], off: int, size: Callable[[Any], int] = len
) -> Iterator[Any]:
    """``lines``, keeping in ``cell[0]`` the byte offset after the last one taken (``size``:
    a line's length in bytes)."""
    for line in lines:
        off += size(line)
        cell[0] = off
        yield line


def iter_csv(
    stream: Any,
    start: int = 0,
    where: str = "",
    cell: list[Any] | None = None,
    rest: Any = None,
    offset: int = 0,
) -> Iterator[tuple[int, Any]]:
    """Rows of a CSV stream with a header line (cells stay text; coercion parses them).

    A record holding bytes that are not UTF-8 is a :class:`BadRow` (the others are read).

    Args:
        stream: The bytes, from the start (the header).
        start: The position of the first record yielded (the records before it are skipped,
            or, with ``rest``, lie before ``offset``).
        where: Names the input in messages (``" of data.csv"``).
        cell: When given, ``cell[0]`` holds the byte offset just after the last record yielded
            (where a resumed run can start reading).
        rest: A stream of the same bytes positioned at byte ``offset``, where record ``start``
            begins: the records are read from it (only the header from ``stream``).
        offset: See ``rest``.

    Examples:
        >>> import io
        >>> raw = b'a,b\\n1,"x\\ny"\\n2,\\xff\\n3,z\\n'
        >>> cell = [None]
        >>> for p, r in iter_csv(io.BytesIO(raw), cell=cell):
        ...     print(p, r if isinstance(r, dict) else r.detail, cell[0])
        0 {'a': '1', 'b': 'x\\ny'} 12
        1 a record that is not UTF-8 text 16
        2 {'a': '3', 'b': 'z'} 20
        >>> tail = io.BytesIO(raw)
        >>> _ = tail.seek(16)  # (a resumed run: record 2 starts at byte 16)
        >>> list(iter_csv(io.BytesIO(raw), 2, rest=tail, offset=16))
        [(2, {'a': '3', 'b': 'z'})]
    """
    text = _text(stream)
    reader = csv.reader(_counting(text, cell, 0, _utf8_size) if cell is not None else text)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        yield 0, BadRow(f"unreadable CSV header{where}: {exc}", "")
        return
    if header and header[0].startswith("\ufeff"):  # a byte order mark
        header[0] = header[0][1:]
    if _not_utf8(header):
        yield 0, BadRow(f"unreadable CSV header{where}: it is not UTF-8 text", _shown(header))
        return
    n = len(header)
    if rest is not None:
        text = _text(rest)
        rows: Iterator[list[str]] = csv.reader(
            _counting(text, cell, offset, _utf8_size) if cell is not None else text
        )
    else:
        rows = itertools.islice(reader, start, None)
    pos = start
    while True:
        try:
            cells = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            yield pos, BadRow(f"unreadable CSV record: {exc}", "")
            pos += 1
            continue
        if len(cells) != n:
            if cells:
                yield pos, BadRow(f"{len(cells)} cells where the header has {n}", _shown(cells))
            pos += 1
            continue
        if _not_utf8(cells):
            yield pos, BadRow("a record that is not UTF-8 text", _shown(cells))
        else:
            yield pos, dict(zip(header, cells, strict=True))
        pos += 1


def _text(stream: Any) -> Any:
    """``stream``'s lines as text, untranslated (as :mod:`csv` wants them), bytes that are not
    UTF-8 kept as lone surrogates (so each line encodes back to its bytes, and only the records
    holding them are rejected)."""
    return io.TextIOWrapper(stream, encoding="utf-8", errors="surrogateescape", newline="")


def _utf8_size(line: str) -> int:
    """The bytes ``line`` came from (bytes that were not UTF-8 kept as lone surrogates)."""
    return len(line) if line.isascii() else len(line.encode("utf-8", "surrogateescape"))


def _not_utf8(cells: list[str]) -> bool:
    for c in cells:
        if not c.isascii():
            try:
                c.encode("utf-8")
            except UnicodeEncodeError:  # (a lone surrogate: a byte that was not UTF-8)
                return True
    return False


def _shown(cells: list[str]) -> list[str]:
    """The cells with bytes that were not UTF-8 shown as U+FFFD (fit for the rejects log)."""
    return [c.encode("utf-8", "surrogateescape").decode("utf-8", "replace") for c in cells]


def row_reader(schema: Any) -> Any:
    """The Arrow -> row converter of :mod:`atdata.dataset._arrow_read` for ``schema`` (tensor
    columns become arrays, structs nested samples), or ``None`` when its columns cannot be
    fields (then rows come from ``to_pylist``)."""
    from atdata._errors import SchemaError
    from atdata.dataset._arrow_read import RowReader

    try:
        return RowReader(schema)
    except SchemaError:
        return None


def iter_table(
    batches: Iterator[Any], start: int = 0, reader: Any = None
) -> Iterator[tuple[int, Any]]:
    """Rows of a stream of Arrow record batches (or tables), skipping the first ``start``.

    With a ``reader`` (see :func:`row_reader`) rows are its wire maps (arrays as their wire
    bytes, nulls left out); without, ``to_pylist`` dicts.
    """
    pos = 0
    for batch in batches:
        n = batch.num_rows
        if pos + n <= start:
            pos += n
            continue
        skip = max(0, start - pos)
        part = batch.slice(skip) if skip else batch
        rows = (r for _, r in reader.rows(part)) if reader is not None else part.to_pylist()
        for i, row in enumerate(rows):
            yield pos + skip + i, row
        pos += n


def iter_parquet(f: Any, start: int = 0) -> Iterator[tuple[int, Any]]:
    """Rows of a parquet file (a path or seekable file); row groups before ``start`` are
    skipped without being read."""
    pq = require("pyarrow.parquet", "arrow", "reading parquet")
    pf = pq.ParquetFile(f)
    md = pf.metadata
    pos, groups = 0, list[int]()
    for g in range(md.num_row_groups):
        n = md.row_group(g).num_rows
        if not groups and pos + n <= start:
            pos += n  # wholly before start: never read
        else:
            groups.append(g)
    if not groups:
        return
    batches = pf.iter_batches(batch_size=BATCH_ROWS, row_groups=groups)
    for p, row in iter_table(batches, start - pos, row_reader(pf.schema_arrow)):
        yield pos + p, row


def arrow_schema(inp: Input, s3: S3Access | None = None) -> Any:
    """The Arrow schema of a parquet input or HF dataset (``None`` for text formats)."""
    if inp.fmt == "hf":
        if hasattr(inp.obj, "data"):
            return inp.obj.data.schema
        features = getattr(inp.obj, "features", None)  # IterableDataset: from its features
        if features is None:
            from atdata._errors import SchemaError

            raise SchemaError("this streaming dataset declares no features")
        return features.arrow_schema
    if inp.fmt == "parquet":
        pq = require("pyarrow.parquet", "arrow", "reading parquet")
        with _seekable(inp, s3) as f:
            return pq.ParquetFile(f).schema_arrow
    return None


class _seekable:
    """A seekable file for a parquet input (remote ones are spooled to a temporary file)."""

    def __init__(self, inp: Input, s3: S3Access | None) -> None:
        self._inp, self._s3 = inp, s3
        self._f: Any = None

    def __enter__(self) -> Any:
        if self._inp.location == "local" and not self._inp.compression:
            self._f = open(self._inp.uri, "rb")
            return self._f
        import shutil
        import tempfile

        self._f = tempfile.TemporaryFile()
        with open_binary(self._inp, self._s3) as src:
            shutil.copyfileobj(src, self._f, 1 << 20)
        self._f.seek(0)
        return self._f

    def __exit__(self, *exc: Any) -> None:
        self._f.close()


def iter_input(
    inp: Input,
    start: int = 0,
    s3: S3Access | None = None,
    offset: int | None = None,
    cell: list[Any] | None = None,
) -> Generator[tuple[int, Any], None, None]:
    """Rows of ``inp`` from position ``start``.

    For JSONL and CSV, ``offset`` (the byte offset of record ``start``, from a previous run's
    ``cell``) lets the reading start there instead of parsing and skipping the records before
    it (see :func:`~atdata._ingest._sources.open_binary`); ``cell`` tracks that offset (see
    :func:`iter_jsonl` and :func:`iter_csv`).
    """
    if inp.fmt == "hf":
        yield from _iter_hf(inp.obj, start)
        return
    if inp.fmt == "parquet":
        with _seekable(inp, s3) as f:
            yield from iter_parquet(f, start)
        return
    if inp.fmt == "csv":
        with contextlib.ExitStack() as stack:
            stream = stack.enter_context(open_binary(inp, s3))
            rest = stack.enter_context(open_binary(inp, s3, offset)) if offset else None
            yield from iter_csv(stream, start, f" of {inp.uri}", cell, rest, offset or 0)
        return
    with open_binary(inp, s3, offset or 0) as stream:
        yield from iter_jsonl(stream, start, cell, offset)


def _iter_hf(ds: Any, start: int) -> Iterator[tuple[int, Any]]:
    if not hasattr(ds, "__len__"):  # an IterableDataset (streaming): rows in order
        for i, row in enumerate(ds.skip(start) if start else ds, start):
            yield i, row
        return
    table = ds.with_format("arrow")
    reader = row_reader(ds.data.schema)
    n = len(ds)
    for lo in range(start, n, BATCH_ROWS):
        part = table[lo : min(n, lo + BATCH_ROWS)]
        for i, row in iter_table(iter([part]), 0, reader):
            yield lo + i, row
