"""Core commands: ``version``, ``inspect``, ``preview``, ``verify`` and ``demo``.

``inspect`` answers from tar headers (``len()`` is a header scan) and decodes only the first
sample, to show the fields of an untyped dataset.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import typer

from atdata.cli._out import print_table

__all__ = ["describe_value", "register"]


def _console() -> Any:
    from atdata.cli._out import console

    return console()


def import_ref(spec: str, option: str, what: str) -> Any:
    """Resolve ``package.module:name`` given to ``option`` (the current directory is importable,
    as for ``python -m``), with errors that say how to fix the reference.

    Raises:
        ConfigError: When it is malformed or cannot be imported.
    """
    import sys

    from atdata._errors import ConfigError

    mod_name, _, attr = spec.partition(":")
    if not mod_name or not attr:
        raise ConfigError(f"{option} must look like 'package.module:{what}', got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ConfigError(
            f"cannot import {option} {spec!r}: {exc}; run from the directory that holds "
            f"{mod_name.split('.')[0]!r}, or install it / add its directory to PYTHONPATH"
        ) from None
    try:
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        import difflib

        close = difflib.get_close_matches(part, [n for n in dir(obj) if not n.startswith("_")])
        hint = f"; did you mean {close[0]!r}?" if close else f"; check the name in {mod_name}"
        raise ConfigError(f"cannot import {option} {spec!r}: no {part!r} there{hint}") from None
    return obj


def _load_type(spec: str | None) -> type | None:
    """Resolve ``module:Class`` (``--type``) to a sample type."""
    if spec is None:
        return None
    from atdata._errors import ConfigError

    obj = import_ref(spec, "--type", "ClassName")
    if not (isinstance(obj, type) and hasattr(obj, "atdata_fields")):
        raise ConfigError(f"--type {spec!r} is {obj!r}, not a @atdata.packable class")
    return obj


def _title(path: str, split: str) -> str:
    from rich.markup import escape

    return escape(path + (f" [{split}]" if split else ""))


def _open(path: str, sample_type: type | None) -> dict[str, Any]:
    """Split name -> Dataset ('' for a path that is not a split directory, or ``@local/NAME``).

    ``@local/NAME[@VERSION]`` is a dataset of the default index; ``@handle/NAME`` one published
    in the atmosphere (its splits); ``at://`` the dataset entry record there.
    """
    from atdata._load import load_dataset
    from atdata._shards.sources import is_remote
    from atdata.dataset._dataset import Dataset

    if path.startswith("at://"):  # a dataset entry record of the atmosphere
        return dict(load_dataset(path, sample_type))
    if path.startswith("@") and not os.path.exists(path):
        if path.startswith("@local/"):
            return {"": _indexed(path, None, sample_type)}
        return dict(load_dataset(path, sample_type))
    if not is_remote(path) and os.path.isdir(path):
        return dict(load_dataset(path, sample_type))
    return {"": Dataset(path, sample_type)}


def _indexed(name: str, db: str | None, sample_type: type | None) -> Any:
    """The dataset NAME (NAME@VERSION) or label of an index, with its recorded shard checksums
    (upstream's ``verify`` takes "a dataset name or label")."""
    from atdata._errors import NotFoundError
    from atdata.cli._sources import open_index

    idx = open_index(db)
    try:
        return idx.open_dataset(*_name_version(name), sample_type=sample_type)
    except NotFoundError:
        try:
            entry = idx.get_label(name)
        except NotFoundError:
            raise NotFoundError(
                f"no dataset or label {name!r} in the index at {idx.provider.url}; "
                "list them with: atdata ls"
            ) from None
        return idx.open_dataset(entry.name, entry.version, sample_type=sample_type)


def _name_version(name: str) -> tuple[str, str | None]:
    base, _, version = name.removeprefix("@local/").partition("@")
    return base, version or None


def _array_summary(arr: Any, stats: bool) -> str:
    text = f"{arr.dtype} {tuple(arr.shape)}"
    if stats and arr.size and arr.dtype.kind in "biuf":
        text += f" min={arr.min():.4g} max={arr.max():.4g}"
    return text


def describe_value(v: Any, *, stats: bool = False) -> str:
    """A short description of a raw or typed field value: its type, arrays as dtype and shape.

    Examples:
        >>> import numpy as np
        >>> from atdata import encode_array
        >>> describe_value(encode_array(np.zeros((2, 3), "f4")))
        'NDArray float32 (2, 3)'
        >>> describe_value([1, 2]), describe_value({"a": 1.5}), describe_value(None)
        ('list[int] (2)', 'dict (1 keys)', 'None')
    """
    if v is None:
        return "None"
    if type(v).__name__ == "ndarray":
        return "NDArray " + _array_summary(v, stats)
    if isinstance(v, (bytes, bytearray, memoryview)):
        from atdata._wire.arrays import decode_array, is_array_bytes

        if is_array_bytes(v):
            return "NDArray " + _array_summary(decode_array(v, copy=False), stats)
        return f"bytes ({len(v)})"
    if isinstance(v, list):
        inner = sorted({type(x).__name__ for x in v})
        return f"list[{' | '.join(inner) or '?'}] ({len(v)})"
    if isinstance(v, dict):
        return f"dict ({len(v)} keys)"
    if hasattr(v, "to_dict") and hasattr(type(v), "atdata_fields"):
        return type(v).__name__
    return type(v).__name__


def _preview_cell(v: Any) -> str:
    if (
        v is None
        or isinstance(v, (bytes, bytearray, memoryview, list, dict))
        or type(v).__name__ == "ndarray"
    ):
        if (
            isinstance(v, list)
            and len(v) <= 8
            and all(isinstance(x, (int, float, str, bool)) for x in v)
        ):
            return repr(v)
        return describe_value(v, stats=True)
    text = repr(v) if isinstance(v, str) else str(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _fields_of_sample(s: Any) -> dict[str, Any]:
    if hasattr(s, "items") and callable(s.items):
        return dict(s.items())
    return {spec.name: s.__dict__.get(spec.name) for spec in type(s).atdata_fields()}


def register(app: typer.Typer) -> None:
    """Add the core commands to ``app``."""

    @app.command()
    def version() -> None:
        """Print the atdata version (``atdata X.Y.Z``, as upstream's CLI does)."""
        import atdata

        typer.echo(f"atdata {atdata.__version__}")

    @app.command()
    def inspect(
        path: str = typer.Argument(
            ...,
            help="Shard, glob, brace pattern, URL or directory; @local/NAME, @handle/NAME or a dataset entry at:// URI.",
        ),
        type_: str | None = typer.Option(None, "--type", help="Sample type as module:Class."),
    ) -> None:
        """Shards, sample count, bytes and schema of a dataset (from tar headers, fast)."""
        from rich.markup import escape
        from rich.table import Table

        con = _console()
        for split, ds in _open(path, _load_type(type_)).items():
            info = ds.describe()
            con.print(f"[bold]{_title(path, split)}[/]")
            con.print(f"  sample type: {info['sample_type']}")
            con.print(f"  shards:      {info['num_shards']}")
            con.print(f"  samples:     {info['samples']}")
            con.print(f"  bytes:       {info['bytes']}")
            schema = dict(info["schema"])
            inferred = not schema
            if inferred and info["samples"]:
                first = ds.head(1)
                if first:
                    schema = {k: describe_value(v) for k, v in _fields_of_sample(first[0]).items()}
            if schema:
                t = Table(
                    title="fields (from the first sample)" if inferred else "fields",
                    title_justify="left",
                )
                t.add_column("field")
                t.add_column("type")
                for k, v in schema.items():
                    t.add_row(escape(k), escape(v))
                print_table(t, con)

    @app.command()
    def preview(
        path: str = typer.Argument(
            ...,
            help="Shard, glob, brace pattern, URL or directory; @local/NAME, @handle/NAME or a dataset entry at:// URI.",
        ),
        limit: int = typer.Option(5, "--limit", "-n", min=1, help="How many samples to show."),
        type_: str | None = typer.Option(None, "--type", help="Sample type as module:Class."),
    ) -> None:
        """The first samples as a table (arrays as dtype, shape, min/max)."""
        from rich.markup import escape
        from rich.table import Table

        con = _console()
        for split, ds in _open(path, _load_type(type_)).items():
            samples = ds.head(limit)
            t = Table(title=f"{_title(path, split)}: first {len(samples)}", title_justify="left")
            t.add_column("__key__")
            rows = [_fields_of_sample(s) for s in samples]
            cols: list[str] = []
            for r in rows:
                cols.extend(k for k in r if k not in cols)
            for c in cols:
                t.add_column(escape(c))
            for s, r in zip(samples, rows, strict=True):
                t.add_row(
                    escape(str(getattr(s, "__key__", ""))),
                    *(escape(_preview_cell(r.get(c))) for c in cols),
                )
            print_table(t, con)

    @app.command()
    def verify(
        path: str = typer.Argument(
            ...,
            help="Shard, glob, brace pattern, URL or directory; or a dataset name in the index.",
        ),
        type_: str | None = typer.Option(None, "--type", help="Sample type as module:Class."),
        db: str | None = typer.Option(
            None,
            "--db",
            help="SQLite index file for a dataset name (default: $ATDATA_HOME/index.db).",
        ),
    ) -> None:
        """Check every shard (recorded checksums when known, and a full decode); exit 1 on failure."""
        from rich.markup import escape
        from rich.table import Table

        from atdata.cli._out import progress
        from atdata.cli._sources import looks_like_shards
        from atdata.dataset._export import iter_verify

        con = _console()
        bad = 0
        total = 0
        if path.startswith("@") and not path.startswith("@local/") and db is None:
            datasets = _open(path, _load_type(type_))  # @handle/name: from the atmosphere
        elif db is not None or not looks_like_shards(path):
            datasets = {"": _indexed(path, db, _load_type(type_))}
        else:
            datasets = _open(path, _load_type(type_))
        for split, ds in datasets.items():
            t = Table(title=_title(path, split), title_justify="left")
            for c in ("shard", "samples", "sha256", "status"):
                t.add_column(c)
            n = len(ds.list_shards())
            with progress(f"verifying {split or 'shards'}", n) as step:
                for rep in iter_verify(ds):
                    total += 1
                    digest = _sha256(rep["shard"])
                    step()
                    if rep["ok"]:
                        status = "[green]ok[/]"
                    else:
                        bad += 1
                        status = f"[red]FAILED[/] {escape(rep['error'])}"
                    t.add_row(
                        escape(os.path.basename(rep["shard"])),
                        str(rep["samples"]),
                        digest[:16],
                        status,
                    )
            print_table(t, con)
        if bad:
            con.print(f"[red]{bad} of {total} shard(s) failed verification[/]")
            raise typer.Exit(1)
        con.print(f"all {total} shard(s) ok")

    @app.command()
    def demo(
        out: str | None = typer.Option(None, "--out", help="Write the demo shards here (kept)."),
        num_samples: int = typer.Option(64, "--samples", min=1, help="Samples to write."),
    ) -> None:
        """Run the quickstart: write, read, batch, lens, filter, shuffle; print a summary."""
        from atdata._demo import run_demo

        con = _console()
        s = run_demo(out, num_samples=num_samples, echo=con.print)
        con.print(
            f"[bold green]demo ok[/]: {s['samples_written']} samples, {s['shards']} shards, "
            f"{s['bytes']} bytes" + (f", kept in {out}" if out else "")
        )


def _sha256(shard: str) -> str:
    from atdata._shards.sources import is_remote

    if is_remote(shard):
        return "-"
    import hashlib

    h = hashlib.sha256()
    try:
        with open(shard, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return "-"
    return h.hexdigest()
