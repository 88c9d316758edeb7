"""Index commands: ``atdata ls``, ``atdata schema show|diff|stubs``, ``atdata local status|gc``.

They use the default index: ``$ATDATA_HOME/index.db`` (``~/.atdata``), or ``--index PATH``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from atdata.cli._core import _load_type
from atdata.cli._out import print_table
from atdata.cli._sources import looks_like_shards, open_index, schema_of

__all__ = ["register"]


def _print_body(title: str, body: dict) -> None:
    from rich.markup import escape
    from rich.table import Table

    required = set(body.get("required") or ())
    t = Table(title=escape(title))
    for col in ("field", "type", "required"):
        t.add_column(col, overflow="fold")
    for f, prop in body.get("properties", {}).items():
        t.add_row(
            escape(f),
            escape(json.dumps(prop, separators=(",", ":"))),
            "yes" if f in required else "no",
        )
    print_table(t)


def _index(path: str | None):
    return open_index(path)


_INDEX_OPT = typer.Option(
    None, "--index", help="SQLite index file (default: $ATDATA_HOME/index.db)."
)


def register(app: typer.Typer) -> None:
    """Add the index commands to ``app`` (rich.table is imported by the commands that print one)."""

    schema_app = typer.Typer(help="Stored sample schemas.", no_args_is_help=True)
    app.add_typer(schema_app, name="schema")
    from atdata.cli._atmosphere import (
        local_app as _shared_local,
    )  # one `local` group for every topic

    local_app = _shared_local(app)

    app.registered_commands[:] = [c for c in app.registered_commands if c.name != "ls"]

    @app.command("ls")
    def ls(
        target: str = typer.Argument(
            None,
            help="NAME (or @local/NAME) lists that dataset's versions; @handle.example lists "
            "an atmosphere repository.",
        ),
        index: str = _INDEX_OPT,
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """List datasets in the index (every version), or what @handle publishes."""
        if target and target.startswith("@") and target.split("/", 1)[0] != "@local":
            from atdata.cli._atmosphere import ls_remote

            ls_remote(target)
            return
        idx = _index(index)
        entries = idx.list_datasets()
        if target:
            name, _, version = target.removeprefix("@local/").partition("@")
            entries = [e for e in entries if e.name == name and version in ("", e.version)]
            if not entries:
                idx.get_dataset(target)  # raises NotFoundError, naming the index
        if as_json:
            typer.echo(json.dumps([e.to_json() for e in entries], indent=1))
            return
        from rich.table import Table

        t = Table("name", "version", "samples", "shards", "bytes", "schema", "license", "created")
        for e in entries:
            t.add_row(
                e.name, e.version, str(e.num_samples if e.num_samples is not None else "?"),
                str(len(e.shards)), str(e.size if e.size is not None else "?"),
                (e.schema_ref or "-").rsplit("/", 1)[-1], e.license or "-", (e.created_at or "")[:19],
            )  # fmt: skip
        print_table(t)

    @schema_app.command("show")
    def show(
        name: str,
        index: str = _INDEX_OPT,
        as_json: bool = typer.Option(False, "--json"),
        type_: str | None = typer.Option(None, "--type", help="Sample type as module:Class."),
    ) -> None:
        """Show a schema: of the index, of a dataset, or of shards.

        NAME, NAME@VERSION or its ref in the index; @local/NAME (the dataset's schema); or
        shards (a path, pattern or URL: their sample type, else the first sample's fields).
        """
        if looks_like_shards(name) or name.startswith("@"):
            idx = None if looks_like_shards(name) else _index(index)
            title, body = schema_of(name, idx, _load_type(type_))
            if as_json:
                typer.echo(json.dumps(body, indent=1))
            else:
                _print_body(title, body)
            return
        rec = _index(index).get_schema_record(name)
        if as_json:
            typer.echo(json.dumps(rec.to_record(), indent=1))
            return
        required = set(rec.body.get("required") or ())
        from rich.table import Table

        t = Table("field", "type", "required", title=f"{rec.name}@{rec.version}")
        for f, prop in rec.body.get("properties", {}).items():
            t.add_row(f, json.dumps(prop, separators=(",", ":")), "yes" if f in required else "no")
        print_table(t)

    @schema_app.command("diff")
    def diff(a: str, b: str, index: str = _INDEX_OPT) -> None:
        """Fields added, removed and retyped from schema A to B.

        Each is a schema name in the index, @local/NAME or shards. Exit 0 when they match, 1
        when they differ, 2 when one cannot be read.
        """
        from atdata._errors import AtdataError
        from atdata._wire.schema_json import diff_schemas

        try:
            idx = None if looks_like_shards(a) and looks_like_shards(b) else _index(index)
            (ta, ba), (tb, bb) = schema_of(a, idx), schema_of(b, idx)
        except (AtdataError, OSError) as exc:  # upstream's contract: 2 is an error, 1 a difference
            from rich.markup import escape

            from atdata.cli._out import console

            console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}")
            raise typer.Exit(2) from None
        changes = diff_schemas(ba, bb)
        for kind, sign in (("added", "+"), ("removed", "-"), ("retyped", "~")):
            for f in changes[kind]:
                typer.echo(f"{sign} {f} ({kind})")
        if any(changes.values()):
            raise typer.Exit(1)
        typer.echo(f"{ta} and {tb} have the same fields")

    @schema_app.command("stubs")
    def stubs(
        out: Path = typer.Option(
            Path("atdata_schemas.pyi"), "--out", "-o", help="Stub file to write."
        ),
        index: str = _INDEX_OPT,
    ) -> None:
        """Write .pyi stubs for the stored schemas (latest version of each) so IDEs complete them."""
        from atdata.index._stubs import stubs_module

        recs = _index(index).list_schema_records()
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(stubs_module(recs))
        tmp.replace(out)
        typer.echo(f"wrote {len({r.name for r in recs})} stub classes to {out}")

    @local_app.command("status")
    def status(index: str = _INDEX_OPT) -> None:
        """Which provider and data store are configured, and whether each is reachable."""
        idx = _index(index)
        st = idx.status()
        from rich.table import Table

        t = Table("part", "kind", "where", "reachable")
        for part, s in st.items():
            t.add_row(part, s["kind"], s["url"], "yes" if s["ok"] else f"NO: {s['error']}")
        print_table(t)
        from atdata._errors import AtdataError
        from atdata.index._gc import find_leftovers

        try:
            left = find_leftovers(idx, min_age=0)
        except AtdataError as exc:  # an unreachable store is reported above
            typer.echo(f"could not search the data store for leftovers: {exc}")
            left = []
        if left:
            size = sum(x.size for x in left)
            typer.echo(
                f"left by killed writers: {len(left)} staging dir(s)/temp file(s)/orphan(s), "
                f"{size} bytes (remove them with: atdata local gc)"
            )
            for x in left:
                typer.echo(f"  {x.kind:8} {x.size:>12}  {x.path}")
        if not all(s["ok"] for s in st.values()):
            raise typer.Exit(1)

    @local_app.command("gc")
    def gc(
        index: str = _INDEX_OPT,
        min_age: float = typer.Option(
            3600.0, "--min-age", min=0, help="Leave temp files younger than this (seconds)."
        ),
        dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would go."),
        hf_cache_limit: int | None = typer.Option(
            None,
            "--hf-cache-limit",
            min=0,
            help="Bytes the to_hf() cache may keep (default $ATDATA_HF_CACHE_LIMIT, else 8 GiB).",
        ),
        members_cache_limit: int | None = typer.Option(
            None,
            "--members-cache-limit",
            min=0,
            help="Bytes of member indexes to keep (default $ATDATA_MEMBERS_CACHE_LIMIT, else 1 GiB).",
        ),
        verified_cache_limit: int | None = typer.Option(
            None,
            "--verified-cache-limit",
            min=0,
            help="Bytes of shard hashes to keep (default $ATDATA_VERIFIED_CACHE_LIMIT, else 16 MiB).",
        ),
    ) -> None:
        """Remove what killed writers left behind, and trim the caches to their caps.

        Staging directories and temp files in the data store go, and the orphans of losing
        write_id runs (files in an entry's write directory that no entry references), never a
        staging directory in use, never a file an index entry references; the ``to_hf()`` cache in
        ``$ATDATA_CACHE_DIR/hf`` is trimmed to its cap (never a file in use), and the
        member-index (``members/``) and shard-hash (``verified/``) caches to theirs (least
        recently used first; each is rebuilt on demand).
        """
        from atdata._shards.members import cache_dir
        from atdata.dataset._hf_cache import cache_root
        from atdata.index._gc import collect, collect_caches, collect_hf_cache

        rep = collect(_index(index), min_age=min_age, dry_run=dry_run)
        verb = "would remove" if dry_run else "removed"
        for x in rep.removed:
            typer.echo(f"{verb} {x.kind} {x.path} ({x.size} bytes)")
        for p in rep.skipped:
            typer.echo(f"kept {p} (referenced by an index entry, or could not be removed)")
        typer.echo(f"{verb} {len(rep.removed)} item(s), {rep.bytes} bytes")
        hf = collect_hf_cache(min_age=min_age, dry_run=dry_run, limit=hf_cache_limit)
        for x in hf.removed:
            typer.echo(f"{verb} {x.kind} {x.path} ({x.size} bytes)")
        typer.echo(f"hf cache {cache_root()}: {verb} {len(hf.removed)} file(s), {hf.bytes} bytes")
        small = collect_caches(
            min_age=min_age,
            dry_run=dry_run,
            members_limit=members_cache_limit,
            verified_limit=verified_cache_limit,
        )
        for x in small.removed:
            typer.echo(f"{verb} {x.kind} {x.path} ({x.size} bytes)")
        where = os.path.dirname(cache_dir())
        typer.echo(
            f"caches {where}/members, {where}/verified: "
            f"{verb} {len(small.removed)} file(s), {small.bytes} bytes"
        )
