"""`consentry optout`: offline do-not-train lists (domains, URL prefixes, image sha256, perceptual hashes)."""

from __future__ import annotations

from pathlib import Path

import click

from .common import CliContext, emit_json, json_option, local_actor, pass_ctx, table


@click.group("optout")
def optout() -> None:
    """Import, list and remove do-not-train lists (honoured by the crawler and by ingest).

    \b
    Example:
      consentry optout import spawning-2026-11.csv --name spawning --date 2026-11-30
      consentry optout list
    """


@optout.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", help="The list's name (an id: lowercase letters, digits, . _ -); or `name` in a JSON file.")
@click.option("--date", "list_date", help="The list's date, YYYY-MM-DD; or `date` in a JSON file.")
@json_option
@pass_ctx
def import_(ctx: CliContext, file: Path, name: str | None, list_date: str | None, as_json: bool) -> None:
    """Import a do-not-train list and erase what is already indexed under it; prints the receipt.

    FILE is CSV (rows `type,value`, type one of domain, prefix, sha256, phash; a `type,value`
    header and `#` comment lines are allowed) or JSON (`{"name", "date", "entries": [{"type",
    "value"}]}` or `{"domains": [...], "prefixes": [...], "sha256": [...], "phash": [...]}`).
    A bad entry stops the import with its line and nothing is imported. Importing a list of the
    same name replaces it (and scans again).

    Example: consentry optout import spawning.csv --name spawning --date 2026-11-30
    """
    from .. import wiring
    from ..catalog.optouts import list_date as check_date
    from ..core.errors import ConfigError
    from ..core.optouts import parse_list
    from ..core.records import check_id

    entries, meta = parse_list(file.read_bytes(), file.name)
    name = name or meta.get("name")
    list_date = list_date or meta.get("date")
    if not name or not list_date:
        raise click.UsageError("give the list's --name and --date (or `name` and `date` in the JSON file)")
    check_id(str(name), "list name")
    try:
        list_date = check_date(str(list_date))
    except ValueError as exc:
        raise ConfigError(f"--date {list_date}: {exc}") from None
    r = wiring.optout_importer(ctx.settings).import_list(str(name), list_date, entries, local_actor(), file.name)
    if as_json:
        emit_json(r.to_dict())
        return
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(r.entries.items()))
    click.echo(f"do-not-train list {r.list_name} ({r.list_date}) imported: {kinds}; receipt {r.request_id}")
    click.echo(f"already indexed under it: {len(r.matched)} image(s) erased, {r.faces_erased} face(s)")
    for m in r.matched:
        click.echo(f"  {m['url']}  ({m['entry']}; erasure {m['erasure']})")


@optout.command("list")
@json_option
@pass_ctx
def list_(ctx: CliContext, as_json: bool) -> None:
    """List the imported do-not-train lists. Example: consentry optout list --json"""
    from .. import wiring

    lists = wiring.optout_registry(ctx.settings).lists()
    if as_json:
        emit_json(lists)
        return
    if not lists:
        click.echo("no do-not-train lists (import one with `consentry optout import`)")
        return
    rows = []
    for d in lists:
        counts: dict[str, int] = {}
        for e in d["entries"]:
            counts[e["type"]] = counts.get(e["type"], 0) + 1
        receipt = d.get("receipt") or {}
        rows.append((d["name"], d["date"], ", ".join(f"{n} {k}" for k, n in sorted(counts.items())),
                     d["imported_at"][:19], len(receipt.get("matched", [])), receipt.get("request_id", "")))
    table(rows, ["list", "date", "entries", "imported", "erased at import", "receipt"])


@optout.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_ctx
def remove(ctx: CliContext, name: str, yes: bool, as_json: bool) -> None:
    """Remove a do-not-train list: what it covered is no longer refused (nothing erased comes back).

    Example: consentry optout remove spawning --yes
    """
    from .. import wiring

    if not yes:
        click.confirm(f"remove the do-not-train list {name!r}? what it covers will no longer be refused", abort=True)
    doc = wiring.optout_importer(ctx.settings).remove(name, local_actor())
    if as_json:
        emit_json({"removed": name, "date": doc.get("date"), "entries": len(doc.get("entries", []))})
    else:
        click.echo(f"do-not-train list {name} removed ({len(doc.get('entries', []))} entries)")


COMMANDS = [optout]
