"""Query commands: ``atdata query PATH "SQL"`` and ``atdata manifest build|verify PATH``."""

from __future__ import annotations

import os
from typing import Any

import typer

from atdata.cli._out import print_table

__all__ = ["register"]


def _console() -> Any:
    from atdata.cli._out import console

    return console()


def _datasets(path: str, sample_type: type | None) -> dict[str, Any]:
    """Split name -> Dataset for a path, pattern, URL, directory, ``@name`` or a bare dataset
    name of the default index (as ``verify`` takes it)."""
    from atdata._load import load_dataset
    from atdata.cli._sources import looks_like_shards
    from atdata.dataset._dataset import Dataset

    if not path.startswith("@") and not looks_like_shards(path):
        path = "@local/" + path
    loaded = load_dataset(path, sample_type)
    if isinstance(loaded, Dataset):
        return {"": loaded}
    return dict(loaded)


def _sample_type(spec: str | None) -> type | None:
    from atdata.cli._core import _load_type

    return _load_type(spec)


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if hasattr(v, "tolist"):
        v = v.tolist()
    return str(v)


def register(app: typer.Typer) -> None:
    """Add ``query`` and the ``manifest`` command group to ``app``."""

    @app.command()
    def query(
        path: str = typer.Argument(
            ..., help="Shards, a directory, a URL pattern or a dataset name."
        ),
        sql: str = typer.Argument("", help="SQL WHERE clause over the manifest columns (DuckDB)."),
        count: bool = typer.Option(False, "--count", help="Print only the number of matches."),
        limit: int = typer.Option(50, "--limit", "-n", min=0, help="Rows to print (0: all)."),
    ) -> None:
        """Find samples through shard manifests with a SQL WHERE clause."""
        from rich.markup import escape
        from rich.table import Table

        con = _console()
        total = 0
        rows: list[tuple[str, Any, Any]] = []
        stats = [0, 0, 0]
        for split, ds in _datasets(path, None).items():
            res = ds.query(sql or None)
            total += len(res)
            s = res.stats
            stats[0] += s.shards_total
            stats[1] += s.shards_pruned
            stats[2] += s.shards_scanned
            if not count:
                rows.append((split, res.to_pandas(), res))
        if count:
            con.print(str(total))
            return
        fields: list[str] = []
        for _split, df, _res in rows:
            for c in df.columns:
                if not c.startswith("__") and c not in fields:
                    fields.append(c)
        multi = len(rows) > 1
        table = Table(title=escape(f"{path}: {total} matching sample(s)"))
        if multi:
            table.add_column("split")
        for col in ("shard", "key", *fields):
            table.add_column(escape(col))
        shown = 0
        for split, df, _res in rows:
            for rec in df.to_dict("records"):
                if limit and shown >= limit:
                    break
                cells = [os.path.basename(str(rec["__shard__"])), str(rec["__key__"])]
                cells += [_cell(rec.get(f, "")) for f in fields]
                table.add_row(*([split] if multi else []), *(escape(c) for c in cells))
                shown += 1
        print_table(table, con)
        more = f"; showing {shown}" if shown < total else ""
        con.print(
            f"{total} match(es){more}; shards: {stats[2]} scanned, {stats[1]} pruned of {stats[0]}"
        )

    manifest = typer.Typer(help="Build and check per-shard manifests.", no_args_is_help=True)
    app.add_typer(manifest, name="manifest")

    @manifest.command("build")
    def build(
        path: str = typer.Argument(..., help="Local shards: a path, pattern or directory."),
        force: bool = typer.Option(False, "--force", help="Rebuild manifests that exist."),
        type_: str = typer.Option(None, "--type", help="Sample type as 'package.module:Class'."),
    ) -> None:
        """Write <shard>.manifest.json + .manifest.parquet beside shards that lack one."""
        from atdata._errors import ConfigError
        from atdata._shards.sources import is_remote
        from atdata.manifest._builder import build_manifest
        from atdata.manifest._read import load_manifest

        con = _console()
        st = _sample_type(type_)
        built = kept = 0
        for ds in _datasets(path, st).values():
            for shard in ds.list_shards():
                if is_remote(shard):
                    raise ConfigError(f"manifests can only be built for local shards, not {shard}")
                m = load_manifest(shard) if not force else None
                if m is not None and not m.legacy:
                    try:
                        m.check_fresh()
                        kept += 1
                        continue
                    except Exception:  # stale: rebuild
                        pass
                jpath, _ = build_manifest(shard, st)
                built += 1
                con.print(f"built {jpath}")
        con.print(f"{built} manifest(s) built, {kept} up to date")

    @manifest.command("verify")
    def verify(
        path: str = typer.Argument(..., help="Shards: a path, pattern, directory or URL."),
    ) -> None:
        """Check that each shard's manifest agrees with the shard (count, keys, offsets)."""
        from rich.markup import escape

        from atdata.manifest._read import verify_manifest

        con = _console()
        bad = n = 0
        for ds in _datasets(path, None).values():
            for shard in ds.list_shards():
                n += 1
                problems = verify_manifest(shard, ds.source)
                if problems:
                    bad += 1
                    for p in problems:
                        con.print(f"[red]FAIL[/] {escape(p)}")
                else:
                    con.print(f"[green]ok[/]   {escape(shard)}")
        con.print(f"{n - bad} of {n} manifest(s) agree with their shards")
        if bad:
            raise typer.Exit(1)
