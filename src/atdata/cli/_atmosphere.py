"""CLI for the atmosphere: ``login``/``logout``/``whoami``, ``ls @handle``, ``local up|down --pds``."""

from __future__ import annotations

from typing import Any

import typer

from atdata._errors import ConfigError
from atdata.cli._out import print_table

__all__ = ["local_app", "ls_remote", "register"]


def local_app(app: typer.Typer) -> typer.Typer:
    """The ``atdata local`` sub-app, created once and shared by the topics that add to it."""
    for group in app.registered_groups:
        if group.name == "local" and group.typer_instance is not None:
            return group.typer_instance
    sub = typer.Typer(
        help="Local services: the index and data store, a test PDS.", no_args_is_help=True
    )
    app.add_typer(sub, name="local")
    return sub


def _has_command(app: typer.Typer, name: str) -> bool:
    return any(
        (c.name or (c.callback.__name__ if c.callback else "")) == name
        for c in app.registered_commands
    )


def _console() -> Any:
    from atdata.cli._out import console

    return console()


def ls_remote(target: str) -> None:
    """Print the datasets, schemas and lenses published by ``@handle`` (or ``@did:...``)."""
    from rich.table import Table

    from atdata.atmosphere._remote import list_datasets, list_lenses, list_schemas

    who = target.lstrip("@").split("/", 1)[0]
    con = _console()
    t = Table(title=f"datasets of @{who}")
    for col in ("name", "version", "split", "storage", "shards", "samples", "uri"):
        t.add_column(col)
    for e in list_datasets(who):  # a record off the lexicon shows what it has, not a traceback
        size, st = (
            x if isinstance(x, dict) else {} for x in (e.value.get("size"), e.value.get("storage"))
        )
        kind = str(st.get("$type", "")).rsplit(".", 1)[-1]
        t.add_row(
            e.name,
            e.version or "",
            e.split or "",
            kind,
            str(size.get("shards", "")),
            str(size.get("samples", "")),
            e.uri,
        )
    print_table(t, con)
    s = Table(title=f"schemas of @{who}")
    for col in ("name", "version", "uri"):
        s.add_column(col)
    for uri, _cid, v in list_schemas(who):
        s.add_row(str(v.get("name", "")), str(v.get("version", "")), uri)
    print_table(s, con)
    lenses = list_lenses(who)
    if lenses:
        lt = Table(title=f"lenses of @{who}")
        for col in ("name", "source", "target", "code"):
            lt.add_column(col)
        for lr in lenses:
            g = lr.getter
            lt.add_row(
                lr.name,
                lr.source_schema,
                lr.target_schema,
                f"{g.repository}@{g.commit[:10]}:{g.path}",
            )
        print_table(lt, con)


def register(app: typer.Typer) -> None:
    """Add the atmosphere commands."""

    @app.command()
    def login(
        handle: str = typer.Argument(..., help="Handle or DID, e.g. alice.bsky.social"),
        pds: str = typer.Option(None, help="PDS URL (default: resolved from the handle)"),
        password: str = typer.Option(
            None, envvar="ATDATA_APP_PASSWORD", help="App password (prompted when not given)"
        ),
    ) -> None:
        """Log in to the atmosphere with an app password; the session is saved (mode 0600)."""
        from atdata.atmosphere._client import Atmosphere

        if not password:
            password = typer.prompt("App password", hide_input=True)
        atmo = Atmosphere.login(handle, password, pds, save=True)
        _console().print(f"logged in as [bold]@{atmo.handle}[/] ({atmo.did}) at {atmo.pds}")

    @app.command()
    def logout() -> None:
        """Revoke the saved session and delete it."""
        from atdata._errors import AuthenticationError
        from atdata.atmosphere._client import Atmosphere, session_file

        try:
            atmo = Atmosphere.resume()
        except AuthenticationError:
            session_file().unlink(missing_ok=True)
            _console().print("not logged in")
            return
        handle = atmo.handle
        atmo.logout()
        _console().print(f"logged out @{handle}")

    @app.command()
    def whoami() -> None:
        """Show the account of the saved session (and check it is still valid)."""
        from atdata.atmosphere._client import Atmosphere

        atmo = Atmosphere.resume(refresh=True)
        _console().print(f"@{atmo.handle} {atmo.did} {atmo.pds}")

    if not _has_command(app, "ls"):

        @app.command("ls")
        def ls_cmd(target: str = typer.Argument(..., help="@handle or @did:plc:...")) -> None:
            """List what a repository publishes: datasets, schemas, lenses."""
            if not target.startswith("@") or target.startswith("@local"):
                raise ConfigError(
                    f"`atdata ls {target}`: give an atmosphere repository like @alice.bsky.social"
                )
            ls_remote(target)

    local = local_app(app)

    @local.command("up")
    def local_up(
        pds: bool = typer.Option(
            False, "--pds", help="Start a loopback ATProto PDS + PLC directory"
        ),
        port: int = typer.Option(2583, help="PDS port"),
        fresh: bool = typer.Option(False, help="Wipe the PDS data directory first"),
        account: str = typer.Option(
            None, help="Also create this test account (e.g. alice -> alice.test) and print it"
        ),
    ) -> None:
        """Start local services (--pds: a loopback PDS; installs on first use, 2-6 minutes)."""
        if not pds:
            raise ConfigError("say which service to start, e.g. `atdata local up --pds`")
        from atdata.atmosphere import _pdsrun

        up = [r for r in _pdsrun.running() if r.port == port]
        s = up[0] if up else _pdsrun.start(port, fresh=fresh)
        con = _console()
        con.print(f"PDS {s.url} (PLC {s.plc_url}), pid {s.pid}, data {s.data_dir}, log {s.log}")
        con.print(f"use it with: export ATDATA_PLC_URL={s.plc_url} ATDATA_HANDLE_RESOLVER={s.url}")
        if account:
            acct = _pdsrun.create_dev_account(s.url, account)
            con.print(f"account @{acct.handle} ({acct.did}) password {acct.password}")
            con.print(f"log in with: atdata login {acct.handle} --pds {s.url}")

    @local.command("down")
    def local_down(
        pds: bool = typer.Option(False, "--pds", help="Stop the loopback PDS"),
        port: int = typer.Option(
            None, help="Only the PDS on this port (default: all started ones)"
        ),
    ) -> None:
        """Stop local services started with `atdata local up`."""
        if not pds:
            raise ConfigError("say which service to stop, e.g. `atdata local down --pds`")
        from atdata.atmosphere import _pdsrun

        servers = [s for s in _pdsrun.running() if port is None or s.port == port]
        for s in servers:
            _pdsrun.stop(s)
            _console().print(f"stopped PDS {s.url} (pid {s.pid})")
        if not servers:
            _console().print("no PDS is running")
